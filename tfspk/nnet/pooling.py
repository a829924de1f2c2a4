"""Statistics pooling: frame-level activations [B, T, C] -> one segment-level vector [B, 2C].

As Kaldi's ``stats-layer name=stats config=mean+stddev`` (x-vector recipes, [Snyder2018]).
Attentive pooling lives beside it in :mod:`tfspk.nnet.attentive_pooling`.
"""
from __future__ import annotations

from keras import layers, ops

# Every variance below this is raised to it before the square root, so the standard deviation of
# a constant channel (e.g. all-zero after ReLU) is sqrt(floor), never NaN and with a finite gradient.
# Kaldi's StatisticsPoolingComponent uses 1e-10; a larger floor keeps d std / d var = 1/(2 std)
# bounded during training.
DEFAULT_VARIANCE_FLOOR = 1e-5


class StatisticsPooling(layers.Layer):
    """Mean and standard deviation over time: [B, T, C] -> [B, 2C] = [mean_t x, sqrt(max(var_t x, floor))].

    var is the biased (1/T) variance, computed around the mean (not E[x^2] - mean^2) so it is never
    negative in float32. As Kaldi's ``stats-layer name=stats config=mean+stddev``.
    """

    def __init__(self, variance_floor: float = DEFAULT_VARIANCE_FLOOR, **kwargs):
        super().__init__(**kwargs)
        self.variance_floor = float(variance_floor)

    def call(self, inputs):
        # Sums over hundreds of frames in float32 whatever the input dtype (bfloat16 keeps ~3 digits,
        # float16 overflows at 65504); the result is cast back to the layer's compute dtype.
        inputs = ops.cast(inputs, "float32")
        mean = ops.mean(inputs, axis=1)
        variance = ops.mean(ops.square(inputs - ops.expand_dims(mean, 1)), axis=1)
        std = ops.sqrt(ops.maximum(variance, self.variance_floor))
        return ops.cast(ops.concatenate([mean, std], axis=-1), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return (input_shape[0], None if channels is None else 2 * channels)

    def get_config(self):
        return {**super().get_config(), "variance_floor": self.variance_floor}
