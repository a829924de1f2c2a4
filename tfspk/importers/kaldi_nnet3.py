"""Kaldi nnet3 x-vector models (``final.raw``, text or binary) -> the ``tdnn_kaldi`` network.

The file (Kaldi ``Nnet::Write``): the token ``<Nnet3>``, a newline, the network's config lines as text
(``input-node``, ``component-node``, ``output-node``; in binary files too) ended by an empty line, then
``<NumComponents> N`` and N times ``<ComponentName> name`` followed by the component's own
``Write``: ``<TypeName>``, ``<Field> value`` pairs, ``</TypeName>``; the file ends with ``</Nnet3>``.
Binary files start with ``\\0B``; tokens end with one space; an int32 or float is a size byte (4)
and 4 little-endian bytes, a double a size byte 8 and 8 bytes, a bool the character T or F; a matrix
is ``FM `` (``DM `` double), int32 rows, int32 cols, the rows; a vector ``FV `` (``DV ``), int32 dim, the
values. Text files write numbers as words and matrices/vectors as ``[ ... ]`` (a matrix one row per line).

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
import re
import struct

import numpy as np

from tfspk.errors import ToolError
from tfspk.features.frontend import FrontEnd
from tfspk.features.options import FrameOptions, MelOptions, MfccOptions
from tfspk.features.vad import VadOptions
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

# Field kinds of every component type read (Kaldi's Read() functions); a field not listed is an error.
_UPDATABLE = {"LearningRateFactor": "float", "IsGradient": "bool", "MaxChange": "float", "L2Regularize": "float",
              "LearningRate": "float"}
_AFFINE = {**_UPDATABLE, "LinearParams": "matrix", "BiasParams": "vector", "OrthonormalConstraint": "float"}
_NONLINEAR = {"Dim": "int", "BlockDim": "int", "ValueAvg": "vector", "DerivAvg": "vector", "Count": "float",
              "OderivRms": "vector", "OderivCount": "float", "NumDimsSelfRepaired": "float",
              "NumDimsProcessed": "float", "SelfRepairLowerThreshold": "float",
              "SelfRepairUpperThreshold": "float", "SelfRepairScale": "float"}
COMPONENT_FIELDS = {
    "AffineComponent": _AFFINE,
    "NaturalGradientAffineComponent": {**_AFFINE, "RankIn": "int", "RankOut": "int", "UpdatePeriod": "int",
                                       "NumSamplesHistory": "float", "Alpha": "float",
                                       "MaxChangePerSample": "float"},
    "RectifiedLinearComponent": _NONLINEAR,
    "LogSoftmaxComponent": _NONLINEAR,
    "BatchNormComponent": {"Dim": "int", "BlockDim": "int", "Epsilon": "float", "TargetRms": "float",
                           "TestMode": "bool", "Count": "float", "StatsMean": "vector", "StatsVar": "vector"},
    # "IncludeVarinance" is Kaldi's own spelling of the token.
    "StatisticsExtractionComponent": {"InputDim": "int", "InputPeriod": "int", "OutputPeriod": "int",
                                      "IncludeVarinance": "bool"},
    "StatisticsPoolingComponent": {"InputDim": "int", "InputPeriod": "int", "LeftContext": "int",
                                   "RightContext": "int", "NumLogCountFeatures": "int", "OutputStddevs": "bool",
                                   "VarianceFloor": "float"},
}


@dataclasses.dataclass
class Component:
    name: str
    type: str
    fields: dict
    offset: int          # byte offset of its <ComponentName> in the file


@dataclasses.dataclass
class Nnet3:
    """A parsed nnet3 file: config lines and components (in file order)."""
    path: str
    binary: bool
    config_lines: list
    components: dict


# ---------------------------------------------------------------------------------------------- reading
class _Reader:
    """Kaldi token/basic-type reader over the bytes of one file, text or binary; errors name the offset."""

    def __init__(self, data: bytes, path: str, binary: bool, pos: int):
        self.data, self.path, self.binary, self.pos = data, path, binary, pos

    def fail(self, what: str, pos: int | None = None):
        raise ToolError(f"{self.path}: {what} (byte offset {self.pos if pos is None else pos})")

    def _skip_space(self):
        data, pos = self.data, self.pos
        while pos < len(data) and data[pos] in b" \t\n\r":
            pos += 1
        self.pos = pos

    def mark(self) -> int:
        """The offset of the next token (after whitespace): what errors about it name."""
        self._skip_space()
        return self.pos

    def _word(self) -> str:
        self._skip_space()
        start = self.pos
        end = start
        while end < len(self.data) and self.data[end] not in b" \t\n\r":
            end += 1
        if end == start:
            self.fail("unexpected end of file (truncated?)")
        self.pos = end
        try:
            return self.data[start:end].decode("ascii")
        except UnicodeDecodeError:
            self.fail("expected a token, found binary data", start)

    def token(self) -> str:
        if self.binary:
            self._skip_space()  # Kaldi's ReadToken skips leading whitespace in both modes
            end = self.data.find(b" ", self.pos)
            if end < 0:
                self.fail("unexpected end of file in a token (truncated?)")
            raw = self.data[self.pos:end]
            start, self.pos = self.pos, end + 1
            try:
                return raw.decode("ascii")
            except UnicodeDecodeError:
                self.fail("expected a token, found binary data", start)
        return self._word()

    def expect(self, expected: str) -> None:
        start = self.mark()
        got = self.token()
        if got != expected:
            self.fail(f"expected {expected}, got {got[:40]!r}", start)

    def peek_is_token(self) -> bool:
        self._skip_space()
        return self.pos < len(self.data) and self.data[self.pos:self.pos + 1] == b"<"

    def _take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            self.fail(f"unexpected end of file: {count} bytes needed, {len(self.data) - self.pos} left (truncated?)")
        chunk = self.data[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def basic(self, kind: str):
        """An int32 / float / bool value."""
        start = self.pos
        if self.binary:
            if kind == "bool":
                char = self._take(1)
                if char not in (b"T", b"F"):
                    self.fail(f"expected a bool (T or F), got {char!r}", start)
                return char == b"T"
            size = self._take(1)[0]
            if kind == "int":
                if size != 4:
                    self.fail(f"expected an int32 (size byte 4), got size byte {size}", start)
                return struct.unpack("<i", self._take(4))[0]
            if size == 4:
                return float(struct.unpack("<f", self._take(4))[0])
            if size == 8:
                return float(struct.unpack("<d", self._take(8))[0])
            self.fail(f"expected a float (size byte 4 or 8), got size byte {size}", start)
        word = self._word()
        try:
            if kind == "bool":
                if word not in ("T", "F"):
                    raise ValueError
                return word == "T"
            return int(word) if kind == "int" else float(word)
        except ValueError:
            self.fail(f"expected a{'n integer' if kind == 'int' else ' bool' if kind == 'bool' else ' number'}, "
                      f"got {word[:40]!r}", start)

    def array(self, kind: str) -> np.ndarray:
        """A Kaldi Vector (kind 'vector') or Matrix ('matrix'), float32 or float64 on disk -> float64."""
        start = self.pos
        if self.binary:
            self._skip_space()
            tag = self.token()
            expected = ("FM", "DM") if kind == "matrix" else ("FV", "DV")
            if tag not in expected:
                self.fail(f"expected a {kind} ({' or '.join(expected)}), got {tag[:40]!r}", start)
            dtype = "<f4" if tag[0] == "F" else "<f8"
            if kind == "matrix":
                rows, cols = self.basic("int"), self.basic("int")
            else:
                rows, cols = 1, self.basic("int")
            if rows < 0 or cols < 0:
                self.fail(f"negative {kind} dimension {rows} x {cols}", start)
            values = np.frombuffer(self._take(rows * cols * np.dtype(dtype).itemsize), dtype=dtype)
            values = values.astype(np.float64)
            return values.reshape(rows, cols) if kind == "matrix" else values
        self._skip_space()
        if self.data[self.pos:self.pos + 1] != b"[":
            self.fail(f"expected a {kind} in brackets '[ ... ]', got {self.data[self.pos:self.pos + 20]!r}", start)
        end = self.data.find(b"]", self.pos)
        if end < 0:
            self.fail(f"unexpected end of file in a {kind} (no closing ']'; truncated?)", start)
        body = self.data[self.pos + 1:end].decode("ascii", "replace")
        self.pos = end + 1
        try:
            rows = [[float(v) for v in line.split()] for line in body.splitlines() if line.strip()]
        except ValueError:
            self.fail(f"a {kind} with a value that is not a number", start)
        if kind == "vector":
            return np.array([v for row in rows for v in row], np.float64)
        if rows and len({len(r) for r in rows}) != 1:
            self.fail("a matrix whose rows have different lengths", start)
        return np.array(rows, np.float64).reshape(len(rows), len(rows[0]) if rows else 0)


def read_nnet3(path: str) -> Nnet3:
    """Parse a Kaldi nnet3 raw file (text or binary). ToolError naming the byte offset of what is wrong,
    and the component for unknown types or fields."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise ToolError(f"cannot read {path}: {err.strerror}") from None
    binary = data.startswith(b"\0B")
    reader = _Reader(data, path, binary, 2 if binary else 0)
    first_start = reader.mark()
    first = reader.token() if data.strip() else ""
    if first == "<TransitionModel>":
        reader.fail("a Kaldi .mdl (transition model + acoustic model), not an nnet3 x-vector raw file", first_start)
    if first != "<Nnet3>":
        reader.fail(f"not a Kaldi nnet3 file: expected <Nnet3>, got {first[:40]!r}", first_start)
    # Config lines: text up to an empty line (Nnet::Read's getline loop).
    newline = data.find(b"\n", reader.pos)
    if newline < 0:
        reader.fail("unexpected end of file after <Nnet3> (truncated?)")
    pos, lines = newline + 1, []
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            reader.fail("unexpected end of file in the config lines (no empty line after them; truncated?)", pos)
        line = data[pos:end].decode("utf-8", "replace").rstrip("\r")
        pos = end + 1
        if not line:
            break
        lines.append(line)
    reader.pos = pos
    reader.expect("<NumComponents>")
    count = reader.basic("int")
    if not 0 <= count < 100000:
        reader.fail(f"implausible number of components {count}")
    components = {}
    for _ in range(count):
        offset = reader.mark()
        reader.expect("<ComponentName>")
        name = reader.token()
        type_start = reader.mark()
        opening = reader.token()
        type_name = opening[1:-1] if opening.startswith("<") and opening.endswith(">") else opening
        if type_name not in COMPONENT_FIELDS:
            reader.fail(f"component '{name}' has type {opening}, which this importer does not know (supported: "
                        f"{', '.join(sorted(COMPONENT_FIELDS))}); not an x-vector network of Kaldi's recipes?",
                        type_start)
        kinds, fields = COMPONENT_FIELDS[type_name], {}
        closing = f"</{type_name}>"
        while True:
            field_start = reader.mark()
            tag = reader.token()
            if tag == closing:
                break
            key = tag[1:-1] if tag.startswith("<") and tag.endswith(">") else None
            if key not in kinds:
                reader.fail(f"component '{name}' ({type_name}): unexpected {tag[:40]!r}", field_start)
            kind = kinds[key]
            fields[key] = reader.array(kind) if kind in ("vector", "matrix") else reader.basic(kind)
        components[name] = Component(name, type_name, fields, offset)
    reader.expect("</Nnet3>")
    return Nnet3(path, binary, lines, components)


# ---------------------------------------------------------------------------------------------- graph
_NAME = r"[A-Za-z0-9_.\-]+"


def _parse_config_line(line: str, where: str) -> tuple[str, dict]:
    """``kind key=value ...`` -> (kind, {key: value}); values may hold spaces inside parentheses."""
    kind, _, rest = line.strip().partition(" ")
    values, key, depth, current = {}, None, 0, ""
    for char in rest + " ":
        if char == " " and depth == 0:
            if current:
                if "=" not in current or key is not None:
                    raise ToolError(f"{where}: cannot parse config line '{line}'")
                k, v = current.split("=", 1)
                values[k] = v
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    return kind, values


def _parse_input(descriptor: str, where: str) -> tuple[str, tuple]:
    """A component-node's input -> (source node, sorted offsets). Understands ``node``,
    ``Append(Offset(node, a), node, ...)`` (one node) and ``Round(node, 1)``; anything else is an error."""
    text = descriptor.replace(" ", "")
    match = re.fullmatch(rf"Round\(({_NAME}),1\)", text)
    if match:
        return match.group(1), (0,)
    if re.fullmatch(_NAME, text):
        return text, (0,)
    match = re.fullmatch(r"Append\((.*)\)", text)
    if match:
        terms, depth, current = [], 0, ""
        for char in match.group(1) + ",":
            if char == "," and depth == 0:
                terms.append(current)
                current = ""
                continue
            depth += (char == "(") - (char == ")")
            current += char
        source, offsets = None, []
        for term in terms:
            inner = re.fullmatch(rf"Offset\(({_NAME}),(-?\d+)\)", term)
            node, offset = (inner.group(1), int(inner.group(2))) if inner else (term, 0)
            if not re.fullmatch(_NAME, node) or (source is not None and node != source):
                raise ToolError(f"{where}: input '{descriptor}' is not an Append of offsets of one node")
            source = node
            offsets.append(offset)
        # Append keeps the written order; every recipe writes ascending offsets (the kernel order below).
        if offsets != sorted(set(offsets)):
            raise ToolError(f"{where}: input '{descriptor}': offsets must ascend")
        return source, tuple(offsets)
    raise ToolError(f"{where}: input descriptor '{descriptor}' is not supported (node, Append of Offsets, Round)")


def _graph(nnet: Nnet3) -> tuple[int, dict, str]:
    """(input dim, {component-node name: (component name, source node, offsets)}, output node's input)."""
    input_dim, nodes, output = None, {}, None
    for number, line in enumerate(nnet.config_lines, 1):
        where = f"{nnet.path}: config line {number}"
        kind, values = _parse_config_line(line, where)
        if kind == "input-node":
            if values.get("name") != "input":
                raise ToolError(f"{where}: the input node must be named 'input', got '{values.get('name')}'")
            input_dim = int(values.get("dim", "0"))
        elif kind == "component-node":
            source, offsets = _parse_input(values.get("input", ""), f"{where} (node {values.get('name')})")
            nodes[values["name"]] = (values.get("component"), source, offsets)
        elif kind == "output-node":
            if values.get("name") == "output":
                output = values.get("input", "")
        else:
            raise ToolError(f"{where}: '{kind}' lines are not part of an x-vector network")
    if not input_dim:
        raise ToolError(f"{nnet.path}: no input-node with a dim")
    return input_dim, nodes, output


def _consumer(nodes: dict, source: str, where: str) -> str:
    users = [name for name, (_, src, _) in nodes.items() if src == source]
    if len(users) != 1:
        raise ToolError(f"{where}: node '{source}' feeds {len(users)} nodes ({', '.join(users) or 'none'}); an "
                        "x-vector network is a chain")
    return users[0]


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
    input_dim, nodes, output = _graph(nnet)
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
        bn_node = _consumer(nodes, node, path)
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
        consumer = _consumer(nodes, node, path)
        _, source, offsets = nodes[consumer]
        if offsets != context:
            raise ToolError(f"{path}: node '{consumer}' reads {source} at offsets {list(offsets)}; layer {index} of "
                            f"the x-vector TDNN (tdnn_kaldi) has context {list(context)}")
        dim_out = affine(consumer, dim, offsets, layer, conv=True)
        widths.append(dim_out)
        node = relu_batchnorm(_consumer(nodes, consumer, path), dim_out, layer)
        dim = dim_out
    extraction_node = _consumer(nodes, node, path)
    extraction = _component(nnet, nodes, extraction_node, "StatisticsExtractionComponent", path)
    fields = extraction.fields
    if fields.get("InputDim") != dim or fields.get("InputPeriod") != 1 or fields.get("OutputPeriod") != 1 \
            or not fields.get("IncludeVarinance"):
        raise ToolError(f"{path}: component '{extraction.name}' (byte offset {extraction.offset}): only input-dim "
                        f"{dim}, input/output period 1 and include-variance true are supported, got {fields}")
    used.append(extraction.name)
    pooling_node = _consumer(nodes, extraction_node, path)
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
    segment = _consumer(nodes, pooling_node, path)
    if nodes[segment][2] != (0,):
        raise ToolError(f"{path}: node '{segment}' reads the pooled statistics at offsets {list(nodes[segment][2])}")
    embedding = affine(segment, 2 * dim, (0,), "tdnn6", conv=False)
    node = relu_batchnorm(_consumer(nodes, segment, path), embedding, "tdnn6")
    second = _consumer(nodes, node, path)
    embedding7 = affine(second, embedding, (0,), "tdnn7", conv=False)
    if embedding7 != embedding:
        raise ToolError(f"{path}: tdnn7 has {embedding7} outputs, tdnn6 {embedding}; tdnn_kaldi has one "
                        "embedding_dim")
    node = relu_batchnorm(_consumer(nodes, second, path), embedding, "tdnn7", relu_kept=False)
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
