"""SpeechBrain ECAPA-TDNN ``embedding_model.ckpt`` (speechbrain/spkrec-ecapa-voxceleb layout).

The file is ``torch.save(ECAPA_TDNN.state_dict())``. The architecture's sizes are read off the tensors:
``blocks.0.conv.conv.weight`` [C, F, 5] gives C and the feature dimension F, ``mfa.conv.conv.weight``
the aggregation width, ``asp.tdnn.conv.conv.weight`` [A, 3 x mfa or mfa, 1] the attention width and
global context, ``fc.conv.weight`` the embedding dimension, the number of
``blocks.1.res2net_block.blocks.<j>`` the Res2Net scale. Every tensor goes to the layer of the same
module name in :mod:`tfspk.nnet.speechbrain` except the pooling's, whose tfspk layer has its own
names (:data:`POOLING_MODULES`); BN ``num_batches_tracked`` counters are the only tensors left out.

Front end at inference (``EncoderClassifier.encode_batch``): SpeechBrain's Fbank with 80 mels
(the feature type ``speechbrain_fbank``, :mod:`tfspk.features.speechbrain_fbank`), then the utterance's
mean subtracted from each frame (``InputNormalization(norm_type="sentence", std_norm=False)``; the CMN
mode ``crop``, which is the utterance's mean at inference), no VAD. With
``embedding_norm=<mean_var_norm_emb.ckpt>`` the global embedding mean that ``encode_batch(normalize=True)``
subtracts is folded into the embedding layer's bias (its std is not used: ``std_norm`` false).
"""
from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from tfspk.errors import ToolError
from tfspk.features.frontend import FrontEnd
from tfspk.features.speechbrain_fbank import FEATURE_TYPE, SpeechBrainFbankOptions
from tfspk.importers.registry import ImportedModel, KeyMapper, Source, register_source
from tfspk.importers.torch_layers import map_variables
from tfspk.importers.torch_zip import TorchCheckpoint, read_state_dict
from tfspk.nnet import get_network
from tfspk.params import param

#: tfspk pooling layer path -> SpeechBrain module
POOLING_MODULES = {"asp/bottleneck": "asp.tdnn.conv.conv", "asp/bottleneck_bn": "asp.tdnn.norm.norm",
                   "asp/scores": "asp.conv.conv"}


def speechbrain_front_end(num_mel_bins: int, sample_rate: int) -> FrontEnd:
    """``encode_batch``'s front end (see the module docstring): SpeechBrain's Fbank, the utterance's mean
    subtracted (CMN mode ``crop``: the utterance at inference), no VAD."""
    frame = dataclasses.replace(SpeechBrainFbankOptions().frame, sample_frequency=float(sample_rate))
    return FrontEnd(FEATURE_TYPE, SpeechBrainFbankOptions(frame=frame, num_mel_bins=int(num_mel_bins)),
                    cmn="crop", vad=False)


@register_source("speechbrain_ecapa_tdnn", "speechbrain_ecapa")
class SpeechBrainEcapaSource(Source):
    """SpeechBrain ECAPA_TDNN embedding_model.ckpt -> network speechbrain_ecapa_tdnn, features speechbrain_fbank."""

    @dataclasses.dataclass
    class Params:
        sample_rate: int = param(16000, "sample rate of the model's training data (spkrec-ecapa-voxceleb: 16000)")
        embedding_norm: str = param("", "mean_var_norm_emb.ckpt of the same model: subtract its global mean from "
                                    "the embeddings (encode_batch(normalize=True)); empty: none (the default of "
                                    "encode_batch and of SpeechBrain's verification)")

        def validate(self, owner):
            if self.sample_rate < 1000:
                raise ToolError(f"{owner}: sample_rate must be >= 1000, got {self.sample_rate}")

    def convert(self, checkpoint: str) -> ImportedModel:
        state = read_state_dict(checkpoint)
        mapper = KeyMapper(state, checkpoint)
        for key in ("blocks.0.conv.conv.weight", "mfa.conv.conv.weight", "asp.tdnn.conv.conv.weight",
                    "fc.conv.weight", "blocks.1.se_block.conv1.conv.weight"):
            if key not in state:
                raise ToolError(f"{checkpoint}: tensor '{key}' is missing (not a SpeechBrain ECAPA-TDNN "
                                "embedding_model.ckpt?)")
        if any(re.match(r"blocks\.\d+\.shortcut\.", key) for key in state):
            raise ToolError(f"{checkpoint}: SE-Res2Blocks with shortcut convolutions (blocks of different widths) "
                            "are not supported")
        if any(re.match(r"blocks\.[4-9]\.", key) for key in state):
            raise ToolError(f"{checkpoint}: more than three SE-Res2Blocks; SpeechBrain's default layout has three")
        front = state["blocks.0.conv.conv.weight"]
        channels, feat_dim = int(front.shape[0]), int(front.shape[1])
        mfa = int(state["mfa.conv.conv.weight"].shape[0])
        attention = state["asp.tdnn.conv.conv.weight"]
        scale = 1 + len({k for k in state if re.match(r"blocks\.1\.res2net_block\.blocks\.\d+\.conv\.conv\.weight$",
                                                         k)})
        network = get_network("speechbrain_ecapa_tdnn", {
            "channels": channels, "mfa_channels": mfa, "embedding_dim": int(state["fc.conv.weight"].shape[0]),
            "attention_channels": int(attention.shape[0]), "res2net_scale": scale,
            "se_channels": int(state["blocks.1.se_block.conv1.conv.weight"].shape[0]),
            "global_context": attention.shape[1] == 3 * mfa})
        model = network.build(feat_dim)
        weights = map_variables(model, mapper, lambda layer: POOLING_MODULES.get(layer, layer))
        mapper.ignore(lambda key: key.endswith(".num_batches_tracked"), "batch-norm update counter")
        ignored = mapper.finish()
        facts = {"source": self.source_name, "checkpoint": os.path.abspath(checkpoint),
                 "upstream": f"SpeechBrain ECAPA_TDNN C={channels}", "tensors_mapped": len(mapper.used),
                 "tensors_ignored": len(ignored)}
        if self.params.embedding_norm:
            mean = self._embedding_mean(self.params.embedding_norm, network.params.embedding_dim)
            weights["fc.conv/bias"] = weights["fc.conv/bias"] - mean
            facts["embedding_norm"] = os.path.abspath(self.params.embedding_norm)
        return ImportedModel(network=network, feat_dim=feat_dim, weights=weights,
                             front_end=speechbrain_front_end(feat_dim, self.params.sample_rate), ignored=ignored,
                             facts=facts)

    @staticmethod
    def _embedding_mean(path: str, dim: int) -> np.ndarray:
        stats = TorchCheckpoint(path).obj
        if not isinstance(stats, dict) or not isinstance(stats.get("glob_mean"), np.ndarray):
            raise ToolError(f"{path}: no 'glob_mean' tensor (a SpeechBrain InputNormalization checkpoint, "
                            "mean_var_norm_emb.ckpt, expected)")
        mean = stats["glob_mean"].astype(np.float32).reshape(-1)
        if mean.size != dim:
            raise ToolError(f"{path}: glob_mean has {mean.size} values, the embedding {dim}")
        return mean
