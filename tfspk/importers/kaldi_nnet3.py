"""Kaldi nnet3 x-vector models (``final.raw``, text or binary) -> the ``tdnn_kaldi`` network.

The file format and its reader: tfspk.importers.nnet3_file.

The network (egs/voxceleb/v2 and egs/sre16 ``local/nnet3/xvector/tuning/run_xvector_1a.sh``,
[Snyder2018]): ``relu-batchnorm-layer`` tdnn1..tdnn5 on ``Append`` contexts {-2..2}, {-2,0,2},
{-3,0,3}, {0}, {0} (each ``tdnnN.affine`` -> ``tdnnN.relu`` -> ``tdnnN.batchnorm``), a ``stats-layer``
(StatisticsExtractionComponent -> StatisticsPoolingComponent, mean + stddev), tdnn6 and tdnn7
(segment level) and the training output (``output.affine``, ``output.log-softmax``). The x-vector is
``tdnn6.affine``'s output (Kaldi's extract.config: ``output-node name=output input=tdnn6.affine``),
tfspk's ``embedding_a``.

Component semantics used (Kaldi nnet-simple-component.cc, nnet-normalize-component.cc,
nnet-general-component.cc):

* (NaturalGradient)AffineComponent: y = W x + b, W = ``<LinearParams>`` [out, in] over the
  ``Append``ed input [x(t+o_1), ..., x(t+o_k)], b = ``<BiasParams>``. A context {o_j} = d * {-m..m}
  is a Conv1D of kernel 2m+1, dilation d: kernel[j, i, :] = W[:, j * in + i].
* RectifiedLinearComponent: y = max(0, x).
* BatchNormComponent in test mode (Kaldi's extraction sets it whatever ``<TestMode>`` says):
  y = target_rms * (x - mean) / sqrt(max(var, 0) + epsilon) with ``<StatsMean>``, ``<StatsVar>``
  (per block of ``<BlockDim>``); as Keras BN: gamma = target_rms, beta = 0, moving mean/variance.
  ``bn_epsilon`` of the network is Kaldi's epsilon (the same in every layer, else the variance
  absorbs the difference).
* StatisticsExtractionComponent (periods 1) + StatisticsPoolingComponent (``output-stddevs``,
  no log-count features): over the frames the frame layers produce, [mean, sqrt(max(E[x^2] - mean^2,
  variance_floor))] -- tfspk's StatisticsPooling with ``variance_floor`` = Kaldi's ``<VarianceFloor>``.

tdnn7's ReLU is dropped: tfspk's x-vector networks feed the loss with the last segment layer
without its ReLU (``embedding_b``); the x-vector (``embedding_a``) is unchanged. The training output
(``output.affine``, ``output.log-softmax``) has no tfspk counterpart (a tfspk experiment trains its
own head) and is reported as unused. Anything else -- another component type, context, layer
order or pooling option -- is a ToolError naming the component (and for unreadable files the byte
offset).
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from tfspk.errors import ToolError
from tfspk.features.frontend import FrontEnd
from tfspk.features.options import FrameOptions, MelOptions, MfccOptions
from tfspk.features.vad import VadOptions
from tfspk.importers.nnet3_file import Component, Nnet3, only_consumer, parse_graph, read_nnet3
from tfspk.importers.registry import ImportedModel, Source, register_source
from tfspk.params import param

# The front end of Kaldi's recipes at inference (conf/mfcc.conf, conf/vad.conf; sid/nnet3/xvector/
# extract_xvectors.sh: apply-cmvn-sliding --norm-vars=false --center=true --cmn-window=300, then
# select-voiced-frames). The text is what the recipes' files say, option for option.
def _recipe_mfcc(rate: int, num_ceps: int, num_mel_bins: int, high_freq: float) -> MfccOptions:
    """The high-resolution MFCCs of a Kaldi x-vector recipe's conf/mfcc.conf (25 ms frames, --snip-edges=false)."""
    return MfccOptions(frame=FrameOptions(sample_frequency=float(rate), frame_length=25.0, snip_edges=False),
                       mel=MelOptions(num_mel_bins=num_mel_bins, low_freq=20.0, high_freq=high_freq), num_ceps=num_ceps)


#: the front end of each recipe at inference: its conf/mfcc.conf (egs/voxceleb/v2: 30 ceps of 30 bins at
#: 16 kHz; egs/sre16/v2: 23 of 23 at 8 kHz) and conf/vad.conf
FRONT_ENDS = {
    "voxceleb": {"sample_rate": 16000, "feat_dim": 30, "mfcc": _recipe_mfcc(16000, 30, 30, 7600.0)},
    "sre16": {"sample_rate": 8000, "feat_dim": 23, "mfcc": _recipe_mfcc(8000, 23, 23, 3700.0)},
}
VAD_OPTIONS = VadOptions(vad_energy_threshold=5.5, vad_energy_mean_scale=0.5, vad_proportion_threshold=0.12,
                         vad_frames_context=2)
CMN_WINDOW = 300
#: extract_xvectors.sh with the recipes' max_chunk_size / min_chunk_size files.
CHUNK_SIZE, MIN_CHUNK_SIZE = 10000, 25

#: the tdnn_kaldi frame layout, as Kaldi Append offsets.
FRAME_CONTEXTS = ((-2, -1, 0, 1, 2), (-2, 0, 2), (-3, 0, 3), (0,), (0,))


# ---------------------------------------------------------------------------------------------- mapping
@dataclasses.dataclass
class Mapped:
    """The tdnn_kaldi network parameters, its weights by Keras variable path, and the unused components."""
    params: dict
    feat_dim: int
    weights: dict
    used: list
    ignored: dict


def _component(nnet: Nnet3, nodes: dict, node: str, expected_type, where: str) -> Component:
    name = nodes[node][0]
    if name not in nnet.components:
        raise ToolError(f"{where}: node '{node}' names component '{name}', which the file does not have")
    component = nnet.components[name]
    types = (expected_type,) if isinstance(expected_type, str) else expected_type
    if component.type not in types:
        raise ToolError(f"{where}: component '{name}' (byte offset {component.offset}) is a {component.type}; "
                        f"the x-vector layout has a {' or '.join(types)} here")
    return component


def _require(component: Component, field: str, path: str):
    if field not in component.fields:
        raise ToolError(f"{path}: component '{component.name}' ({component.type}, byte offset {component.offset}) "
                        f"has no <{field}>")
    return component.fields[field]


def map_xvector(nnet: Nnet3) -> Mapped:
    """Walk the chain input -> tdnn1..5 -> stats -> tdnn6 -> tdnn7 [-> output] and map every component."""
    path = nnet.path
    input_dim, nodes, output = parse_graph(nnet)
    weights, used, ignored = {}, [], {}
    bn_epsilons = []
    widths = []

    def affine(node, in_dim, offsets, layer, conv):
        component = _component(nnet, nodes, node, ("NaturalGradientAffineComponent", "AffineComponent"), path)
        linear = np.asarray(_require(component, "LinearParams", path))
        bias = np.asarray(_require(component, "BiasParams", path))
        if linear.shape[1] != in_dim * len(offsets) or bias.shape != (linear.shape[0],):
            raise ToolError(f"{path}: component '{component.name}' has LinearParams {linear.shape} and BiasParams "
                            f"{bias.shape}; its input is {len(offsets)} x {in_dim}")
        out_dim = linear.shape[0]
        if conv:   # [out, k * in] -> Conv1D kernel [k, in, out]
            weights[f"{layer}_affine/kernel"] = linear.reshape(out_dim, len(offsets), in_dim).transpose(1, 2, 0)
        else:
            weights[f"{layer}_affine/kernel"] = linear.T
        weights[f"{layer}_affine/bias"] = bias
        used.append(component.name)
        return out_dim

    def relu_batchnorm(node, dim, layer, relu_kept=True):
        relu = _component(nnet, nodes, node, "RectifiedLinearComponent", path)
        if int(_require(relu, "Dim", path)) != dim:
            raise ToolError(f"{path}: component '{relu.name}' has dim {relu.fields['Dim']}, its input {dim}")
        if relu_kept:
            used.append(relu.name)
        else:
            ignored[relu.name] = ("the last segment layer's ReLU: tfspk's embedding_b is tdnn7 without it; the x-vector "
                                  "(tdnn6.affine, embedding_a) does not depend on it")
        bn_node = only_consumer(nodes, node, path)
        bn = _component(nnet, nodes, bn_node, "BatchNormComponent", path)
        block = int(_require(bn, "BlockDim", path))
        if int(_require(bn, "Dim", path)) != dim or dim % block:
            raise ToolError(f"{path}: component '{bn.name}' has dim {bn.fields['Dim']} / block-dim {block}, its input {dim}")
        if float(_require(bn, "Count", path)) <= 0:
            raise ToolError(f"{path}: component '{bn.name}' (byte offset {bn.offset}) has no statistics (count 0): "
                            "an untrained network?")
        mean, var = np.asarray(_require(bn, "StatsMean", path)), np.asarray(_require(bn, "StatsVar", path))
        if mean.shape != (block,) or var.shape != (block,):
            raise ToolError(f"{path}: component '{bn.name}': StatsMean/StatsVar have {mean.shape}/{var.shape}, "
                            f"block-dim {block}")
        epsilon, target_rms = float(_require(bn, "Epsilon", path)), float(_require(bn, "TargetRms", path))
        bn_epsilons.append(epsilon)
        repeat = dim // block
        weights[f"{layer}_bn/gamma"] = np.full(dim, target_rms)
        weights[f"{layer}_bn/beta"] = np.zeros(dim)
        weights[f"{layer}_bn/moving_mean"] = np.tile(mean, repeat)
        # Kaldi: 1 / sqrt(max(var, 0) + eps_layer); Keras: 1 / sqrt(v + eps_network), eps_network fixed below.
        weights[f"{layer}_bn/moving_variance"] = (np.tile(np.maximum(var, 0.0), repeat), epsilon)
        used.append(bn.name)
        return bn_node

    node, dim = "input", input_dim
    for index, context in enumerate(FRAME_CONTEXTS, 1):
        layer = f"tdnn{index}"
        consumer = only_consumer(nodes, node, path)
        _, source, offsets = nodes[consumer]
        if offsets != context:
            raise ToolError(f"{path}: node '{consumer}' reads {source} at offsets {list(offsets)}; layer {index} of "
                            f"the x-vector TDNN (tdnn_kaldi) has context {list(context)}")
        dim_out = affine(consumer, dim, offsets, layer, conv=True)
        widths.append(dim_out)
        node = relu_batchnorm(only_consumer(nodes, consumer, path), dim_out, layer)
        dim = dim_out
    extraction_node = only_consumer(nodes, node, path)
    extraction = _component(nnet, nodes, extraction_node, "StatisticsExtractionComponent", path)
    fields = extraction.fields
    if fields.get("InputDim") != dim or fields.get("InputPeriod") != 1 or fields.get("OutputPeriod") != 1 \
            or not fields.get("IncludeVarinance"):
        raise ToolError(f"{path}: component '{extraction.name}' (byte offset {extraction.offset}): only input-dim "
                        f"{dim}, input/output period 1 and include-variance true are supported, got {fields}")
    used.append(extraction.name)
    pooling_node = only_consumer(nodes, extraction_node, path)
    pooling = _component(nnet, nodes, pooling_node, "StatisticsPoolingComponent", path)
    fields = pooling.fields
    if fields.get("InputDim") != 2 * dim + 1 or fields.get("InputPeriod") != 1 \
            or fields.get("NumLogCountFeatures") != 0 or not fields.get("OutputStddevs") \
            or fields.get("LeftContext") != 0:
        raise ToolError(f"{path}: component '{pooling.name}' (byte offset {pooling.offset}): only mean + stddev "
                        "pooling (output-stddevs true, num-log-count-features 0, left-context 0, period 1) over "
                        f"{dim} dims is supported, got {fields}")
    variance_floor = float(_require(pooling, "VarianceFloor", path))
    used.append(pooling.name)
    segment = only_consumer(nodes, pooling_node, path)
    if nodes[segment][2] != (0,):
        raise ToolError(f"{path}: node '{segment}' reads the pooled statistics at offsets {list(nodes[segment][2])}")
    embedding = affine(segment, 2 * dim, (0,), "tdnn6", conv=False)
    node = relu_batchnorm(only_consumer(nodes, segment, path), embedding, "tdnn6")
    second = only_consumer(nodes, node, path)
    embedding7 = affine(second, embedding, (0,), "tdnn7", conv=False)
    if embedding7 != embedding:
        raise ToolError(f"{path}: tdnn7 has {embedding7} outputs, tdnn6 {embedding}; tdnn_kaldi has one "
                        "embedding_dim")
    node = relu_batchnorm(only_consumer(nodes, second, path), embedding, "tdnn7", relu_kept=False)
    # The training output: output.affine -> output.log-softmax (not part of the embedding network).
    rest = [name for name, (_, src, _) in nodes.items() if src == node]
    while rest:
        if len(rest) != 1:
            raise ToolError(f"{path}: node '{node}' feeds several nodes ({', '.join(rest)})")
        component = nnet.components.get(nodes[rest[0]][0])
        if component is None or component.type not in ("NaturalGradientAffineComponent", "AffineComponent",
                                                       "LogSoftmaxComponent"):
            raise ToolError(f"{path}: node '{rest[0]}' after tdnn7 is not the training output (affine, log-softmax)")
        ignored[component.name] = "the training output (speaker classifier of the source's training speakers)"
        node = rest[0]
        rest = [name for name, (_, src, _) in nodes.items() if src == node]
    left = [name for name in nnet.components if name not in used and name not in ignored]
    if left:
        first = nnet.components[left[0]]
        raise ToolError(f"{path}: {len(left)} component(s) not part of the x-vector chain: {', '.join(left[:6])} "
                        f"(first at byte offset {first.offset})")
    if len(set(widths[:4])) != 1:
        raise ToolError(f"{path}: tdnn1-tdnn4 have widths {widths[:4]}; tdnn_kaldi has one frame_dim")
    epsilon = bn_epsilons[0]
    for key, value in list(weights.items()):
        if key.endswith("moving_variance"):
            var, layer_epsilon = value
            weights[key] = var + (layer_epsilon - epsilon)
    # Kaldi stores these as float32: the shortest decimal of that float32 keeps config.yaml readable.
    params = {"frame_dim": widths[0], "pooling_dim": widths[4], "embedding_dim": embedding,
              "layer_order": "relu_bn", "variance_floor": float(str(np.float32(variance_floor))),
              "bn_epsilon": float(str(np.float32(epsilon)))}
    weights = {k: np.asarray(v, np.float32) for k, v in weights.items()}
    return Mapped(params, input_dim, weights, used, ignored)


# ---------------------------------------------------------------------------------------------- source
@register_source("kaldi_nnet3", "kaldi_xvector")
class KaldiNnet3(Source):
    """Kaldi nnet3 x-vector final.raw (text or binary) of egs/voxceleb/v2 or egs/sre16 -> tdnn_kaldi."""

    @dataclasses.dataclass
    class Params:
        recipe: str = param("auto", "the Kaldi recipe whose front end the model expects: voxceleb (30-dim MFCC, "
                                    "16 kHz), sre16 (23-dim MFCC, 8 kHz), or auto (by the network's input dim)",
                            choices=("auto", "voxceleb", "sre16"))

    def convert(self, checkpoint: str) -> ImportedModel:
        from tfspk.nnet import get_network
        nnet = read_nnet3(checkpoint)
        mapped = map_xvector(nnet)
        recipe = self.params.recipe
        if recipe == "auto":
            found = [name for name, front in FRONT_ENDS.items() if front["feat_dim"] == mapped.feat_dim]
            if not found:
                raise ToolError(f"{checkpoint}: input dim {mapped.feat_dim} is not the MFCC dim of a known recipe "
                                "(" + ", ".join(f"{k}: {v['feat_dim']}" for k, v in FRONT_ENDS.items()) + ")")
            recipe = found[0]
        front = FRONT_ENDS[recipe]
        if front["feat_dim"] != mapped.feat_dim:
            raise ToolError(f"{checkpoint}: the network takes {mapped.feat_dim}-dim features; the {recipe} recipe's "
                            f"MFCCs have {front['feat_dim']}")
        network = get_network("tdnn_kaldi", mapped.params)
        facts = {"source": "kaldi_nnet3", "checkpoint": os.path.abspath(checkpoint),
                 "format": "binary" if nnet.binary else "text", "recipe": recipe,
                 "components": len(nnet.components),
                 "kaldi_extraction": {"chunk_size": CHUNK_SIZE, "min_chunk_size": MIN_CHUNK_SIZE,
                                      "cmn": f"apply-cmvn-sliding --norm-vars=false --center=true "
                                             f"--cmn-window={CMN_WINDOW}", "vad": "select-voiced-frames"}}
        # sliding CMN over 300 frames and the energy VAD on the same MFCCs, as extract_xvectors.sh
        front_end = FrontEnd("mfcc", front["mfcc"], cmn="sliding", cmn_window=CMN_WINDOW, vad=True,
                             vad_options=VAD_OPTIONS)
        return ImportedModel(network=network, feat_dim=mapped.feat_dim, weights=mapped.weights,
                             front_end=front_end, ignored=mapped.ignored, facts=facts)


def import_nnet3(path: str, out_dir: str, recipe: str = "auto", overwrite: bool = False) -> dict:
    """Convert ``path`` into the experiment dir ``out_dir``; returns its config (= ``tfspk-import-model
    --source=kaldi_nnet3 --param recipe=<recipe> <path> <out_dir>``)."""
    from tfspk.importers.expdir import write_experiment
    return write_experiment(out_dir, KaldiNnet3({"recipe": recipe}).convert(path), overwrite=overwrite)
