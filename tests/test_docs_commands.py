"""Every shell command block of README.md and docs/*.md runs, exactly as written; and the template recipe
(egs/template/v2, "Train on your own data") trains, extracts, scores and exports on a tiny corpus.

Convention for the documents (docs/README: "Commands in the docs"):
* a block fenced ```bash (or ```sh, ```shell) is a shell command block: this test runs it with bash -e, in
  a sandbox copy of the checkout (cwd: its top; HOME: a home with ~/my_corpus, a tiny corpus of
  <speaker>/<utt>.wav), and fails if it exits non-zero;
* a block preceded by ``<!-- not run: <reason> -->`` is not run; the reason is required;
* a block preceded by ``<!-- run first -->`` runs before all others, once per session, in document order
  (README's "Train on your own data": it trains the model the other blocks use);
* plain ``` blocks are output, usage lines and config text: one whose first line is a command a reader
  would copy (``tfspk-x ...``, ``steps/x.sh ...`` without ``<placeholders>`` or ``[options]``; a ``$ `` transcript
  of a command and its output is output) must be
  fenced as a shell block instead.

The sandbox is prepared once per session: the checkout's files as symlinks (recipes copied, so runs write
only into the sandbox), the tiny corpus, and egs/template/v2/conf/train.yaml replaced by a tiny network
and schedule, conf/export.conf asks for the SavedModel and ONNX, and run.sh runs one job a step (the
documents' commands stay as written). The demo's outputs are there too (make_demo_outputs):
egs/demo/v2/exp/ecapa_tdnn_nnet_aamsoftmax with the template's network and x-vectors and the demo's stages 5
and 7 run on them, egs/demo/v2/data with the template's corpus as its evaluation set.
Blocks of one document run in document order; a block may use what an earlier block of its document made.
To add a command to the docs, write it in a ```bash block; nothing here needs an edit.
"""
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, run, synth_speech

DOCUMENTS = [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))
SHELL_LANGS = {"bash", "sh", "shell"}
COMMAND_START = re.compile(r"^(tfspk-[a-z-]+|steps/|utils/|local/|\./run\.sh|bash |cd |\.venv/|nice |"
                           r"tensorboard |pip |python )")
SPEAKERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
UTTS_PER_SPEAKER = 6
TINY_CONFIG = """# tests/test_docs_commands.py: the template's config at a size that trains in seconds
seed: 777
features:
  type: fbank
  conf: conf/fbank.conf
nnet:
  name: ecapa_tdnn
  # scale 2: 1 Res2 branch a block (the default 8: 7; each branch adds the previous branch's output), the
  # smallest graph to trace, export and convert (an export with TFLite and ONNX: 28 s of CPU at scale 4, 21 s)
  params: {channels: 16, scale: 2, embedding_dim: 16, se_channels: 8, mfa_channels: 48, attention_channels: 8}
loss:
  name: amsoftmax
  params: {m3: 0.2, anneal_gamma: 0.01}
optimizer: {name: adam, lr: 0.002}
schedule: {steps_per_epoch: 3, num_epochs: 2}
data: {speakers_per_batch: 8, min_frames: 40, max_frames: 60, num_threads: 1}
valid: {num_utts: 0}
log_every: 2
"""


@dataclass
class Block:
    path: Path
    line: int          # of the opening fence
    lang: str
    text: str
    marker: str        # "", "not run: <reason>", "run first"

    @property
    def where(self):
        return f"{self.path.relative_to(REPO)}:{self.line}"


def parse_blocks(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^```\s*([\w-]*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        before = i - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        comment = re.match(r"^<!--\s*(.*?)\s*-->$", lines[before].strip()) if before >= 0 else None
        blocks.append(Block(path, i + 1, fence.group(1), "\n".join(lines[i + 1:end]) + "\n",
                            comment.group(1) if comment else ""))
        i = end + 1
    return blocks


ALL_BLOCKS = [b for path in DOCUMENTS for b in parse_blocks(path)]
SHELL_BLOCKS = [b for b in ALL_BLOCKS if b.lang in SHELL_LANGS]
RUN_FIRST = [b for b in SHELL_BLOCKS if b.marker == "run first"]
RUN_LATER = [b for b in SHELL_BLOCKS if not b.marker]


# ---------------------------------------------------------------- the convention itself
def test_the_parser_reads_markers_and_languages(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("text\n<!-- not run: needs a GPU -->\n\n```bash\nnvidia-smi\n```\n```bash\necho hi\n```\n"
                   "<!-- run first -->\n```sh\ntrue\n```\n```\nplain\n```\n")
    got = [(b.line, b.lang, b.text, b.marker) for b in parse_blocks(doc)]
    assert got == [(4, "bash", "nvidia-smi\n", "not run: needs a GPU"), (7, "bash", "echo hi\n", ""),
                   (11, "sh", "true\n", "run first"), (14, "", "plain\n", "")]


def test_every_marker_is_known_and_every_not_run_block_says_why():
    for block in SHELL_BLOCKS:
        assert block.marker in ("", "run first") or re.match(r"not run: \S", block.marker), \
            f"{block.where}: unknown marker '<!-- {block.marker} -->' (use '<!-- not run: <reason> -->')"


def test_commands_are_not_hidden_in_plain_blocks():
    for block in ALL_BLOCKS:
        if block.lang:
            continue
        first = next((line for line in block.text.splitlines() if line.strip() and not line.startswith("#")), "")
        synopsis = "<" in first or "[" in first
        assert not (COMMAND_START.match(first) and not synopsis), \
            f"{block.where}: a command in a plain ``` block; fence it as ```bash (it then runs) or add <!-- not run: why -->"


def test_readme_has_the_front_door_sections():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for title in ("Use a trained model", "Train on your own data", "Start from a pretrained model"):
        assert re.search(rf"^## {title}", text, re.M), title
    assert len(text.splitlines()) <= 170
    assert RUN_FIRST and all(b.path.name == "README.md" for b in RUN_FIRST)


# ---------------------------------------------------------------- the sandbox
def make_corpus(root):
    """~/my_corpus: <speaker>/<utt>.wav, 16 kHz, a voice (f0) per speaker."""
    for index, speaker in enumerate(SPEAKERS):
        (root / speaker).mkdir(parents=True)
        for utt in range(1, UTTS_PER_SPEAKER + 1):
            samples = synth_speech(1.6, 16000, seed=100 * index + utt, f0=90.0 + 17.0 * index)
            sf.write(str(root / speaker / f"{utt:02d}.wav"), samples.astype(np.int16), 16000, subtype="PCM_16")


def copy_recipe(src, dest):
    """A recipe dir without the outputs of runs in the checkout (symlinks stay symlinks)."""
    shutil.copytree(src, dest, symlinks=True,
                    ignore=shutil.ignore_patterns("data", "exp", "mfcc", "fbank", "downloads", "*.log"))


def run_block(block, sandbox, timeout=900):
    proc = run(["bash", "-e", "-o", "pipefail", "-c", block.text], cwd=sandbox["root"], env=sandbox["env"],
               check=False, timeout=timeout)
    assert proc.returncode == 0, (f"{block.where} failed (exit {proc.returncode}):\n{block.text}\n"
                                  f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    base = tmp_path_factory.mktemp("docs")
    root, home = base / "tfspk", base / "home"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name in ("egs", ".git") or entry.name.startswith(".pytest"):
            continue
        (root / entry.name).symlink_to(entry)
    if not (root / ".venv").exists():   # the venv running the tests (tools/setup_env.sh's, or another)
        (root / ".venv").symlink_to(Path(sys.executable).parent.parent)
    for recipe in ("demo", "voxceleb", "template"):
        copy_recipe(REPO / "egs" / recipe / "v2", root / "egs" / recipe / "v2")
    (root / "egs" / "template" / "v2" / "conf" / "train.yaml").write_text(TINY_CONFIG)
    # SavedModel and ONNX, no TFLite (tests/test_export.py covers it): the blocks' tfspk-embed, -enroll and
    # -identify on exp/ecapa_tdnn_amsoftmax/export take the fastest runtime present, onnxruntime, as with the
    # recipe's own export.conf, and start no TensorFlow (0.6 s of CPU a call instead of 5; the ONNX conversion
    # costs 9 s once)
    (root / "egs" / "template" / "v2" / "conf" / "export.conf").write_text("--tflite=false\n--onnx=true\n")
    # one job a step (as tests/test_recipe_demo.py's demo copy): run.sh's default --nj 2 starts two TensorFlow
    # extractions a data dir in stage 4, and two jobs a feature step, for 60 utterances; a command line's --nj
    # still wins. tests/test_extract.py and tests/test_steps_features.py run split jobs.
    run_sh = root / "egs" / "template" / "v2" / "run.sh"
    text = run_sh.read_text()
    assert "\nnj=2 " in text
    run_sh.write_text(text.replace("\nnj=2 ", "\nnj=1 ", 1))
    make_corpus(home / "my_corpus")
    path = [p for p in os.environ["PATH"].split(os.pathsep)
            if os.path.realpath(p) not in (str(REPO / "utils"), str(REPO / "steps"))]
    env = {"HOME": str(home), "PATH": os.pathsep.join([str(Path(sys.executable).parent)] + path),
           "TFSPK_VENV": str(Path(sys.executable).parent.parent)}
    box = {"root": root, "home": home, "env": env, "outputs": {}}
    for block in RUN_FIRST:
        box["outputs"][block.where] = run_block(block, box, timeout=1800)
    if (root / "egs" / "template" / "v2" / "exp" / "ecapa_tdnn_amsoftmax").is_dir():
        make_demo_outputs(box)
    box["ran"] = set()
    return box


def make_demo_outputs(box):
    """egs/demo/v2 as its run.sh leaves it, for the blocks about the demo (docs/export.md), from the template's
    trained model (no second training): data/train is the template's; data/eval its whole corpus (10 speakers:
    stage 7 splits them into a calibration and a test half, local/enroll_identify.sh needs impostors) with
    trials by the demo's local/make_trials.py; exp/ecapa_tdnn_nnet_aamsoftmax has the template's network, front
    end and x-vectors (stage 4's, train and eval: the scp files point into the template's archives); then the
    demo's own run.sh runs stages 5 and 7 (back-end, scores, calibration halves; no block reads stage 6's report
    and DET plot, which tests/test_recipe_demo.py's end-to-end run checks). data/wav/ast_armelle/ holds
    two recordings of one speaker under the names the docs use."""
    root, home = box["root"], box["home"]
    template, demo = root / "egs" / "template" / "v2", root / "egs" / "demo" / "v2"
    model, nnet = template / "exp" / "ecapa_tdnn_amsoftmax", demo / "exp" / "ecapa_tdnn_nnet_aamsoftmax"
    (demo / "data" / "eval").mkdir(parents=True)
    (demo / "data" / "train").symlink_to(template / "data" / "train")
    for name in ("wav.scp", "utt2spk", "spk2utt", "utt2lang"):
        shutil.copy(template / "data" / "all" / name, demo / "data" / "eval" / name)
    run([sys.executable, "local/make_trials.py", "data/eval", "data/eval/trials"], cwd=demo, env=box["env"])
    nnet.mkdir(parents=True)
    for name in ("config.yaml", "features.yaml", "final"):
        (nnet / name).symlink_to(model / name)
    tables = {}
    for part in ("train", "eval"):
        lines = (model / f"xvectors_{part}" / "xvector.scp").read_text().splitlines()
        tables[part] = [f"{key} {template / location}" for key, location in (line.split() for line in lines)]
    for part, lines in (("train", tables["train"]), ("eval", sorted(tables["train"] + tables["eval"]))):
        (nnet / f"xvectors_{part}").mkdir()
        (nnet / f"xvectors_{part}" / "xvector.scp").write_text("".join(line + "\n" for line in lines))
    # stages 5 and 7 (back-end and scores; calibration halves): no block reads stage 6's report and DET plot
    run(["./run.sh", "--stage", "5", "--stop-stage", "5"], cwd=demo, env=box["env"])
    run(["./run.sh", "--stage", "7"], cwd=demo, env=box["env"])
    speaker = home / "my_corpus" / "erin"
    (demo / "data" / "wav" / "ast_armelle").mkdir(parents=True)
    for utt, name in (("01", "dictate_forhelp"), ("02", "dictate_playback")):
        shutil.copy(speaker / f"{utt}.wav", demo / "data" / "wav" / "ast_armelle" / f"ast_armelle-{name}.wav")


@pytest.mark.slow
def test_the_template_recipe_trains_extracts_scores_and_exports(sandbox):
    assert RUN_FIRST, "README.md has no '<!-- run first -->' block training the template recipe"
    recipe = sandbox["root"] / "egs" / "template" / "v2"
    exp = recipe / "exp" / "ecapa_tdnn_amsoftmax"
    for name in ("final/DONE", "xvectors_train/xvector.scp", "xvectors_eval/xvector.scp", "scores/plda_scores",
                 "scores/cosine_scores", "scores/results.txt", "scores/det.png", "export/export.json",
                 "export/saved_model/saved_model.pb", "export/model.onnx"):
        assert (exp / name).exists(), name
    # every 5th speaker evaluates: 2 of 10, never in training
    eval_speakers = {line.split()[0] for line in (recipe / "data/eval/spk2utt").read_text().splitlines()}
    train_speakers = {line.split()[0] for line in (recipe / "data/train/spk2utt").read_text().splitlines()}
    assert eval_speakers == {"erin", "judy"} and train_speakers == set(SPEAKERS) - eval_speakers
    assert (recipe / "data/all/wav.scp").read_text().splitlines()[0] == \
        f"alice-01 {sandbox['home']}/my_corpus/alice/01.wav"
    output = "".join(p.stdout for p in sandbox["outputs"].values())
    assert "progress: 6/6 steps (100%)" in output          # stage 3 shows the training's progress lines
    results = (exp / "scores" / "results.txt").read_text()
    assert "plda" in results and "cosine" in results


def test_prepare_data_takes_a_kaldi_data_dir_and_names_bad_input(sandbox, tmp_path):
    recipe = sandbox["root"] / "egs" / "template" / "v2"
    src = tmp_path / "kaldi"
    src.mkdir()
    wavs = sorted((sandbox["home"] / "my_corpus").glob("*/*.wav"))[:8]
    (src / "wav.scp").write_text("".join(f"{p.parent.name}_{p.stem} {p}\n" for p in wavs))
    (src / "utt2spk").write_text("".join(f"{p.parent.name}_{p.stem} {p.parent.name}\n" for p in wavs))
    proc = run(["local/prepare_data.sh", str(src), str(tmp_path / "out")], cwd=recipe, env=sandbox["env"])
    assert (tmp_path / "out/wav.scp").read_text() == (src / "wav.scp").read_text()
    assert (tmp_path / "out/utt2lang").read_text().splitlines()[0] == "alice_01 und"
    assert "8 utterances of 2 speakers" in proc.stdout
    empty = tmp_path / "empty"
    (empty / "spk").mkdir(parents=True)
    proc = run(["local/prepare_data.sh", str(empty), str(tmp_path / "out2")], cwd=recipe, env=sandbox["env"],
               check=False)
    assert proc.returncode == 1 and "no <speaker>/<utterance>.wav" in proc.stderr
    (empty / "spk" / "a b.wav").write_bytes(b"")
    proc = run(["local/prepare_data.sh", str(empty), str(tmp_path / "out3")], cwd=recipe, env=sandbox["env"],
               check=False)
    assert proc.returncode == 1 and "whitespace" in proc.stderr
    proc = run(["./run.sh"], cwd=recipe, env=sandbox["env"], check=False)
    assert proc.returncode == 1 and "needs --corpus" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("block", RUN_LATER, ids=[b.where for b in RUN_LATER])
def test_shell_block_runs_as_written(sandbox, block):
    # A block may use what the blocks before it in its document made, as a reader runs them in order (the export
    # of docs/export.md's first block serves its later ones): earlier blocks of the document that have not run in
    # this session (a -k selection, another order) run first, each at most once.
    for earlier in RUN_LATER[:RUN_LATER.index(block)]:
        if earlier.path == block.path and earlier.where not in sandbox["ran"]:
            sandbox["ran"].add(earlier.where)
            run_block(earlier, sandbox)
    sandbox["ran"].add(block.where)
    run_block(block, sandbox)


def test_no_issue_numbers_in_code_and_docs():
    """Comments and docs speak of the code, not of the issue tracker ("(issue 12 item 1)" is forbidden)."""
    pattern = re.compile(r"\bissues? #?\d+|\bissue\]? \d+", re.I)
    offenders = []
    for top in ("tfspk", "steps", "utils", "egs", "docs", "tests", "tools", "benchmarks"):
        for path in sorted((REPO / top).rglob("*")):
            text_file = path.suffix in (".py", ".sh", ".pl", ".md", ".yaml", ".conf", ".txt")
            if path.is_file() and not path.is_symlink() and text_file and path.name != "test_docs_commands.py":
                for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                    if pattern.search(line):
                        offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:100]}")
    for number, line in enumerate((REPO / "README.md").read_text(encoding="utf-8").splitlines(), 1):
        if pattern.search(line):
            offenders.append(f"README.md:{number}: {line.strip()[:100]}")
    assert not offenders, "\n".join(offenders)
