"""Kaldi tables of numbers: int32 and float per key (``num_utts.ark``, ``utt2num_frames``, ``utt2dur``).

Kaldi's ``Int32Writer`` / ``BaseFloatWriter`` and their readers (``kaldi-holder.h``,
``BasicHolder``): in an archive each entry is ``key`` + space + value, where the value is

* text (``ark,t:``): the number and a newline (Kaldi adds a space before the newline; readers
  accept both). Integers print as integers, floats with 7 significant digits (C++ ostream
  precision 7, ``%.7g``);
* binary (``ark:``): ``\\0B`` then Kaldi ``WriteBasicType``: the size byte (4) and 4
  little-endian bytes (int32, or float32 for BaseFloat).

Outputs go through :mod:`tfspk.io.xfilename` (a file appears only when complete, ``-`` is
standard output, ``| cmd`` a checked pipe).
"""
from __future__ import annotations

import struct
from typing import Iterable

from tfspk.errors import ToolError
from tfspk.io import xfilename
from tfspk.io.ark import parse_wspecifier
from tfspk.io.table import table_location


def _parse_wspecifier(wspec: str):
    spec = parse_wspecifier(wspec)
    if "scp" in spec.kinds:
        raise ToolError(f"invalid wspecifier '{wspec}' for a table of numbers: use ark,t:<file>")
    return spec


def format_entry(key: str, value, kind: type, text: bool) -> bytes:
    """One table entry as Kaldi writes it (see the module docstring)."""
    if text:
        number = f"{int(value)}" if kind is int else f"{float(value):.7g}"
        return f"{key} {number}\n".encode("utf-8", "surrogateescape")
    packed = struct.pack("<bi", 4, int(value)) if kind is int else struct.pack("<bf", 4, float(value))
    return key.encode("utf-8", "surrogateescape") + b" \0B" + packed


class ScalarTableWriter:
    """Write ``key value`` pairs to ``ark,t:file``, ``ark:file`` (Kaldi binary basic type),
    ``ark,t:-``, ``ark:-`` or ``ark:| cmd``; a file appears only when the writer closes without
    error. ``kind`` is ``int`` (Int32Writer) or ``float`` (BaseFloatWriter)."""

    def __init__(self, wspec: str, kind: type = int):
        spec = _parse_wspecifier(wspec)
        self.location = spec.locations[0]
        self.text = spec.text
        self.kind = kind
        self._output = xfilename.Output(self.location)

    def write(self, key: str, value) -> None:
        self._output.write(format_entry(key, value, self.kind, self.text))

    def close(self, failed: bool = False) -> None:
        self._output.close(failed)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(failed=exc_type is not None)
        return False


def write_scalar_table(wspecifier: str, items: Iterable[tuple[str, object]], kind: type = int) -> None:
    """Write ``(key, value)`` pairs: text lines for ``ark,t:``, Kaldi binary for ``ark:``."""
    with ScalarTableWriter(wspecifier, kind) as writer:
        for key, value in items:
            writer.write(key, value)


def write_int32_table(wspecifier: str, items: Iterable[tuple[str, int]]) -> None:
    """Write an int32 table such as ``num_utts.ark`` (Kaldi ``Int32Writer``)."""
    write_scalar_table(wspecifier, items, int)


def read_scalar_table(rspecifier: str, kind: type = int) -> dict[str, int | float]:
    """A table of numbers (``ark:f``, a plain path, ``-`` or ``cmd |``), text or Kaldi binary
    entries (``key \\0B\\4`` + int32/float32), into ``{key: value}``; ToolError naming the key
    for a value that is not a number of ``kind``."""
    location = table_location(rspecifier)
    data = xfilename.read_bytes(location)
    unpack = "<i" if kind is int else "<f"
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
            value = struct.unpack(unpack, data[pos + 3:pos + 7])[0]
            pos += 7
        else:
            line_end = data.find(b"\n", pos)
            line_end = len(data) if line_end < 0 else line_end
            text = data[pos:line_end].decode("utf-8", "surrogateescape").strip()
            pos = line_end + 1
            try:
                value = kind(text)
            except ValueError:
                what = "an integer" if kind is int else "a number"
                raise ToolError(f"{location}: key '{key}': expected {what}, got '{text}'") from None
        result[key] = value
    return result


def read_int32_table(rspecifier: str) -> dict[str, int]:
    """An int32 table such as ``ark:num_utts.ark`` (Kaldi ``RandomAccessInt32Reader``)."""
    return read_scalar_table(rspecifier, int)
