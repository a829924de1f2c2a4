"""Mixed precision (Keras policies mixed_bfloat16 / mixed_float16) for every loss head, every
auxiliary loss and the TDNN: the heads, aux losses, statistics pooling and batch norm compute in
float32, the rest follows the policy (docs/losses.md and docs/nnet.md, "Mixed precision").

Tolerance against float32, stated once: bfloat16 keeps 8 significand bits (~2-3 significant
digits), so the embeddings a bfloat16 model feeds the head differ from float32 ones by ~0.4 %
relative per element; the losses and the loss after one update must agree with the float32 run
within REL_BF16 = 2e-2 relative (plus ABS_BF16 = 1e-3 absolute, for losses near zero).
"""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfspk.losses import AUX_LOSSES, LOSSES, build_aux, build_loss
from tfspk.nnet import build_xvector

REL_BF16 = 2e-2
ABS_BF16 = 1e-3
FEATS, D, C, N = 10, 8, 4, 32
STEPS = 30


@pytest.fixture
def policy():
    """Sets a global policy for the test; the teardown restores float32 for the rest of the suite."""
    def set_policy(name):
        keras.mixed_precision.set_global_policy(name)
    yield set_policy
    keras.mixed_precision.set_global_policy("float32")


def _data(seed=0):
    """Separable data: class means 3 apart in a 10-dim feature space, noise 0.3."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((C, FEATS)) * 3.0
    labels = np.arange(N) % C
    feats = means[labels] + 0.3 * rng.standard_normal((N, FEATS))
    return tf.constant(feats, tf.float32), tf.constant(labels, tf.int32)


def _params(name):
    """Full margins from step 0 (annealing off where the loss has it) so the margin code is exercised."""
    fields = {f.name for f in dataclasses.fields(LOSSES[name].Params)}
    return {"anneal": False} if "anneal" in fields else {}


class _Setup:
    """A policy-following Dense (features -> embeddings) + a head (+ an aux loss), fixed seeds."""

    def __init__(self, loss, aux=None, seed=0):
        keras.utils.set_random_seed(seed)
        self.dense = keras.layers.Dense(D, name="embed")
        self.dense.build((None, FEATS))
        self.head = build_loss(loss, C, D, _params(loss))
        self.aux = build_aux(aux) if aux else None
        self.variables = self.dense.trainable_variables + self.head.trainable_variables
        if self.aux is not None:
            self.variables += self.aux.trainable_variables

    def losses(self, feats, labels):
        embeddings = self.dense(feats)
        main, logits = self.head(embeddings, labels, tf.constant(0, tf.int64))
        aux = self.aux(embeddings, labels, self.head) if self.aux is not None else tf.constant(0.0)
        return embeddings, main, aux, logits

    def copy_weights_from(self, other):
        for mine, theirs in zip(self.variables, other.variables):
            mine.assign(theirs)


def _train(setup, feats, labels, steps=STEPS, optimizer=None):
    """``steps`` updates on the fixed batch; rows (total, main, aux) computed before each update."""
    optimizer = optimizer or keras.optimizers.Adam(0.05)
    optimizer.build(setup.variables)   # its slots made here: created in the tf.function, they cost a second trace

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            _, main, aux, _ = setup.losses(feats, labels)
            total = main + aux
        grads = tape.gradient(total, setup.variables)
        optimizer.apply(grads, setup.variables)
        return total, main, aux

    return np.array([[float(v) for v in step()] for _ in range(steps)])


ALL_CASES = [(name, None) for name in sorted(LOSSES)] + [("amsoftmax", aux) for aux in sorted(AUX_LOSSES)]


@pytest.mark.parametrize("policy_name", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("loss,aux", ALL_CASES)
def test_head_and_aux_compute_in_float32_under_a_mixed_policy(policy, policy_name, loss, aux):
    feats, labels = _data()
    reference = _Setup(loss, aux)
    _, _, _, _ = reference.losses(feats, labels)
    policy(policy_name)
    low = keras.mixed_precision.dtype_policy().compute_dtype
    setup = _Setup(loss, aux)
    setup.copy_weights_from(reference)
    embeddings, main, aux_value, logits = setup.losses(feats, labels)
    assert embeddings.dtype == low                       # the Dense follows the policy
    assert setup.head.dtype_policy.name == "float32" and setup.head.kernel.dtype == "float32"
    assert main.dtype == tf.float32 and logits.dtype == tf.float32 and aux_value.dtype == tf.float32
    if setup.aux is not None:
        assert setup.aux.dtype_policy.name == "float32"
        assert all(v.dtype == "float32" for v in setup.aux.variables)
    # The head sees exactly the float32 values of the low-precision embeddings: same results as the
    # float32 head (same weights) on those values, to float32 round-off.
    as_float32 = tf.cast(embeddings, tf.float32)
    keras.mixed_precision.set_global_policy("float32")
    ref_main, ref_logits = reference.head(as_float32, labels, tf.constant(0, tf.int64))
    np.testing.assert_allclose(float(main), float(ref_main), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logits.numpy(), ref_logits.numpy(), rtol=1e-5, atol=1e-5)
    if reference.aux is not None:
        ref_aux = reference.aux(as_float32, labels, reference.head)
        np.testing.assert_allclose(float(aux_value), float(ref_aux), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("loss,aux", ALL_CASES)
def test_trains_under_mixed_bfloat16_and_one_step_matches_float32(policy, loss, aux):
    feats, labels = _data()
    reference = _Setup(loss, aux)
    reference.losses(feats, labels)
    initial = [v.numpy() for v in reference.variables]
    # One plain SGD step from the same weights (Adam's first step is sign(g) * lr, which would turn
    # bfloat16 round-off on near-zero gradients into full-size differences).
    ref_history = _train(reference, feats, labels, steps=2, optimizer=keras.optimizers.SGD(0.05))

    policy("mixed_bfloat16")
    one_step = _Setup(loss, aux)
    for variable, value in zip(one_step.variables, initial):
        variable.assign(value)
    history = _train(one_step, feats, labels, steps=2, optimizer=keras.optimizers.SGD(0.05))
    # The losses at the initial weights and after the update agree with float32 within REL_BF16.
    np.testing.assert_allclose(history, ref_history, rtol=REL_BF16, atol=ABS_BF16)

    setup = _Setup(loss, aux)
    for variable, value in zip(setup.variables, initial):
        variable.assign(value)
    history = _train(setup, feats, labels)
    assert np.all(np.isfinite(history)), history
    assert all(v.dtype == "float32" and np.all(np.isfinite(v.numpy())) for v in setup.variables)
    # Training lowers the loss: the last steps average well below the first.
    total = history[:, 0]
    assert total[-5:].mean() < 0.8 * total[0], total
    if aux == "ring":  # the ring term itself shrinks (embeddings and R move towards each other)
        assert history[-1, 2] < history[0, 2], history[:, 2]


# ----------------------------------------------------------------------------- loss scaling (float16)

def test_float16_on_cpu_with_loss_scaling_recovers_underflowing_gradients(policy):
    """float16 matmuls run on this CPU. The loss is multiplied by a factor that puts every gradient
    at the (float16) embeddings below 2.9e-8, half of float16's smallest subnormal, so they round to 0:
    without loss scaling the Dense kernel gets an all-zero gradient; LossScaleOptimizer.scale_loss
    (x 2^15) keeps them, and the unscaled result matches the float32 gradient within 2e-2 relative."""
    feats, labels = _data()
    reference = _Setup("amsoftmax")
    with tf.GradientTape(persistent=True) as tape:
        embeddings, main, _, _ = reference.losses(feats, labels)
    factor = 2.5e-8 / float(tf.reduce_max(tf.abs(tape.gradient(main, embeddings))))
    ref_grad = factor * tape.gradient(main, reference.dense.kernel).numpy()
    assert np.any(ref_grad)

    policy("mixed_float16")
    setup = _Setup("amsoftmax")
    setup.copy_weights_from(reference)
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))
    with tf.GradientTape(persistent=True) as tape:
        embeddings, main, _, _ = setup.losses(feats, labels)
        loss = factor * main
        scaled = optimizer.scale_loss(loss)
    assert embeddings.dtype == tf.float16 and loss.dtype == tf.float32
    unscaled_grad = tape.gradient(loss, setup.dense.kernel)
    assert unscaled_grad.dtype == tf.float32 and not np.any(unscaled_grad.numpy())  # underflow
    scaled_grad = tape.gradient(scaled, setup.dense.kernel).numpy() / optimizer.initial_scale
    assert np.linalg.norm(scaled_grad - ref_grad) < 2e-2 * np.linalg.norm(ref_grad)


def test_trains_under_mixed_float16_with_a_loss_scale_optimizer(policy):
    feats, labels = _data()
    policy("mixed_float16")
    setup = _Setup("arcsoftmax", "ring")
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.05))
    optimizer.build(setup.variables)   # as in _train

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            _, main, aux, _ = setup.losses(feats, labels)
            total = main + aux
            scaled = optimizer.scale_loss(total)
        optimizer.apply(tape.gradient(scaled, setup.variables), setup.variables)  # unscales, skips inf/NaN
        return total

    history = np.array([float(step()) for _ in range(STEPS)])
    assert np.all(np.isfinite(history)) and history[-5:].mean() < 0.8 * history[0], history
    assert all(v.dtype == "float32" and np.all(np.isfinite(v.numpy())) for v in setup.variables)
    assert float(optimizer.dynamic_scale) > 1.0


# ----------------------------------------------------------------------------- TDNN

def _tdnn(frames=24, seed=0):
    keras.utils.set_random_seed(seed)
    model = build_xvector("tdnn", FEATS, frame_dim=16, pooling_dim=24, embedding_dim=D, weight_decay=1e-4)
    head = build_loss("amsoftmax", C, D, {"anneal": False})
    rng = np.random.default_rng(seed)
    labels = np.arange(8) % C
    feats = rng.standard_normal((C, 1, FEATS))[labels] * 2.0 + 0.5 * rng.standard_normal((8, frames, FEATS))
    return model, head, tf.constant(feats, tf.float32), tf.constant(labels, tf.int32)


def test_tdnn_under_mixed_bfloat16_float32_pooling_bn_and_embeddings_and_trains(policy, tmp_path):
    ref_model, ref_head, feats, labels = _tdnn()
    ref_out = ref_model(feats, training=True)
    ref_loss, _ = ref_head(ref_out["embedding_b"], labels)
    policy("mixed_bfloat16")
    model, head, _, _ = _tdnn()
    model.set_weights(ref_model.get_weights())
    head.kernel.assign(ref_head.kernel)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) or layer.name == "stats_pool":
            assert layer.dtype_policy.name == "float32" and layer.output.dtype == "float32", layer.name
        elif isinstance(layer, (keras.layers.Conv1D, keras.layers.Dense)):
            assert layer.dtype_policy.name == "mixed_bfloat16" and layer.output.dtype == "bfloat16", layer.name
    assert all(v.dtype == "float32" for v in model.variables)
    out = model(feats, training=True)
    assert out["embedding_a"].dtype == tf.float32 and out["embedding_b"].dtype == tf.float32
    loss, _ = head(out["embedding_b"], labels)
    assert float(loss) == pytest.approx(float(ref_loss), rel=REL_BF16)

    variables = model.trainable_variables + head.trainable_variables
    optimizer = keras.optimizers.Adam(0.01)
    optimizer.build(variables)   # as in _train

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss, _ = head(model(feats, training=True)["embedding_b"], labels)
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    history = np.array([float(step()) for _ in range(10)])
    assert np.all(np.isfinite(history)) and history[-3:].mean() < history[0], history
    assert all(np.all(np.isfinite(v.numpy())) for v in model.variables)  # incl. BN moving statistics
    assert all(loss.dtype == tf.float32 for loss in model.losses)
    # Weights trained under the mixed policy load into the float32 network (extraction) unchanged.
    model.save_weights(str(tmp_path / "mixed.weights.h5"))
    ref_model.load_weights(str(tmp_path / "mixed.weights.h5"))
    for trained, loaded in zip(model.get_weights(), ref_model.get_weights()):
        np.testing.assert_array_equal(trained, loaded)


def test_statistics_pooling_computes_in_float32_and_casts_back(policy):
    """A pooling layer left on the bfloat16 policy: float32 statistics of the bfloat16 inputs, then one
    rounding to bfloat16 (numpy reference in float64)."""
    from tfspk.nnet import StatisticsPooling
    policy("mixed_bfloat16")
    rng = np.random.default_rng(3)
    x = tf.cast(300.0 + 3.0 * rng.standard_normal((2, 300, 5)), tf.bfloat16)  # bfloat16 spacing 2 here
    pooled = StatisticsPooling(1e-5)(x)
    assert pooled.dtype == tf.bfloat16
    values = tf.cast(x, tf.float64).numpy()
    expected = np.concatenate([values.mean(1), np.sqrt(np.maximum(values.var(1), 1e-5))], axis=-1)
    np.testing.assert_allclose(tf.cast(pooled, tf.float64).numpy(), expected, rtol=2 ** -8)


SMALL_NETWORKS = {  # narrow versions of every registered network, for speed
    "tdnn": {"frame_dim": 16, "pooling_dim": 24, "embedding_dim": D},
    "tdnn_kaldi": {"frame_dim": 16, "pooling_dim": 24, "embedding_dim": D},
    "ecapa_tdnn": {"channels": 16, "scale": 4, "se_channels": 8, "mfa_channels": 24, "attention_channels": 8,
                   "embedding_dim": D},
    "resnet18": {"base_width": 4, "embedding_dim": D},
    "resnet34": {"base_width": 4, "embedding_dim": D},
    "resnet50": {"base_width": 4, "embedding_dim": D},
    "rescnn": {"base_channels": 4, "embedding_dim": D, "depths": [1, 1, 1, 1]},   # the paper's 3, 4, 6, 3: same layers
    "wespeaker_resnet": {"layout": "resnet18", "base_width": 4, "embedding_dim": D},
    "wespeaker_ecapa_tdnn": {"channels": 16, "scale": 4, "se_channels": 8, "mfa_channels": 24, "attention_channels": 8,
                             "embedding_dim": D},
    "speechbrain_ecapa_tdnn": {"channels": 16, "res2net_scale": 4, "se_channels": 8, "mfa_channels": 24,
                               "attention_channels": 8, "embedding_dim": D},
}
NET_FEATS = 16
# The 2-D CNNs stack 16-50 bfloat16 convolutions before pooling; rounding errors of ~0.4 % per layer add
# up (roughly with the square root of the depth), so their loss matches float32 within 8 % at random
# initialisation, the 1-D networks within REL_BF16.
REL_BF16_DEEP = 8e-2
DEEP_NETWORKS = ("resnet18", "resnet34", "resnet50", "rescnn", "wespeaker_resnet")


def test_every_registered_network_has_a_small_version_here():
    from tfspk.nnet import NETWORKS
    shipped = [name for name, cls in NETWORKS.items() if cls.__module__.startswith("tfspk.nnet.")]
    assert sorted(SMALL_NETWORKS) == sorted(shipped)  # toy networks registered by other tests aside


def _network(name, seed=0):
    from tfspk.nnet import get_network
    keras.utils.set_random_seed(seed)
    model = get_network(name, SMALL_NETWORKS[name]).build(NET_FEATS)
    head = build_loss("amsoftmax", C, D, {"anneal": False})
    rng = np.random.default_rng(seed)
    labels = np.arange(8) % C
    feats = rng.standard_normal((C, 1, NET_FEATS))[labels] * 2.0 + 0.5 * rng.standard_normal((8, 24, NET_FEATS))
    return model, head, tf.constant(feats, tf.float32), tf.constant(labels, tf.int32)


#: The networks trained here under the policy: tracing a training step costs 10-40 s per network on the test machine,
#: and the backward pass casts per layer type. With tdnn (test_tdnn_under_mixed_bfloat16_...) these hold every layer
#: type of every registered network but speechbrain_ecapa_tdnn's ReflectPad1D, a weightless padding
#: (test_every_layer_type_is_trained_under_the_policy_in_some_network). Every network's policies and its forward
#: pass against float32 are checked in test_every_network_trains_under_mixed_bfloat16_and_matches_float32.
TRAINED_UNDER_THE_POLICY = ("ecapa_tdnn", "rescnn", "wespeaker_ecapa_tdnn", "wespeaker_resnet")
UNTRAINED_LAYER_TYPES = {"ReflectPad1D"}


def _layer_types(name):
    from tfspk.nnet import get_network
    model = get_network(name, SMALL_NETWORKS[name]).build(NET_FEATS)
    return {type(layer).__name__ for layer in model._flatten_layers(include_self=False, recursive=True)}


def test_every_layer_type_is_trained_under_the_policy_in_some_network():
    trained = set().union(*(_layer_types(name) for name in TRAINED_UNDER_THE_POLICY + ("tdnn",)))
    for name in sorted(set(SMALL_NETWORKS) - set(TRAINED_UNDER_THE_POLICY)):
        assert _layer_types(name) - trained <= UNTRAINED_LAYER_TYPES, name


@pytest.mark.parametrize("name", sorted(SMALL_NETWORKS))
def test_every_network_trains_under_mixed_bfloat16_and_matches_float32(policy, name):
    """BN and pooling layers are float32, both outputs float32; one forward pass matches float32 within
    REL_BF16 on the loss (REL_BF16_DEEP for the 2-D CNNs); for TRAINED_UNDER_THE_POLICY, 8 Adam steps lower the
    loss, weights finite."""
    ref_model, ref_head, feats, labels = _network(name)
    ref_loss, _ = ref_head(ref_model(feats, training=True)["embedding_b"], labels)
    policy("mixed_bfloat16")
    model, head, _, _ = _network(name)
    model.set_weights(ref_model.get_weights())
    head.kernel.assign(ref_head.kernel)
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization) or "pool" in layer.name:
            assert layer.dtype_policy.name == "float32", (name, layer.name)
    assert all(v.dtype == "float32" for v in model.variables)
    out = model(feats, training=True)
    assert out["embedding_a"].dtype == tf.float32 and out["embedding_b"].dtype == tf.float32
    loss, _ = head(out["embedding_b"], labels)
    rel = REL_BF16_DEEP if name in DEEP_NETWORKS else REL_BF16
    assert float(loss) == pytest.approx(float(ref_loss), rel=rel, abs=ABS_BF16)
    if name not in TRAINED_UNDER_THE_POLICY:
        return

    variables = model.trainable_variables + head.trainable_variables
    optimizer = keras.optimizers.Adam(0.01)
    optimizer.build(variables)   # as in _train (half the cost of this test: Adam's slots made in the step's trace)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss, _ = head(model(feats, training=True)["embedding_b"], labels)
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    history = np.array([float(step()) for _ in range(8)])
    assert np.all(np.isfinite(history)) and history[-3:].mean() < history[0], history
    assert all(np.all(np.isfinite(v.numpy())) for v in model.variables)
