"""tfspk.nnet: the x-vector TDNNs against an independent numpy statement of the network."""
import numpy as np
import pytest
import tensorflow as tf

from tfspk.errors import ToolError
from tfspk.nnet import build_xvector, check_num_frames, receptive_field

TINY = dict(frame_dim=8, pooling_dim=12, embedding_dim=6)
FEAT_DIM = 5
# [Liu2019, sec. 4.2] and Kaldi voxceleb v2, restated: (kernel, dilation) of the five frame layers.
LAYOUTS = {"tdnn": [(5, 1), (5, 1), (7, 1), (1, 1), (1, 1)],
           "tdnn_kaldi": [(5, 1), (3, 2), (3, 3), (1, 1), (1, 1)]}
ORDERS = {"tdnn": "bn_relu", "tdnn_kaldi": "relu_bn"}


def _randomise_batch_norms(model, rng):
    """Give every BN non-trivial gamma, beta and moving statistics so the test sees them."""
    for layer in model.layers:
        if layer.name.endswith("_bn"):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.3, beta.shape),
                               rng.normal(0, 0.3, mean.shape), rng.uniform(0.5, 2.0, var.shape)])


def _np_valid_tdnn(x, kernel, bias, dilation):
    """y[t] = sum_j x[t + j d] W_j + b for every t where the whole context exists (no padding)."""
    taps = kernel.shape[0]
    out_len = x.shape[0] - (taps - 1) * dilation
    return sum(x[j * dilation: j * dilation + out_len] @ kernel[j] for j in range(taps)) + bias


def _np_bn(x, weights, eps=1e-3):
    gamma, beta, mean, var = weights
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def _np_post(x, bn_weights, order, relu=True):
    relu_fn = (lambda v: np.maximum(v, 0)) if relu else (lambda v: v)
    if order == "bn_relu":
        return relu_fn(_np_bn(x, bn_weights))
    return _np_bn(relu_fn(x), bn_weights)


def _np_xvector(model, arch, feats, floor=1e-5):
    """The network for ONE utterance [T, F] in inference mode, written from the paper/Kaldi layouts."""
    get = lambda name: [w.astype(np.float64) for w in model.get_layer(name).get_weights()]
    x = feats.astype(np.float64)
    for index, (kernel_size, dilation) in enumerate(LAYOUTS[arch], 1):
        kernel, bias = get(f"tdnn{index}_affine")
        assert kernel.shape[0] == kernel_size
        x = _np_post(_np_valid_tdnn(x, kernel, bias, dilation), get(f"tdnn{index}_bn"), ORDERS[arch])
    pooled = np.concatenate([x.mean(0), np.sqrt(np.maximum(x.var(0), floor))])
    weights6, bias6 = get("tdnn6_affine")
    embedding_a = pooled @ weights6 + bias6
    hidden = _np_post(embedding_a, get("tdnn6_bn"), ORDERS[arch])
    weights7, bias7 = get("tdnn7_affine")
    embedding_b = _np_post(hidden @ weights7 + bias7, get("tdnn7_bn"), ORDERS[arch], relu=False)
    return embedding_a, embedding_b


@pytest.mark.parametrize("arch", ["tdnn", "tdnn_kaldi"])
def test_forward_matches_numpy_statement(arch):
    rng = np.random.default_rng(1)
    model = build_xvector(arch, FEAT_DIM, **TINY)
    _randomise_batch_norms(model, rng)
    feats = rng.normal(size=(3, 23, FEAT_DIM)).astype(np.float32)
    out = model(feats, training=False)
    assert set(out) == {"embedding_a", "embedding_b"}
    for b in range(3):
        want_a, want_b = _np_xvector(model, arch, feats[b])
        np.testing.assert_allclose(out["embedding_a"][b].numpy(), want_a, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(out["embedding_b"][b].numpy(), want_b, rtol=1e-4, atol=1e-4)


def test_receptive_field_and_shortest_input():
    # 1 + (4 + 4 + 6): [Liu2019] kernels 5,5,7 / Kaldi contexts +-2, +-2, +-3.
    assert receptive_field("tdnn") == 15 and receptive_field("tdnn_kaldi") == 15
    model = build_xvector("tdnn", FEAT_DIM, **TINY)
    out = model(np.zeros((1, 15, FEAT_DIM), np.float32), training=False)
    assert np.all(np.isfinite(out["embedding_a"].numpy()))
    check_num_frames(15, "tdnn")
    with pytest.raises(ToolError, match="14 frames.*at least 15"):
        check_num_frames(14, "tdnn", what="utterance u1")


def test_variable_frames_under_one_tf_function():
    model = build_xvector("tdnn", FEAT_DIM, **TINY)
    traces = []

    @tf.function(input_signature=[tf.TensorSpec([None, None, FEAT_DIM], tf.float32)])
    def embed(x):
        traces.append(1)
        return model(x, training=False)["embedding_a"]

    rng = np.random.default_rng(2)
    for frames in (20, 37, 15):
        feats = rng.normal(size=(2, frames, FEAT_DIM)).astype(np.float32)
        np.testing.assert_allclose(embed(feats).numpy(), model(feats, training=False)["embedding_a"].numpy(),
                                   rtol=1e-5, atol=1e-5)
    assert len(traces) == 1


def test_std_pooling_is_finite_for_constant_channels_with_finite_gradient():
    model = build_xvector("tdnn", FEAT_DIM, **TINY)
    feats = tf.ones((2, 30, FEAT_DIM))  # every frame the same: zero variance everywhere
    with tf.GradientTape() as tape:
        out = model(feats, training=True)
        loss = tf.reduce_sum(out["embedding_b"])
    grads = tape.gradient(loss, model.trainable_variables)
    assert np.all(np.isfinite(out["embedding_b"].numpy()))
    assert all(np.all(np.isfinite(g.numpy())) for g in grads if g is not None)
    pooled = model.get_layer("stats_pool")(tf.ones((1, 10, 3)))
    np.testing.assert_allclose(pooled.numpy(), [[1, 1, 1] + [np.sqrt(1e-5)] * 3], rtol=1e-6)


def test_default_widths_match_liu2019():
    model = build_xvector("tdnn", 30)
    widths = [model.get_layer(f"tdnn{i}_affine").get_weights()[0].shape for i in range(1, 8)]
    assert widths == [(5, 30, 512), (5, 512, 512), (7, 512, 512), (1, 512, 512), (1, 512, 1500),
                      (3000, 512), (512, 512)]


def test_weight_decay_adds_l2_terms():
    model = build_xvector("tdnn", FEAT_DIM, weight_decay=0.01, **TINY)
    model(np.zeros((1, 20, FEAT_DIM), np.float32))
    kernel = model.get_layer("tdnn6_affine").get_weights()[0]
    assert len(model.losses) == 7
    assert any(abs(float(term) - 0.01 * np.sum(kernel.astype(np.float64) ** 2)) < 1e-5 for term in model.losses)


@pytest.mark.parametrize("kwargs, message", [
    (dict(arch="resnet"), "unknown network architecture 'resnet'; valid: tdnn, tdnn_kaldi"),
    (dict(frame_dim=0), "frame_dim must be a positive integer"),
    (dict(layer_order="relu_relu"), "unknown layer_order"),
    (dict(variance_floor=0.0), "variance_floor must be > 0"),
])
def test_bad_options_raise_tool_error(kwargs, message):
    options = dict(TINY, arch="tdnn", feat_dim=FEAT_DIM)
    options.update(kwargs)
    with pytest.raises(ToolError, match=message):
        build_xvector(**options)
