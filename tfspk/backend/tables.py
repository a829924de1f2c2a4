"""The back-end's side of Kaldi tables: vector archives as matrices, token tables, int32 tables, trials.

Thin adapters over :mod:`tfspk.io` that add what the back-end tools need: a whole vector table as
one ``[N, D]`` array with its keys (checked for dimension and finite values, errors naming the key),
``ark:file`` token tables (``ark:data/spk2utt``), the ``num_utts.ark`` int32 tables of ivector-mean,
and trials from a file, ``-`` or a ``command |``.
"""
from __future__ import annotations

import struct
from typing import Sequence

import numpy as np

from tfspk.backend import kaldi_objects
from tfspk.backend.util import without_gc
from tfspk.backend.vectors import check_vectors
from tfspk.errors import ToolError
from tfspk.io import ark, table


def load_vectors(rspecifier: str, allow_empty: bool = False) -> tuple[list[str], np.ndarray]:
    """All vectors of a table as ``(keys, float64 [N, D])``; ToolError for matrices, mixed
    dimensions, NaN/inf, duplicate keys (each naming the key), or an empty table."""
    keys, rows = [], []
    seen = set()
    dim = None
    for key, value in ark.read_rspecifier(rspecifier):
        if value.ndim != 1:
            raise ToolError(f"{rspecifier}: key '{key}' holds a matrix of shape {value.shape}, expected a vector")
        if dim is None:
            dim = value.shape[0]
        elif value.shape[0] != dim:
            raise ToolError(f"{rspecifier}: vector for key '{key}' has dimension {value.shape[0]}, "
                            f"expected {dim} like the vectors before it")
        if key in seen:
            raise ToolError(f"{rspecifier}: duplicate key '{key}'")
        seen.add(key)
        keys.append(key)
        rows.append(value)
    if not keys:
        if allow_empty:
            return [], np.zeros((0, 0))
        raise ToolError(f"{rspecifier}: no vectors read")
    vectors = np.asarray(rows, dtype=np.float64)
    check_vectors(keys, vectors, rspecifier)
    return keys, vectors


def write_vectors(wspecifier: str, keys: Sequence[str], vectors: np.ndarray) -> None:
    """Write rows as float (``FV``, Kaldi's BaseFloat) vectors, atomically."""
    vectors = np.asarray(vectors, dtype=np.float32)
    with ark.ArchiveWriter(wspecifier) as writer:
        for key, vector in zip(keys, vectors):
            writer.write(key, vector)


def token_table_path(rspecifier: str) -> str:
    """The file behind a text token-table rspecifier: ``ark:data/utt2spk`` or a plain path."""
    spec = rspecifier.strip()
    if ":" in spec.split("/")[0] and not spec.startswith("/"):
        parsed = ark.parse_rspecifier(spec)
        if parsed.kinds[0] != "ark":
            raise ToolError(f"'{rspecifier}': expected a text table (ark:file), not {parsed.kinds[0]}:")
        return parsed.locations[0]
    return spec


def read_text_lines(location: str) -> tuple[str, list[str]]:
    """Lines of a text rxfilename (path, ``-`` or ``command |``) and a name for messages."""
    if location == "-" or location.endswith("|"):
        data = kaldi_objects.read_rxfilename(location)
        return location, data.decode("utf-8", "surrogateescape").splitlines()
    return location, table.read_lines(location)


def read_spk2utt(rspecifier: str) -> dict[str, list[str]]:
    """spk2utt (``spk utt1 utt2 ...``) from an rspecifier or path; a speaker without utterances is an error."""
    location = token_table_path(rspecifier)
    if location == "-" or location.endswith("|"):
        name, lines = read_text_lines(location)
        result = {}
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if len(fields) < 2:
                raise ToolError(f"{name}:{number}: Speaker with no utterances: '{line.strip()}'")
            result[fields[0]] = fields[1:]
        return result
    return table.read_spk2utt(location, sorted_keys=False)


def read_utt2spk(rspecifier: str) -> dict[str, str]:
    location = token_table_path(rspecifier)
    name, lines = read_text_lines(location)
    result = {}
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if len(fields) != 2:
            raise ToolError(f"{name}:{number}: expected 'utterance speaker', got '{line.strip()}'")
        if fields[0] in result:
            raise ToolError(f"{name}:{number}: duplicate utterance '{fields[0]}'")
        result[fields[0]] = fields[1]
    return result


@without_gc
def read_trials(rxfilename: str) -> list[tuple[str, str]]:
    """Trial pairs from ``enroll test [label]`` lines (Kaldi takes 2 fields; a label is ignored)."""
    name, lines = read_text_lines(rxfilename)
    fields = [line.split() for line in lines]
    if any(len(f) not in (2, 3) for f in fields):
        number = next(i for i, f in enumerate(fields, 1) if len(f) not in (2, 3))
        raise ToolError(f"{name}:{number}: Bad line in trials (expected two fields: key1 key2, "
                        f"optionally a third target|nontarget): '{lines[number - 1].strip()}'")
    return [(f[0], f[1]) for f in fields]


@without_gc
def read_labelled_trials(rxfilename: str) -> dict[tuple[str, str], bool]:
    """``(enroll, test) -> is_target`` from ``enroll test target|nontarget`` lines."""
    name, lines = read_text_lines(rxfilename)
    labels = {}
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if len(fields) != 3 or fields[2] not in ("target", "nontarget"):
            raise ToolError(f"{name}:{number}: expected 'enroll test target|nontarget', got '{line.strip()}'")
        labels[(fields[0], fields[1])] = fields[2] == "target"
    if not labels:
        raise ToolError(f"{name}: no trials")
    return labels


@without_gc
def read_scores(rxfilename: str) -> tuple[list[tuple[str, str]], np.ndarray]:
    """A Kaldi scores file ``enroll test score`` -> ``(pairs, float64 scores)``."""
    name, lines = read_text_lines(rxfilename)
    pairs, scores = [], []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        try:
            if len(fields) != 3:
                raise ValueError
            scores.append(float(fields[2]))
        except ValueError:
            raise ToolError(f"{name}:{number}: expected 'enroll test score', got '{line.strip()}'") from None
        pairs.append((fields[0], fields[1]))
    if not pairs:
        raise ToolError(f"{name}: no scores")
    values = np.array(scores, dtype=np.float64)
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ToolError(f"{name}:{bad + 1}: score for trial '{pairs[bad][0]} {pairs[bad][1]}' is not finite")
    return pairs, values


@without_gc
def format_scores(pairs: Sequence[tuple[str, str]], scores: np.ndarray) -> str:
    """``key1 key2 score`` lines, scores printed like Kaldi's text output (``%.7g``)."""
    # f"{x:.7g}" is kaldi_objects.format_number(x) (C printf %.7g), inlined for speed.
    return "".join([f"{e} {t} {s:.7g}\n" for (e, t), s in zip(pairs, scores.tolist())])


def write_text(wxfilename: str, text: str) -> None:
    kaldi_objects.write_wxfilename(wxfilename, text.encode("utf-8", "surrogateescape"))


# ---------------------------------------------------------------------- int32 tables
def read_int32_table(rspecifier: str) -> dict[str, int]:
    """An int32 table such as ``ark:num_utts.ark`` (text ``key n`` lines or Kaldi binary ``key \\0B\\4 int32``)."""
    location = token_table_path(rspecifier)
    data = kaldi_objects.read_rxfilename(location)
    result = {}
    pos = 0
    while pos < len(data):
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if pos >= len(data):
            break
        end = pos
        while end < len(data) and not data[end:end + 1].isspace():
            end += 1
        key = data[pos:end].decode("utf-8", "surrogateescape")
        pos = end + 1
        if data[pos:pos + 3] == b"\0B\x04" and pos + 7 <= len(data):
            value = struct.unpack("<i", data[pos + 3:pos + 7])[0]
            pos += 7
        else:
            line_end = data.find(b"\n", pos)
            line_end = len(data) if line_end < 0 else line_end
            text = data[pos:line_end].decode("utf-8", "surrogateescape").strip()
            pos = line_end + 1
            try:
                value = int(text)
            except ValueError:
                raise ToolError(f"{location}: key '{key}': expected an integer, got '{text}'") from None
        result[key] = value
    return result


def write_int32_table(wspecifier: str, items: Sequence[tuple[str, int]]) -> None:
    """Write an int32 table: text lines for ``ark,t:``, Kaldi binary for ``ark:``."""
    spec = ark.parse_wspecifier(wspecifier)
    location = spec.locations[0]
    if spec.text:
        data = "".join(f"{key} {int(value)}\n" for key, value in items).encode()
    else:
        data = b"".join(key.encode() + b" \0B\x04" + struct.pack("<i", int(value)) for key, value in items)
    kaldi_objects.write_wxfilename(location, data)
