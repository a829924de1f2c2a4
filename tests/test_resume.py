"""Resume is exact: a resumed run ends bit-identical to an uninterrupted one.

Crop lengths vary per batch (data.min_frames < data.max_frames, the default policy), which is what
broke it before: the training step was traced once for the first batch's length and again for a
generic length, the two graphs differ in the last float bits, and a resumed process traces for a
different first length than the uninterrupted one. Compared are every tensor of the last checkpoint
(weights, BN moving statistics, optimizer slots, step, LR, LR-policy state, aux-loss variables) and
the final weight files, with np.array_equal (no tolerance).
"""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from test_train import TINY, make_features

# Variable crop lengths: every batch draws its own length in [20, 58].
VARIABLE = [t for t in TINY if not t.startswith(("data.min_frames", "data.max_frames"))] + [
    "data.min_frames=20", "data.max_frames=58"]

SETUPS = {
    "softmax": ["loss.name=softmax"],
    # Margin annealing of [Liu2019, eq. 8] reads the global step; anneal_lambda_b small so it moves here.
    # ... and SpecAugment masks on the feats crops, drawn from (seed, step, position in the batch).
    "amsoftmax_anneal_ring_mhe": ["loss.name=amsoftmax", "loss.params.anneal_lambda_b=4",
                                  "aux=[ring, mhe]", "augment={spec_augment: true, num_time_masks: 2}"],
    "adaptive_rectangle_adam": ["loss.name=adaptive_rectangle", "loss.params.anneal_s1=3",
                                "loss.params.anneal_s2=10", "optimizer.name=adam", "optimizer.lr=0.01"],
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_features(str(tmp_path_factory.mktemp("resume_data") / "data"))


# The uninterrupted 4-epoch run of a setup, which the epoch-boundary and the kill -9 tests compare with.
STRAIGHT = ["schedule.patience=1", "schedule.num_epochs=4", "log_every=1"]


@pytest.fixture(scope="module")
def straight_run(data_dir, tmp_path_factory):
    """setup -> exp dir of ``_train(SETUPS[setup] + STRAIGHT)``, trained once per module for every test."""
    runs = {}

    def get(setup):
        if setup not in runs:
            runs[setup] = str(tmp_path_factory.mktemp(f"straight_{setup}"))
            _train(data_dir, runs[setup], *SETUPS[setup], *STRAIGHT)
        return runs[setup]
    return get


def _config(*extra):
    from tfspk.train import config as config_mod
    return config_mod.build_config(None, VARIABLE + list(extra))


def _train(data_dir, exp, *extra):
    from tfspk.train import train
    with open(os.devnull, "w") as null:
        return train(data_dir, exp, _config(*extra), stream=null)


def _state(exp_dir):
    """Every tensor of the newest checkpoint and of the final weight files."""
    import h5py
    import tensorflow as tf
    path = tf.train.latest_checkpoint(os.path.join(exp_dir, "ckpt"))
    reader = tf.train.load_checkpoint(path)
    state = {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(path)
             if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}
    for name in ("model.weights.h5", "last.weights.h5"):
        with h5py.File(os.path.join(exp_dir, "final", name), "r") as handle:
            handle.visititems(lambda key, item: state.__setitem__(f"{name}:{key}", item[()])
                              if isinstance(item, h5py.Dataset) else None)
    return state


def _assert_identical(a, b):
    assert set(a) == set(b)
    assert any(k.startswith("model.weights.h5:") for k in a)
    differ = [name for name in a if not np.array_equal(a[name], b[name])]
    assert not differ, f"{len(differ)} of {len(a)} tensors differ, e.g. {differ[:4]}"


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_stop_at_epoch_boundary_and_resume_is_bit_identical(data_dir, tmp_path, setup, straight_run):
    """Fails before the fix: 74 of 82 tensors differed for softmax (the run drifts after the restart)."""
    extra = SETUPS[setup] + STRAIGHT
    straight, resumed = straight_run(setup), str(tmp_path / "resumed")
    _train(data_dir, resumed, *extra, "schedule.num_epochs=2")
    result = _train(data_dir, resumed, *extra)
    assert [e.epoch for e in result.epochs] == [3, 4]
    _assert_identical(_state(straight), _state(resumed))


# A tfspk-train whose training step SIGKILLs its own process right after global step $KILL_AT_STEP:
# a kill -9 at an exact, arbitrary step (no Python cleanup, no checkpoint of the unfinished epoch).
_KILLING_TRAINER = textwrap.dedent("""
    import os, signal, sys
    from tfspk import cli
    from tfspk.bin import train as train_bin
    from tfspk.train import trainer
    kill_at, step = int(os.environ["KILL_AT_STEP"]), trainer.Trainer.train_step
    def train_step(self, batch):
        values = step(self, batch)
        if self.global_step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return values
    trainer.Trainer.train_step = train_step
    cli.run_tool(train_bin._main, sys.argv[1:])
""")


def _argv(data_dir, exp, extra):
    argv = []
    for item in VARIABLE + extra:
        argv += ["--set", item]
    return argv + [data_dir, exp]


@pytest.mark.parametrize("setup, kill_at", [("amsoftmax_anneal_ring_mhe", 6), ("adaptive_rectangle_adam", 3)])
def test_kill_9_at_any_step_then_resume_is_bit_identical(data_dir, tmp_path, setup, kill_at, straight_run, tool):
    """kill -9 inside epoch 2 (steps 5-8) and inside epoch 1 (before any checkpoint exists)."""
    extra = SETUPS[setup] + STRAIGHT
    straight, killed = straight_run(setup), str(tmp_path / "killed")
    env = dict(os.environ, KILL_AT_STEP=str(kill_at))
    proc = subprocess.run([sys.executable, "-c", _KILLING_TRAINER] + _argv(data_dir, killed, extra), env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert f"progress: {kill_at - 1}/" in proc.stdout and "done:" not in proc.stdout
    # the resume in this process (TensorFlow loaded once): the kill -9 needs a process of its own, the resume not
    rerun = tool(["tfspk-train", *_argv(data_dir, killed, extra)])
    assert rerun.returncode == 0, rerun.stderr
    if kill_at > 4:
        assert "resumed from" in rerun.stdout
    _assert_identical(_state(straight), _state(killed))


def test_external_kill_9_after_a_logged_step_then_resume_is_bit_identical(data_dir, tmp_path, tool):
    """The plain tool, killed from outside with SIGKILL as soon as it has logged global step 26 (epoch 2 of 3 spans
    steps 21-40, so the kill lands inside it on any machine speed that matters)."""
    extra = SETUPS["amsoftmax_anneal_ring_mhe"] + ["schedule.steps_per_epoch=20", "schedule.num_epochs=3",
                                                   "log_every=1"]
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    _train(data_dir, straight, *extra)
    proc = subprocess.Popen(["tfspk-train"] + _argv(data_dir, killed, extra), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if " progress: 26/" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=600)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    # the resume in this process (TensorFlow loaded once): the kill -9 needs a process of its own, the resume not
    rerun = tool(["tfspk-train", *_argv(data_dir, killed, extra)])
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed from" in rerun.stdout
    _assert_identical(_state(straight), _state(killed))
