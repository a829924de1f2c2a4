"""Keras building blocks that several networks share, each defined once. Every network passes its own layer
names: weight files and the import mappings (docs/import.md) address variables by them."""
from __future__ import annotations

from keras import layers

#: PyTorch's batch-norm epsilon, which the networks of imported models keep (their statistics were made with it)
TORCH_BN_EPSILON = 1e-5


def torch_batch_norm(name: str, **kwargs) -> layers.BatchNormalization:
    """PyTorch's ``BatchNorm1d/2d`` as a Keras layer: y = gamma (x - mean) / sqrt(var + 1e-5) + beta, moving
    averages with Keras momentum 0.9 (PyTorch's momentum 0.1), in float32 under any policy."""
    return layers.BatchNormalization(epsilon=TORCH_BN_EPSILON, momentum=0.9, name=name, dtype="float32", **kwargs)


def squeeze_excitation(h, se_channels: int, prefix: str, squeeze_name: str, excite_name: str):
    """Squeeze-excitation over time of ``h`` [B, T, C] [Desplanques2020, sec. 3.2]: h * s with
    s = sigmoid(W_2 ReLU(W_1 mean_t(h) + b_1) + b_2) (W_1: C -> ``se_channels``, W_2: ``se_channels`` -> C).

    The Dense layers are named ``squeeze_name`` (W_1) and ``excite_name`` (W_2); the weightless ones
    ``<prefix>mean``, ``<prefix>gate``, ``<prefix>scale``."""
    channels = int(h.shape[-1])
    squeeze = layers.GlobalAveragePooling1D(name=f"{prefix}mean")(h)
    squeeze = layers.Dense(se_channels, activation="relu", name=squeeze_name)(squeeze)
    gates = layers.Dense(channels, activation="sigmoid", name=excite_name)(squeeze)
    return layers.Multiply(name=f"{prefix}scale")([h, layers.Reshape((1, channels), name=f"{prefix}gate")(gates)])


def single_embedding_outputs(embedding, float32_name: str = "embedding_float32") -> dict:
    """The outputs of a network with one embedding layer: ``embedding_a`` and ``embedding_b`` are the same
    vector, float32 under any policy (the layer ``float32_name`` casts it; an Identity keeps the output
    names distinct)."""
    embedding = layers.Activation("linear", dtype="float32", name=float32_name)(embedding)
    return {"embedding_a": embedding, "embedding_b": layers.Identity(name="embedding_b", dtype="float32")(embedding)}
