"""WeSpeaker's ResNet and ECAPA-TDNN [Wang2023], computed as WeSpeaker computes them (for imported models).

tfspk's own ``resnet34`` and ``ecapa_tdnn`` follow the papers; WeSpeaker's implementations differ in
details that change the numbers, so a WeSpeaker checkpoint runs exactly only on these variants:

``wespeaker_resnet`` (WeSpeaker ``ResNet18/34/50/101/152/221/293``; ``layout``):

* the features [B, T, F] are an image of frequency x time; every 3x3 convolution pads one zero on
  each side of both axes (PyTorch ``padding=1``; Keras "same" pads only after the input for a
  stride-2 convolution of an even-sized input, shifting every output by one frame), 1x1 shortcut
  convolutions pad nothing;
* blocks as :mod:`tfspk.nnet.resnet` (basic: conv-BN-ReLU-conv-BN + shortcut, ReLU; bottleneck with
  expansion 4), stages of w, 2w, 4w, 8w channels, strides 1, 2, 2, 2;
* pooling TSTP: the map [C', F', T'] is flattened channel-major (index c F' + f) and pooled over time
  to [mean; sqrt(var + 1e-7)] with the *unbiased* variance (divisor T' - 1; 1 when T' = 1, where
  PyTorch gives NaN);
* embedding ``seg_1``: Dense(``embedding_dim``); with ``two_emb_layer``: ReLU -> BN without scale and
  offset -> Dense (``seg_2``), whose output WeSpeaker extracts.

``wespeaker_ecapa_tdnn`` (WeSpeaker ``ECAPA_TDNN[_GLOB]_c512/c1024``):

* front Conv1D(C, 5) -> ReLU -> BN; three SE-Res2Blocks (dilations 2, 3, 4) in a plain chain (each
  takes the previous block's output; no summed residuals);
* the Res2 part convolves the groups x_1..x_{s-1} (y_1 = K_1(x_1), y_i = K_i(x_i + y_{i-1})) and passes
  the *last* group through: output [y_1..y_{s-1}, x_s] (the paper and tfspk pass the first);
* SE: s = sigmoid(W_2 ReLU(W_1 mean_t(h) + b_1) + b_2), output block input + h * s;
* concat of the three block outputs -> Conv1D(1536, 1) -> ReLU -> attentive statistics pooling
  (ASTP): with ``global_context`` the attention input is [h_t; mean; sqrt(unbiased var + 1e-7)];
  alpha = softmax_t(V tanh(W g_t + b) + k); mu = sum_t alpha h_t, sigma = sqrt(max(sum_t alpha h_t^2 -
  mu^2, 1e-7)) -> BN -> Dense(``embedding_dim``) [-> BN with ``emb_bn``].

Both outputs are the vector WeSpeaker extracts (``embedding_a`` = ``embedding_b``). Batch norms use
PyTorch's epsilon 1e-5. ``min_frames() == 1``. Layer names follow WeSpeaker's module names so the
import mapping (:mod:`tfspk.importers.wespeaker`) is one rule per module.
"""
from __future__ import annotations

import dataclasses

import keras
from keras import layers, ops

from tfspk.errors import ToolError
from tfspk.nnet.blocks import single_embedding_outputs, squeeze_excitation, torch_batch_norm
from tfspk.nnet.registry import Network, check_network_params, register_network
from tfspk.nnet.resnet import EXPANSION, ImageResNet
from tfspk.params import param

#: WeSpeaker's ResNet layouts: name -> (block, blocks per stage)
WESPEAKER_RESNETS = {
    "resnet18": ("basic", (2, 2, 2, 2)), "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)), "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)), "resnet221": ("bottleneck", (6, 16, 48, 3)),
    "resnet293": ("bottleneck", (10, 20, 64, 3)),
}
STD_EPSILON = 1e-7   # WeSpeaker's pooling: sqrt(var + 1e-7), clamp(var, 1e-7)


def _unbiased_mean_std(x, axis):
    """mean and sqrt(unbiased variance + 1e-7) over ``axis`` (divisor max(n - 1, 1))."""
    x = ops.cast(x, "float32")
    mean = ops.mean(x, axis=axis, keepdims=True)
    count = ops.cast(ops.shape(x)[axis], "float32")
    variance = ops.sum(ops.square(x - mean), axis=axis) / ops.maximum(count - 1.0, 1.0)
    return ops.squeeze(mean, axis), ops.sqrt(variance + STD_EPSILON)


class WeSpeakerTSTP(layers.Layer):
    """[B, T, D] -> [B, 2D]: [mean_t; sqrt(unbiased var_t + 1e-7)] (WeSpeaker's TSTP)."""

    def call(self, inputs):
        mean, std = _unbiased_mean_std(inputs, 1)
        return ops.concatenate([mean, std], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None if input_shape[-1] is None else 2 * input_shape[-1])


class WeSpeakerASTP(layers.Layer):
    """[B, T, C] -> [B, 2C]: WeSpeaker's attentive statistics pooling (see the module docstring)."""

    def __init__(self, attention_channels=128, global_context=False, **kwargs):
        super().__init__(**kwargs)
        self.attention_channels, self.global_context = int(attention_channels), bool(global_context)
        self.linear1 = layers.Dense(self.attention_channels, name="linear1", dtype=self.dtype_policy)
        self.linear2 = None

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.linear1.build((None, None, 3 * channels if self.global_context else channels))
        self.linear2 = layers.Dense(channels, name="linear2", dtype=self.dtype_policy)
        self.linear2.build((None, None, self.attention_channels))
        super().build(input_shape)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        attention_input = x
        if self.global_context:
            mean, std = _unbiased_mean_std(x, 1)
            frames = ops.ones_like(x[:, :, :1])
            attention_input = ops.concatenate([x, frames * mean[:, None, :], frames * std[:, None, :]], axis=-1)
        scores = self.linear2(ops.tanh(self.linear1(attention_input)))
        exp = ops.exp(scores - ops.max(scores, axis=1, keepdims=True))
        alpha = exp / ops.sum(exp, axis=1, keepdims=True)
        mean = ops.sum(alpha * x, axis=1)
        variance = ops.sum(alpha * ops.square(x), axis=1) - ops.square(mean)
        return ops.concatenate([mean, ops.sqrt(ops.maximum(variance, STD_EPSILON))], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None if input_shape[-1] is None else 2 * input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "attention_channels": self.attention_channels,
                "global_context": self.global_context}


def _conv2d(x, filters, kernel, stride, name):
    """PyTorch Conv2d(kernel, stride, padding=kernel // 2, bias=False) on [B, T, F, C]."""
    if kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    return layers.Conv2D(filters, kernel, strides=stride, padding="valid", use_bias=False, name=name)(x)


def _resnet_block(x, kind, planes, stride, name):
    out_channels = planes * EXPANSION[kind]
    if kind == "basic":
        h = layers.ReLU(name=f"{name}_relu1")(torch_batch_norm(f"{name}.bn1")(_conv2d(x, planes, 3, stride, f"{name}.conv1")))
        h = torch_batch_norm(f"{name}.bn2")(_conv2d(h, planes, 3, 1, f"{name}.conv2"))
    else:
        h = layers.ReLU(name=f"{name}_relu1")(torch_batch_norm(f"{name}.bn1")(_conv2d(x, planes, 1, 1, f"{name}.conv1")))
        h = layers.ReLU(name=f"{name}_relu2")(torch_batch_norm(f"{name}.bn2")(_conv2d(h, planes, 3, stride, f"{name}.conv2")))
        h = torch_batch_norm(f"{name}.bn3")(_conv2d(h, out_channels, 1, 1, f"{name}.conv3"))
    shortcut = x
    if stride != 1 or x.shape[-1] != out_channels:
        shortcut = torch_batch_norm(f"{name}.shortcut.1")(_conv2d(x, out_channels, 1, stride, f"{name}.shortcut.0"))
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([h, shortcut]))


@register_network("wespeaker_resnet")
class WeSpeakerResNet(ImageResNet):
    """WeSpeaker's ResNet [Wang2023] as WeSpeaker computes it; see :mod:`tfspk.nnet.wespeaker`."""

    @dataclasses.dataclass
    class Params:
        layout: str = param("resnet34", "WeSpeaker's ResNet depth (blocks per stage and block type)",
                            choices=tuple(WESPEAKER_RESNETS))
        base_width: int = param(32, "channels of the stem and first stage (WeSpeaker's m_channels)")
        embedding_dim: int = param(256, "dimension of the speaker embedding")
        two_emb_layer: bool = param(False, "a second embedding layer (ReLU -> BN -> Dense) after the first")

        def validate(self, owner):
            check_network_params(self, owner, positive=("base_width", "embedding_dim"))

    def layout(self) -> tuple[str, tuple]:
        return WESPEAKER_RESNETS[self.params.layout]

    def build(self, feat_dim: int) -> keras.Model:
        features, x = self.image_input(feat_dim)
        p = self.params
        x = layers.ReLU(name="stem_relu")(torch_batch_norm("bn1")(_conv2d(x, p.base_width, 3, 1, "conv1")))
        for kind, stage, index, planes, stride in self.residual_blocks(p.base_width):
            x = _resnet_block(x, kind, planes, stride, f"layer{stage}.{index}")
        freq_bins, channels = int(x.shape[2]), int(x.shape[3])
        x = layers.Permute((1, 3, 2), name="channel_major")(x)   # [B, T', C', F']: index c F' + f
        x = layers.Reshape((-1, freq_bins * channels), name="flatten_freq")(x)
        x = WeSpeakerTSTP(name="pool", dtype="float32")(x)
        embedding = layers.Dense(p.embedding_dim, name="seg_1")(x)
        if p.two_emb_layer:
            x = torch_batch_norm("seg_bn_1", center=False, scale=False)(layers.ReLU(name="seg_relu")(embedding))
            embedding = layers.Dense(p.embedding_dim, name="seg_2")(x)
        return keras.Model(features, single_embedding_outputs(embedding), name=self.network_name)


def _conv1d_relu_bn(x, filters, kernel, dilation, name):
    """WeSpeaker's Conv1dReluBn: Conv1d (bias, symmetric padding) -> ReLU -> BN, module names name.conv/.bn."""
    x = layers.Conv1D(filters, kernel, dilation_rate=dilation, padding="same", name=f"{name}.conv")(x)
    return torch_batch_norm(f"{name}.bn")(layers.ReLU(name=f"{name}_relu")(x))


def _se_res2_block(x, channels, dilation, scale, se_channels, name):
    h = _conv1d_relu_bn(x, channels, 1, 1, f"{name}.se_res2block.0")
    width = channels // scale
    outputs, previous = [], None
    for index in range(scale - 1):
        part = layers.Lambda(lambda t, i=index: t[:, :, i * width:(i + 1) * width], name=f"{name}_split{index}")(h)
        if previous is not None:
            part = layers.Add(name=f"{name}_sum{index}")([part, previous])
        part = layers.Conv1D(width, 3, dilation_rate=dilation, padding="same",
                             name=f"{name}.se_res2block.1.convs.{index}")(part)
        previous = torch_batch_norm(f"{name}.se_res2block.1.bns.{index}")(layers.ReLU(name=f"{name}_res2relu{index}")(part))
        outputs.append(previous)
    outputs.append(layers.Lambda(lambda t: t[:, :, (scale - 1) * width:], name=f"{name}_last")(h))
    h = layers.Concatenate(axis=-1, name=f"{name}_res2cat")(outputs)
    h = _conv1d_relu_bn(h, channels, 1, 1, f"{name}.se_res2block.2")
    h = squeeze_excitation(h, se_channels, f"{name}_se_", f"{name}.se_res2block.3.linear1",
                           f"{name}.se_res2block.3.linear2")
    return layers.Add(name=f"{name}_residual")([x, h])


@register_network("wespeaker_ecapa_tdnn")
class WeSpeakerEcapaTdnn(Network):
    """WeSpeaker's ECAPA-TDNN [Desplanques2020, Wang2023] as WeSpeaker computes it; see :mod:`tfspk.nnet.wespeaker`."""

    DILATIONS = (2, 3, 4)

    @dataclasses.dataclass
    class Params:
        channels: int = param(512, "channels C of the front layer and SE-Res2Blocks (512 or 1024)")
        embedding_dim: int = param(192, "dimension of the speaker embedding")
        global_context: bool = param(True, "attention sees the utterance mean and std (WeSpeaker's *_GLOB_* models)")
        emb_bn: bool = param(False, "a BN after the embedding layer (WeSpeaker's emb_bn)")
        scale: int = param(8, "Res2Net scale: channel groups per block")
        se_channels: int = param(128, "bottleneck of the squeeze-excitation")
        mfa_channels: int = param(1536, "output channels of the aggregation convolution")
        attention_channels: int = param(128, "bottleneck of the attentive pooling")

        def validate(self, owner):
            check_network_params(self, owner, positive=("channels", "embedding_dim", "scale", "se_channels",
                                                        "mfa_channels", "attention_channels"))
            if self.scale < 2 or self.channels % self.scale:
                raise ToolError(f"{owner}: 'channels' ({self.channels}) must be divisible by 'scale' ({self.scale}) "
                                "and scale >= 2")

    def min_frames(self) -> int:
        return 1

    def build(self, feat_dim: int) -> keras.Model:
        self.check_feat_dim(feat_dim)
        p = self.params
        features = keras.Input(shape=(None, int(feat_dim)), name="features")
        x = _conv1d_relu_bn(features, p.channels, 5, 1, "layer1")
        outputs = []
        for index, dilation in enumerate(self.DILATIONS, 2):
            x = _se_res2_block(x, p.channels, dilation, p.scale, p.se_channels, f"layer{index}")
            outputs.append(x)
        x = layers.Concatenate(axis=-1, name="mfa_concat")(outputs)
        x = layers.Conv1D(p.mfa_channels, 1, activation="relu", name="conv")(x)
        x = WeSpeakerASTP(p.attention_channels, p.global_context, name="pool", dtype="float32")(x)
        x = torch_batch_norm("bn")(x)
        embedding = layers.Dense(p.embedding_dim, name="linear")(x)
        if p.emb_bn:
            embedding = torch_batch_norm("bn2")(embedding)
        return keras.Model(features, single_embedding_outputs(embedding), name=self.network_name)
