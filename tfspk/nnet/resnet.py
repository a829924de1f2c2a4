"""ResNet speaker-embedding networks [Chung2020], in the configuration of [Wang2023] (WeSpeaker).

The features [B, T, F] are a one-channel image (time x frequency):

1. stem: Conv2D(w, 3x3, stride 1) -> BN -> ReLU, w = ``base_width`` (32);
2. four stages of residual blocks with w, 2w, 4w, 8w channels (32, 64, 128, 256); the first block of
   stages 2-4 has stride 2 in time and frequency, so T' = ceil(T / 8), F' = F / 8;

   * basic block (ResNet18/34): Conv 3x3 (stride) -> BN -> ReLU -> Conv 3x3 -> BN, plus the shortcut,
     -> ReLU; the shortcut is Conv 1x1 (stride) -> BN where the shape changes, else the identity;
   * bottleneck block (ResNet50): Conv 1x1 -> BN -> ReLU -> Conv 3x3 (stride) -> BN -> ReLU ->
     Conv 1x1 (4x channels) -> BN, plus the shortcut, -> ReLU (expansion 4: the last stage has 32w);

   blocks per stage: ``resnet18`` 2, 2, 2, 2 (basic); ``resnet34`` 3, 4, 6, 3 (basic); ``resnet50``
   3, 4, 6, 3 (bottleneck) -- the only differences, one table entry each (:data:`LAYOUTS`).
   Convolutions have no bias (a BN follows each); all pad "same";
3. temporal statistics pooling: the map [B, T', F', C'] is flattened to [B, T', F' C'] and pooled over
   time to mean and standard deviation (std = sqrt(max(var, floor))) [B, 2 F' C'];
4. embedding: Dense(``embedding_dim`` 256).

Outputs: ``embedding_a`` = ``embedding_b`` = the 256-dim affine output ([Wang2023]'s single embedding
layer: the vector the loss sees is the one extracted).

Feature dimension: F must be a multiple of 8 (the three stride-2 stages halve it exactly, 80 -> 10,
so no frequency bin is made of padding and the pooled dimension is 2 x 8w x F/8); other F raise
ToolError. ``min_frames() == 1``: "same" padding gives ceil(T/2) frames per stride, >= 1 for T >= 1.

Parameter count (trainable weights, BN gamma/beta included, BN moving statistics and the loss head
excluded, 80-dim input): ResNet34 6,634,336 ([Wang2023]: 6.63 M); ResNet18 4,105,440; ResNet50
11,131,360 (see docs/nnet.md).
"""
from __future__ import annotations

import dataclasses

import keras
from keras import layers

from tfspk.errors import ToolError
from tfspk.nnet.blocks import single_embedding_outputs
from tfspk.nnet.pooling import DEFAULT_VARIANCE_FLOOR, StatisticsPooling
from tfspk.nnet.registry import Network, check_network_params, register_network
from tfspk.params import param

BASIC = "basic"
BOTTLENECK = "bottleneck"
#: network name -> (block type, blocks per stage)
LAYOUTS = {
    "resnet18": (BASIC, (2, 2, 2, 2)),
    "resnet34": (BASIC, (3, 4, 6, 3)),
    "resnet50": (BOTTLENECK, (3, 4, 6, 3)),
}
EXPANSION = {BASIC: 1, BOTTLENECK: 4}
STAGE_STRIDES = (1, 2, 2, 2)
FREQ_REDUCTION = 8  # product of the stage strides


def _conv_bn(x, filters, kernel, stride, name, bn):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    return layers.BatchNormalization(**bn, name=f"{name}_bn")(x)


def _block(x, kind, planes, stride, name, bn):
    """One residual block (functional); output channels planes * EXPANSION[kind]."""
    out_channels = planes * EXPANSION[kind]
    if kind == BASIC:
        h = layers.ReLU(name=f"{name}_relu1")(_conv_bn(x, planes, 3, stride, f"{name}_1", bn))
        h = _conv_bn(h, planes, 3, 1, f"{name}_2", bn)
    else:
        h = layers.ReLU(name=f"{name}_relu1")(_conv_bn(x, planes, 1, 1, f"{name}_1", bn))
        h = layers.ReLU(name=f"{name}_relu2")(_conv_bn(h, planes, 3, stride, f"{name}_2", bn))
        h = _conv_bn(h, out_channels, 1, 1, f"{name}_3", bn)
    shortcut = x
    if stride != 1 or x.shape[-1] != out_channels:
        shortcut = _conv_bn(x, out_channels, 1, stride, f"{name}_shortcut", bn)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([h, shortcut]))


class ImageResNet(Network):
    """What the 2-D ResNets of three stride-2 stages share (this module's and ``wespeaker_resnet``): the
    features [B, T, F] are a one-channel image, F must be a multiple of 8 (each stage halves the frequency
    axis exactly), and one frame is enough (padded convolutions give >= 1 frame per stride)."""

    def min_frames(self) -> int:
        return 1

    def check_feat_dim(self, feat_dim: int) -> None:
        super().check_feat_dim(feat_dim)
        if int(feat_dim) % FREQ_REDUCTION:
            raise ToolError(f"network '{self.network_name}': feature dimension {feat_dim} is not a multiple of "
                            f"{FREQ_REDUCTION} (its stride-2 stages halve the frequency axis three times); "
                            "use e.g. 40, 64 or 80 filterbanks")

    def image_input(self, feat_dim: int):
        """The checked model input [B, T, F] (``features``) and the image [B, T, F, 1] (``image``) of it."""
        self.check_feat_dim(feat_dim)
        features = keras.Input(shape=(None, int(feat_dim)), name="features")
        return features, layers.Reshape((-1, int(feat_dim), 1), name="image")(features)

    def layout(self) -> tuple[str, tuple]:
        """(block kind, blocks per stage) of this network."""
        raise NotImplementedError

    def residual_blocks(self, base_width: int):
        """``(kind, stage, index, planes, stride)`` of every residual block in order: stage s = 1..4 has
        ``base_width * 2^(s-1)`` planes, its first block the stage's stride (:data:`STAGE_STRIDES`), the others 1."""
        kind, depths = self.layout()
        for stage, (depth, stride) in enumerate(zip(depths, STAGE_STRIDES), 1):
            for index in range(depth):
                yield kind, stage, index, base_width * 2 ** (stage - 1), stride if index == 0 else 1


class _ResNet(ImageResNet):
    """ResNet of :data:`LAYOUTS` [Chung2020, Wang2023]; architecture and outputs in the module docstring."""

    @dataclasses.dataclass
    class Params:
        base_width: int = param(32, "channels of the stem and first stage (stages: w, 2w, 4w, 8w; [Wang2023]: 32)")
        embedding_dim: int = param(256, "dimension of the speaker embedding (both outputs)")
        variance_floor: float = param(DEFAULT_VARIANCE_FLOOR, "variances below it are raised to it before sqrt")
        bn_momentum: float = param(0.99, "batch-norm moving-average momentum (Keras convention)")
        bn_epsilon: float = param(1e-3, "batch-norm epsilon")

        def validate(self, owner):
            check_network_params(self, owner, positive=("base_width", "embedding_dim"))

    def layout(self) -> tuple[str, tuple]:
        return LAYOUTS[self.network_name]

    def build(self, feat_dim: int) -> keras.Model:
        features, x = self.image_input(feat_dim)
        p = self.params
        bn = dict(momentum=p.bn_momentum, epsilon=p.bn_epsilon, dtype="float32")  # BN in float32 under any policy
        x = layers.ReLU(name="stem_relu")(_conv_bn(x, p.base_width, 3, 1, "stem", bn))
        for kind, stage, index, planes, stride in self.residual_blocks(p.base_width):
            x = _block(x, kind, planes, stride, f"stage{stage}_block{index + 1}", bn)
        freq_bins, channels = int(x.shape[2]), int(x.shape[3])
        x = layers.Reshape((-1, freq_bins * channels), name="flatten_freq")(x)
        x = StatisticsPooling(p.variance_floor, name="stats_pool", dtype="float32")(x)
        embedding = layers.Dense(p.embedding_dim, name="embedding")(x)
        return keras.Model(features, single_embedding_outputs(embedding), name=self.network_name)


@register_network("resnet34")
class ResNet34(_ResNet):
    """ResNet34: basic blocks 3, 4, 6, 3 [Chung2020, Wang2023]; see :mod:`tfspk.nnet.resnet`."""


@register_network("resnet18")
class ResNet18(_ResNet):
    """ResNet18: basic blocks 2, 2, 2, 2; see :mod:`tfspk.nnet.resnet`."""


@register_network("resnet50")
class ResNet50(_ResNet):
    """ResNet50: bottleneck blocks 3, 4, 6, 3 (expansion 4); see :mod:`tfspk.nnet.resnet`."""
