"""The registered networks: ECAPA-TDNN, ResNet18/34/50, ResCNN and attentive statistics pooling.

Full-size models are only built (cheap) to count parameters; everything that runs uses small widths.
"""
import functools
import math
import sys
import textwrap

import numpy as np
import pytest

from conftest import run

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

import tfspk.nnet  # noqa: E402,F401  (registers the networks)
from tfspk.errors import ToolError  # noqa: E402
from tfspk.nnet.attentive_pooling import AttentiveStatisticsPooling  # noqa: E402
from tfspk.nnet.ecapa_tdnn import count_parameters  # noqa: E402
from tfspk.nnet.registry import get_network, resolve_network_name  # noqa: E402

# Small configurations: same code paths as full size, milliseconds per step. rescnn has one residual block per
# module instead of the paper's 3, 4, 6, 3 (the full depths are counted in test_parameter_counts_...).
SMALL = {
    "ecapa_tdnn": ({"channels": 16, "scale": 4, "se_channels": 8, "mfa_channels": 24, "attention_channels": 8,
                    "embedding_dim": 8}, 20),
    "resnet18": ({"base_width": 4, "embedding_dim": 8}, 16),
    "resnet34": ({"base_width": 4, "embedding_dim": 8}, 16),
    "resnet50": ({"base_width": 2, "embedding_dim": 8}, 16),
    "rescnn": ({"base_channels": 4, "embedding_dim": 8, "depths": [1, 1, 1, 1]}, 20),
}
NAMES = sorted(SMALL)


def _small(name, seed=0, **overrides):
    keras.utils.set_random_seed(seed)
    params, feat_dim = SMALL[name]
    network = get_network(name, {**params, **overrides})
    return network, network.build(feat_dim), feat_dim


@functools.lru_cache(maxsize=None)
def _small_shared(name):
    """A small model for tests that only run inference (never trained, so sharing it is safe)."""
    return _small(name)


@functools.lru_cache(maxsize=None)
def _full_count(name, feat_dim, **params):
    """Parameter count of a full-size model (built once per configuration; building runs nothing)."""
    return count_parameters(get_network(name, params).build(feat_dim))


# ----------------------------------------------------------------------------- attentive pooling vs numpy
def _np_attentive_pooling(h, w1, b1, w2, b2, floor, global_context, bn=None):
    """[Desplanques2020, sec. 3.1] in float64, written independently of the layer (E[x^2] - mu^2 form)."""
    h = h.astype(np.float64)
    batch, frames, channels = h.shape
    if global_context:
        mean = h.sum(axis=1) / frames
        var = (h ** 2).sum(axis=1) / frames - mean ** 2
        std = np.sqrt(np.maximum(var, floor))
        g = np.concatenate([h, np.repeat(mean[:, None], frames, 1), np.repeat(std[:, None], frames, 1)], axis=2)
    else:
        g = h
    z = np.einsum("btk,ka->bta", g, w1) + b1
    if bn is not None:
        gamma, beta, moving_mean, moving_var, eps = bn
        z = (np.maximum(z, 0) - moving_mean) / np.sqrt(moving_var + eps) * gamma + beta
    e = np.einsum("bta,ac->btc", np.tanh(z), w2) + b2
    alpha = np.exp(e) / np.exp(e).sum(axis=1, keepdims=True)
    mu = (alpha * h).sum(axis=1)
    sigma = np.sqrt(np.maximum((alpha * h * h).sum(axis=1) - mu ** 2, floor))
    return np.concatenate([mu, sigma], axis=1), alpha


def _pooling_case(activation, global_context, h, floor=1e-5, seed=1):
    rng = np.random.default_rng(seed)
    channels = h.shape[2]
    layer = AttentiveStatisticsPooling(3, activation, global_context, floor)
    layer.build((None, None, channels))
    context = 3 * channels if global_context else channels
    w1, b1 = rng.normal(size=(context, 3)), rng.normal(size=3)
    w2, b2 = rng.normal(size=(3, channels)), rng.normal(size=channels)
    layer.bottleneck.set_weights([w1, b1])
    layer.scores.set_weights([w2, b2])
    bn = None
    if activation == "relu_bn_tanh":
        bn = (rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 2, 3),
              layer.bottleneck_bn.epsilon)
        layer.bottleneck_bn.set_weights(list(bn[:4]))
    got = layer(tf.constant(h, tf.float32), training=False).numpy()
    alpha = layer.attention_weights(tf.constant(h, tf.float32), training=False).numpy()
    want, want_alpha = _np_attentive_pooling(h, w1, b1, w2, b2, floor, global_context, bn)
    return got, want, alpha, want_alpha


@pytest.mark.parametrize("activation", ["tanh", "relu_bn_tanh"])
@pytest.mark.parametrize("global_context", [True, False])
def test_attentive_pooling_matches_numpy(activation, global_context):
    h = np.random.default_rng(0).normal(size=(2, 7, 5)) * 2 + 1
    got, want, alpha, want_alpha = _pooling_case(activation, global_context, h)
    assert got.shape == (2, 10)
    np.testing.assert_allclose(alpha, want_alpha, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # the weights really vary over time and channel (else the test could not tell attention from plain stats)
    assert np.ptp(alpha, axis=1).min() > 1e-3 and np.ptp(alpha, axis=2).max() > 1e-2


def test_attentive_pooling_one_frame_and_constant_input():
    h1 = np.random.default_rng(2).normal(size=(3, 1, 4))
    got, want, alpha, _ = _pooling_case("tanh", True, h1)
    np.testing.assert_allclose(alpha, 1.0)
    np.testing.assert_allclose(got[:, :4], h1[:, 0], rtol=1e-6)
    np.testing.assert_allclose(got[:, 4:], math.sqrt(1e-5), rtol=1e-5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    constant = np.full((2, 6, 4), 3.25)
    got, want, alpha, _ = _pooling_case("relu_bn_tanh", True, constant, floor=1e-4)
    np.testing.assert_allclose(alpha, 1 / 6, rtol=1e-5)  # equal scores -> uniform weights
    np.testing.assert_allclose(got[:, :4], 3.25, rtol=1e-6)
    np.testing.assert_allclose(got[:, 4:], 1e-2, rtol=1e-4)
    # the floor keeps the gradient of a constant input finite
    layer = AttentiveStatisticsPooling(3)
    x = tf.constant(constant, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = tf.reduce_sum(layer(x))
    assert np.all(np.isfinite(tape.gradient(out, x).numpy()))


# ----------------------------------------------------------------------------- registry, dims, frames
def test_names_and_aliases_resolve():
    assert resolve_network_name("ECAPA") == "ecapa_tdnn"
    assert resolve_network_name("ecapa-tdnn") == "ecapa_tdnn"
    for name in ("resnet18", "resnet34", "resnet50", "rescnn"):
        assert resolve_network_name(name) == name


def test_unknown_network_lists_valid_names():
    with pytest.raises(ToolError) as info:
        get_network("resnet35")
    message = str(info.value)
    assert "resnet35" in message
    for name in ("ecapa_tdnn", "ecapa", "resnet18", "resnet34", "resnet50", "rescnn"):
        assert name in message


@pytest.mark.parametrize("name, bad_dim", [("resnet34", 30), ("resnet18", 4), ("resnet50", 81), ("rescnn", 15),
                                           ("ecapa_tdnn", 0)])
def test_feature_dims_the_network_cannot_take(name, bad_dim):
    network = get_network(name)
    with pytest.raises(ToolError) as info:
        network.build(bad_dim)
    assert name in str(info.value) and str(bad_dim) in str(info.value)


@pytest.mark.parametrize("name, good_dims", [("resnet34", (8, 40, 80)), ("rescnn", (16, 80, 161)),
                                             ("ecapa_tdnn", (1, 30, 80))])
def test_feature_dims_accepted(name, good_dims):
    network = get_network(name)
    for dim in good_dims:
        network.check_feat_dim(dim)


def test_bad_params_raise_tool_error():
    with pytest.raises(ToolError, match="divisible"):
        get_network("ecapa_tdnn", {"channels": 100, "scale": 8})
    with pytest.raises(ToolError, match="attention_activation"):
        get_network("ecapa_tdnn", {"attention_activation": "sigmoid"})
    with pytest.raises(ToolError, match="base_width"):
        get_network("resnet34", {"base_width": 0})
    with pytest.raises(ToolError, match="valid parameters"):
        get_network("rescnn", {"channels": 64})


@pytest.mark.parametrize("depths, expected", [
    ([1, 1, 1], "4 integers (the residual blocks of Res1-Res4)"),
    ([1, 1, 1, 1, 1], "4 integers (the residual blocks of Res1-Res4)"),
    ([], "4 integers (the residual blocks of Res1-Res4)"),
    ([1, 0, 1, 1], "a list of positive integers"), ([2, -1, 2, 2], "a list of positive integers"),
    ([1, 1.5, 1, 1], "a list of positive integers"), ([True, 1, 1, 1], "a list of positive integers"),
    (3, "a list of positive integers"), ("3,4,6,3", "a list of positive integers"),
    ({"res1": 3}, "a list of positive integers")])
def test_rescnn_depths_must_be_four_positive_integers(depths, expected):
    with pytest.raises(ToolError) as info:
        get_network("rescnn", {"depths": depths})
    assert str(info.value) == f"network 'rescnn': parameter 'depths' must be {expected}, got {depths!r}"


def test_rescnn_depths_default_to_the_papers_and_are_listed():
    from tfspk.nnet.registry import describe_network, network_config, network_from_config
    from tfspk.train import components
    assert get_network("rescnn").params.depths == [3, 4, 6, 3]   # [Zhou2020, sec. 4.1.2]
    # a tuple (Python callers) is kept as the list YAML writes and reads back: config.yaml compares equal on resume
    network = get_network("rescnn", {"depths": (1, 2, 1, 2)})
    assert network.params.depths == [1, 2, 1, 2] and network_config(network)["params"]["depths"] == [1, 2, 1, 2]
    assert network_from_config(network_config(network)).params == network.params
    assert "depths = [3, 4, 6, 3]: residual blocks of Res1-Res4" in describe_network("rescnn")
    line = next(line for line in components.parameter_docs()["nnet"] if line.strip().startswith("rescnn:"))
    assert "depths=[3, 4, 6, 3]" in line, line


@pytest.mark.parametrize("name", ["tdnn", "tdnn_kaldi"] + NAMES)
def test_every_network_checks_its_batch_norm_and_floor_params(name):
    """The shared range checks (tfspk.nnet.registry.check_network_params): momentum in [0, 1), epsilon > 0,
    floor > 0; the error names the network and the parameter; the boundary values are accepted."""
    network_cls = tfspk.nnet.NETWORKS[name]
    for key, bad in (("bn_momentum", 1.0), ("bn_momentum", -0.1), ("bn_epsilon", 0.0), ("variance_floor", 0.0)):
        if not hasattr(network_cls.Params, key):
            assert key == "variance_floor" and name == "rescnn"   # ResCNN averages, it has no std
            continue
        with pytest.raises(ToolError) as info:
            get_network(name, {key: bad})
        assert f"network '{name}'" in str(info.value) and f"'{key}'" in str(info.value), str(info.value)
        assert str(bad) in str(info.value)
    get_network(name, {"bn_momentum": 0.0, "bn_epsilon": 1e-12})
    width = {"tdnn": "frame_dim", "tdnn_kaldi": "pooling_dim", "ecapa_tdnn": "mfa_channels",
             "rescnn": "link_kernel"}.get(name, "base_width")
    with pytest.raises(ToolError, match=f"parameter '{width}' must be >= 1, got 0"):
        get_network(name, {width: 0})


@pytest.mark.parametrize("name", NAMES)
def test_min_frames_works_and_one_less_is_refused(name):
    network, model, feat_dim = _small_shared(name)
    needed = network.min_frames()
    assert needed == 1
    network.check_num_frames(needed)
    out = model(np.random.default_rng(0).normal(size=(2, needed, feat_dim)).astype(np.float32), training=False)
    assert all(np.all(np.isfinite(v.numpy())) for v in out.values())
    with pytest.raises(ToolError, match=f"needs at least {needed}"):
        network.check_num_frames(needed - 1, "utterance u1")


# ----------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", NAMES)
def test_output_shapes_for_varying_lengths_under_tf_function(name):
    network, model, feat_dim = _small_shared(name)
    dim = network.embedding_dim()

    @tf.function(input_signature=[tf.TensorSpec([None, None, feat_dim], tf.float32)])
    def forward(x):
        return model(x, training=False)

    rng = np.random.default_rng(3)
    for frames in (network.min_frames(), 2, 7, 17):
        out = forward(rng.normal(size=(3, frames, feat_dim)).astype(np.float32))
        assert set(out) == {"embedding_a", "embedding_b"}
        for value in out.values():
            assert value.shape == (3, dim) and np.all(np.isfinite(value.numpy()))
    # one graph for every length (the time axis is dynamic)
    assert len(forward._list_all_concrete_functions_for_serialization()) <= 1


def test_resnet_embedding_a_equals_b_and_ecapa_b_is_batch_norm_of_a():
    network, model, feat_dim = _small_shared("resnet34")
    out = model(np.random.default_rng(0).normal(size=(2, 9, feat_dim)).astype(np.float32), training=False)
    np.testing.assert_array_equal(out["embedding_a"].numpy(), out["embedding_b"].numpy())
    network, model, feat_dim = _small_shared("ecapa_tdnn")
    bn = model.get_layer("embedding_bn")
    gamma, beta, mean, var = [w.numpy() for w in bn.weights]
    out = model(np.random.default_rng(0).normal(size=(2, 9, feat_dim)).astype(np.float32), training=False)
    a = out["embedding_a"].numpy()
    np.testing.assert_allclose(out["embedding_b"].numpy(), (a - mean) / np.sqrt(var + bn.epsilon) * gamma + beta,
                               rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- parameter counts
def _ecapa_count(F, C, scale, se, mfa, att, emb, k_front=5, k=3, relu_bn_attention=False):
    """Trainable weights of [Desplanques2020]'s ECAPA-TDNN by layer (BN: gamma and beta)."""
    w = C // scale
    conv_bn = lambda cin, cout, kernel: cin * kernel * cout + cout + 2 * cout  # noqa: E731
    block = (conv_bn(C, C, 1) + (scale - 1) * conv_bn(w, w, k) + conv_bn(C, C, 1)
             + C * se + se + se * C + C)
    return (conv_bn(F, C, k_front) + 3 * block + 3 * C * mfa + mfa
            + 3 * mfa * att + att + (2 * att if relu_bn_attention else 0) + att * mfa + mfa + 2 * 2 * mfa
            + 2 * mfa * emb + emb + 2 * emb)


def _resnet_count(F, w, depths, bottleneck, emb):
    """Trainable weights of the WeSpeaker-style ResNet by layer (bias-free convs, BN gamma/beta)."""
    total = 9 * w + 2 * w
    cin = w
    for stage, depth in enumerate(depths):
        planes = w * 2 ** stage
        cout = planes * (4 if bottleneck else 1)
        for index in range(depth):
            stride = 2 if stage > 0 and index == 0 else 1
            if bottleneck:
                total += cin * planes + 2 * planes + 9 * planes * planes + 2 * planes + planes * cout + 2 * cout
            else:
                total += 9 * cin * planes + 2 * planes + 9 * planes * planes + 2 * planes
            if stride != 1 or cin != cout:
                total += cin * cout + 2 * cout
            cin = cout
    return total + 2 * cin * (F // 8) * emb + emb


def _rescnn_count(c, emb, depths=(3, 4, 6, 3)):
    total, cin = 0, 1
    for stage, depth in enumerate(depths):
        ch = c * 2 ** stage
        total += 25 * cin * ch + 2 * ch + depth * 2 * (9 * ch * ch + 2 * ch)
        cin = ch
    return total + cin * emb + emb


@pytest.mark.parametrize("name, params, feat_dim, published", [
    ("ecapa_tdnn", {"channels": 512}, 80, 6.2e6),    # [Desplanques2020, table 2]
    ("ecapa_tdnn", {"channels": 1024}, 80, 14.7e6),  # [Desplanques2020, table 2]
    ("resnet34", {}, 80, 6.63e6),                    # [Wang2023]
])
def test_parameter_counts_match_published(name, params, feat_dim, published):
    assert abs(_full_count(name, feat_dim, **params) / published - 1) < 0.05


def test_parameter_counts_match_layer_by_layer_formulas():
    for params, relu_bn in (({"channels": 512}, False), ({"channels": 1024}, False),
                            ({"channels": 64, "attention_activation": "relu_bn_tanh"}, True)):
        assert _full_count("ecapa_tdnn", 80, **params) == _ecapa_count(80, params["channels"], 8, 128, 1536, 128, 192,
                                                       relu_bn_attention=relu_bn)
    for name, depths, bottleneck in (("resnet18", (2, 2, 2, 2), False), ("resnet34", (3, 4, 6, 3), False),
                                     ("resnet50", (3, 4, 6, 3), True)):
        assert _full_count(name, 80) == _resnet_count(80, 32, depths, bottleneck, 256)
    assert _full_count("rescnn", 161) == _rescnn_count(64, 1024) == 27_479_232
    assert _full_count("rescnn", 161, depths=(2, 1, 3, 1)) == _rescnn_count(64, 1024, (2, 1, 3, 1))
    # only the moving statistics of BN are left out of the count
    _, model, _ = _small_shared("resnet34")
    assert model.non_trainable_weights and all("moving" in v.path for v in model.non_trainable_weights)


# ----------------------------------------------------------------------------- save / load
def _train_a_little(model, feat_dim, steps=2):
    """Move weights and BN statistics away from their initial values."""
    optimizer = keras.optimizers.SGD(0.05)
    x = tf.constant(np.random.default_rng(9).normal(size=(4, 11, feat_dim)), tf.float32)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = tf.reduce_sum(tf.square(out["embedding_b"] - 1.0))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))


# resnet18 differs from resnet34 only by its table entry
@pytest.mark.parametrize("name", ["ecapa_tdnn", "resnet34", "resnet50", "rescnn"])
def test_save_load_weights_gives_the_same_forward_pass(name, tmp_path):
    network, model, feat_dim = _small(name, seed=0)
    _train_a_little(model, feat_dim)
    x = np.random.default_rng(4).normal(size=(3, 13, feat_dim)).astype(np.float32)
    want = model(x, training=False)
    model.save_weights(str(tmp_path / "m.weights.h5"))
    _, fresh, _ = _small(name, seed=1)
    before = fresh(x, training=False)
    assert not np.allclose(before["embedding_a"].numpy(), want["embedding_a"].numpy())
    fresh.load_weights(str(tmp_path / "m.weights.h5"))
    got = fresh(x, training=False)
    for key in ("embedding_a", "embedding_b"):
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())


# ----------------------------------------------------------------------------- training
def _speaker_batch(rng, num_speakers, per_speaker, frames, feat_dim):
    """Features whose per-speaker mean pattern makes the speakers separable."""
    centres = np.random.default_rng(123).normal(size=(num_speakers, feat_dim))
    labels = np.repeat(np.arange(num_speakers), per_speaker)
    x = centres[labels][:, None, :] + rng.normal(size=(labels.size, frames, feat_dim))
    return tf.constant(x, tf.float32), tf.constant(labels, tf.int32)


# resnet34/50 share resnet18's code path (table entries); tracing deep nets is what costs here, and resnet18 has
# the fewest layers to trace.
@pytest.mark.parametrize("name", ["ecapa_tdnn", "resnet18", "rescnn"])
def test_short_training_lowers_the_softmax_loss(name):
    from tfspk.losses import build_loss
    network, model, feat_dim = _small(name)
    head = build_loss("softmax", 4, network.embedding_dim())
    optimizer = keras.optimizers.Adam(0.01)
    head(tf.zeros((1, network.embedding_dim())), tf.zeros((1,), tf.int32), 0)  # create the class weights
    variables = model.trainable_weights + head.trainable_weights
    # Adam's slots made before the step (as tfspk.train's Trainer does): created in the tf.function, they would cost
    # a second trace of the whole step, most of this test's time
    optimizer.build(variables)

    # one trace for every segment length
    @tf.function(input_signature=[tf.TensorSpec([None, None, feat_dim], tf.float32), tf.TensorSpec([None], tf.int32)])
    def step(x, labels):
        with tf.GradientTape() as tape:
            loss, _ = head(model(x, training=True)["embedding_b"], labels, 0)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    rng = np.random.default_rng(5)
    losses = [float(step(*_speaker_batch(rng, 4, 4, int(frames), feat_dim)))
              for frames in rng.integers(12, 30, size=20)]
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3]), losses
    assert all(np.all(np.isfinite(w.numpy())) for w in model.weights)


# ----------------------------------------------------------------------------- two replicas
_MIRRORED_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tfspk.losses import build_loss
    from tfspk.nnet.registry import get_network

    def compare(name, feat_dim, params):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(8, 23, feat_dim)).astype(np.float32) + np.repeat(rng.normal(size=(4, 1, feat_dim)), 2, 0)
        labels = np.repeat(np.arange(4), 2).astype(np.int32)

        def make(strategy):
            with strategy.scope():
                keras.utils.set_random_seed(7)
                network = get_network(name, params)
                model = network.build(feat_dim)
                head = build_loss("softmax", 4, network.embedding_dim())
                head(tf.zeros((1, network.embedding_dim())), tf.zeros((1,), tf.int32), 0)
                optimizer = keras.optimizers.SGD(0.1)
                optimizer.build(model.trainable_weights + head.trainable_weights)
            for layer in model._flatten_layers(include_self=False):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.synchronized = True
            return model, head, optimizer

        def replica_step(model, head, optimizer, xs, ys, replicas):
            variables = model.trainable_weights + head.trainable_weights
            with tf.GradientTape() as tape:
                loss, _ = head(model(xs, training=True)["embedding_b"], ys, 0)
                scaled = loss / replicas
            optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
            return loss

        results = {}
        for kind, strategy in STRATEGIES.items():
            replicas = strategy.num_replicas_in_sync
            model, head, optimizer = make(strategy)
            per = 8 // replicas
            rows = lambda ctx: slice(ctx.replica_id_in_sync_group * per, (ctx.replica_id_in_sync_group + 1) * per)
            xs = strategy.experimental_distribute_values_from_function(lambda ctx: tf.constant(x[rows(ctx)]))
            ys = strategy.experimental_distribute_values_from_function(lambda ctx: tf.constant(labels[rows(ctx)]))

            @tf.function
            def step(xs, ys):
                return strategy.run(replica_step, args=(model, head, optimizer, xs, ys, replicas))

            step(xs, ys)
            results[kind] = [v.numpy() for v in model.weights + head.weights]
            print("REPLICAS", name, kind, replicas)
        worst = max(float(np.max(np.abs(a - b))) / max(1.0, float(np.max(np.abs(a))))
                    for a, b in zip(results["one"], results["mirrored"]))
        moved = max(float(np.max(np.abs(a - b)))
                    for a, b in zip(results["one"], make(tf.distribute.get_strategy())[0].weights))
        print("WORST", name, worst)
        print("MOVED", name, moved)

    # One strategy object of each kind for every network: a second MirroredStrategy in a process reuses the
    # collective instance keys of the first ("Shape mismatch in the collective instance").
    STRATEGIES = {"one": tf.distribute.OneDeviceStrategy("/cpu:0"),
                  "mirrored": tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])}
    for name, feat_dim, params in eval(sys.argv[1]):
        compare(name, feat_dim, params)
""")


# resnet18: the ResNet code path with the fewest layers to trace (the machine is shared). Both networks in one
# process: the logical CPUs must be configured before TensorFlow initialises, and one process pays its start once.
MIRRORED = ["ecapa_tdnn", "resnet18"]
# What the replicas share is the batch norm's statistics and the gradients' sums, not the Res2 branches: ECAPA-TDNN with
# 2 of them (one dilated convolution per block) instead of SMALL's 4 halves the cost of tracing the mirrored step
# (the branch additions of scale >= 3 are trained in test_short_training_lowers_the_softmax_loss).
MIRRORED_CHANGES = {"ecapa_tdnn": {"scale": 2}}


def test_one_step_on_two_replicas_matches_one_device(tmp_path):
    """MirroredStrategy over two logical CPUs (configured in a fresh process, before TF initialises) ==
    one device after one SGD step, within 1e-4 relative, for each network of MIRRORED: synchronised BN computes
    the batch variance from all-reduced sums, the single device directly, and the gradient sums run in another
    order."""
    script = tmp_path / "mirrored.py"
    script.write_text(_MIRRORED_SCRIPT)
    cases = [(name, SMALL[name][1], {**SMALL[name][0], **MIRRORED_CHANGES.get(name, {})}) for name in MIRRORED]
    proc = run([sys.executable, str(script), repr(cases)], timeout=900)
    values = {tuple(line.split()[:2]): float(line.split()[2]) for line in proc.stdout.splitlines()
              if line.startswith(("WORST", "MOVED"))}
    for name in MIRRORED:
        assert f"REPLICAS {name} mirrored 2" in proc.stdout, proc.stdout
        assert values["MOVED", name] > 1e-3, proc.stdout  # the step changed the weights (so equality is not vacuous)
        assert values["WORST", name] < 1e-4, proc.stdout
