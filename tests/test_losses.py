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
    ("adaptive_rectangle", {"alpha": 0}, "positive number"),
    ("ar", {"alpha": -30}, "positive number"),
    ("ar", {"m2": -0.1}, "m2 must be >= 0"),
    ("ar", {"anneal_s2": 0}, "anneal_s2 must be >= 1"),
    ("circle", {"m": 1.0}, r"m must be in \[0, 1\)"),
    ("dam", {"lambda": 0}, "lambda must be > 0"),
    ("dam", {"m": -0.2}, "m must be >= 0"),
    ("ram", {"form": "square"}, "form' must be one of exp, hinge"),
    ("combined", {"m1": 0.5}, r"m1 must be in \[1, 4\]"),
    ("softmax", {"scale": 30}, "unknown parameter 'scale'"),
])
def test_impossible_params_raise_tool_error(name, params, message):
    with pytest.raises(ToolError, match=message):
        build_loss(name, 3, 2, params)


def test_bad_sizes_raise_tool_error():
    with pytest.raises(ToolError, match="num_classes must be an integer >= 2"):
        build_loss("softmax", 1, 4)
    with pytest.raises(ToolError, match="embedding_dim"):
        build_loss("softmax", 3, 0)
    with pytest.raises(ToolError, match="num_classes must be an integer"):
        build_loss("softmax", 3.5, 4)
    assert build_loss("softmax", np.int64(3), np.int32(4)).kernel.shape == (4, 3)
    head = build_loss("amsoftmax", 3, 4)
    with pytest.raises(ToolError, match="dimension 5"):
        head(np.zeros((2, 5), np.float32), np.zeros(2, np.int32), 0)
    with pytest.raises(ToolError, match="3 labels for 2 embeddings"):
        head(np.zeros((2, 4), np.float32), np.zeros(3, np.int32), 0)
    with pytest.raises(ToolError, match="must be \\[batch, 4\\]"):
        head(np.zeros((2, 1, 4), np.float32), np.zeros(2, np.int32), 0)


def test_params_accept_strings_aliases_and_dashes():
    head = build_loss("amsoftmax", 3, 2, {"margin": "0.3", "scale": "30", "anneal": "false",
                                          "anneal-gamma": "1e-3"})
    assert (head.params.m3, head.params.scale, head.params.anneal, head.params.anneal_gamma) == (0.3, 30.0, False, 1e-3)
    assert build_loss("dam", 3, 2, {"s": 20, "lambda": 3}).params.scale == 20.0
    assert build_loss("dam", 3, 2, {"s": 20, "lambda": 3}).params.lambda_ == 3.0
    assert build_loss("ar", 3, 2, {"scale": "norm"}).params.alpha == "norm"
    with pytest.raises(ToolError, match="given twice"):
        build_loss("amsoftmax", 3, 2, {"m3": 0.1, "margin": 0.2})


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


def _fixed(fn):
    """A twin that does not depend on the base point (nothing is held constant)."""
    return lambda x0, w0, step: (lambda x, w: fn(x, w, step))


Y = LABELS
# case -> (registry name, params, make_twin(x0, w0, step) -> twin(x, w))
CASES = {
    "modified_softmax": ("modified_softmax", {}, _fixed(lambda x, w, s: ref.modified_softmax_loss(x, w, Y, "norm"))),
    "modified_softmax_s10": ("modified_softmax", {"scale": 10},
                             _fixed(lambda x, w, s: ref.modified_softmax_loss(x, w, Y, 10))),
    "amsoftmax": ("amsoftmax", {"anneal": False, "scale": 7.0},
                  _fixed(lambda x, w, s: ref.margin_loss(x, w, Y, 7.0, lambda c: ref.psi_am(c, 0.2)))),
    "amsoftmax_annealed": ("amsoftmax", {"m3": 0.3}, _fixed(lambda x, w, s: ref.margin_loss(
        x, w, Y, "norm", lambda c: ref.psi_am(c, 0.3), _anneal(s, 1000, 1e-4, 5, 0)))),
    "arcsoftmax": ("arcsoftmax", {"anneal": False, "m2": 0.3},
                   _fixed(lambda x, w, s: ref.margin_loss(x, w, Y, "norm", lambda c: ref.psi_arc(c, 0.3)))),
    "arcsoftmax_annealed": ("aam", {"scale": 5}, _fixed(lambda x, w, s: ref.margin_loss(
        x, w, Y, 5.0, lambda c: ref.psi_arc(c, 0.25), _anneal(s, 1000, 1e-5, 5, 0)))),
    "asoftmax_annealed": ("asoftmax", {"scale": 4}, _fixed(lambda x, w, s: ref.margin_loss(
        x, w, Y, 4.0, lambda c: ref.psi_asoftmax(c, 4), _anneal(s, 1000, 1e-5, 5, 10)))),
    "combined": ("combined", {"m1": 1.35, "m2": 0.3, "m3": 0.15, "anneal": False}, _fixed(
        lambda x, w, s: ref.margin_loss(x, w, Y, "norm", lambda c: ref.psi_combined(c, 1.35, 0.3, 0.15)))),
    "combined_annealed": ("combined", {"scale": 6}, _fixed(lambda x, w, s: ref.margin_loss(
        x, w, Y, 6.0, lambda c: ref.psi_combined(c, 1.0, 0.2, 0.1), _anneal(s, 1000, 1e-4, 5, 0)))),
    "damsoftmax": ("damsoftmax", {"scale": 8}, lambda x0, w0, s: (lambda x, w: ref.dam_loss(
        x, w, Y, 8.0, 0.2, 2.0, frozen_margins=ref.dam_margins(x0, w0, Y, 0.2, 2.0))),),
    "damsoftmax_margin_gradient": ("dam", {"scale": "norm", "margin_gradient": True, "m": 0.3, "lambda": 1.5},
                                   _fixed(lambda x, w, s: ref.dam_loss(x, w, Y, "norm", 0.3, 1.5))),
    "damsoftmax_annealed": ("dam", {"scale": 8, "anneal": True}, lambda x0, w0, s: (lambda x, w: ref.dam_loss(
        x, w, Y, 8.0, 0.2, 2.0, frozen_margins=ref.dam_margins(x0, w0, Y, 0.2, 2.0),
        anneal=_anneal(s, 1000, 1e-4, 5, 0)))),
    "real_amsoftmax": ("real_amsoftmax", {"scale": 6, "m": 0.3},
                       _fixed(lambda x, w, s: ref.real_am_loss(x, w, Y, 6.0, 0.3, "exp"))),
    "real_amsoftmax_hinge": ("ram", {"form": "hinge", "scale": "norm"},
                             _fixed(lambda x, w, s: ref.real_am_loss(x, w, Y, "norm", 0.25, "hinge"))),
    "real_amsoftmax_annealed": ("ram", {"scale": 6, "anneal": True}, _fixed(
        lambda x, w, s: ref.real_am_loss(x, w, Y, 6.0, 0.25, "exp", _anneal(s, 1000, 1e-4, 5, 0)))),
    "adaptive_rectangle": ("adaptive_rectangle", {"alpha": 5, "anneal": False, "lambda_h": 0.3},
                           _fixed(lambda x, w, s: ref.adaptive_rectangle_loss(x, w, Y, 5.0, 0.15, 0.1, 0.3))),
    "adaptive_rectangle_norm": ("ar", {"alpha": "norm", "anneal": False, "m1": 0.2, "m2": 0.3, "lambda_h": 0.5},
                                _fixed(lambda x, w, s: ref.adaptive_rectangle_loss(x, w, Y, "norm", 0.2, 0.3, 0.5))),
    "adaptive_rectangle_annealed": ("ar", {"alpha": 4, "anneal_s1": 20_000, "anneal_s2": 100_000},
                                    _fixed(lambda x, w, s: ref.ar_annealed_loss(
                                        x, w, Y, 4.0, 0.15, 0.1, 0.15, ref.ar_weight(s, 20_000, 100_000)))),
    "circle": ("circle", {"gamma": 8, "m": 0.25}, lambda x0, w0, s: (lambda x, w: ref.circle_loss(
        x, w, Y, 8.0, 0.25, frozen=ref.circle_weights(x0, w0, Y, 0.25)))),
    "circle_norm": ("circle", {"gamma": "norm", "m": 0.4}, lambda x0, w0, s: (lambda x, w: ref.circle_loss(
        x, w, Y, "norm", 0.4, frozen=ref.circle_weights(x0, w0, Y, 0.4)))),
}
for _m1 in (1, 2, 3, 4):
    CASES[f"asoftmax_m{_m1}"] = ("asoftmax", {"m1": _m1, "anneal": False}, _fixed(
        lambda x, w, s, m1=_m1: ref.margin_loss(x, w, Y, "norm", lambda c: ref.psi_asoftmax(c, m1))))


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("step", [0, 30_000])
def test_loss_value_and_gradients_match_numpy(case, step):
    name, params, make_twin = CASES[case]
    x, w = make_inputs(seed=zlib.crc32(case.encode()) % 1000)
    head = make_head(name, params, w)
    twin = make_twin(x.astype(np.float64), w.astype(np.float64), step)
    check_against(twin, head, x, w, LABELS, step)


def test_every_loss_has_a_numpy_twin_case():
    covered = {type(build_loss(name, 3, 2, params)).loss_name for name, params, _ in CASES.values()}
    assert covered | {"softmax"} == set(LOSSES)


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


def test_rectangle_cases_exercise_easy_and_hard_pairs():
    """The AR twin comparisons are only meaningful if the hard-pair indicator takes both values."""
    for case in ("adaptive_rectangle", "adaptive_rectangle_norm", "adaptive_rectangle_annealed"):
        _, params, _ = CASES[case]
        x, w = make_inputs(seed=zlib.crc32(case.encode()) % 1000)
        c = ref.cosines(x.astype(np.float64), w.astype(np.float64))
        lambda_h = params.get("lambda_h", 0.15)
        hard = c - c[np.arange(N), LABELS].mean() + lambda_h > 0
        hard[np.arange(N), LABELS] = False
        easy = ~hard
        easy[np.arange(N), LABELS] = False
        assert hard.any() and easy.any(), case


@pytest.mark.parametrize("name, psi, schedule", [
    ("amsoftmax", lambda c: ref.psi_am(c, 0.2), (1000, 1e-4, 5, 0)),
    ("arcsoftmax", lambda c: ref.psi_arc(c, 0.25), (1000, 1e-5, 5, 0)),
    ("asoftmax", lambda c: ref.psi_asoftmax(c, 4), (1000, 1e-5, 5, 10)),
])
def test_annealed_target_logits_at_chosen_steps(name, psi, schedule):
    x, w = make_inputs(11)
    head = make_head(name, {}, w)
    for step in (0, 1000, 10_000, 100_000, 1_000_000):
        got = head.training_logits(x, LABELS, tf.constant(step, tf.int64)).numpy()
        lam = ref.anneal_lambda(step, *schedule)
        expected = ref.margin_logits(x.astype(np.float64), w.astype(np.float64), LABELS, "norm", psi, lam)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4, err_msg=f"step {step}")


def test_docs_list_every_loss_parameter_and_default():
    import dataclasses
    from pathlib import Path
    from tfspk.losses import AUX_LOSSES
    text = (Path(__file__).resolve().parent.parent / "docs" / "losses.md").read_text(encoding="utf-8")
    for name, cls in list(LOSSES.items()) + list(AUX_LOSSES.items()):
        assert f"#### `{name}`" in text, name
        section = text.split(f"#### `{name}`", 1)[1].split("####", 1)[0]
        for field in dataclasses.fields(cls.Params):
            assert f"| `{field.name}`" in section and f"`{field.default!r}`" in section, (name, field.name)
