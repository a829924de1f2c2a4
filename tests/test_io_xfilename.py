"""tfspk.io.xfilename (Kaldi rx/wx filenames), the one trials rule, and io regressions.

* every place of the package that runs a command or touches stdin/stdout bytes is xfilename;
* ClassifyRxfilename / ClassifyWxfilename as Kaldi's table, Input/Output on files, pipes, offsets;
* one trials file read by every reader and tool gives the same pairs and the same error;
* tfspk-copy-feats on an empty archive fails and leaves no output; a truncated wav is warned about.
"""
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import run_tool_here, synth_speech
from tfspk.errors import ToolError
from tfspk.io import ark, table, xfilename

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tfspk"
# Running a command or using the raw standard streams belongs to tfspk/io/xfilename.py only.
FORBIDDEN = re.compile(r"\bsubprocess\b|\bsys\.stdin\b|\bsys\.stdout\.buffer\b|\b(?:stdin|stdout)\.fileno\b"
                       r"|\bos\.(?:popen|system|spawn\w*)\b")
ALLOWED = {PACKAGE / "io" / "xfilename.py"}


def test_only_xfilename_runs_commands_or_touches_standard_streams():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in ALLOWED:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if FORBIDDEN.search(line):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not offenders, "use tfspk.io.xfilename instead:\n" + "\n".join(offenders)


def test_the_grep_would_catch_a_violation():
    # the pattern must match the forms it is meant to forbid (a test that cannot fail is a defect)
    for line in ("import subprocess", "data = sys.stdin.buffer.read()", "sys.stdout.buffer.write(b'')",
                 "open(sys.stdin.fileno())", "os.system('ls')", "os.popen('ls')"):
        assert FORBIDDEN.search(line), line
    assert not FORBIDDEN.search("print(value)") and not FORBIDDEN.search("sys.stderr.write('x')")


# ---------------------------------------------------------------------------------------------- classify
@pytest.mark.parametrize("name, allow_offset, kind", [
    ("-", False, "standard"), ("", False, "standard"), ("gunzip -c a.gz |", False, "pipe"),
    ("a.ark:123", True, "offset"), ("a.ark:123", False, "file"), ("a.ark:12x", True, "file"),
    ("/x/y.ark", True, "file"), ("| cat", False, "file"),
])
def test_classify_rxfilename_like_kaldi(name, allow_offset, kind):
    assert xfilename.classify_rxfilename(name, allow_offset) == kind


def test_classify_wxfilename_like_kaldi():
    assert xfilename.classify_wxfilename("-") == "standard"
    assert xfilename.classify_wxfilename("| gzip -c > x.gz") == "pipe"
    assert xfilename.classify_wxfilename("out/x.ark") == "file"
    with pytest.raises(ToolError, match="input pipe"):
        xfilename.classify_wxfilename("cat x |")
    with pytest.raises(ToolError, match="empty command"):
        xfilename.Input(" |")


# ---------------------------------------------------------------------------------------------- input/output
def test_input_files_offsets_and_pipes(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    assert xfilename.read_bytes(str(path)) == b"0123456789"
    with xfilename.Input(f"{path}:4", allow_offset=True) as source:
        assert source.stream.read() == b"456789"
    assert xfilename.read_bytes(f"cat {path} |") == b"0123456789"
    with pytest.raises(ToolError, match="no such file: .*nothere"):
        xfilename.read_bytes(str(tmp_path / "nothere"))
    with pytest.raises(ToolError, match=r"command 'echo bad >&2; exit 3' failed with exit status 3: bad"):
        xfilename.read_bytes("echo bad >&2; exit 3 |", capture_stderr=True)
    # a pipe that fails after writing part of its output is an error, never a short input
    with pytest.raises(ToolError, match="command 'printf abc; exit 5' failed with exit status 5"):
        xfilename.read_bytes("printf abc; exit 5 |")
    with pytest.raises(ToolError, match="exit status 6"):
        with xfilename.Input("printf abc; exit 6 |") as source:
            assert source.stream.read() == b"abc"


def test_standard_input_and_output_through_xfilename(tmp_path):
    code = ("import sys; from tfspk.io import xfilename;"
            "data = xfilename.read_bytes('-'); xfilename.write_bytes('-', data[::-1])")
    proc = subprocess.run([sys.executable, "-c", code], input=b"abc\n", capture_output=True, check=True)
    assert proc.stdout == b"\ncba"


def test_output_is_atomic_and_pipes_are_checked(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with xfilename.Output(str(target)) as out:
            out.write(b"partial")
            raise RuntimeError("writer died")
    assert not target.exists() and not list(tmp_path.iterdir())
    xfilename.write_bytes(str(target), b"whole")
    assert target.read_bytes() == b"whole"
    xfilename.write_bytes(f"| cat > {tmp_path}/piped", b"via pipe")
    assert (tmp_path / "piped").read_bytes() == b"via pipe"
    with pytest.raises(ToolError, match="exit status 4"):
        xfilename.write_bytes("| cat > /dev/null; exit 4", b"x")
    with pytest.raises(ToolError, match="cannot write .*: it is a directory"):
        xfilename.write_bytes(str(tmp_path), b"x")


# ---------------------------------------------------------------------------------------------- one trials rule
TRIALS = "e1 t1 target\ne2 t2 nontarget\ne1 t2 nontarget\n"
PAIRS = [("e1", "t1"), ("e2", "t2"), ("e1", "t2")]


@pytest.fixture
def trial_data(tmp_path):
    """A data dir whose utterances e1 e2 t1 t2 have features and x-vectors, plus a trials file."""
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    utts = ["e1", "e2", "t1", "t2"]
    with ark.ArchiveWriter(f"ark,scp:{data}/feats.ark,{data}/feats.scp") as writer:
        for utt in utts:
            writer.write(utt, rng.standard_normal((6, 3)).astype(np.float32))
    with ark.ArchiveWriter(f"ark:{tmp_path}/xvectors.ark") as writer:
        for utt in utts:
            writer.write(utt, rng.standard_normal(4).astype(np.float32))
    (data / "utt2num_frames").write_text("".join(f"{u} 6\n" for u in utts))
    (data / "utt2spk").write_text("e1 s1\ne2 s2\nt1 s1\nt2 s2\n")
    (data / "spk2utt").write_text("s1 e1 t1\ns2 e2 t2\n")
    (data / "trials").write_text(TRIALS)
    return tmp_path


def _all_trial_readers(root):
    """name -> function(trials path) returning the pairs that reader/tool sees (or raising ToolError)."""
    from tfspk.backend import tables as backend_tables
    from tfspk.data.trials import TrialSet
    from tfspk.io import datadir

    def tool(name, argv):
        """The tool in this process; a non-zero exit raises ToolError with the tool's stderr."""
        ran = run_tool_here([name, *argv], check=False)
        if ran.returncode:
            raise ToolError(f"{name} failed ({ran.returncode}):\n{ran.stderr}")

    def cosine_scoring(path):
        tool("tfspk-cosine-scoring", [path, f"ark:{root}/xvectors.ark", f"ark:{root}/xvectors.ark", f"{root}/scores"])
        return [tuple(line.split()[:2]) for line in open(f"{root}/scores")]

    def scored_pairs(name, *argv):
        tool(name, [*argv, f"{root}/scores"])
        return [tuple(line.split()[:2]) for line in open(f"{root}/scores")]

    def plda_scoring(path):
        from tfspk.io import objects
        objects.write_plda_parts(f"{root}/plda", np.zeros(4), np.eye(4), np.ones(4))
        vectors = f"ark:{root}/xvectors.ark"
        return scored_pairs("tfspk-ivector-plda-scoring", f"{root}/plda", vectors, vectors, path)

    def score_report(path):
        (root / "s").write_text("".join(f"{e} {t} {i}.5\n" for i, (e, t) in enumerate(PAIRS)))
        tool("tfspk-score-report", [path, f"{root}/s"])
        return PAIRS

    def min_dcf(path):
        (root / "s").write_text("".join(f"{e} {t} {i}.5\n" for i, (e, t) in enumerate(PAIRS)))
        tool("tfspk-compute-min-dcf", [f"{root}/s", path])
        return PAIRS      # reads every trial or fails: it has no per-pair output

    def validate(path):
        assert path == str(root / "data" / "trials")      # validate_data_dir reads <data>/trials
        datadir.validate_data_dir(str(root / "data"), no_wav=True, no_spk_sort=True)
        return PAIRS

    return {
        "io.table.read_trials": lambda p: [(e, t) for e, t, _ in table.read_trials(p)],
        "io.table.read_trials (pipe)": lambda p: [(e, t) for e, t, _ in table.read_trials(f"cat {p} |")],
        "io.table.read_trial_pairs": table.read_trial_pairs,
        "io.table.read_labelled_trials": lambda p: list(table.read_labelled_trials(p)),
        "backend.tables.read_trials": backend_tables.read_trials,
        "data.trials.TrialSet": lambda p: TrialSet(root / "data", p).trials,
        "tfspk-cosine-scoring": cosine_scoring,
        "tfspk-ivector-compute-dot-products": lambda p: scored_pairs(
            "tfspk-ivector-compute-dot-products", p, f"ark:{root}/xvectors.ark", f"ark:{root}/xvectors.ark"),
        "tfspk-ivector-plda-scoring": plda_scoring,
        "tfspk-score-report": score_report,
        "tfspk-compute-min-dcf": min_dcf,
        "validate_data_dir": validate,
    }


def test_every_trials_reader_gives_the_same_pairs(trial_data):
    path = str(trial_data / "data" / "trials")
    for name, reader in _all_trial_readers(trial_data).items():
        assert reader(path) == PAIRS, name


@pytest.mark.parametrize("content, message", [
    ("e1 t1 target\ne2\n", ":2: Bad line in trials (expected 'enroll test [target|nontarget]')"),
    ("e1 t1 target\ne2 t2 x y\n", ":2: Bad line in trials (expected 'enroll test [target|nontarget]')"),
    ("e1 t1 target\ne2 t2 maybe\n", ":2: label must be 'target' or 'nontarget', got 'maybe'"),
])
def test_every_trials_reader_gives_the_same_error_on_a_bad_line(trial_data, capsys, content, message):
    path = trial_data / "data" / "trials"
    path.write_text(content)
    for name, reader in _all_trial_readers(trial_data).items():
        capsys.readouterr()
        with pytest.raises(ToolError) as error:
            reader(str(path))
        assert message in str(error.value) + capsys.readouterr().err, name


# ---------------------------------------------------------------------------------------------- regressions
def test_copy_feats_on_an_empty_archive_fails_and_writes_nothing(tmp_path):
    """Regression: copy-feats used to exit 0 on an empty input and leave empty outputs that look complete."""
    (tmp_path / "empty.ark").write_bytes(b"")
    copy = run_tool_here(["tfspk-copy-feats", f"--write-num-frames=ark,t:{tmp_path}/n", f"ark:{tmp_path}/empty.ark",
                          f"ark,scp:{tmp_path}/out.ark,{tmp_path}/out.scp"], check=False)
    assert copy.returncode == 1
    assert "no utterance was copied" in copy.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.ark"]


def test_truncated_wav_is_read_with_a_warning(tmp_path, capsys):
    """Regression: a wav whose header declares more samples than the file holds was read silently;
    Kaldi's wave reader warns ("... Truncated file?")."""
    from tfspk.io import audio
    path = tmp_path / "cut.wav"
    samples = synth_speech(0.5, 8000)
    sf.write(str(path), samples, 8000, subtype="PCM_16")
    raw = path.read_bytes()
    path.write_bytes(raw[:-1000])                       # 500 samples short of the 4000 declared
    got, rate = audio.read_audio(str(path))
    assert rate == 8000 and np.array_equal(got, samples[:3500].astype(np.float32))
    err = capsys.readouterr().err
    assert "WARNING" in err and str(path) in err and "Truncated file?" in err
    assert "Expected 8000 bytes of wave data, but read only 7000 bytes" in err
    # the same bytes through a pipe are warned about too; a complete file is not
    audio.read_audio(f"cat {path} |")
    assert "Truncated file?" in capsys.readouterr().err
    sf.write(str(path), samples, 8000, subtype="PCM_16")
    audio.read_audio(str(path))
    assert "Truncated" not in capsys.readouterr().err
