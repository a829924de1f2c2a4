"""Kaldi nnet3 raw files (``final.raw``, text or binary): the components and the graph of config lines.

The file (Kaldi ``Nnet::Write``): the token ``<Nnet3>``, a newline, the network's config lines as text
(``input-node``, ``component-node``, ``output-node``; in binary files too) ended by an empty line, then
``<NumComponents> N`` and N times ``<ComponentName> name`` followed by the component's own
``Write``: ``<TypeName>``, ``<Field> value`` pairs, ``</TypeName>``; the file ends with ``</Nnet3>``.
Binary files start with ``\\0B``; tokens end with one space; an int32 or float is a size byte (4)
and 4 little-endian bytes, a double a size byte 8 and 8 bytes, a bool the character T or F; a matrix
is ``FM `` (``DM `` double), int32 rows, int32 cols, the rows; a vector ``FV `` (``DV ``), int32 dim, the
values. Text files write numbers as words and matrices/vectors as ``[ ... ]`` (a matrix one row per line).

The config lines give the graph: ``input-node``, ``component-node name=... component=... input=<descriptor>``
(descriptors: a node, an ``Append`` of ``Offset`` terms of one node, ``Round(node, 1)``) and ``output-node``;
anything else is a ToolError naming the line. The mapping of an x-vector network onto ``tdnn_kaldi`` is
tfspk.importers.kaldi_nnet3.
"""
from __future__ import annotations

import dataclasses
import re
import struct

import numpy as np

from tfspk.errors import ToolError

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


def parse_graph(nnet: Nnet3) -> tuple[int, dict, str]:
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


def only_consumer(nodes: dict, source: str, where: str) -> str:
    users = [name for name, (_, src, _) in nodes.items() if src == source]
    if len(users) != 1:
        raise ToolError(f"{where}: node '{source}' feeds {len(users)} nodes ({', '.join(users) or 'none'}); an "
                        "x-vector network is a chain")
    return users[0]
