"""Kaldi compressed matrices (``CM``, ``CM2``, ``CM3``): decoding and encoding.

Facts from Kaldi ``src/matrix/compressed-matrix.{h,cc}`` (restated, own code):

On disk, after the token, a global header of four little-endian 4-byte fields
``min_value (float), range (float), num_rows (int32), num_cols (int32)`` then:

* ``CM`` (kOneByteWithColHeaders, Kaldi's kSpeechFeature method): ``num_cols`` column
  headers of four uint16 ``p0, p25, p75, p100``, then ``num_rows`` bytes per column
  (column-major). Header value u decodes to ``min + range * 1.52590218966964e-05f * u``
  (float32). A byte c decodes (float32 differences and products, then one double multiply-add
  rounded to float) as ``p0 + (p25-p0)*c/64`` for c <= 64, ``p25 + (p75-p25)*(c-64)/128`` for
  c <= 192, else ``p75 + (p100-p75)*(c-192)/63``.
* ``CM2`` (kTwoByte): uint16 per value, row-major; value ``min + u * float(range/65535)``.
* ``CM3`` (kOneByte): uint8 per value, row-major; value ``min + u * float(range/255)``.

An empty matrix is ``CM`` with a header of zeros (num_cols == 0).

Encoding follows ``CompressedMatrix::CopyFromMat`` with float32 arithmetic so the bytes
equal Kaldi's (tested against an independent statement of the algorithm in the tests).
"""
from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

from tfspk.errors import ToolError

TOKENS = ("CM", "CM2", "CM3")
METHODS = ("auto", "speech-feature", "2byte-auto", "1byte-auto")
_F32 = np.float32
_UINT16_STEP = _F32(1.52590218966964e-05)   # Kaldi's float literal 1/65535


def _read(stream: BinaryIO, count: int, where: str) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise ToolError(f"{where}: truncated compressed matrix (expected {count} more bytes, found {len(data)})")
    return data


def uint16_to_float(min_value: np.float32, value_range: np.float32, codes) -> np.ndarray:
    """Kaldi ``Uint16ToFloat``: ``min + (range * 1.52590218966964e-05f) * u`` in float32."""
    codes = np.asarray(codes).astype(_F32)
    return (_F32(min_value) + (_F32(value_range) * _UINT16_STEP) * codes).astype(_F32)


def decode_columns(p0, p25, p75, p100, codes) -> np.ndarray:
    """Kaldi ``CharToFloat`` for byte codes ``[cols, rows]`` and per-column float32 percentiles ``[cols, 1]``.

    Each column has only 256 possible values, so they are computed once per column (a lookup
    table with Kaldi's arithmetic, :func:`char_to_float_tables`) and gathered.
    """
    pct = np.concatenate([np.asarray(p, _F32).reshape(-1, 1) for p in (p0, p25, p75, p100)], axis=1)
    return np.take_along_axis(char_to_float_tables(pct), np.asarray(codes).astype(np.intp), axis=1)


# Kaldi CharToFloat's three pieces: (first code, last code + 1, percentile index of the piece's base,
# divisor). Piece q maps code c to pct[q] + float(f32(pct[q + 1] - pct[q]) * (c - first_of_piece)) / divisor.
_PIECES = ((0, 65, 0, 64.0), (65, 193, 1, 128.0), (193, 256, 2, 63.0))


def char_to_float_tables(pct) -> np.ndarray:
    """``[N, 256]`` float32: the value of every byte code for N columns of percentiles ``[N, 4]``
    (``p0, p25, p75, p100``, float32), by Kaldi ``CharToFloat`` (compressed-matrix.cc)::

        c <= 64:  p0  + float((p25 - p0)  * c)         * (1/64)    (float32 product, double sum)
        c <= 192: p25 + float((p75 - p25) * (c - 64))  * (1/128)
        else:     p75 + float((p100 - p75) * (c - 192)) * (1/63)

    then rounded to float32. Each piece is computed on its own slice of codes (no select over
    all 256 codes). The first two pieces are computed in float32 with the same result: the scale
    is a power of two, so ``product * scale`` is exact in float32 (unless it is subnormal, then the
    double path is taken), and a double sum of two floats rounded to float equals the float sum
    (double rounding is innocuous for addition when 53 >= 2 * 24 + 2 bits, Figueroa's theorem);
    1/63 is not a power of two, so the last piece stays in double. Checked against a scalar
    statement of Kaldi's function in tests/test_io_ark.py.
    """
    pct = np.asarray(pct, dtype=_F32)
    out = np.empty((pct.shape[0], 256), dtype=_F32)
    for first, stop, q, divisor in _PIECES:
        base = pct[:, q:q + 1]
        span = (pct[:, q + 1:q + 2] - base).astype(_F32)
        steps = (np.arange(first, stop) - (64 * q if q < 2 else 192)).astype(_F32)
        product = (span * steps).astype(_F32)          # float * int -> float in C++
        exact = divisor != 63.0 and not np.any((np.abs(span) < _F32(2.0 ** -100)) & (span != 0))
        if exact:
            out[:, first:stop] = base + product * _F32(1.0 / divisor)
        else:  # the assignment rounds the double result to float32, as Kaldi's return does
            out[:, first:stop] = base.astype(np.float64) + product.astype(np.float64) * (1.0 / divisor)
    return out


def read_compressed(stream: BinaryIO, token: str, where: str) -> np.ndarray:
    """Read a compressed matrix (after its token) and return it as float32 ``[rows, cols]``."""
    min_value, value_range, rows, cols = struct.unpack("<ffii", _read(stream, 16, where))
    if cols == 0:                               # Kaldi's empty matrix
        return np.zeros((0, 0), dtype=_F32)
    if rows < 0 or cols < 0 or rows * cols > (1 << 34):
        raise ToolError(f"{where}: corrupt compressed matrix header ({rows} x {cols})")
    min_value, value_range = _F32(min_value), _F32(value_range)
    if token == "CM":
        headers = np.frombuffer(_read(stream, 8 * cols, where), dtype="<u2").reshape(cols, 4)
        codes = np.frombuffer(_read(stream, rows * cols, where), dtype=np.uint8).reshape(cols, rows)
        pct = uint16_to_float(min_value, value_range, headers)
        values = decode_columns(pct[:, 0:1], pct[:, 1:2], pct[:, 2:3], pct[:, 3:4], codes)
        return np.ascontiguousarray(values.T)
    if token == "CM2":
        codes = np.frombuffer(_read(stream, 2 * rows * cols, where), dtype="<u2").reshape(rows, cols)
        increment = _F32(np.float64(value_range) * (1.0 / 65535.0))
    else:
        codes = np.frombuffer(_read(stream, rows * cols, where), dtype=np.uint8).reshape(rows, cols)
        increment = _F32(np.float64(value_range) * (1.0 / 255.0))
    return (min_value + codes.astype(_F32) * increment).astype(_F32)


# ------------------------------------------------------------------------------------------
# encoding
def _global_header(mat: np.ndarray) -> tuple[np.float32, np.float32]:
    """Kaldi ``ComputeGlobalHeader`` for the data-driven methods: (min, max - min) in float32."""
    min_value, max_value = _F32(mat.min()), _F32(mat.max())
    if max_value == min_value:
        max_value = _F32(np.float64(min_value) + (1.0 + abs(np.float64(min_value))))
    return min_value, _F32(max_value - min_value)


def float_to_uint(min_value, value_range, values, levels: int) -> np.ndarray:
    """Kaldi ``FloatToUint16``/``FloatToUint8``: ``int(clip((v-min)/range, 0, 1) * levels + 0.499)``."""
    f = ((np.asarray(values, dtype=_F32) - min_value) / value_range).astype(_F32)
    f = np.clip(f, _F32(0), _F32(1))
    return np.trunc((f * _F32(levels)).astype(_F32).astype(np.float64) + 0.499).astype(np.int64)


def _column_headers(mat: np.ndarray, min_value, value_range) -> np.ndarray:
    """Kaldi ``ComputeColHeader`` for all columns: uint16 ``[cols, 4]``."""
    rows = mat.shape[0]
    if rows >= 5:
        quarter = rows // 4
        picks = [0, quarter, 3 * quarter, rows - 1]
    else:
        picks = [0, 1, 2, 3]
    # Only four order statistics per column are needed: a partition is O(rows), a sort is not.
    ordered = np.partition(mat, [pick for pick in picks if pick < rows], axis=0)
    headers = np.zeros((mat.shape[1], 4), dtype=np.int64)
    caps = [65532, 65533, 65534, 65535]
    for i, pick in enumerate(picks):
        if pick < rows:
            code = float_to_uint(min_value, value_range, ordered[pick], 65535)
            if i > 0:
                code = np.maximum(code, headers[:, i - 1] + 1)
        else:                                   # fewer than 4 rows: step by one
            code = headers[:, i - 1] + 1
        if i < 3 and pick < rows:
            code = np.minimum(code, caps[i])
        headers[:, i] = code
    return headers.astype(np.uint16)


def _float_to_char(p0, p25, p75, p100, values) -> np.ndarray:
    """Kaldi ``FloatToChar`` for float32 values ``[cols, rows]`` and percentiles ``[cols, 1]``.

    Segment 0 (v < p25) -> codes 0..64, 1 (v < p75) -> 64..192, 2 -> 192..255:
    ``offset + int(float(f32((v - p) / span) * levels) + 0.5)``, clipped to the segment. A
    non-finite quotient (zero span) truncates to INT_MIN on x86, i.e. the segment's lowest code.
    """
    values = values.astype(_F32)
    segment = (values >= p25).astype(np.intp) + (values >= p75)
    bases = np.concatenate([p0, p25, p75], axis=1).astype(_F32)
    spans = np.concatenate([p25 - p0, p75 - p25, p100 - p75], axis=1).astype(_F32)
    base = np.take_along_axis(bases, segment, axis=1)
    span = np.take_along_axis(spans, segment, axis=1)
    levels = np.array([64, 128, 63], dtype=_F32)[segment]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        f = ((values - base).astype(_F32) / span).astype(_F32)
        scaled = (f * levels).astype(_F32).astype(np.float64) + 0.5
    # x86 cvttsd2si: NaN, +-inf and anything outside int32 become INT_MIN
    scaled = np.where(np.isfinite(scaled) & (scaled > -2.0 ** 31) & (scaled < 2.0 ** 31), scaled, -2.0 ** 31)
    ans = np.trunc(scaled).astype(np.int64) + np.array([0, 64, 192])[segment]
    low = np.array([0, 64, 192])[segment]
    high = np.array([64, 192, 255])[segment]
    return np.clip(ans, low, high).astype(np.uint8)


def compress(mat: np.ndarray, method: str = "auto") -> bytes:
    """Encode a matrix like Kaldi's ``CompressedMatrix(mat, method)``; returns token + payload.

    ``auto`` = Kaldi's kAutomaticMethod: ``speech-feature`` (CM) when rows > 8, else
    ``2byte-auto`` (CM2). Values are converted to float32 first, as Kaldi does.
    """
    mat = np.asarray(mat, dtype=_F32)
    rows, cols = mat.shape
    if rows == 0 or cols == 0:
        return b"CM " + struct.pack("<ffii", 0.0, 0.0, 0, 0)
    if not np.all(np.isfinite(mat)):
        raise ToolError("cannot compress a matrix with NaN or Inf values")
    if method == "auto":
        method = "speech-feature" if rows > 8 else "2byte-auto"
    min_value, value_range = _global_header(mat)
    header = struct.pack("<ffii", float(min_value), float(value_range), rows, cols)
    if method == "speech-feature":
        col_headers = _column_headers(mat, min_value, value_range)
        pct = uint16_to_float(min_value, value_range, col_headers)
        codes = _float_to_char(pct[:, 0:1], pct[:, 1:2], pct[:, 2:3], pct[:, 3:4], mat.T)
        return b"CM " + header + col_headers.astype("<u2").tobytes() + codes.tobytes()
    if method == "2byte-auto":
        codes = float_to_uint(min_value, value_range, mat, 65535).astype("<u2")
        return b"CM2 " + header + codes.tobytes()
    if method == "1byte-auto":
        codes = float_to_uint(min_value, value_range, mat, 255).astype(np.uint8)
        return b"CM3 " + header + codes.tobytes()
    raise ToolError(f"unknown compression method '{method}' (expected one of {', '.join(METHODS)})")


def decompress(payload: bytes, where: str = "compressed matrix") -> np.ndarray:
    """Decode the output of :func:`compress` (token, space, data) back to float32."""
    import io
    token, data = payload.split(b" ", 1)
    return read_compressed(io.BytesIO(data), token.decode("latin-1"), where)
