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

import dataclasses
from dataclasses import dataclass

import keras
from keras import layers, ops

from tfspk.errors import ToolError
from tfspk.params import param
from tfspk.nnet.registry import Network, check_network_params, register_network
from tfspk.nnet.pooling import DEFAULT_VARIANCE_FLOOR, StatisticsPooling

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

def _layout(arch: str) -> FrameLayout:
    if arch not in ARCHITECTURES:
        raise ToolError(f"unknown network architecture '{arch}'; valid: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[arch]


def receptive_field(arch: str = "tdnn") -> int:
    """Frames one frame-level output sees: 1 + sum_l (kernel_l - 1) * dilation_l (15 for both)."""
    layout = _layout(arch)
    return 1 + sum((k - 1) * d for k, d in zip(layout.kernels, layout.dilations))


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


# ---------------------------------------------------------------------------------------------- registry
@dataclass
class TdnnParams:
    """Widths and batch-norm settings of the x-vector TDNNs (config ``nnet: {name: tdnn, params: ...}``)."""
    frame_dim: int = param(512, "width of frame layers 1-4 ([Liu2019] / Kaldi: 512)")
    pooling_dim: int = param(1500, "width of frame layer 5, the statistics-pooling input (1500)")
    embedding_dim: int = param(512, "width of both segment layers, i.e. of embedding_a and embedding_b (512)")
    layer_order: str = param(None, "bn_relu (affine -> BN -> ReLU, [Liu2019]) or relu_bn (Kaldi); "
                                   "null = the architecture's own order", choices=LAYER_ORDERS)
    variance_floor: float = param(DEFAULT_VARIANCE_FLOOR, "statistics pooling: variances are floored to this "
                                                          "before the square root")
    bn_momentum: float = param(0.99, "batch-norm moving-average momentum")
    bn_epsilon: float = param(1e-3, "batch-norm epsilon")

    def validate(self, owner):
        check_network_params(self, owner, positive=("frame_dim", "pooling_dim", "embedding_dim"))


class _XvectorTdnn(Network):
    """Shared code of the two x-vector TDNNs; ``arch`` picks the frame layout."""

    arch = ""
    Params = TdnnParams

    def min_frames(self) -> int:
        return receptive_field(self.arch)

    def build(self, feat_dim: int) -> keras.Model:
        self.check_feat_dim(feat_dim)
        return build_xvector(self.arch, int(feat_dim), **dataclasses.asdict(self.params))


@register_network("tdnn")
class Tdnn(_XvectorTdnn):
    """x-vector TDNN of [Liu2019, sec. 4.2]: kernels 5, 5, 7, 1, 1, no dilation, affine -> BN -> ReLU.

    embedding_a = affine output of the first segment layer (tdnn6.affine); embedding_b = the last
    segment layer (affine -> BN, ReLU removed).
    """
    arch = "tdnn"


@register_network("tdnn_kaldi")
class TdnnKaldi(_XvectorTdnn):
    """Kaldi's egs/voxceleb/v2 x-vector TDNN [Snyder2018]: kernels 5, 3, 3, 1, 1, dilations 1, 2, 3, 1, 1,
    affine -> ReLU -> BN. Outputs as ``tdnn``."""
    arch = "tdnn_kaldi"
