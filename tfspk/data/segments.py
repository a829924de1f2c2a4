"""Read a run of rows of one matrix from an archive without decoding the whole matrix.

The sampler needs ~300 frames of utterances that are often several times longer. For binary float
matrices (``FM``) only those rows are read; for Kaldi's ``CM`` compressed matrices (the usual
training-feature format) the byte codes are read and only the needed rows decoded, through a
per-column table of the 256 possible values (the same ``decode_columns`` formula the full reader
uses, so values are bit-identical). Any other object (double, CM2/CM3, text, pipes, ranges) falls
back to reading the whole object through :class:`tfspk.io.ark.RandomAccessReader` and slicing.

:meth:`SegmentReader.read_batch` reads the segments of a whole batch and decodes all their ``CM``
codes at once (one table of ``batch x cols`` columns, one gather): the per-segment numpy calls of
:meth:`SegmentReader.read` cost more than the arithmetic itself and hold the GIL, so the batch path
is several times faster and leaves the GIL free in long numpy loops for the other reader threads.
"""
from __future__ import annotations

import struct

import numpy as np

from tfspk.errors import ToolError
from tfspk.io import compressed
from tfspk.io.ark import RandomAccessReader
from tfspk.io.lookup import OpenFiles, file_offset

_MAX_OPEN_FILES = 32


class SegmentReader:
    """``read(key, offset, length) -> (rows [length, cols] float32, num_rows, num_cols)``, thread safe."""

    def __init__(self, reader: RandomAccessReader):
        self.reader = reader
        self._files = OpenFiles(_MAX_OPEN_FILES)   # per thread; forked readers open their own

    def _seek(self, location: str):
        """The archive handle positioned at the object of an scp ``file:offset`` value, else None."""
        found = file_offset(location)
        if found is None:
            return None
        handle = self._files.get(found[0])
        handle.seek(found[1])
        return handle

    def read(self, key: str, offset: int, length: int):
        location = self.reader.location(key)
        handle = self._seek(location)
        if handle is not None:
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

    def _compressed_parts(self, handle, where):
        """Global header, column headers ``[cols, 4]`` uint16 and codes ``[cols, rows]`` of a CM matrix."""
        min_value, value_range, rows, cols = struct.unpack("<ffii", self._exact(handle, 16, where))
        if rows < 0 or cols < 0 or rows * cols > (1 << 34):
            raise ToolError(f"{where}: corrupt compressed matrix header ({rows} x {cols})")
        if cols == 0:
            return min_value, value_range, 0, 0, None, None
        headers = np.frombuffer(self._exact(handle, 8 * cols, where), dtype="<u2").reshape(cols, 4)
        codes = np.frombuffer(self._exact(handle, rows * cols, where), dtype=np.uint8).reshape(cols, rows)
        return min_value, value_range, rows, cols, headers, codes

    def _read_compressed_rows(self, handle, where, offset, length):
        min_value, value_range, rows, cols, headers, codes = self._compressed_parts(handle, where)
        if cols == 0:
            return np.zeros((0, 0), np.float32), 0, 0
        values = _decode_windows(np.array([min_value], np.float32), np.array([value_range], np.float32),
                                 headers[None], codes[None, :, offset:offset + length])
        return np.ascontiguousarray(values[0]), rows, cols

    def read_batch(self, keys, offsets, length: int, dim: int):
        """Rows ``[offset, offset + length)`` of every key: ``(feats [n, length, dim] float32, shapes)``.

        ``shapes[i]`` is ``(num_rows, num_cols)`` of the whole matrix of ``keys[i]`` (``num_cols``
        -1 if it is not a matrix). ``feats[i]`` equals :meth:`read`'s rows when the matrix has
        ``dim`` columns and at least ``offset + length`` rows; otherwise its contents are undefined
        (the caller reports the shape). ``CM`` segments are decoded together.
        """
        feats = np.empty((len(keys), length, dim), np.float32)
        shapes = []
        positions, mins, ranges, headers, windows = [], [], [], [], []
        for position, (key, offset) in enumerate(zip(keys, offsets)):
            offset = int(offset)
            location = self.reader.location(key)
            handle = self._seek(location)
            if handle is not None:
                if handle.read(5) == b"\0BCM ":
                    min_value, value_range, rows, cols, header, codes = self._compressed_parts(handle, location)
                    shapes.append((rows, cols))
                    if cols == dim and rows >= offset + length and cols > 0:
                        positions.append(position)
                        mins.append(min_value)
                        ranges.append(value_range)
                        headers.append(header)
                        windows.append(codes[:, offset:offset + length])
                    continue
            rows, num_rows, num_cols = self.read(key, offset, length)
            shapes.append((num_rows, num_cols))
            if num_cols == dim and len(rows) == length:
                feats[position] = rows
        if positions:
            decoded = _decode_windows(np.array(mins, np.float32), np.array(ranges, np.float32), np.stack(headers),
                                      np.stack(windows), out=feats if len(positions) == len(keys) else None)
            if decoded is not feats:
                feats[positions] = decoded
        return feats, shapes

    def close(self):
        self._files.close()


def _decode_windows(mins, ranges, headers, windows, out=None) -> np.ndarray:
    """Decode the code windows ``[n, cols, length]`` (uint8) of n CM matrices with global headers
    ``mins, ranges [n]`` (float32) and column headers ``[n, cols, 4]`` (uint16) to ``[n, length, cols]``
    float32 (into ``out`` if given): Kaldi ``Uint16ToFloat`` for the percentiles, ``CharToFloat``
    per code (through one 256-entry table per column, :func:`tfspk.io.compressed.char_to_float_tables`),
    the same arithmetic as :func:`tfspk.io.compressed.read_compressed`, so the values are bit-identical."""
    n, cols, length = windows.shape
    pct = compressed.uint16_to_float(mins[:, None, None], ranges[:, None, None], headers)
    tables = compressed.char_to_float_tables(pct.reshape(n * cols, 4))
    # flat gather: code c of column j of matrix i is tables.flat[256 * (i * cols + j) + c] (gathering in
    # [n, cols, length] order and transposing after is faster than an index in output order)
    index = windows.reshape(n * cols, length) + (np.arange(n * cols, dtype=np.intp) * 256)[:, None]
    values = np.take(tables.reshape(-1), index).reshape(n, cols, length).transpose(0, 2, 1)
    if out is None:
        return values
    out[...] = values
    return out
