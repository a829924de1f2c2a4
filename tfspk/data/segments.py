"""Read a run of rows of one matrix from an archive without decoding the whole matrix.

The sampler needs ~300 frames of utterances that are often several times longer. For binary float
matrices (``FM``) only those rows are read; for Kaldi's ``CM`` compressed matrices (the usual
training-feature format) the byte codes are read and only the needed rows decoded, through a
per-column table of the 256 possible values (the same ``decode_columns`` formula the full reader
uses, so values are bit-identical). Any other object (double, CM2/CM3, text, pipes, ranges) falls
back to reading the whole object through :class:`tfspk.io.ark.RandomAccessReader` and slicing.
"""
from __future__ import annotations

import re
import struct
import threading

import numpy as np

from tfspk.errors import ToolError
from tfspk.io import compressed
from tfspk.io.ark import RandomAccessReader

_OFFSET_RE = re.compile(r"^(?P<path>[^|]+):(?P<offset>\d+)$")
_MAX_OPEN_FILES = 32
_ALL_CODES = np.arange(256, dtype=np.uint8)


class SegmentReader:
    """``read(key, offset, length) -> (rows [length, cols] float32, num_rows, num_cols)``, thread safe."""

    def __init__(self, reader: RandomAccessReader):
        self.reader = reader
        self._local = threading.local()

    def _handle(self, path):
        handles = getattr(self._local, "handles", None)
        if handles is None:
            handles = self._local.handles = {}
        if path not in handles:
            if len(handles) >= _MAX_OPEN_FILES:
                for handle in handles.values():
                    handle.close()
                handles.clear()
            try:
                handles[path] = open(path, "rb")
            except OSError as err:
                raise ToolError(f"cannot open {path}: {err.strerror}") from None
        return handles[path]

    def read(self, key: str, offset: int, length: int):
        location = self.reader.location(key)
        match = _OFFSET_RE.match(location.strip())
        if match:
            handle = self._handle(match["path"])
            handle.seek(int(match["offset"]))
            head = handle.read(5)
            if head == b"\0BFM ":
                return self._read_float_rows(handle, location, offset, length)
            if head == b"\0BCM ":
                return self._read_compressed_rows(handle, location, offset, length)
        matrix = self.reader[key]
        if matrix.ndim != 2:
            return np.zeros((0, 0), np.float32), 0, -1
        return np.asarray(matrix[offset:offset + length], dtype=np.float32), matrix.shape[0], matrix.shape[1]

    @staticmethod
    def _exact(handle, count, where):
        data = handle.read(count)
        if len(data) != count:
            raise ToolError(f"{where}: truncated matrix (expected {count} more bytes, found {len(data)})")
        return data

    def _read_float_rows(self, handle, where, offset, length):
        size_rows, rows, size_cols, cols = struct.unpack("<bibi", self._exact(handle, 10, where))
        if size_rows != 4 or size_cols != 4 or rows < 0 or cols < 0:
            raise ToolError(f"{where}: corrupt float matrix header")
        stop = min(rows, offset + length)
        if offset >= stop:
            return np.zeros((0, cols), np.float32), rows, cols
        data_start = handle.tell()
        handle.seek(data_start + 4 * cols * offset)
        data = self._exact(handle, 4 * cols * (stop - offset), where)
        return np.frombuffer(data, dtype="<f4").reshape(stop - offset, cols).astype(np.float32), rows, cols

    def _read_compressed_rows(self, handle, where, offset, length):
        min_value, value_range, rows, cols = struct.unpack("<ffii", self._exact(handle, 16, where))
        if rows < 0 or cols < 0 or rows * cols > (1 << 34):
            raise ToolError(f"{where}: corrupt compressed matrix header ({rows} x {cols})")
        if cols == 0:
            return np.zeros((0, 0), np.float32), 0, 0
        headers = np.frombuffer(self._exact(handle, 8 * cols, where), dtype="<u2").reshape(cols, 4)
        codes = np.frombuffer(self._exact(handle, rows * cols, where), dtype=np.uint8).reshape(cols, rows)
        pct = compressed.uint16_to_float(np.float32(min_value), np.float32(value_range), headers)
        # table[c, code]: the value code decodes to in column c, by Kaldi's CharToFloat.
        table = compressed.decode_columns(pct[:, 0:1], pct[:, 1:2], pct[:, 2:3], pct[:, 3:4],
                                          np.broadcast_to(_ALL_CODES, (cols, 256)))
        window = codes[:, offset:offset + length]
        values = np.take_along_axis(table, window.astype(np.intp), axis=1)
        return np.ascontiguousarray(values.T), rows, cols

    def close(self):
        for handle in getattr(self._local, "handles", {}).values():
            handle.close()
        self._local.handles = {}
