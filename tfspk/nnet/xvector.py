"""x-vector TDNNs (Keras 3): frame-level TDNN, statistics pooling, segment-level layers.

Two architectures share one builder:

* ``tdnn`` -- [Liu2019] (Liu et al., "Large Margin Softmax Loss for Speaker Verification",
  sec. 4.2): five frame layers with kernel sizes 5, 5, 7, 1, 1 and *no* dilation; every hidden
  layer is affine -> batch-norm -> ReLU; the last ReLU of the segment-level network is removed.
* ``tdnn_kaldi`` -- Kaldi's egs/voxceleb/v2 x-vector (local/nnet3/xvector/tuning/run_xvector_1a.sh):
  frame contexts {-2..2}, {-2,0,2}, {-3,0,3}, {0}, {0}, i.e. kernels 5, 3, 3, 1, 1 with dilations
  1, 2, 3, 1, 1; Kaldi's ``relu-batchnorm-layer`` order is affine -> ReLU -> batch-norm. The last
  ReLU of the segment network is removed too, so both architectures feed a margin loss the same way.

Convolutions are "valid" (no padding), as Kaldi's TDNN computes outputs only where the whole
context exists: ``T`` input frames give ``T - receptive_field + 1`` frame-level outputs, so an
input needs at least :func:`receptive_field` frames (15 for both architectures).

Outputs (a dict): ``embedding_a`` = affine output of the first segment layer (Kaldi's
``tdnn6.affine``, the x-vector extracted for PLDA); ``embedding_b`` = output of the last segment
layer (affine -> batch-norm, ReLU removed), the input of the loss head.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers, ops

from tfspk.errors import ToolError

BN_RELU = "bn_relu"
RELU_BN = "relu_bn"
LAYER_ORDERS = (BN_RELU, RELU_BN)


@dataclass(frozen=True)
class FrameLayout:
    """Kernel sizes and dilations of the five frame layers, and the default layer order."""
    kernels: tuple
    dilations: tuple
    layer_order: str


ARCHITECTURES = {
    # [Liu2019, sec. 4.2]: kernels [5, 5, 7, 1, 1], no dilation, affine -> BN -> ReLU.
    "tdnn": FrameLayout(kernels=(5, 5, 7, 1, 1), dilations=(1, 1, 1, 1, 1), layer_order=BN_RELU),
    # Kaldi voxceleb v2: Append(-2..2), Append(-2,0,2), Append(-3,0,3), {0}, {0}; relu-batchnorm.
    "tdnn_kaldi": FrameLayout(kernels=(5, 3, 3, 1, 1), dilations=(1, 2, 3, 1, 1), layer_order=RELU_BN),
}

# Every variance below this is raised to it before the square root, so the standard deviation of
# a constant channel (e.g. all-zero after ReLU) is sqrt(floor), never NaN and with a finite gradient.
# Kaldi's StatisticsPoolingComponent uses 1e-10; a larger floor keeps d std / d var = 1/(2 std)
# bounded during training.
DEFAULT_VARIANCE_FLOOR = 1e-5


def _layout(arch: str) -> FrameLayout:
    if arch not in ARCHITECTURES:
        raise ToolError(f"unknown network architecture '{arch}'; valid: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[arch]


def receptive_field(arch: str = "tdnn") -> int:
    """Frames one frame-level output sees: 1 + sum_l (kernel_l - 1) * dilation_l (15 for both)."""
    layout = _layout(arch)
    return 1 + sum((k - 1) * d for k, d in zip(layout.kernels, layout.dilations))


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


def _normalise_and_rectify(x, name, layer_order, relu, bn_momentum, bn_epsilon):
    """Apply BN and (optionally) ReLU after an affine output, in the architecture's order."""
    # dtype float32: batch statistics and moving averages in float32 under a mixed-precision policy.
    batch_norm = layers.BatchNormalization(momentum=bn_momentum, epsilon=bn_epsilon, name=f"{name}_bn",
                                           dtype="float32")
    if layer_order == BN_RELU:
        x = batch_norm(x)
        return layers.ReLU(name=f"{name}_relu")(x) if relu else x
    if relu:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return batch_norm(x)


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ToolError(f"network option {name} must be a positive integer, got {value!r}")


def build_xvector(arch: str = "tdnn", feat_dim: int = 30, *, frame_dim: int = 512, pooling_dim: int = 1500,
                  embedding_dim: int = 512, layer_order: str | None = None,
                  variance_floor: float = DEFAULT_VARIANCE_FLOOR, weight_decay: float = 0.0,
                  bn_momentum: float = 0.99, bn_epsilon: float = 1e-3, name: str | None = None) -> keras.Model:
    """Build an x-vector network: input [batch, frames, feat_dim] -> {"embedding_a", "embedding_b"}.

    frame_dim: width of frame layers 1-4 ([Liu2019] / Kaldi: 512); pooling_dim: width of frame layer 5,
    the statistics-pooling input (1500); embedding_dim: width of both segment layers (512).
    layer_order: ``bn_relu`` (affine -> BN -> ReLU, [Liu2019]) or ``relu_bn`` (Kaldi); default per arch.
    weight_decay: L2 factor on every affine kernel ([Liu2019]: "L2 regularization is applied to all
    layers"); its terms appear in ``model.losses``.
    Frames may vary from batch to batch (the time axis is ``None``), also under ``tf.function``.
    """
    layout = _layout(arch)
    for option, value in (("feat_dim", feat_dim), ("frame_dim", frame_dim), ("pooling_dim", pooling_dim),
                          ("embedding_dim", embedding_dim)):
        _check_positive_int(option, value)
    layer_order = layout.layer_order if layer_order is None else layer_order
    if layer_order not in LAYER_ORDERS:
        raise ToolError(f"unknown layer_order '{layer_order}'; valid: {', '.join(LAYER_ORDERS)}")
    if not variance_floor > 0:
        raise ToolError(f"network option variance_floor must be > 0, got {variance_floor!r}")
    if weight_decay < 0:
        raise ToolError(f"network option weight_decay must be >= 0, got {weight_decay!r}")
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay > 0 else None
    post = dict(layer_order=layer_order, bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)

    features = keras.Input(shape=(None, feat_dim), name="features")
    x = features
    widths = [frame_dim] * (len(layout.kernels) - 1) + [pooling_dim]
    for index, (width, kernel, dilation) in enumerate(zip(widths, layout.kernels, layout.dilations), 1):
        x = layers.Conv1D(width, kernel, dilation_rate=dilation, padding="valid", kernel_regularizer=regularizer,
                          name=f"tdnn{index}_affine")(x)
        x = _normalise_and_rectify(x, f"tdnn{index}", relu=True, **post)

    x = StatisticsPooling(variance_floor, name="stats_pool", dtype="float32")(x)
    first = len(layout.kernels) + 1
    embedding_a = layers.Dense(embedding_dim, kernel_regularizer=regularizer, name=f"tdnn{first}_affine")(x)
    x = _normalise_and_rectify(embedding_a, f"tdnn{first}", relu=True, **post)
    x = layers.Dense(embedding_dim, kernel_regularizer=regularizer, name=f"tdnn{first + 1}_affine")(x)
    # [Liu2019, sec. 4.2]: the last ReLU is removed (it limits the angles a margin loss can use).
    embedding_b = _normalise_and_rectify(x, f"tdnn{first + 1}", relu=False, **post)
    # Both embeddings are float32 under any policy (embedding_b already is, as a float32 BN output;
    # the cast of embedding_a is an identity under the default float32 policy).
    outputs = {"embedding_a": ops.cast(embedding_a, "float32"), "embedding_b": ops.cast(embedding_b, "float32")}
    return keras.Model(features, outputs, name=name or f"xvector_{arch}")
