"""egs/template/v2's options reach tfspk-train (a fake one: the real run is in tests/test_docs_commands.py)."""
import os

import pytest

from conftest import REPO, run

RECIPE = REPO / "egs" / "template" / "v2"
FAKE_TRAIN = r"""#!/usr/bin/env bash
printf '%s\n' "$@" > "$FAKE_ARGS"
dir=${!#}
mkdir -p "$dir/final" && touch "$dir/final/model.weights.h5"
"""


@pytest.fixture
def fake_env(tmp_path):
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "tfspk-train").write_text(FAKE_TRAIN)
    (venv_bin / "tfspk-train").chmod(0o755)
    (venv_bin / "python").symlink_to(os.path.realpath(os.sys.executable))
    data = tmp_path / "data" / "train_fbank_no_sil"
    data.mkdir(parents=True)
    for name in ("feats.scp", "utt2spk", "utt2num_frames"):
        (data / name).write_text("u1 x\n")
    env = {"FAKE_ARGS": str(tmp_path / "args"), "TFSPK_VENV": str(tmp_path / "venv"),
           "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}"}
    return env, tmp_path


def train_args(env, tmp_path, *options):
    proc = run(["./run.sh", "--stage", "3", "--stop-stage", "3", "--data", str(tmp_path / "data"),
                "--exp", str(tmp_path / "exp"), *options], cwd=RECIPE, env=env)
    args = (tmp_path / "args").read_text().splitlines()
    assert args[:2] == ["--train-config", "conf/train.yaml"] and args[-2] == str(tmp_path / "data/train_fbank_no_sil")
    return args[2:-2], args[-1], proc


# the front end run.sh computed, passed before the user's options (tfspk-train records it in features.yaml)
FRONT_END = ["--set", "features.type=fbank", "--set", "features.conf=conf/fbank.conf", "--set", "features.vad=true",
             "--set", "features.vad_conf=conf/vad.conf", "--set", "features.vad_mfcc_conf=conf/mfcc.conf"]


def test_another_loss_replaces_the_configs_loss_and_its_parameters(fake_env):
    # Before: --loss arcsoftmax kept conf/train.yaml's AM-Softmax parameter m3, and tfspk-train refused it.
    env, tmp_path = fake_env
    options, exp, _ = train_args(env, tmp_path, "--loss", "arcsoftmax", "--loss-params", "m2=0.25,scale=30",
                                 "--set", "x.y=1")
    assert options == ["--set", "loss={name: arcsoftmax}", "--set", "loss.params.m2=0.25",
                       "--set", "loss.params.scale=30", *FRONT_END, "--set", "x.y=1"]
    assert exp == str(tmp_path / "exp" / "ecapa_tdnn_arcsoftmax")


def test_the_configs_loss_keeps_its_parameters(fake_env):
    env, tmp_path = fake_env
    options, exp, _ = train_args(env, tmp_path, "--loss-params", "m3=0.3", "--name", "ft")
    assert options == ["--set", "loss.params.m3=0.3", *FRONT_END] and exp == str(tmp_path / "exp" / "ft")
    options, exp, _ = train_args(env, tmp_path)
    assert options == FRONT_END and exp == str(tmp_path / "exp" / "ecapa_tdnn_amsoftmax")
