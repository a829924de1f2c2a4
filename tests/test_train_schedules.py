"""LR policies, margin warm-up, checkpoint averaging, init_from and mixed precision of tfspk-train."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from tfspk.errors import ToolError
from tfspk.train import config as config_mod
from tfspk.train import lr as lr_mod

sys.path.insert(0, os.path.dirname(__file__))
from conftest import run_tool_here  # noqa: E402
from test_train import TINY, make_features  # noqa: E402


def sched(*overrides):
    return config_mod.build_config(None, list(overrides)).schedule


# ------------------------------------------------------------------------------------------ LR policies
def test_exponential_policy_is_lr0_times_decay_per_epoch():
    s = sched("schedule.lr_policy=exponential", "schedule.lr_decay=0.95", "schedule.steps_per_epoch=10")
    steps = np.arange(0, 95)
    expected = 1e-3 * 0.95 ** np.floor(steps / 10)  # [Li2022AR]: Adam 1e-3, x0.95 per epoch
    got = np.array([lr_mod.learning_rate_at(k, 1e-3, s) for k in steps])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[9] == 1e-3 and got[10] == pytest.approx(0.95e-3)  # the epoch boundary


@pytest.mark.parametrize("warm", ["schedule.warmup_steps=30", "schedule.warmup_epochs=1.5", "schedule.warmup_steps=0"])
def test_warmup_exponential_matches_the_formula(warm):
    s = sched("schedule.lr_policy=warmup_exponential", "schedule.steps_per_epoch=20", "schedule.num_epochs=5",
              "schedule.final_lr=1e-4", warm)
    total, lr0 = 100, 0.1
    w = 0 if warm.endswith("=0") else 30
    k = np.arange(0, total + 1).astype(np.float64)
    factor = np.minimum(1.0, (k + 1) / w) if w else np.ones_like(k)
    expected = lr0 * factor * (1e-4 / lr0) ** (k / total)
    got = np.array([lr_mod.learning_rate_at(int(i), lr0, s) for i in k])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[-1] == pytest.approx(1e-4)  # reaches final_lr at the last step
    if w:
        assert got[0] == pytest.approx(lr0 / 30) and got[29] == pytest.approx(lr0 * (1e-4 / lr0) ** 0.29)
        assert np.all(np.diff(got[30:]) < 0)


def test_plateau_policy_leaves_the_lr_to_the_checkpoint():
    assert lr_mod.learning_rate_at(12345, 0.01, sched()) == 0.01


def test_schedule_keys_are_checked_and_printed():
    from tfspk.train import components
    with pytest.raises(ToolError, match=r"schedule.lr_policy.*plateau, exponential, warmup_exponential"):
        sched("schedule.lr_policy=cosine")
    with pytest.raises(ToolError, match=r"schedule.lr_decay"):
        sched("schedule.lr_decay=1.5")
    with pytest.raises(ToolError, match=r"mixed_precision"):
        config_mod.build_config(None, ["mixed_precision=float8"])
    text = config_mod.commented_default_config(components.parameter_docs())
    for key in ("lr_policy", "lr_decay", "warmup_epochs", "warmup_steps", "final_lr", "margin_warmup_epochs",
                "average_last", "init_from", "mixed_precision"):
        assert f"{key}:" in text


# ------------------------------------------------------------------------------------------ margin warm-up
def test_margin_warmup_scales_the_am_softmax_margin():
    import tensorflow as tf
    from tfspk.losses import build_loss
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    w = rng.standard_normal((6, 4)).astype(np.float32)
    y = np.array([0, 1, 3, 1, 2])
    head = build_loss("amsoftmax", 4, 6, {"margin": 0.3, "anneal": False, "scale": 10.0})
    head.kernel.assign(w)
    base = head.training_logits(x, y, tf.constant(50, tf.int64)).numpy()  # warm-up off: unchanged
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = xn @ (w / np.linalg.norm(w, axis=0, keepdims=True))
    rows = np.arange(5)
    plain = 10.0 * cos.copy()
    plain[rows, y] = 10.0 * (cos[rows, y] - 0.3)
    np.testing.assert_allclose(base, plain, rtol=1e-5, atol=1e-5)
    head.margin_warmup_steps = 200
    for step, weight in ((0, 0.0), (50, 0.25), (200, 1.0), (10_000, 1.0)):
        expected = 10.0 * cos.copy()
        expected[rows, y] = 10.0 * (cos[rows, y] - weight * 0.3)  # the margin w * m
        got = head.training_logits(x, y, tf.constant(step, tf.int64)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=f"step {step}")


def test_margin_warmup_composes_with_annealing():
    import tensorflow as tf
    from tfspk.losses import annealing, build_loss
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    y = np.array([0, 1, 3, 1, 2])
    head = build_loss("arcsoftmax", 4, 6, {})
    on = build_loss("arcsoftmax", 4, 6, {})
    on.kernel.assign(head.kernel)
    on.margin_warmup_steps = 1000
    step = 300
    lam = float(annealing.margin_annealing_lambda(step, 1000.0, 1e-5, 5.0, 0.0))
    annealed = head.training_logits(x, y, tf.constant(step, tf.int64)).numpy()
    plain_cos = head.cosines(x).numpy() * np.linalg.norm(x, axis=1, keepdims=True)  # scale = ||x||
    rows = np.arange(5)
    expected = annealed.copy()
    expected[rows, y] = plain_cos[rows, y] + 0.3 * (annealed[rows, y] - plain_cos[rows, y])
    got = on.training_logits(x, y, tf.constant(step, tf.int64)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert lam > 0.5  # annealing is active at this step


# ------------------------------------------------------------------------------------------ averaging
def test_average_of_weight_files_is_the_numpy_mean(tmp_path):
    import keras
    from tfspk.train.average import average_weight_files

    def model():
        inputs = keras.Input((5,))
        hidden = keras.layers.BatchNormalization()(keras.layers.Dense(4)(inputs))
        return keras.Model(inputs, keras.layers.Dense(3)(hidden))
    net = model()
    rng = np.random.default_rng(0)
    sets = []
    for n in range(3):
        weights = [rng.standard_normal(v.shape).astype(np.float32) for v in net.get_weights()]
        net.set_weights(weights)
        net.save_weights(str(tmp_path / f"epoch-{n}.weights.h5"))
        sets.append(weights)
    out = str(tmp_path / "avg.weights.h5")
    average_weight_files([str(tmp_path / f"epoch-{n}.weights.h5") for n in range(3)], out)
    fresh = model()
    fresh.load_weights(out)
    for got, *parts in zip(fresh.get_weights(), *sets):
        np.testing.assert_allclose(got, np.mean(np.stack(parts).astype(np.float64), axis=0), rtol=1e-6, atol=1e-7)
    other = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    other.save_weights(str(tmp_path / "other.weights.h5"))
    with pytest.raises(ToolError, match=r"other.weights.h5 does not hold the weights of the same network"):
        average_weight_files([out, str(tmp_path / "other.weights.h5")], str(tmp_path / "bad.weights.h5"))
    assert not os.path.exists(tmp_path / "bad.weights.h5")
    # the tool
    run_tool_here(["tfspk-average-models", tmp_path / "tool.weights.h5", tmp_path / "epoch-0.weights.h5",
                   tmp_path / "epoch-2.weights.h5"])
    fresh.load_weights(str(tmp_path / "tool.weights.h5"))
    np.testing.assert_allclose(fresh.get_weights()[0], (sets[0][0] + sets[2][0]) / 2, rtol=1e-6)


# ------------------------------------------------------------------------------------------ in training
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_features(str(tmp_path_factory.mktemp("sched_data") / "data"))


def tiny(*extra):
    return config_mod.build_config(None, TINY + list(extra))


def _ckpt(exp_dir):
    import tensorflow as tf
    path = tf.train.latest_checkpoint(os.path.join(exp_dir, "ckpt"))
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(path)
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def test_warmup_exponential_margin_warmup_and_average_of_the_last_epochs(data_dir, tmp_path):
    from tfspk.train import train
    from tfspk.train.inference import load_for_inference
    exp = str(tmp_path / "exp")
    train(data_dir, exp, tiny("schedule.num_epochs=3", "loss.name=amsoftmax", "loss.params.anneal=false",
                              "schedule.lr_policy=warmup_exponential", "schedule.warmup_steps=3",
                              "schedule.final_lr=0.005", "schedule.margin_warmup_epochs=1.5",
                              "schedule.average_last=2"), stream=open(os.devnull, "w"))
    values = _ckpt(exp)
    lr_name = [n for n in values if "learning_rate" in n][0]
    expected = 0.05 * (0.005 / 0.05) ** (11 / 12)  # the LR of the last step (k = 11 of T = 12)
    assert float(values[lr_name]) == pytest.approx(expected, rel=1e-6)
    final = os.path.join(exp, "final")
    assert sorted(f for f in os.listdir(final) if f.startswith("epoch-")) == ["epoch-2.weights.h5",
                                                                              "epoch-3.weights.h5"]
    model, _ = load_for_inference(exp)
    averaged = model.get_weights()
    parts = []
    for n in (2, 3):
        model.load_weights(os.path.join(final, f"epoch-{n}.weights.h5"))
        parts.append(model.get_weights())
    assert not np.allclose(parts[0][0], parts[1][0])
    for got, w2, w3 in zip(averaged, *parts):
        np.testing.assert_allclose(got, (w2.astype(np.float64) + w3) / 2, rtol=1e-6, atol=1e-7)
    assert "average of 2 epoch(s)" in open(os.path.join(exp, "log", "train.log")).read()


def test_exponential_policy_and_margin_warmup_resume_exactly(data_dir, tmp_path):
    """A step-function LR policy and the margin warm-up are functions of the global step: a resumed
    run reaches the state of an uninterrupted one. (warmup_exponential also depends on num_epochs,
    so it is not interrupted here by lowering num_epochs.)"""
    from tfspk.train import train
    extra = ("loss.name=amsoftmax", "loss.params.anneal=false", "schedule.lr_policy=exponential",
             "schedule.lr_decay=0.5", "schedule.margin_warmup_epochs=1.5")
    null = open(os.devnull, "w")
    straight, interrupted = str(tmp_path / "straight"), str(tmp_path / "interrupted")
    result = train(data_dir, straight, tiny("schedule.num_epochs=3", *extra), stream=null)
    assert [e.lr for e in result.epochs] == pytest.approx([0.05, 0.025, 0.0125])
    assert not result.stopped_early
    train(data_dir, interrupted, tiny("schedule.num_epochs=1", *extra), stream=null)
    train(data_dir, interrupted, tiny("schedule.num_epochs=3", *extra), stream=null)
    a, b = _ckpt(straight), _ckpt(interrupted)
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_init_from_loads_network_and_head(data_dir, tmp_path):
    from tfspk.train import train
    null = open(os.devnull, "w")
    first, tuned = str(tmp_path / "first"), str(tmp_path / "tuned")
    train(data_dir, first, tiny("schedule.num_epochs=1", "loss.name=amsoftmax"), stream=null)
    train(data_dir, tuned, tiny("schedule.num_epochs=1", "loss.name=amsoftmax", "loss.params.margin=0.35",
                                "optimizer.lr=1e-30", "optimizer.momentum=0", f"init_from={first}",
                                "data.min_frames=56", "data.max_frames=56"), stream=null)
    a, b = _ckpt(first), _ckpt(tuned)
    kernels = [n for n in a if n.startswith(("head/", "model/")) and "kernel" in n and "optimizer" not in n]
    assert kernels
    for name in kernels:  # lr ~ 0: the loaded weights are unchanged by the fine-tuning steps
        np.testing.assert_allclose(b[name], a[name], rtol=0, atol=1e-12, err_msg=name)
    assert f"initialised the loss head from {first}/ckpt" in open(os.path.join(tuned, "log", "train.log")).read()
    with pytest.raises(ToolError, match=r"init_from: .*nowhere is not a directory"):
        train(data_dir, str(tmp_path / "x"), tiny("schedule.num_epochs=1", f"init_from={tmp_path}/nowhere"),
              stream=null)
    with pytest.raises(ToolError, match=r"init_from: cannot load"):
        train(data_dir, str(tmp_path / "y"), tiny("schedule.num_epochs=1", "nnet.params.frame_dim=20",
                                                  f"init_from={first}"), stream=null)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_tdnn_softmax(policy, data_dir, tmp_path):
    import keras
    from tfspk.train import train
    from tfspk.train.trainer import Trainer
    config = tiny("schedule.num_epochs=1", f"mixed_precision={policy}")
    result = train(data_dir, str(tmp_path / "exp"), config, stream=open(os.devnull, "w"))
    assert np.isfinite(result.epochs[0].loss) and np.isfinite(result.epochs[0].valid_loss)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    from tfspk.train import components
    trainer = Trainer(components.resolve(config), 12, 8)
    weighted = [layer for layer in trainer.model.layers if layer.weights]
    norms = [layer for layer in weighted if isinstance(layer, keras.layers.BatchNormalization)]
    others = [layer for layer in weighted if layer not in norms]
    assert others and all(layer.compute_dtype == policy.split("_")[1] for layer in others)
    assert norms and all(layer.compute_dtype == "float32" for layer in norms)  # BN in float32 (docs/nnet.md)
    assert all(v.dtype == "float32" for v in trainer.model.weights)  # float32 variables
    assert trainer.head.compute_dtype == "float32"
    assert type(trainer.optimizer).__name__ == ("LossScaleOptimizer" if policy == "mixed_float16" else "SGD")
    with pytest.raises(ToolError, match=r"clip_norm"):
        Trainer(components.resolve(tiny("mixed_precision=mixed_float16", "optimizer.clip_norm=5")), 12, 8)
