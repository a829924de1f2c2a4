"""tfspk.losses against the independent numpy statements in tests/losses_reference.py."""
import math
import zlib

import numpy as np
import pytest
import tensorflow as tf

import losses_reference as ref
from tfspk.errors import ToolError
from tfspk.losses import LOSSES, annealing, build_loss

N, D, C = 5, 6, 4
LABELS = np.array([0, 1, 3, 1, 2])


def make_inputs(seed=0, n=N, d=D, c=C, norm=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    if norm is not None:
        x = (x / np.linalg.norm(x, axis=1, keepdims=True) * norm).astype(np.float32)
    w = rng.standard_normal((d, c)).astype(np.float32)
    return x, w


def make_head(name, params=None, w=None, c=C, d=D):
    head = build_loss(name, c, d, params or {})
    if w is not None:
        head.kernel.assign(w)
    return head


def tf_loss_and_grads(head, x, y, step=0, margin=True):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss, logits = head(xt, tf.constant(y, tf.int32), tf.constant(step, tf.int64), margin=margin)
    gx, gw = tape.gradient(loss, [xt, head.kernel])
    return float(loss), logits.numpy(), gx.numpy(), gw.numpy()


def check_against(ref_fn, head, x, w, y, step=0, rtol=1e-4, grad_tol=2e-3):
    """Value and both gradients of the TF head equal the numpy twin's value and central differences."""
    loss, _, gx, gw = tf_loss_and_grads(head, x, y, step)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    expected = ref_fn(x64, w64)
    assert loss == pytest.approx(expected, rel=rtol, abs=1e-5)
    num_gx = ref.numeric_gradient(lambda a: ref_fn(a, w64), x64)
    num_gw = ref.numeric_gradient(lambda a: ref_fn(x64, a), w64)
    scale = max(np.abs(num_gx).max(), np.abs(num_gw).max(), 1e-3)
    np.testing.assert_allclose(gx, num_gx, atol=grad_tol * scale, rtol=grad_tol)
    np.testing.assert_allclose(gw, num_gw, atol=grad_tol * scale, rtol=grad_tol)
    return loss


# ----------------------------------------------------------------------------- registry

def test_registry_lookup_is_hyphen_underscore_and_case_insensitive():
    assert type(build_loss("AM-Softmax", 3, 2)) is LOSSES["amsoftmax"]
    assert type(build_loss("am_softmax", 3, 2)) is LOSSES["amsoftmax"]
    assert type(build_loss("AAM", 3, 2)) is LOSSES["arcsoftmax"]
    assert type(build_loss("Modified-Softmax", 3, 2)) is LOSSES["modified_softmax"]


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ToolError) as err:
        build_loss("bogus", 3, 2)
    for name in LOSSES:
        assert name in str(err.value)


def test_unknown_param_lists_valid_params():
    with pytest.raises(ToolError, match=r"unknown parameter 'mx'.*m3 \(default 0.2\)"):
        build_loss("amsoftmax", 3, 2, {"mx": 1})


@pytest.mark.parametrize("name, params, message", [
    ("asoftmax", {"m1": 5}, "m1 must be 1, 2, 3 or 4"),
    ("asoftmax", {"m1": 2.5}, "must be an integer"),
    ("amsoftmax", {"m3": -0.1}, "m3 must be in"),
    ("arcsoftmax", {"m2": math.pi}, r"m2 must be in \[0, pi\)"),
    ("arcsoftmax", {"m2": -0.01}, "m2 must be in"),
    ("amsoftmax", {"scale": 0}, "positive number"),
    ("amsoftmax", {"scale": "big"}, "'norm' or a positive number"),
    ("amsoftmax", {"anneal": "maybe"}, "true or false"),
    ("amsoftmax", {"anneal_gamma": -1}, "anneal_gamma must be >= 0"),
    ("amsoftmax", {"m3": float("nan")}, "finite"),
])
def test_impossible_params_raise_tool_error(name, params, message):
    with pytest.raises(ToolError, match=message):
        build_loss(name, 3, 2, params)


def test_bad_sizes_raise_tool_error():
    with pytest.raises(ToolError, match="num_classes must be an integer >= 2"):
        build_loss("softmax", 1, 4)
    with pytest.raises(ToolError, match="embedding_dim"):
        build_loss("softmax", 3, 0)
    head = build_loss("amsoftmax", 3, 4)
    with pytest.raises(ToolError, match="dimension 5"):
        head(np.zeros((2, 5), np.float32), np.zeros(2, np.int32), 0)


def test_params_accept_strings_aliases_and_dashes():
    head = build_loss("amsoftmax", 3, 2, {"margin": "0.3", "scale": "30", "anneal": "false",
                                          "anneal-gamma": "1e-3"})
    assert (head.params.m3, head.params.scale, head.params.anneal, head.params.anneal_gamma) == (0.3, 30.0, False, 1e-3)


def test_every_params_field_is_documented():
    import dataclasses
    for name, cls in LOSSES.items():
        for field in dataclasses.fields(cls.Params):
            assert field.metadata.get("doc"), f"{name}.{field.name} has no doc"


# ----------------------------------------------------------------------------- annealing

@pytest.mark.parametrize("step", [0, 1000, 10_000, 100_000, 1_000_000])
@pytest.mark.parametrize("lambda_b, gamma, alpha, lambda_0", [(1000, 1e-4, 5, 0), (1000, 1e-5, 5, 10)])
def test_margin_annealing_lambda_follows_eq8(step, lambda_b, gamma, alpha, lambda_0):
    got = float(annealing.margin_annealing_lambda(tf.constant(step, tf.int64), lambda_b, gamma, alpha, lambda_0))
    assert got == pytest.approx(ref.anneal_lambda(step, lambda_b, gamma, alpha, lambda_0), rel=1e-5, abs=1e-9)


def test_published_annealing_defaults():
    am, arc, asm = (build_loss(n, 3, 2).params for n in ("amsoftmax", "arcsoftmax", "asoftmax"))
    assert (am.anneal, am.anneal_lambda_b, am.anneal_gamma, am.anneal_alpha, am.anneal_lambda_0) == (True, 1000, 1e-4, 5, 0)
    assert (arc.anneal_lambda_b, arc.anneal_gamma, arc.anneal_alpha, arc.anneal_lambda_0) == (1000, 1e-5, 5, 0)
    assert (asm.anneal_lambda_b, asm.anneal_gamma, asm.anneal_alpha, asm.anneal_lambda_0) == (1000, 1e-5, 5, 10)


@pytest.mark.parametrize("step, s1, s2", [(0, 100, 50), (100, 100, 50), (125, 100, 50), (150, 100, 50), (10**6, 100, 50)])
def test_softmax_to_ar_weight_follows_eq13(step, s1, s2):
    assert float(annealing.softmax_to_ar_weight(tf.constant(step, tf.int64), s1, s2)) == pytest.approx(
        ref.ar_weight(step, s1, s2))


# ----------------------------------------------------------------------------- values and gradients

def _anneal(step, b, g, a, l0):
    return ref.anneal_lambda(step, b, g, a, l0)


CASES = {
    "softmax": (None, None),
    "modified_softmax": ({}, lambda x, w, s: ref.modified_softmax_loss(x, w, LABELS, "norm")),
    "modified_softmax_s": ({"scale": 10}, lambda x, w, s: ref.modified_softmax_loss(x, w, LABELS, 10)),
    "amsoftmax": ({"anneal": False, "scale": 7.0},
                  lambda x, w, s: ref.margin_loss(x, w, LABELS, 7.0, lambda c: ref.psi_am(c, 0.2))),
    "amsoftmax_annealed": ({"m3": 0.3},
                           lambda x, w, s: ref.margin_loss(x, w, LABELS, "norm", lambda c: ref.psi_am(c, 0.3),
                                                           _anneal(s, 1000, 1e-4, 5, 0))),
    "arcsoftmax": ({"anneal": False, "m2": 0.3},
                   lambda x, w, s: ref.margin_loss(x, w, LABELS, "norm", lambda c: ref.psi_arc(c, 0.3))),
    "arcsoftmax_annealed": ({"scale": 5},
                            lambda x, w, s: ref.margin_loss(x, w, LABELS, 5.0, lambda c: ref.psi_arc(c, 0.25),
                                                            _anneal(s, 1000, 1e-5, 5, 0))),
}
for _m1 in (1, 2, 3, 4):
    CASES[f"asoftmax_m{_m1}"] = ({"m1": _m1, "anneal": False},
                                 lambda x, w, s, m1=_m1: ref.margin_loss(x, w, LABELS, "norm",
                                                                          lambda c: ref.psi_asoftmax(c, m1)))
CASES["asoftmax_annealed"] = ({"scale": 4}, lambda x, w, s: ref.margin_loss(
    x, w, LABELS, 4.0, lambda c: ref.psi_asoftmax(c, 4), _anneal(s, 1000, 1e-5, 5, 10)))


@pytest.mark.parametrize("case", [c for c in CASES if c != "softmax"])
@pytest.mark.parametrize("step", [0, 100_000])
def test_loss_value_and_gradients_match_numpy(case, step):
    params, ref_fn = CASES[case]
    name = next(loss for loss in sorted(LOSSES, key=len, reverse=True) if case.startswith(loss))
    x, w = make_inputs(seed=zlib.crc32(case.encode()) % 1000)
    head = make_head(name, params, w)
    check_against(lambda xx, ww: ref_fn(xx, ww, step), head, x, w, LABELS, step)


def test_softmax_value_and_gradients_match_numpy():
    x, w = make_inputs(1)
    head = make_head("softmax", {}, w)
    bias = np.array([0.1, -0.2, 0.3, 0.0], np.float32)
    head.bias.assign(bias)
    check_against(lambda xx, ww: ref.softmax_loss(xx, ww, bias.astype(np.float64), LABELS), head, x, w, LABELS)


def test_asoftmax_psi_is_monotone_and_continuous():
    from tfspk.losses.margin import asoftmax_psi
    theta = np.linspace(0, math.pi, 2001)
    for m1 in (1, 2, 3, 4):
        psi = asoftmax_psi(tf.constant(np.cos(theta), tf.float32), m1).numpy()
        assert np.all(np.diff(psi) <= 1e-5), m1
        assert np.max(np.abs(np.diff(psi))) < 0.02, m1
        np.testing.assert_allclose(psi, ref.psi_asoftmax(np.cos(theta), m1), atol=2e-5)
