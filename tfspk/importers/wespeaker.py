"""WeSpeaker checkpoints (``avg_model.pt``, ``model_<epoch>.pt``) of ResNet and ECAPA-TDNN [Wang2023].

A WeSpeaker checkpoint is ``torch.save(model.state_dict())`` of the speaker model with the training
loss's class weights added as the module ``projection`` (ArcMargin etc.); DDP training may prefix every
key with ``module.``. The architecture's options are read off the tensor shapes (nothing to give):

* ResNet (``--source wespeaker_resnet``): ``conv1.weight`` [w, 1, 3, 3] gives ``base_width`` w; the
  number of ``layer<s>.<i>.`` blocks per stage and the presence of ``conv3`` give the depth
  (:data:`tfspk.nnet.wespeaker.WESPEAKER_RESNETS`); ``seg_1.weight`` [E, 2 x 8w x e x F/8] gives the
  embedding dimension E and the feature dimension F (e = block expansion); ``seg_2`` means
  ``two_emb_layer``. Only TSTP pooling (the ResNet recipes' choice) is supported.
* ECAPA-TDNN (``--source wespeaker_ecapa_tdnn``): ``layer1.conv.weight`` [C, F, 5] gives C and F;
  ``pool.linear1.weight`` [A, 3 x 1536 or 1536, 1] the attention width and global context;
  ``linear.weight`` the embedding dimension; ``bn2`` means ``emb_bn``.

Every tensor goes to the layer of the same module name in :mod:`tfspk.nnet.wespeaker` (rules in
:mod:`tfspk.importers.torch_layers`); ``projection.*`` (the loss head) and BN
``num_batches_tracked`` counters are the only tensors left out, and any other leftover is an error.

Front end at inference, as WeSpeaker's ``compute_fbank`` + ``apply_cmvn`` at extraction: Kaldi fbank
(torchaudio's Kaldi-compliant implementation) of the int16-scaled samples, ``num_mel_bins`` = F,
25 ms / 10 ms frames, Hamming window, dither 0, no energy, Kaldi's other defaults (pre-emphasis 0.97,
DC removal, snip edges, 20 Hz low cut-off); then the utterance's mean is subtracted from each frame
(the CMN mode ``crop``, which is the utterance's mean at inference); no VAD.
"""
from __future__ import annotations

import dataclasses
import os
import re

from tfspk.errors import ToolError
from tfspk.features.frontend import FrontEnd
from tfspk.features.options import FbankOptions, FrameOptions, MelOptions
from tfspk.importers.registry import ImportedModel, KeyMapper, Source, register_source
from tfspk.importers.torch_layers import map_variables
from tfspk.importers.torch_zip import read_state_dict
from tfspk.nnet import get_network
from tfspk.nnet.wespeaker import EXPANSION, WESPEAKER_RESNETS
from tfspk.params import param

def wespeaker_front_end(num_mel_bins: int, sample_rate: int) -> FrontEnd:
    """WeSpeaker's inference front end (see the module docstring): Kaldi fbank with its options, the
    utterance's mean subtracted (CMN mode ``crop``: the utterance at inference), no VAD."""
    frame = FrameOptions(sample_frequency=float(sample_rate), frame_length=25.0, frame_shift=10.0,
                         window_type="hamming", dither=0.0)
    options = FbankOptions(frame=frame, mel=MelOptions(num_mel_bins=int(num_mel_bins)), use_energy=False)
    return FrontEnd("fbank", options, cmn="crop", vad=False)


def _strip_module_prefix(state: dict) -> dict:
    if state and all(key.startswith("module.") for key in state):
        return {key[len("module."):]: value for key, value in state.items()}
    return dict(state)


class _WeSpeakerSource(Source):
    @dataclasses.dataclass
    class Params:
        sample_rate: int = param(16000, "sample rate of the model's training data (WeSpeaker's VoxCeleb and "
                                 "CN-Celeb models: 16000); the features are computed at this rate")

        def validate(self, owner):
            if self.sample_rate < 1000:
                raise ToolError(f"{owner}: sample_rate must be >= 1000, got {self.sample_rate}")

    def _read(self, checkpoint):
        state = _strip_module_prefix(read_state_dict(checkpoint))
        return KeyMapper(state, checkpoint)

    def _finish(self, checkpoint, mapper, network, feat_dim, upstream):
        model = network.build(feat_dim)
        weights = map_variables(model, mapper, lambda layer: layer.replace("/", "."))
        mapper.ignore(lambda key: key.startswith("projection."), "the training loss's class weights (not used "
                      "to embed)")
        mapper.ignore(lambda key: key.endswith(".num_batches_tracked"), "batch-norm update counter")
        ignored = mapper.finish()
        return ImportedModel(
            network=network, feat_dim=feat_dim, weights=weights,
            front_end=wespeaker_front_end(feat_dim, self.params.sample_rate), ignored=ignored,
            facts={"source": self.source_name, "checkpoint": os.path.abspath(checkpoint), "upstream": upstream,
                   "tensors_mapped": len(mapper.used), "tensors_ignored": len(ignored)})


@register_source("wespeaker_resnet")
class WeSpeakerResNetSource(_WeSpeakerSource):
    """WeSpeaker ResNet18/34/50/101/152/221/293 (TSTP pooling) -> network wespeaker_resnet."""

    def convert(self, checkpoint: str) -> ImportedModel:
        mapper = self._read(checkpoint)
        state = mapper.state
        stem = mapper.take("conv1.weight")
        if "pool.linear1.weight" in state or "pool.in_proj.weight" in state:
            raise ToolError(f"{checkpoint}: a ResNet with attentive pooling; only TSTP pooling (WeSpeaker's ResNet "
                            "recipes) is supported")
        if stem.ndim != 4 or stem.shape[1] != 1:
            raise ToolError(f"{checkpoint}: 'conv1.weight' has shape {stem.shape}; a WeSpeaker ResNet has "
                            "[channels, 1, 3, 3] (is this a ResNet checkpoint?)")
        width = int(stem.shape[0])
        blocks = []
        for stage in range(1, 5):
            indices = {int(m.group(1)) for key in state for m in [re.match(rf"layer{stage}\.(\d+)\.", key)] if m}
            blocks.append(len(indices))
        kind = "bottleneck" if any(key.endswith(".conv3.weight") for key in state) else "basic"
        layout = [name for name, spec in WESPEAKER_RESNETS.items() if spec == (kind, tuple(blocks))]
        if not layout:
            raise ToolError(f"{checkpoint}: {kind} blocks per stage {tuple(blocks)} match none of WeSpeaker's ResNets "
                            f"({', '.join(WESPEAKER_RESNETS)})")
        seg = state.get("seg_1.weight")
        if seg is None or seg.ndim != 2:
            raise ToolError(f"{checkpoint}: tensor 'seg_1.weight' is missing or not a matrix")
        pooled_per_bin = 2 * 8 * width * EXPANSION[kind]   # mean and std of 8w x e channels per 8 input bins
        if seg.shape[1] % pooled_per_bin:
            raise ToolError(f"{checkpoint}: 'seg_1.weight' has {seg.shape[1]} inputs, not a multiple of "
                            f"{pooled_per_bin} (2 x {8 * width * EXPANSION[kind]} channels)")
        feat_dim = seg.shape[1] // pooled_per_bin * 8
        network = get_network("wespeaker_resnet", {"layout": layout[0], "base_width": width,
                                                   "embedding_dim": int(seg.shape[0]),
                                                   "two_emb_layer": "seg_2.weight" in state})
        mapper.used.discard("conv1.weight")   # taken again by the variable mapping
        return self._finish(checkpoint, mapper, network, feat_dim, f"WeSpeaker {layout[0]}")


@register_source("wespeaker_ecapa_tdnn", "wespeaker_ecapa")
class WeSpeakerEcapaSource(_WeSpeakerSource):
    """WeSpeaker ECAPA_TDNN[_GLOB]_c512/c1024 -> network wespeaker_ecapa_tdnn."""

    def convert(self, checkpoint: str) -> ImportedModel:
        mapper = self._read(checkpoint)
        state = mapper.state
        for key in ("layer1.conv.weight", "conv.weight", "pool.linear1.weight", "linear.weight",
                    "layer2.se_res2block.3.linear1.weight"):
            if key not in state:
                raise ToolError(f"{checkpoint}: tensor '{key}' is missing (not a WeSpeaker ECAPA-TDNN checkpoint?)")
        front = state["layer1.conv.weight"]
        channels, feat_dim = int(front.shape[0]), int(front.shape[1])
        mfa = int(state["conv.weight"].shape[0])
        attention = state["pool.linear1.weight"]
        if attention.shape[1] not in (mfa, 3 * mfa):
            raise ToolError(f"{checkpoint}: 'pool.linear1.weight' has {attention.shape[1]} inputs; {mfa} or "
                            f"{3 * mfa} expected")
        scale = 1 + len({k for k in state if re.match(r"layer2\.se_res2block\.1\.convs\.\d+\.weight$", k)})
        network = get_network("wespeaker_ecapa_tdnn", {
            "channels": channels, "embedding_dim": int(state["linear.weight"].shape[0]),
            "global_context": attention.shape[1] == 3 * mfa, "emb_bn": "bn2.weight" in state, "scale": scale,
            "se_channels": int(state["layer2.se_res2block.3.linear1.weight"].shape[0]), "mfa_channels": mfa,
            "attention_channels": int(attention.shape[0])})
        glob = "_GLOB" if network.params.global_context else ""
        return self._finish(checkpoint, mapper, network, feat_dim, f"WeSpeaker ECAPA_TDNN{glob}_c{channels}")
