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


class StepDropout(layers.Layer):
    """Inverted dropout whose mask is a pure function of (training seed, global step, ``stream``), so a run
    resumed from a checkpoint draws exactly the masks of an uninterrupted one.

    Training (``training=True``): y = x * m / (1 - rate), m_i = 1 if u_i >= rate else 0, with u ~ U[0, 1) from
    ``tf.random.stateless_uniform`` seeded by ``fold_in([seed, step], stream)``; ``stream`` tells the dropout
    layers of one network apart. Inference (``training`` false or None): y = x; ``rate`` 0: y = x always.

    Why not ``keras.layers.Dropout``: it draws from a SeedGenerator whose state variable the trainer's
    ``tf.train.Checkpoint(model=...)`` does not hold (Keras 3.15), so a resumed run would restart its stream.
    This layer has no variables, so its state cannot go missing from a checkpoint: ``seed`` and ``step`` come from
    the trainer through :func:`bind_step_dropout` (``step`` = the optimizer's iteration counter, which is in the
    checkpoint). Under a ``tf.distribute`` strategy the mask is drawn for the global batch (replica r's rows
    are rows r*B..(r+1)*B-1 of it, the order in which the trainer gathers the replicas' embeddings) and each
    replica keeps its own rows, so several replicas apply the masks that one device applies to the same batch.
    """

    def __init__(self, rate: float, stream: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate, self.stream = float(rate), int(stream)
        self._source = None  # () -> (seed, step); a closure, so that Keras does not track the step variable

    def bind(self, seed: int, step) -> None:
        """Draw masks from ``seed`` and the integer variable (or tensor) ``step`` from now on."""
        seed = int(seed)
        self._source = lambda: (seed, step)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        if self._source is None:
            raise RuntimeError(f"dropout layer '{self.name}' was called with training=True before "
                               "bind_step_dropout() gave it the training seed and step")
        import tensorflow as tf
        seed, step = self._source()
        key = tf.random.experimental.stateless_fold_in(
            tf.stack([tf.constant(seed, tf.int64), tf.cast(tf.convert_to_tensor(step), tf.int64)]), self.stream)
        rows, replicas, replica = tf.shape(inputs)[0], 1, 0
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            replicas = context.num_replicas_in_sync
            replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
        shape = tf.concat([[rows * replicas], tf.shape(inputs)[1:]], axis=0)
        noise = tf.random.stateless_uniform(shape, seed=key, dtype=tf.float32)[replica * rows:(replica + 1) * rows]
        scale = tf.constant(1.0 / (1.0 - self.rate), inputs.dtype)
        return tf.where(noise >= self.rate, inputs * scale, tf.zeros_like(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "stream": self.stream}


def bind_step_dropout(model, seed: int, step) -> int:
    """Give every :class:`StepDropout` layer of ``model`` the training ``seed`` and global ``step`` variable;
    returns how many there are."""
    found = [layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, StepDropout)]
    for layer in found:
        layer.bind(seed, step)
    return len(found)
