"""ResCNN [Zhou2020, sec. 4.1.2, fig. 4-5]: residual CNN over a 161-dim spectrogram, 1024-dim embedding.

What the paper states: input a 1 x 161 x T spectrogram (20 ms Hamming window, 10 ms step); four residual
modules Res1-Res4 of depths 3, 4, 6, 3 (the default of the ``depths`` parameter; other depths keep every
layer type and connection); the modules are linked by convolutions Conv2-Conv4 of 5x5 filters and stride
2x2 that change the channels; a residual block is two 3x3 stride-1 convolutions and
an element-wise sum; batch-norm and ReLU follow each convolution; an AvgPool layer implemented as 2-D
adaptive average pooling (so the output size does not depend on T); a fully connected layer FC gives
the 1024-dim embedding, which feeds the (DAM-/AM-)softmax head.

What the paper leaves open and tfspk chooses (docs/nnet.md lists the same):

* channels: 64, 128, 256, 512 for Res1-Res4 (``base_channels`` 64, doubled by each link convolution),
  the widths of the Deep Speaker ResCNN [Li2017] the design follows; the text gives none;
* Conv1 (before Res1): 5x5, stride 2x2, like Conv2-Conv4 (fig. 4 shows it, the text gives only the
  links' shape); so time and frequency are reduced 16-fold: 161 -> 11 frequency bins;
* residual block: Conv 3x3 -> BN -> ReLU -> Conv 3x3 -> BN, plus the block input, -> ReLU (the usual
  [He2016]-style block: "BN and ReLU after each convolution", with the second ReLU after the sum);
* adaptive average pooling to 1 x 1: the mean over time and frequency of each channel (512);
* convolutions have no bias (a BN follows each); all pad "same" (zeros); the FC layer has a bias and
  no BN or ReLU after it (the paper shows none before the loss).

Outputs: ``embedding_a`` = ``embedding_b`` = the FC output (the paper scores with the cosine of the
embedding the loss sees).

Feature dimension: the paper's 161; any F >= 16 is accepted (the average pooling makes the network
size independent of F; below 16 the last stages would see a single frequency bin made mostly of
padding); F < 16 raises ToolError. ``min_frames() == 1`` ("same" padding: ceil(T/2) frames per stride).

Parameter count (trainable weights incl. BN gamma/beta, without BN moving statistics and the loss head;
161-dim input, and the same for any F as nothing depends on it): 27,479,232 with the paper's depths (no
published figure). With channels c_s = ``base_channels`` * 2^(s-1), input channels c_0 = 1, depths d_s and
embedding dimension E: sum_s [25 c_(s-1) c_s + 2 c_s + d_s (18 c_s^2 + 4 c_s)] + c_4 E + E.
"""
from __future__ import annotations

import dataclasses

import keras
from keras import layers

from tfspk.errors import ToolError
from tfspk.nnet.blocks import single_embedding_outputs
from tfspk.nnet.registry import Network, check_network_params, register_network
from tfspk.params import param, require

DEPTHS = (3, 4, 6, 3)  # residual blocks of Res1-Res4 [Zhou2020, sec. 4.1.2]
MIN_FEAT_DIM = 16  # 2**4: four stride-2 convolutions


def _conv_bn_relu(x, filters, kernel, stride, name, bn, relu=True):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(**bn, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


@register_network("rescnn")
class ResCnn(Network):
    """ResCNN [Zhou2020]; architecture, the choices where the paper is silent, outputs: module docstring."""

    @dataclasses.dataclass
    class Params:
        base_channels: int = param(64, "channels of Conv1/Res1; each link conv doubles them (64 -> 512)")
        embedding_dim: int = param(1024, "dimension of the FC embedding ([Zhou2020]: 1024)")
        link_kernel: int = param(5, "kernel of Conv1-Conv4 ([Zhou2020]: 5x5, stride 2)")
        depths: list = param(list(DEPTHS), "residual blocks of Res1-Res4, four integers >= 1 ([Zhou2020]: "
                             "3, 4, 6, 3)", kind="ints", check=">0")
        bn_momentum: float = param(0.99, "batch-norm moving-average momentum (Keras convention)")
        bn_epsilon: float = param(1e-3, "batch-norm epsilon")

        def validate(self, owner):
            check_network_params(self, owner, positive=("base_channels", "embedding_dim", "link_kernel"))
            require(len(self.depths) == len(DEPTHS), owner, f"parameter 'depths' must be {len(DEPTHS)} integers "
                    f"(the residual blocks of Res1-Res4), got {self.depths}")

    def min_frames(self) -> int:
        return 1

    def check_feat_dim(self, feat_dim: int) -> None:
        super().check_feat_dim(feat_dim)
        if int(feat_dim) < MIN_FEAT_DIM:
            raise ToolError(f"network '{self.network_name}': feature dimension {feat_dim} is below {MIN_FEAT_DIM} "
                            "(its four stride-2 convolutions halve the frequency axis four times; [Zhou2020] "
                            "uses 161-dim spectrograms)")

    def build(self, feat_dim: int) -> keras.Model:
        self.check_feat_dim(feat_dim)
        p = self.params
        bn = dict(momentum=p.bn_momentum, epsilon=p.bn_epsilon, dtype="float32")  # BN in float32 under any policy
        features = keras.Input(shape=(None, int(feat_dim)), name="features")
        x = layers.Reshape((-1, int(feat_dim), 1), name="image")(features)
        for stage, depth in enumerate(p.depths, 1):
            channels = p.base_channels * 2 ** (stage - 1)
            x = _conv_bn_relu(x, channels, p.link_kernel, 2, f"conv{stage}", bn)
            for index in range(1, depth + 1):
                name = f"res{stage}_block{index}"
                h = _conv_bn_relu(x, channels, 3, 1, f"{name}_1", bn)
                h = _conv_bn_relu(h, channels, 3, 1, f"{name}_2", bn, relu=False)
                x = layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, h]))
        # Adaptive average pooling to 1 x 1 = the mean over time and frequency of each channel.
        x = layers.GlobalAveragePooling2D(name="avg_pool", dtype="float32")(x)  # a mean over T x F: float32
        embedding = layers.Dense(p.embedding_dim, name="fc")(x)
        return keras.Model(features, single_embedding_outputs(embedding, "fc_float32"), name=self.network_name)
