"""SpeechBrain's ECAPA-TDNN [Desplanques2020] (``speechbrain.lobes.models.ECAPA_TDNN``), as SpeechBrain computes it.

For imported models (speechbrain/spkrec-ecapa-voxceleb and recipes of the same layout). What differs
from tfspk's ``ecapa_tdnn`` and makes this a network of its own:

* every convolution of kernel k and dilation d pads d (k - 1) / 2 frames on each side by *reflection*
  (SpeechBrain's ``padding="same"`` with ``padding_mode="reflect"``), not zeros; so an input needs
  more frames than the widest padding (``min_frames() == 5``: dilation 4, kernel 3);
* the blocks form a plain chain (each SE-Res2Block takes the previous block's output), the
  multi-layer aggregation is Conv1D(``mfa_channels``, 1) -> ReLU -> BN (a BN more than tfspk's);
* the embedding is the affine output of ``fc`` (no BN after it).

Shared with the paper and tfspk: TDNN blocks Conv1D -> ReLU -> BN; Res2 with y_1 = x_1,
y_2 = K_2(x_2), y_i = K_i(x_i + y_{i-1}); SE s = sigmoid(W_2 ReLU(W_1 mean_t(h) + b_1) + b_2) scaling h,
plus the block input; attentive statistics pooling with global context whose attention is
tanh(BN(ReLU(W g_t + b))) (:class:`tfspk.nnet.attentive_pooling.AttentiveStatisticsPooling` with
``relu_bn_tanh`` and SpeechBrain's variance floor 1e-12), then BN.

Both outputs are the embedding (``embedding_a`` = ``embedding_b``). Batch norms use PyTorch's epsilon
1e-5. Layer names are SpeechBrain's module names (``blocks.1.res2net_block.blocks.0.conv.conv``).
"""
from __future__ import annotations

import dataclasses

import keras
from keras import layers, ops

from tfspk.errors import ToolError
from tfspk.nnet.attentive_pooling import AttentiveStatisticsPooling
from tfspk.nnet.blocks import TORCH_BN_EPSILON, single_embedding_outputs, squeeze_excitation, torch_batch_norm
from tfspk.nnet.registry import Network, check_network_params, register_network
from tfspk.params import param

SPEECHBRAIN_VARIANCE_FLOOR = 1e-12
KERNELS = (5, 3, 3, 3)
DILATIONS = (1, 2, 3, 4)


class ReflectPad1D(layers.Layer):
    """[B, T, C] -> [B, T + 2 pad, C], mirrored about the edge frames (numpy/PyTorch ``reflect``)."""

    def __init__(self, pad: int, **kwargs):
        super().__init__(**kwargs)
        self.pad = int(pad)

    def call(self, inputs):
        return ops.pad(inputs, [[0, 0], [self.pad, self.pad], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        frames = input_shape[1]
        return (input_shape[0], None if frames is None else frames + 2 * self.pad, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


def _tdnn_block(x, filters, kernel, dilation, name):
    """SpeechBrain's TDNNBlock: reflect-padded Conv1d -> ReLU -> BatchNorm1d (modules name.conv, name.norm)."""
    pad = dilation * (kernel - 1) // 2
    if pad:
        x = ReflectPad1D(pad, name=f"{name}.pad")(x)
    x = layers.Conv1D(filters, kernel, dilation_rate=dilation, padding="valid", name=f"{name}.conv.conv")(x)
    return torch_batch_norm(f"{name}.norm.norm")(layers.ReLU(name=f"{name}.relu")(x))


def _se_res2_block(x, channels, kernel, dilation, scale, se_channels, name):
    h = _tdnn_block(x, channels, 1, 1, f"{name}.tdnn1")
    width = channels // scale
    outputs, previous = [], None
    for index in range(scale):
        part = layers.Lambda(lambda t, i=index: t[:, :, i * width:(i + 1) * width], name=f"{name}.chunk{index}")(h)
        if index >= 2:
            part = layers.Add(name=f"{name}.sum{index}")([part, previous])
        if index >= 1:
            part = _tdnn_block(part, width, kernel, dilation, f"{name}.res2net_block.blocks.{index - 1}")
        previous = part
        outputs.append(part)
    h = layers.Concatenate(axis=-1, name=f"{name}.res2cat")(outputs)
    h = _tdnn_block(h, channels, 1, 1, f"{name}.tdnn2")
    h = squeeze_excitation(h, se_channels, f"{name}.se_", f"{name}.se_block.conv1.conv", f"{name}.se_block.conv2.conv")
    return layers.Add(name=f"{name}.residual")([h, x])


@register_network("speechbrain_ecapa_tdnn")
class SpeechBrainEcapaTdnn(Network):
    """SpeechBrain's ECAPA-TDNN [Desplanques2020] as SpeechBrain computes it; see :mod:`tfspk.nnet.speechbrain`."""

    @dataclasses.dataclass
    class Params:
        channels: int = param(1024, "channels of the front TDNN block and the SE-Res2Blocks "
                              "(spkrec-ecapa-voxceleb: 1024)")
        mfa_channels: int = param(3072, "channels of the aggregation TDNN block (spkrec-ecapa-voxceleb: 3072)")
        embedding_dim: int = param(192, "dimension of the speaker embedding (SpeechBrain's lin_neurons)")
        attention_channels: int = param(128, "bottleneck of the attentive statistics pooling")
        res2net_scale: int = param(8, "Res2Net scale: channel groups per block")
        se_channels: int = param(128, "bottleneck of the squeeze-excitation")
        global_context: bool = param(True, "attention sees the utterance mean and std")

        def validate(self, owner):
            check_network_params(self, owner, positive=("channels", "mfa_channels", "embedding_dim",
                                                        "attention_channels", "res2net_scale", "se_channels"))
            if self.res2net_scale < 2 or self.channels % self.res2net_scale:
                raise ToolError(f"{owner}: 'channels' ({self.channels}) must be divisible by 'res2net_scale' "
                                f"({self.res2net_scale}), which must be >= 2")

    def min_frames(self) -> int:
        # reflection padding needs more frames than it pads: dilation 4 x (kernel 3 - 1) / 2 = 4
        return 1 + max(d * (k - 1) // 2 for k, d in zip(KERNELS, DILATIONS))

    def build(self, feat_dim: int) -> keras.Model:
        self.check_feat_dim(feat_dim)
        p = self.params
        features = keras.Input(shape=(None, int(feat_dim)), name="features")
        x = _tdnn_block(features, p.channels, KERNELS[0], DILATIONS[0], "blocks.0")
        outputs = []
        for index in range(1, 4):
            x = _se_res2_block(x, p.channels, KERNELS[index], DILATIONS[index], p.res2net_scale, p.se_channels,
                               f"blocks.{index}")
            outputs.append(x)
        x = layers.Concatenate(axis=-1, name="mfa_concat")(outputs)
        x = _tdnn_block(x, p.mfa_channels, 1, 1, "mfa")
        x = AttentiveStatisticsPooling(p.attention_channels, "relu_bn_tanh", p.global_context,
                                       SPEECHBRAIN_VARIANCE_FLOOR, 0.9, TORCH_BN_EPSILON, name="asp",
                                       dtype="float32")(x)
        x = torch_batch_norm("asp_bn.norm")(x)
        embedding = layers.Dense(p.embedding_dim, name="fc.conv")(x)
        return keras.Model(features, single_embedding_outputs(embedding), name=self.network_name)
