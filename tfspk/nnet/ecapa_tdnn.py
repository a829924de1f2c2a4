"""ECAPA-TDNN [Desplanques2020]: SE-Res2Blocks, multi-layer feature aggregation, attentive statistics pooling.

Input [B, T, F] (F = ``feat_dim``, the paper uses 80 fbanks); C = ``channels`` (512 or 1024):

1. front layer: Conv1D(C, kernel 5) -> ReLU -> BN;
2. three SE-Res2Blocks (kernel 3, dilations 2, 3, 4), each
   Conv1D(C, 1) -> ReLU -> BN;
   Res2 dilated convolution: the C channels are split into ``scale`` (8) groups x_1..x_s of C/s channels,
   y_1 = x_1, y_2 = K_2(x_2), y_i = K_i(x_i + y_{i-1}) (i >= 3), K_i = Conv1D(C/s, 3, dilation d) -> ReLU -> BN,
   output concat(y_1..y_s);
   Conv1D(C, 1) -> ReLU -> BN;
   squeeze-excitation: z = mean_t(h), s = sigmoid(W_2 ReLU(W_1 z + b_1) + b_2) (bottleneck ``se_channels``
   128), h_{t,c} * s_c;
   plus the block input (residual connection);
3. "summed residual connections" [Desplanques2020, sec. 3.3, fig. 2] (``sum_residuals``, default true):
   the input of block k is the sum of the front layer's and the blocks 1..k-1's outputs (false: the
   previous block's output alone, a plain chain);
4. multi-layer feature aggregation: concat of the three block outputs (3C) -> Conv1D(``mfa_channels``, 1)
   -> ReLU (1536 for both C = 512 and C = 1024, as the paper's 6.2 M / 14.7 M parameter counts imply);
5. attentive statistics pooling with global context (:mod:`tfspk.nnet.attentive_pooling`,
   ``attention_channels`` 128) -> BN (2 x 1536 = 3072);
6. embedding: Dense(``embedding_dim`` 192) -> BN; with ``dropout`` p > 0, inverted dropout on the Dense's
   input (the pooled statistics after their BN) while training: each of the 2 x 1536 units is zeroed with
   probability p and the kept ones are scaled by 1 / (1 - p) (:class:`tfspk.nnet.blocks.StepDropout`, masks
   a pure function of the training seed and step); identity at inference, and p = 0 (the default) builds
   no layer at all.

Outputs: ``embedding_a`` = the affine output of the embedding layer (before its BN), the vector
extracted for the back-end (as the TDNN's ``tdnn6.affine``); ``embedding_b`` = after the final BN, what
the loss head sees ([Desplanques2020, fig. 2]: "FC + BN" feeds the AAM-softmax).

Every convolution pads "same" (zeros), so any T >= 1 frame works (``min_frames() == 1``): frames near
the edges see zero padding, and an utterance of one frame is pooled to mean = that frame, std =
sqrt(floor). Any feature dimension >= 1 works.

Parameter count (:func:`count_parameters`, stated in docs/nnet.md): the trainable weights of the
Keras model -- convolution kernels and biases, dense layers, batch-norm gamma and beta -- on 80-dim
input, *without* the loss head and without BN moving means/variances (non-trainable statistics; the
PyTorch toolkits such as WeSpeaker and SpeechBrain count only ``parameters()``, which excludes them
too). C = 512: 6,191,104 (paper: 6.2 M); C = 1024: 14,657,472 (paper: 14.7 M).
"""
from __future__ import annotations

import dataclasses

import keras
from keras import layers, ops

from tfspk.nnet.attentive_pooling import ATTENTION_ACTIVATIONS, DEFAULT_VARIANCE_FLOOR, AttentiveStatisticsPooling
from tfspk.nnet.blocks import StepDropout
from tfspk.nnet.registry import Network, check_network_params, register_network
from tfspk.params import param, require


def count_parameters(model) -> int:
    """Trainable weights of a Keras model (BN gamma/beta included, BN moving statistics excluded)."""
    return int(sum(int(ops.size(w)) for w in model.trainable_weights))


def _conv_relu_bn(filters, kernel, dilation, name, bn):
    """The paper's TDNN block: Conv1D -> ReLU -> BN, as three layers applied in order."""
    return [layers.Conv1D(filters, kernel, dilation_rate=dilation, padding="same", name=f"{name}_conv"),
            layers.ReLU(name=f"{name}_relu"),
            layers.BatchNormalization(**bn, name=f"{name}_bn")]


def _apply(stack, x, training, dtype):
    """Run a Conv -> ReLU -> BN stack; the result in ``dtype`` (BN is float32 under a mixed policy, the
    block's sums and products are in the block's compute dtype)."""
    for layer in stack:
        x = layer(x, training=training) if isinstance(layer, layers.BatchNormalization) else layer(x)
    return ops.cast(x, dtype)


class SERes2Block(layers.Layer):
    """One SE-Res2Block [Desplanques2020, sec. 3.2] (see the module docstring): [B, T, C] -> [B, T, C]."""

    def __init__(self, channels: int, kernel: int = 3, dilation: int = 1, scale: int = 8, se_channels: int = 128,
                 bn_momentum: float = 0.99, bn_epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        if channels % scale:
            raise ValueError(f"channels {channels} not divisible by scale {scale}")
        self.channels, self.kernel, self.dilation = int(channels), int(kernel), int(dilation)
        self.scale, self.se_channels = int(scale), int(se_channels)
        self.bn_momentum, self.bn_epsilon = float(bn_momentum), float(bn_epsilon)
        bn = dict(momentum=bn_momentum, epsilon=bn_epsilon, dtype="float32")  # BN in float32 under any policy
        self.conv_in = _conv_relu_bn(channels, 1, 1, "in", bn)
        width = channels // scale
        # scale - 1 branch convolutions: y_1 = x_1 passes through unchanged.
        self.branches = [_conv_relu_bn(width, kernel, dilation, f"res2_{i}", bn) for i in range(2, scale + 1)]
        self.conv_out = _conv_relu_bn(channels, 1, 1, "out", bn)
        self.se_squeeze = layers.Dense(se_channels, activation="relu", name="se_squeeze")
        self.se_excite = layers.Dense(channels, activation="sigmoid", name="se_excite")
        # Keras keeps the layers of these lists (its weight files address them as conv_in/..., branches/...),
        # but tf.train.Checkpoint does not see into its lists: without these dependencies the trainer's
        # checkpoint held the batch-norm moving statistics of no SE-Res2Block (a resumed run restarted them
        # from 0 / 1), and their convolutions only through the optimizer (a model-only restore, as fine-tuning's
        # warm start does, left them random). Registered under names of their own: the .weights.h5 layout
        # stays as it is.
        for layer in [layer for stack in [self.conv_in, *self.branches, self.conv_out] for layer in stack]:
            self._track_trackable(layer, name=f"checkpointed_{layer.name}")

    def build(self, input_shape):
        width = self.channels // self.scale
        shape = (None, None, int(input_shape[-1]))
        for stack, in_dim in [(self.conv_in, shape[-1])] + [(b, width) for b in self.branches] + \
                             [(self.conv_out, self.channels)]:
            stack[0].build((None, None, in_dim))
            stack[2].build((None, None, stack[0].filters))
        self.se_squeeze.build((None, self.channels))
        self.se_excite.build((None, self.se_channels))
        super().build(input_shape)

    def call(self, inputs, training=None):
        dtype = self.compute_dtype
        inputs = ops.cast(inputs, dtype)
        h = _apply(self.conv_in, inputs, training, dtype)
        width = self.channels // self.scale
        outputs = [h[:, :, :width]]
        previous = None
        for index, stack in enumerate(self.branches, 1):
            x = h[:, :, index * width:(index + 1) * width]
            previous = _apply(stack, x if previous is None else x + previous, training, dtype)
            outputs.append(previous)
        h = _apply(self.conv_out, ops.concatenate(outputs, axis=-1), training, dtype)
        gates = self.se_excite(self.se_squeeze(ops.mean(h, axis=1)))
        return inputs + h * ops.expand_dims(gates, 1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "kernel": self.kernel, "dilation": self.dilation,
                "scale": self.scale, "se_channels": self.se_channels, "bn_momentum": self.bn_momentum,
                "bn_epsilon": self.bn_epsilon}


@register_network("ecapa_tdnn", "ecapa")
class EcapaTdnn(Network):
    """ECAPA-TDNN [Desplanques2020]; architecture, outputs and parameter count in the module docstring."""

    #: dilations of the three SE-Res2Blocks [Desplanques2020, fig. 2]
    DILATIONS = (2, 3, 4)

    @dataclasses.dataclass
    class Params:
        channels: int = param(512, "channels C of the front layer and SE-Res2Blocks ([Desplanques2020]: 512 or 1024)")
        embedding_dim: int = param(192, "dimension of the speaker embedding (both outputs)")
        scale: int = param(8, "Res2Net scale s: channel groups per SE-Res2Block (C must be divisible by it)")
        se_channels: int = param(128, "bottleneck of the squeeze-excitation blocks")
        mfa_channels: int = param(1536, "output channels of the multi-layer feature aggregation conv")
        attention_channels: int = param(128, "bottleneck of the attentive statistics pooling")
        attention_activation: str = param("tanh", "non-linearity of the attention bottleneck: tanh or relu_bn_tanh "
                                          "(conv -> ReLU -> BN -> tanh)", choices=ATTENTION_ACTIVATIONS)
        global_context: bool = param(True, "attention sees the utterance mean and std besides each frame")
        sum_residuals: bool = param(True, "input of each SE-Res2Block = sum of all preceding outputs "
                                    "([Desplanques2020, sec. 3.3]); false: a plain chain")
        front_kernel: int = param(5, "kernel of the front convolution")
        res2_kernel: int = param(3, "kernel of the dilated Res2 convolutions")
        variance_floor: float = param(DEFAULT_VARIANCE_FLOOR, "variances below it are raised to it before sqrt")
        bn_momentum: float = param(0.99, "batch-norm moving-average momentum (Keras convention)")
        bn_epsilon: float = param(1e-3, "batch-norm epsilon")
        dropout: float = param(0.0, "dropout rate p on the embedding layer's input (the pooled statistics after "
                               "their BN) while training, kept units scaled by 1/(1-p); 0 <= p < 1, 0 = off")

        def validate(self, owner):
            check_network_params(self, owner, positive=("channels", "embedding_dim", "scale", "se_channels",
                                                        "mfa_channels", "attention_channels", "front_kernel",
                                                        "res2_kernel"))
            require(0 <= self.dropout < 1, owner, f"parameter 'dropout' must be in [0, 1), got {self.dropout}")
            require(self.scale >= 2, owner, f"parameter 'scale' must be >= 2, got {self.scale}")
            require(self.channels % self.scale == 0, owner,
                    f"'channels' ({self.channels}) must be divisible by 'scale' ({self.scale})")

    def min_frames(self) -> int:
        # "same" padding everywhere: one frame gives one frame at every layer.
        return 1

    def build(self, feat_dim: int) -> keras.Model:
        self.check_feat_dim(feat_dim)
        p = self.params
        bn = dict(momentum=p.bn_momentum, epsilon=p.bn_epsilon, dtype="float32")  # BN in float32 under any policy
        features = keras.Input(shape=(None, int(feat_dim)), name="features")
        front = features
        for layer in _conv_relu_bn(p.channels, p.front_kernel, 1, "front", bn):
            front = layer(front)
        outputs, x = [], front
        for index, dilation in enumerate(self.DILATIONS, 1):
            if p.sum_residuals and outputs:
                x = layers.Add(name=f"block{index}_input")([front] + outputs)
            x = SERes2Block(p.channels, p.res2_kernel, dilation, p.scale, p.se_channels, p.bn_momentum, p.bn_epsilon,
                            name=f"block{index}")(x)
            outputs.append(x)
        x = layers.Concatenate(axis=-1, name="mfa_concat")(outputs)
        x = layers.Conv1D(p.mfa_channels, 1, activation="relu", name="mfa_conv")(x)
        x = AttentiveStatisticsPooling(p.attention_channels, p.attention_activation, p.global_context,
                                       p.variance_floor, p.bn_momentum, p.bn_epsilon, name="asp",
                                       dtype="float32")(x)
        x = layers.BatchNormalization(**bn, name="asp_bn")(x)
        if p.dropout > 0:  # no layer at 0: today's model, layer for layer
            x = StepDropout(p.dropout, stream=0, name="embedding_dropout", dtype="float32")(x)
        embedding_a = layers.Dense(p.embedding_dim, name="embedding")(x)
        # Outputs are float32 under any policy (the embedding Dense follows a mixed policy).
        embedding_a = layers.Activation("linear", dtype="float32", name="embedding_float32")(embedding_a)
        embedding_b = layers.BatchNormalization(**bn, name="embedding_bn")(embedding_a)
        return keras.Model(features, {"embedding_a": embedding_a, "embedding_b": embedding_b},
                           name=self.network_name)
