"""tfspk.losses: where margins act, validation mode, extreme angles/norms, C = 2, tf.function."""
import math

import numpy as np
import pytest
import tensorflow as tf

import losses_reference as ref
from tfspk.losses import LOSSES, build_loss
from tfspk.losses.base import TargetMarginHead

D, C = 6, 4
LABELS = np.array([0, 1, 3, 1, 2])

# Every loss with the default scale and, for the angular ones, the other scale option as well.
CONFIGS = [("softmax", {})]
for _name, _cls in sorted(LOSSES.items()):
    if _name == "softmax":
        continue
    _scale_key = {"adaptive_rectangle": "alpha", "circle": "gamma"}.get(_name, "scale")
    CONFIGS += [(_name, {_scale_key: "norm"}), (_name, {_scale_key: 30.0})]


def _inputs(seed=0, n=5, c=C):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, D)).astype(np.float32), rng.standard_normal((D, c)).astype(np.float32)


def _head(name, params, w):
    head = build_loss(name, w.shape[1], D, params)
    head.kernel.assign(w)
    return head


def _loss_grads(head, x, y, step, margin=True):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss, logits = head(xt, tf.constant(y, tf.int32), tf.constant(step, tf.int64), margin=margin)
    return loss, logits, tape.gradient(loss, [xt] + list(head.trainable_variables))


@pytest.mark.parametrize("name", [n for n, cls in sorted(LOSSES.items()) if issubclass(cls, TargetMarginHead)])
def test_margin_changes_only_the_target_logit(name):
    x, w = _inputs(3)
    head = _head(name, {"anneal": False}, w)
    trained = head.training_logits(x, LABELS, tf.constant(0, tf.int64)).numpy()
    _, plain, _ = _loss_grads(head, x, LABELS, 0, margin=False)
    target = np.zeros(trained.shape, bool)
    target[np.arange(len(LABELS)), LABELS] = True
    np.testing.assert_allclose(trained[~target], plain.numpy()[~target], rtol=1e-6)
    assert np.all(trained[target] < plain.numpy()[target] - 1e-4)  # a positive margin lowers every target logit


@pytest.mark.parametrize("name, params", CONFIGS, ids=[f"{n}-{list(p.values())}" for n, p in CONFIGS])
def test_validation_mode_is_plain_modified_softmax(name, params):
    x, w = _inputs(4)
    head = _head(name, params, w)
    loss, logits, _ = _loss_grads(head, x, LABELS, 10**6, margin=False)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    if name == "softmax":
        expected_logits = x64 @ w64
    else:
        scale = next(iter(params.values()))
        expected_logits = ref.scale_of(x64, scale) * ref.cosines(x64, w64)
    np.testing.assert_allclose(logits.numpy(), expected_logits, rtol=2e-5, atol=2e-5)
    assert float(loss) == pytest.approx(ref.cross_entropy(expected_logits, LABELS), rel=1e-5)
    _, train_logits, _ = _loss_grads(head, x, LABELS, 10**6, margin=True)
    np.testing.assert_allclose(train_logits.numpy(), logits.numpy(), rtol=1e-6)  # logits for accuracy: no margin


def _extreme_inputs(norm, c):
    """Sample 0 on its class weight (theta = 0), sample 1 opposite it (theta = pi), sample 2 at a
    right angle to everything but one class; all with feature norm ``norm``."""
    rng = np.random.default_rng(7)
    w = rng.standard_normal((D, c)).astype(np.float32)
    x = np.stack([w[:, 0], -w[:, 1 % c], w[:, 0] - w[:, 0] @ w[:, 1] / (w[:, 1] @ w[:, 1]) * w[:, 1]])
    x = x / np.linalg.norm(x, axis=1, keepdims=True) * norm
    return x.astype(np.float32), w, np.array([0, 1 % c, 1])


@pytest.mark.parametrize("name, params", CONFIGS, ids=[f"{n}-{list(p.values())}" for n, p in CONFIGS])
def test_extreme_angles_norms_and_two_classes_stay_finite(name, params):
    for c in (2, C):
        for norm in (1e-8, 1.0, 1e4):
            x, w, y = _extreme_inputs(norm, c)
            head = _head(name, dict(params, **({"anneal": False} if "anneal" in _fields(name) else {})), w)
            for step in (0, 10**6):
                loss, _, grads = _loss_grads(head, x, y, step)
                assert np.isfinite(float(loss)), (c, norm, step)
                for g in grads:
                    if g is not None:
                        assert np.all(np.isfinite(g.numpy())), (c, norm, step)


def _fields(name):
    import dataclasses
    return {f.name for f in dataclasses.fields(LOSSES[name].Params)}


@pytest.mark.parametrize("name, params, twin", [
    ("amsoftmax", {"anneal": False}, lambda x, w, y: ref.margin_loss(x, w, y, "norm", lambda c: ref.psi_am(c, 0.2))),
    ("arcsoftmax", {"anneal": False, "m2": 0.5},
     lambda x, w, y: ref.margin_loss(x, w, y, "norm", lambda c: ref.psi_arc(c, 0.5))),
    ("asoftmax", {"anneal": False, "m1": 4},
     lambda x, w, y: ref.margin_loss(x, w, y, "norm", lambda c: ref.psi_asoftmax(c, 4))),
    ("combined", {"anneal": False, "m1": 1.2, "m2": 0.3, "m3": 0.1},
     lambda x, w, y: ref.margin_loss(x, w, y, "norm", lambda c: ref.psi_combined(c, 1.2, 0.3, 0.1))),
    ("real_amsoftmax", {"scale": "norm"}, lambda x, w, y: ref.real_am_loss(x, w, y, "norm", 0.25)),
    ("adaptive_rectangle", {"alpha": "norm", "anneal": False},
     lambda x, w, y: ref.adaptive_rectangle_loss(x, w, y, "norm", 0.15, 0.1, 0.15)),
])
def test_values_at_theta_zero_and_pi_match_numpy(name, params, twin):
    for c in (2, C):
        x, w, y = _extreme_inputs(3.0, c)
        head = _head(name, params, w)
        loss, _, _ = _loss_grads(head, x, y, 0)
        assert float(loss) == pytest.approx(twin(x.astype(np.float64), w.astype(np.float64), y), rel=1e-4, abs=1e-4)


def test_arc_extension_is_monotone_past_pi():
    from tfspk.losses.margin import arc_psi
    theta = np.linspace(0, math.pi, 4001)
    psi = arc_psi(tf.constant(np.cos(theta), tf.float32), 0.5).numpy()
    assert np.all(np.diff(psi) <= 1e-5)
    np.testing.assert_allclose(psi, ref.psi_arc(np.cos(theta), 0.5), atol=2e-4)
    assert psi[-1] == pytest.approx(-math.cos(math.pi + 0.5) - 2.0, abs=2e-3)  # up to the arccos clip


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_tf_function_with_dynamic_batch_matches_eager(name):
    head = build_loss(name, C, D, {})
    spec = [tf.TensorSpec([None, D], tf.float32), tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int64)]

    @tf.function(input_signature=spec)
    def step_fn(x, y, step):
        with tf.GradientTape() as tape:
            loss, logits = head(x, y, step)
        return loss, logits, tape.gradient(loss, head.trainable_variables)

    for n in (3, 7):
        x, _ = _inputs(n, n=n)
        y = np.arange(n, dtype=np.int32) % C
        loss, logits, grads = step_fn(tf.constant(x), tf.constant(y), tf.constant(2000, tf.int64))
        eager_loss, eager_logits = head(x, y, tf.constant(2000, tf.int64))
        assert float(loss) == pytest.approx(float(eager_loss), rel=1e-5)
        assert logits.shape == (n, C) and all(g is not None for g in grads)
    assert step_fn.experimental_get_tracing_count() == 1


def test_every_loss_and_aux_compiles_with_xla():
    """XLA is not required, but a trainer using jit_compile=True must not hit an op without an XLA
    kernel. One compiled function holds every head (one compilation keeps the test short)."""
    from tfspk.losses import build_aux
    x, _ = _inputs(5)
    y = tf.constant(LABELS, tf.int32)
    heads = [build_loss(name, C, D, {}) for name in sorted(LOSSES)]
    ring, mhe = build_aux("ring"), build_aux("mhe")
    variables = [v for h in heads for v in h.trainable_variables] + ring.trainable_variables

    def losses(x, y, step):
        return tf.stack([h(x, y, step)[0] for h in heads] + [ring(x, y, heads[0]), mhe(x, y, heads[1])])

    @tf.function(jit_compile=True)
    def compiled(x, y, step):
        with tf.GradientTape() as tape:
            values = losses(x, y, step)
            total = tf.reduce_sum(values)
        return values, tape.gradient(total, variables)

    step = tf.constant(10**6, tf.int64)
    values, grads = compiled(tf.constant(x), y, step)
    np.testing.assert_allclose(values.numpy(), losses(tf.constant(x), y, step).numpy(), rtol=1e-4)
    missing = [v.path for v, g in zip(variables, grads) if g is None]
    assert not missing
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def test_rectangle_margin_acts_only_on_the_batchwise_non_targets():
    """AR with margins (m1, m2) equals the margin-free AR loss on logits whose non-target entries
    (every (j, k != y_j) of the batch) are raised by scale * m_jk, targets untouched."""
    x, w = _inputs(8)
    y = tf.constant(LABELS, tf.int32)
    m1, m2, lambda_h = 0.3, 0.2, 0.1
    with_margin = _head("adaptive_rectangle", {"alpha": 7.0, "m1": m1, "m2": m2, "lambda_h": lambda_h,
                                               "anneal": False}, w)
    without = _head("adaptive_rectangle", {"alpha": 7.0, "m1": 0.0, "m2": 0.0, "anneal": False}, w)
    logits, scale = with_margin.scaled_cosines(tf.constant(x))
    cos = ref.cosines(x.astype(np.float64), w.astype(np.float64))
    target = np.zeros(cos.shape, bool)
    target[np.arange(len(LABELS)), LABELS] = True
    hard = cos - cos[target].mean() + lambda_h > 0
    assert hard[~target].any() and not hard[~target].all()
    margins = np.where(target, 0.0, m1 + m2 * hard - m2 / 2)
    expected = without.rectangle_loss(logits + 7.0 * margins.astype(np.float32), scale, y)
    assert float(with_margin.rectangle_loss(logits, scale, y)) == pytest.approx(float(expected), rel=1e-5)
