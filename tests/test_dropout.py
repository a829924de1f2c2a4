"""Dropout on ECAPA-TDNN's embedding input (``nnet.params.dropout``): the layer against a numpy statement of
inverted dropout, its masks as a pure function of (seed, step, stream), one device == several replicas, the
default building today's model, and training with dropout resuming bit-identically after a kill -9 inside an
epoch (the harder case: masks of steps before and after the kill; stops at epoch boundaries are tests/test_resume.py's).

Inverted dropout with rate p, stated independently of the layer: y_i = x_i / (1 - p) for kept units, 0 for
dropped ones, each unit dropped with probability p; y = x at inference and for p = 0.
"""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import run

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

import tfspk.nnet  # noqa: E402,F401  (registers the networks)
from tfspk.errors import ToolError  # noqa: E402
from tfspk.nnet.blocks import StepDropout, bind_step_dropout  # noqa: E402
from tfspk.nnet.registry import get_network  # noqa: E402

# A tiny ECAPA-TDNN (same code paths as full size)
SMALL = {"channels": 16, "scale": 4, "se_channels": 8, "mfa_channels": 24, "attention_channels": 8,
         "embedding_dim": 8}
FEAT_DIM = 12


def _layer(rate, seed=3, step=0, stream=0):
    layer = StepDropout(rate, stream=stream)
    variable = tf.Variable(step, dtype=tf.int64)
    layer.bind(seed, variable)
    return layer, variable


def _inputs(rows=64, units=3072, seed=0):
    # |x| >= 0.5: a kept unit is never 0, so y == 0 marks exactly the dropped ones
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.5, 2.0, (rows, units)) * rng.choice([-1.0, 1.0], (rows, units))).astype(np.float32)


# ----------------------------------------------------------------------------- the layer against numpy
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_training_output_is_inverted_dropout(p):
    x = _inputs()
    y = _layer(p)[0](tf.constant(x), training=True).numpy()
    dropped = y == 0
    n = dropped.size
    # the dropped fraction is Binomial(n, p) / n: within 5 standard deviations of p
    assert abs(dropped.mean() - p) < 5 * np.sqrt(p * (1 - p) / n), dropped.mean()
    # every unit is dropped somewhere (no unit or row is spared), for rates where that is near certain
    assert dropped.any(axis=0).mean() > 0.99 and dropped.any(axis=1).all()
    np.testing.assert_allclose(y[~dropped], x[~dropped].astype(np.float64) / (1 - p), rtol=1e-6, atol=0)


def test_inference_and_rate_zero_are_the_identity_bit_for_bit():
    x = _inputs(rows=8, units=100)
    layer = _layer(0.5)[0]
    for training in (False, None):
        assert np.array_equal(layer(tf.constant(x), training=training).numpy(), x)
    # rate 0 needs no seed and step: nothing is drawn
    assert np.array_equal(StepDropout(0.0)(tf.constant(x), training=True).numpy(), x)


def test_masks_are_a_function_of_seed_step_and_stream():
    x = tf.constant(_inputs(rows=4, units=500))

    def mask(seed, step, stream=0):
        layer, _ = _layer(0.5, seed, step, stream)
        return layer(x, training=True).numpy() == 0

    first = mask(3, 10)
    assert np.array_equal(first, mask(3, 10))  # a new layer, the same (seed, step): the same mask
    for other in (mask(3, 11), mask(4, 10), mask(3, 10, stream=1)):
        # independent masks agree on about half of the units (p^2 + (1-p)^2 = 0.5)
        assert 0.4 < np.mean(other == first) < 0.6


def test_step_is_read_at_run_time_under_tf_function():
    """The traced step reads the step variable each call (not a constant frozen at trace time): the mask
    changes when the step moves, and comes back with it."""
    x = tf.constant(_inputs(rows=4, units=500))
    layer, step = _layer(0.5, step=0)
    fn = tf.function(lambda v: layer(v, training=True))
    masks = []
    for value in (0, 1, 0):
        step.assign(value)
        masks.append(fn(x).numpy() == 0)
    assert fn.experimental_get_tracing_count() == 1
    assert np.array_equal(masks[0], masks[2]) and not np.array_equal(masks[0], masks[1])
    eager = layer(x, training=True).numpy() == 0  # step is 0 again: eager gives the traced mask
    assert np.array_equal(eager, masks[2])


def test_unbound_layer_refuses_to_train():
    with pytest.raises(RuntimeError, match="bind_step_dropout"):
        StepDropout(0.2, name="d")(tf.ones((2, 3)), training=True)


_REPLICAS_SCRIPT = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfspk.nnet.blocks import StepDropout
    x = np.random.default_rng(0).uniform(0.5, 2.0, (8, 300)).astype(np.float32)
    outputs = {}
    for kind, strategy in [("one", tf.distribute.OneDeviceStrategy("/cpu:0")),
                           ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))]:
        with strategy.scope():
            step = tf.Variable(5, dtype=tf.int64)
        layer = StepDropout(0.5)
        layer.bind(11, step)
        per = 8 // strategy.num_replicas_in_sync
        xs = strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(x[ctx.replica_id_in_sync_group * per:(ctx.replica_id_in_sync_group + 1) * per]))
        result = tf.function(lambda v: strategy.run(lambda u: layer(u, training=True), args=(v,)))(xs)
        outputs[kind] = np.concatenate([t.numpy() for t in strategy.experimental_local_results(result)])
        print("REPLICAS", kind, strategy.num_replicas_in_sync)
    np.save(__import__("sys").argv[1], np.stack([outputs["one"], outputs["mirrored"]]))
""")


def test_two_replicas_apply_the_masks_of_one_device(tmp_path):
    """MirroredStrategy over two logical CPUs (a fresh process: they must be configured before TensorFlow
    initialises): replica r's output is rows r*B..(r+1)*B-1 of the one-device output on the global batch."""
    script, out = tmp_path / "replicas.py", tmp_path / "out.npy"
    script.write_text(_REPLICAS_SCRIPT)
    proc = run([sys.executable, str(script), str(out)], timeout=600)
    assert "REPLICAS mirrored 2" in proc.stdout, proc.stdout
    one, mirrored = np.load(out)
    assert np.array_equal(one, mirrored)
    assert 0.4 < np.mean(one == 0) < 0.6  # dropout was applied (the equality is not vacuous)


# ----------------------------------------------------------------------------- the ECAPA-TDNN parameter
def _ecapa(**params):
    keras.utils.set_random_seed(0)
    return get_network("ecapa_tdnn", {**SMALL, **params}).build(FEAT_DIM)


def test_default_builds_todays_model_and_dropout_changes_training_only():
    default, with_dropout = _ecapa(), _ecapa(dropout=0.4)
    assert not any(isinstance(layer, StepDropout) for layer in default._flatten_layers())
    assert [layer.name for layer in default.layers] == [layer.name for layer in with_dropout.layers
                                                        if layer.name != "embedding_dropout"]
    # the dropout layer has no weights: the weight files are interchangeable
    assert [w.path for w in default.weights] == [w.path for w in with_dropout.weights]
    with_dropout.set_weights(default.get_weights())
    x = tf.constant(np.random.default_rng(1).normal(size=(6, 30, FEAT_DIM)).astype(np.float32))
    for name in ("embedding_a", "embedding_b"):  # inference (extraction, export): the same model
        assert np.array_equal(default(x, training=False)[name].numpy(), with_dropout(x, training=False)[name].numpy())
    assert bind_step_dropout(default, 1, tf.Variable(0, dtype=tf.int64)) == 0
    assert bind_step_dropout(with_dropout, 1, tf.Variable(0, dtype=tf.int64)) == 1
    # while training the embedding layer's input is masked: embedding_a moves (BN in training mode is
    # deterministic, so the difference is the dropout's)
    assert not np.allclose(default(x, training=True)["embedding_a"].numpy(),
                           with_dropout(x, training=True)["embedding_a"].numpy(), atol=1e-3)


@pytest.mark.parametrize("value, why", [(-0.1, r"in \[0, 1\), got -0.1"), (1.0, r"in \[0, 1\), got 1.0"),
                                        (1.5, r"in \[0, 1\), got 1.5"), (float("nan"), "a finite number, got nan"),
                                        ("half", "a number, got 'half'")])
def test_dropout_outside_0_1_is_one_clear_error(value, why):
    with pytest.raises(ToolError, match=r"^network 'ecapa_tdnn': parameter 'dropout' must be " + why + "$"):
        get_network("ecapa_tdnn", {"dropout": value})


def test_tfspk_train_refuses_dropout_1_before_touching_anything(tmp_path, tool):
    exp = tmp_path / "exp"
    failed = tool(["tfspk-train", "--set", "nnet.name=ecapa_tdnn", "--set", "nnet.params.dropout=1",
                   str(tmp_path / "no_data"), str(exp)], check=False)
    assert failed.returncode == 1
    assert "parameter 'dropout' must be in [0, 1), got 1" in failed.stderr and "Traceback" not in failed.stderr
    assert not exp.exists()


def test_resume_accepts_a_config_recorded_before_the_parameter_existed():
    """A run started before ECAPA had ``dropout`` recorded its nnet section without it. Fails on the old code
    ('has a checkpoint of a different experiment (nnet: ...)')."""
    from tfspk.nnet import network_config
    from tfspk.train.resume import check_resume_compatible
    current = {"nnet": network_config(get_network("ecapa_tdnn", SMALL)), "seed": 1}
    saved = {"nnet": {"name": "ecapa_tdnn", "params": {k: v for k, v in current["nnet"]["params"].items()
                                                       if k != "dropout"}}, "seed": 1}
    assert check_resume_compatible(saved, current, "exp") == []
    with_dropout = {**current, "nnet": network_config(get_network("ecapa_tdnn", {**SMALL, "dropout": 0.2}))}
    with pytest.raises(ToolError, match="different experiment.*nnet"):
        check_resume_compatible(saved, with_dropout, "exp")


def test_a_model_only_restore_of_a_trainer_checkpoint_gives_every_ecapa_weight(tmp_path):
    """What fine-tuning's warm start does (tfspk.train.warmstart, tfspk.train.finetune: a checkpoint of model +
    optimizer restored with only the model): every variable comes back. Fails on the old code: the
    SE-Res2Blocks' convolution kernels (saved only through the optimizer's variable list) and BN statistics
    stayed at the new model's random initialisation, and the restore reported success."""
    source = _ecapa()
    rng = np.random.default_rng(3)
    for variable in source.variables:  # every value distinct from any initialisation
        variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype(np.float32))
    optimizer = keras.optimizers.Adam()
    optimizer.build(source.trainable_variables)
    path = tf.train.Checkpoint(model=source, optimizer=optimizer).save(str(tmp_path / "ckpt"))
    target = _ecapa()
    tf.train.Checkpoint(model=target).restore(path).expect_partial().assert_existing_objects_matched()
    differ = [a.path for a, b in zip(source.variables, target.variables) if not np.array_equal(a.numpy(), b.numpy())]
    assert not differ, differ[:5]


# ----------------------------------------------------------------------------- training and resume
ECAPA = ["nnet.name=ecapa_tdnn"] + [f"nnet.params.{k}={v}" for k, v in SMALL.items()] + [
    "data.speakers_per_batch=4", "data.min_frames=20", "data.max_frames=40", "valid.num_utts=8",
    "valid.frames=30", "schedule.steps_per_epoch=3", "schedule.num_epochs=3", "schedule.patience=1",
    "log_every=1", "optimizer.lr=0.05"]
DROPOUT = ECAPA + ["nnet.params.dropout=0.3"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from test_train import make_features
    return make_features(str(tmp_path_factory.mktemp("dropout_data") / "data"), dim=FEAT_DIM)


@pytest.fixture(scope="module")
def straight(data_dir, tmp_path_factory):
    """The uninterrupted 3-epoch run with dropout, which the resumed runs are compared with."""
    exp = str(tmp_path_factory.mktemp("straight"))
    _train(data_dir, exp, DROPOUT)
    return exp


def _train(data_dir, exp, overrides):
    from tfspk.train import config as config_mod, train
    with open(os.devnull, "w") as null:
        return train(data_dir, exp, config_mod.build_config(None, list(overrides)), stream=null)


def _argv(data_dir, exp, overrides):
    return [a for item in overrides for a in ("--set", item)] + [data_dir, exp]


def test_dropout_is_applied_in_training(data_dir, straight, tmp_path):
    """Without dropout the same run ends elsewhere (so the resume comparisons below are not vacuous), and the
    recorded config names the rate."""
    from test_resume import _state
    without = str(tmp_path / "without")
    _train(data_dir, without, ECAPA)
    a, b = _state(straight), _state(without)
    assert sum(not np.array_equal(a[k], b[k]) for k in a if k.startswith("model.weights.h5:")) > 10
    with open(os.path.join(straight, "config.yaml")) as handle:
        assert "dropout: 0.3" in handle.read()


def test_kill_9_inside_an_epoch_then_resume_is_bit_identical(data_dir, straight, tmp_path, tool):
    """SIGKILL right after global step 5 (inside epoch 2, whose steps 4-6 are not checkpointed), as
    tests/test_resume.py does; the resume starts from the epoch-1 checkpoint and replays steps 4 and 5."""
    from test_resume import _KILLING_TRAINER, _assert_identical, _state
    killed = str(tmp_path / "killed")
    env = dict(os.environ, KILL_AT_STEP="5")
    proc = subprocess.run([sys.executable, "-c", _KILLING_TRAINER] + _argv(data_dir, killed, DROPOUT), env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "progress: 4/" in proc.stdout and "done:" not in proc.stdout
    rerun = tool(["tfspk-train", *_argv(data_dir, killed, DROPOUT)])
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed from" in rerun.stdout
    _assert_identical(_state(straight), _state(killed))
