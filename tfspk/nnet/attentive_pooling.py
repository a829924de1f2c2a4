"""Channel- and context-dependent attentive statistics pooling [Desplanques2020, sec. 3.1].

For frame-level features h_t in R^C (t = 1..T) of one utterance:

1. global context (when ``global_context``): the unweighted mean m = 1/T sum_t h_t and standard
   deviation s = sqrt(max(1/T sum_t (h_t - m)^2, floor)); the attention input of frame t is
   g_t = [h_t; m; s] in R^{3C} (without global context g_t = h_t);
2. scores per frame *and channel*: e_t = V f(W g_t + b) + k in R^C (the paper's e_{t,c} = v_c^T f(W g_t + b) + k_c
   stacked over c),
   with W: 3C -> A (the bottleneck, ``attention_channels``), V: A -> C, both 1x1 convolutions
   (affine maps applied to every frame), and the non-linearity f chosen by ``activation``:

   * ``tanh`` (default): f = tanh ([Desplanques2020] names f only "a non-linearity"; tanh is the
     choice of attentive statistics pooling before it);
   * ``relu_bn_tanh``: f(z) = tanh(BN(ReLU(z))), the order common open-source ECAPA-TDNN
     implementations use (a TDNN block conv -> ReLU -> BN before the tanh); one extra BN of A
     channels (2A parameters).

3. weights alpha_{t,c} = softmax over t of e_{t,c};
4. weighted mean mu_c = sum_t alpha_{t,c} h_{t,c} and weighted standard deviation
   sigma_c = sqrt(max(sum_t alpha_{t,c} (h_{t,c} - mu_c)^2, floor)) [computed around mu,
   which equals sum_t alpha h^2 - mu^2 since sum_t alpha = 1, but is never negative in float32];
5. output [mu; sigma] in R^{2C}.

The variance floor (default 1e-5, as the TDNN's statistics pooling) keeps the standard deviations
of constant channels finite with a finite gradient. T = 1 gives mu = h_1 and sigma = sqrt(floor).
"""
from __future__ import annotations

from keras import layers, ops

DEFAULT_VARIANCE_FLOOR = 1e-5  # as tfspk.nnet.xvector.DEFAULT_VARIANCE_FLOOR
ATTENTION_ACTIVATIONS = ("tanh", "relu_bn_tanh")


def _mean_std(x, weights, variance_floor):
    """Weighted mean and std over axis 1 (weights sum to 1 over axis 1, broadcastable to x)."""
    mean = ops.sum(weights * x, axis=1)
    variance = ops.sum(weights * ops.square(x - ops.expand_dims(mean, 1)), axis=1)
    return mean, ops.sqrt(ops.maximum(variance, variance_floor))


class AttentiveStatisticsPooling(layers.Layer):
    """[B, T, C] -> [B, 2C]: channel- and context-dependent attentive mean and std (see module doc)."""

    def __init__(self, attention_channels: int = 128, activation: str = "tanh", global_context: bool = True,
                 variance_floor: float = DEFAULT_VARIANCE_FLOOR, bn_momentum: float = 0.99,
                 bn_epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        if activation not in ATTENTION_ACTIVATIONS:
            raise ValueError(f"activation must be one of {ATTENTION_ACTIVATIONS}, got {activation!r}")
        self.attention_channels = int(attention_channels)
        self.activation = activation
        self.global_context = bool(global_context)
        self.variance_floor = float(variance_floor)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.bottleneck = layers.Dense(self.attention_channels, name="bottleneck")
        self.bottleneck_bn = (layers.BatchNormalization(momentum=bn_momentum, epsilon=bn_epsilon, name="bottleneck_bn")
                              if activation == "relu_bn_tanh" else None)
        self.scores = None  # built once C is known

    def build(self, input_shape):
        channels = int(input_shape[-1])
        context_dim = 3 * channels if self.global_context else channels
        self.bottleneck.build((None, None, context_dim))
        if self.bottleneck_bn is not None:
            self.bottleneck_bn.build((None, None, self.attention_channels))
        self.scores = layers.Dense(channels, name="scores")
        self.scores.build((None, None, self.attention_channels))
        super().build(input_shape)

    def attention_weights(self, inputs, training=None):
        """alpha [B, T, C]: softmax over time of the per-channel scores."""
        x = inputs
        if self.global_context:
            uniform = ops.ones_like(x[:, :, :1]) / ops.cast(ops.shape(x)[1], x.dtype)
            mean, std = _mean_std(x, uniform, self.variance_floor)
            frames = ops.ones_like(x[:, :, :1])
            x = ops.concatenate([inputs, frames * ops.expand_dims(mean, 1), frames * ops.expand_dims(std, 1)],
                                axis=-1)
        hidden = self.bottleneck(x)
        if self.bottleneck_bn is not None:
            hidden = self.bottleneck_bn(ops.relu(hidden), training=training)
        scores = self.scores(ops.tanh(hidden))
        # softmax over time written out: keras' ops.softmax warns on a length-1 axis, a valid input here.
        exp = ops.exp(scores - ops.max(scores, axis=1, keepdims=True))
        return exp / ops.sum(exp, axis=1, keepdims=True)

    def call(self, inputs, training=None):
        alpha = self.attention_weights(inputs, training=training)
        mean, std = _mean_std(inputs, alpha, self.variance_floor)
        return ops.concatenate([mean, std], axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return (input_shape[0], None if channels is None else 2 * channels)

    def get_config(self):
        return {**super().get_config(), "attention_channels": self.attention_channels, "activation": self.activation,
                "global_context": self.global_context, "variance_floor": self.variance_floor,
                "bn_momentum": self.bn_momentum, "bn_epsilon": self.bn_epsilon}


__all__ = ["AttentiveStatisticsPooling", "ATTENTION_ACTIVATIONS", "DEFAULT_VARIANCE_FLOOR"]
