"""steps/train_xvector.sh and the recipes' stage 3/4: every option reaches tfspk-train, in order.

A fake ``tfspk-train`` (first on PATH, or in a fake virtualenv for the recipes' path.sh) writes the
arguments it got, one per line, and the model file the step checks for.
"""
import os

import pytest

from conftest import REPO, run

FAKE_TRAIN = r"""#!/usr/bin/env bash
printf '%s\n' "$@" > "$FAKE_ARGS"
dir=${!#}
mkdir -p "$dir/final" && touch "$dir/final/model.weights.h5"
"""


@pytest.fixture
def fake_train(tmp_path):
    """A fake virtualenv whose bin/ holds python (the real one) and the fake tfspk-train."""
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "tfspk-train").write_text(FAKE_TRAIN)
    (venv_bin / "tfspk-train").chmod(0o755)
    (venv_bin / "python").symlink_to(os.path.realpath(os.sys.executable))
    args_file = tmp_path / "args"
    env = {"PATH": f"{venv_bin}{os.pathsep}{REPO / 'utils'}{os.pathsep}{os.environ['PATH']}",
           "FAKE_ARGS": str(args_file), "TFSPK_VENV": str(tmp_path / "venv")}
    return env, args_file


def make_train_dir(path):
    path.mkdir(parents=True)
    for name in ("feats.scp", "utt2spk", "utt2num_frames"):
        (path / name).write_text("u1 x\n")
    return path


def test_repeated_and_unknown_options_pass_through_in_order(tmp_path, fake_train):
    # Before: --set a=1 --set b=2 kept only b=2; a new tfspk-train option needed three edits here.
    env, args_file = fake_train
    data = make_train_dir(tmp_path / "data")
    (tmp_path / "train.yaml").write_text("seed: 1\n")
    proc = run([str(REPO / "steps/train_xvector.sh"), "--set", "a=1", "--train-config", str(tmp_path / "train.yaml"),
                "--set", "b=2", "--lr=0.1", "--set", "c=x y", "--some-new-option", "v", str(data),
                str(tmp_path / "exp")], env=env)
    assert proc.stdout.splitlines()[0].startswith(str(REPO / "steps/train_xvector.sh") + " --set a=1")  # echoed
    assert args_file.read_text().splitlines() == [
        "--train-config", str(tmp_path / "train.yaml"), "--set", "a=1", "--set", "b=2", "--lr=0.1",
        "--set", "c=x y", "--some-new-option", "v", str(data), str(tmp_path / "exp")]


def test_through_run_pl_and_a_kaldi_config_file(tmp_path, fake_train):
    env, args_file = fake_train
    data = make_train_dir(tmp_path / "data")
    conf = tmp_path / "train_xvector.conf"
    conf.write_text("cmd=run.pl\ntrain_opts=(--seed 3 --set 'd=1')\n")
    run([str(REPO / "steps/train_xvector.sh"), "--config", str(conf), "--set", "e=2", "--set", "e=3",
         str(data), str(tmp_path / "exp")], env=env)
    assert args_file.read_text().splitlines() == [
        "--seed", "3", "--set", "d=1", "--set", "e=2", "--set", "e=3", str(data), str(tmp_path / "exp")]
    assert (tmp_path / "exp/log/tfspk-train.log").exists()   # it ran through --cmd run.pl


def test_yaml_given_to_config_is_a_clear_error(tmp_path, fake_train):
    env, args_file = fake_train
    data = make_train_dir(tmp_path / "data")
    (tmp_path / "train.yaml").write_text("seed: 1\n")
    for args in (["--config", str(tmp_path / "train.yaml")], [f"--config={tmp_path}/train.yaml"]):
        proc = run([str(REPO / "steps/train_xvector.sh"), *args, str(data), str(tmp_path / "exp")],
                   env=env, check=False)
        assert proc.returncode == 1 and "use --train-config" in proc.stderr
    assert not args_file.exists()


def test_bad_stage_and_option_without_value(tmp_path, fake_train):
    env, args_file = fake_train
    data = make_train_dir(tmp_path / "data")
    proc = run([str(REPO / "steps/train_xvector.sh"), "--stage", "1x", str(data), str(tmp_path / "exp")],
               env=env, check=False)
    assert proc.returncode == 1 and "expected an integer: --stage '1x'" in proc.stderr
    proc = run([str(REPO / "steps/train_xvector.sh"), str(data), str(tmp_path / "exp"), "--lr"], env=env, check=False)
    assert proc.returncode == 1 and "Usage:" in proc.stderr
    assert not args_file.exists()


def test_an_audio_data_dir_is_accepted_and_an_empty_one_named(tmp_path, fake_train):
    env, args_file = fake_train
    data = tmp_path / "audio"
    data.mkdir()
    (data / "wav.scp").write_text("u1 x.flac\n")
    proc = run([str(REPO / "steps/train_xvector.sh"), str(data), str(tmp_path / "exp")], env=env, check=False)
    assert proc.returncode == 1 and f"expected file {data}/utt2spk to exist" in proc.stderr
    (data / "utt2spk").write_text("u1 s\n")              # data.source audio: wav.scp + utt2spk suffice
    run([str(REPO / "steps/train_xvector.sh"), "--set", "data.source=audio", str(data), str(tmp_path / "exp")],
        env=env)
    assert args_file.read_text().splitlines()[-2:] == [str(data), str(tmp_path / "exp")]
    (data / "wav.scp").unlink()
    proc = run([str(REPO / "steps/train_xvector.sh"), str(data), str(tmp_path / "exp2")], env=env, check=False)
    assert proc.returncode == 1 and f"expected file {data}/feats.scp to exist" in proc.stderr


RECIPES = {
    # recipe: (training stage, training data dir under data/, the recipe's own options); the demo's default
    # network (ECAPA-TDNN) trains on fbank; voxceleb's --loss defaults to the system config's (given here)
    "demo": ("3", "train_fbank_no_sil", ["--train-opts", "--num-epochs 3 --set x.y=1", "--train-opts", "--set z=2",
                                   "--set", "w=a b", "--set", "v=4"]),
    "voxceleb": ("4", "train_no_sil", ["--loss", "amsoftmax", "--loss-opts", "--margin 0.25 --set x.y=1", "--loss-opts", "--set z=2",
                                       "--set", "w=a b", "--set", "v=4"]),
}


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipe_passes_every_repeated_option_to_tfspk_train(tmp_path, fake_train, recipe):
    # Before: run.sh --train-opts could not carry several --set (the last one won in train_xvector.sh).
    env, args_file = fake_train
    stage, train_dir, options = RECIPES[recipe]
    make_train_dir(tmp_path / "data" / train_dir)
    proc = run(["./run.sh", "--stage", stage, "--stop-stage", stage, "--data", str(tmp_path / "data"),
                "--exp", str(tmp_path / "exp"), *options], cwd=REPO / "egs" / recipe / "v2", env=env)
    assert "done" in proc.stdout.splitlines()[-1]
    args = args_file.read_text().splitlines()
    assert args[:2] == ["--train-config", "conf/ecapa_tdnn.yaml" if recipe == "demo" else "conf/tdnn.yaml"]
    tail = args[args.index("--loss") + 2:]   # after the loss name (the demo's default system: arcsoftmax)
    options_sent = tail[:-2]
    assert tail[-2] == str(tmp_path / "data" / train_dir)
    first = ["--num-epochs", "3"] if recipe == "demo" else ["--margin", "0.25"]
    assert options_sent[-10:] == first + ["--set", "x.y=1", "--set", "z=2", "--set", "w=a b", "--set", "v=4"]


@pytest.mark.parametrize("recipe", sorted(RECIPES))
@pytest.mark.parametrize("option, value", [("--stage", "4a"), ("--stage", "abc"), ("--stop-stage", "1.5"),
                                           ("--stage=", "")])
def test_recipe_rejects_a_stage_that_is_not_an_integer(tmp_path, fake_train, recipe, option, value):
    # Before: --stage 4a printed bash errors for every stage, ran nothing, said "done" and exited 0.
    env, args_file = fake_train
    args = [option + value] if option.endswith("=") else [option, value]
    proc = run(["./run.sh", *args, "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp")],
               cwd=REPO / "egs" / recipe / "v2", env=env, check=False)
    name = option.rstrip("=")
    assert proc.returncode == 1
    assert f"run.sh: expected an integer: {name} '{value}'" in proc.stderr
    assert "done" not in proc.stdout and "integer expression expected" not in proc.stderr
    assert not (tmp_path / "data").exists() and not args_file.exists()
