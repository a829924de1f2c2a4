"""steps/*.sh called from another toolkit's recipe find tfspk's utils/ (run.pl, parse_options.sh, split_data.sh)
themselves: from a directory outside the checkout, with neither utils/ nor steps/ on PATH, through a symlinked
steps/ dir and through a symlink to the script file."""
import os
import sys

import numpy as np
import pytest
import yaml

from conftest import REPO, run

STEPS = sorted(p.name for p in (REPO / "steps").glob("*.sh"))


def bare_path_env():
    """PATH with the venv's tools but without tfspk's utils/ and steps/ (conftest puts them there)."""
    keep = [p for p in os.environ["PATH"].split(os.pathsep)
            if p and os.path.realpath(p) not in (str(REPO / "utils"), str(REPO / "steps"))]
    env = {"PATH": os.pathsep.join(keep)}
    assert run("command -v run.pl || true", env=env).stdout.strip() == ""
    return env


@pytest.mark.parametrize("script", STEPS)
def test_every_step_reaches_its_usage_from_outside_the_checkout(tmp_path, script):
    # Before: scripts that took utils/ from PATH or from "$(dirname $0)/../utils" relative to a symlinked
    # steps/ dir of another recipe stopped with "parse_options.sh: No such file" or "run.pl: command not found".
    recipe = tmp_path / "otherrecipe"
    recipe.mkdir()
    (recipe / "steps_tf").symlink_to(REPO / "steps")
    (recipe / "one.sh").symlink_to(REPO / "steps" / script)
    for command in (f"steps_tf/{script}", "./one.sh", str(REPO / "steps" / script)):
        proc = run(command, cwd=recipe, env=bare_path_env(), check=False)
        assert proc.returncode == 1, (command, proc.stderr)
        assert "Usage" in proc.stderr, (command, proc.stderr)
        assert "No such file" not in proc.stderr and "command not found" not in proc.stderr, (command, proc.stderr)


def test_extract_xvectors_runs_from_another_recipe_without_utils_on_path(tmp_path, monkeypatch):
    from tfspk.io.ark import read_rspecifier, write_archive
    from tfspk.nnet import build_xvector
    nnet = dict(arch="tdnn", frame_dim=8, pooling_dim=12, embedding_dim=6)
    recipe = tmp_path / "kaldi_recipe"
    exp, data = recipe / "exp" / "xvector_tf", recipe / "data" / "test"
    (exp / "final").mkdir(parents=True)
    data.mkdir(parents=True)
    section = {"name": nnet["arch"], "params": {k: v for k, v in nnet.items() if k != "arch"}}
    (exp / "config.yaml").write_text(yaml.safe_dump({"feat_dim": 5, "num_classes": 3, "nnet": section}))
    build_xvector(feat_dim=5, **nnet).save_weights(str(exp / "final" / "model.weights.h5"))
    (exp / "final" / "DONE").write_text("finished\n")
    rng = np.random.default_rng(0)
    utts = [f"spk{s}-utt{u}" for s in (1, 2) for u in (1, 2)]
    write_archive(f"ark,scp:{data}/feats.ark,{data}/feats.scp",
                  [(u, rng.normal(size=(40, 5)).astype(np.float32)) for u in utts])
    write_archive(f"ark,scp:{data}/vad.ark,{data}/vad.scp", [(u, np.ones(40, np.float32)) for u in utts])
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    (data / "spk2utt").write_text("spk1 spk1-utt1 spk1-utt2\nspk2 spk2-utt1 spk2-utt2\n")
    (recipe / "steps").symlink_to(REPO / "steps")          # as a Kaldi recipe links Kaldi's steps/
    env = bare_path_env()
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]   # the tfspk-* tools only
    proc = run("steps/extract_xvectors.sh --nj 2 --cmd run.pl exp/xvector_tf data/test exp/xvector_tf/xvectors_test",
               cwd=recipe, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    monkeypatch.chdir(recipe)                               # the scp holds paths relative to the recipe
    vectors = dict(read_rspecifier("scp:exp/xvector_tf/xvectors_test/xvector.scp"))
    assert sorted(vectors) == utts and all(v.shape == (6,) for v in vectors.values())
    assert (exp / "xvectors_test" / "log" / "extract.2.log").exists()     # run.pl ran the two jobs
