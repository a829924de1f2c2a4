"""Kaldi objects, binary and text: THE codec of tfspk (vectors, matrices, tokens, the PLDA model).

Byte layout (Kaldi ``kaldi-matrix.cc``, ``kaldi-vector.cc``, ``compressed-matrix.cc``,
``io-funcs.cc``, ``WriteKaldiObject`` / ``ReadKaldiObject``), so Kaldi binaries read what tfspk
writes and the reverse:

* binary objects start with ``\\0B``; a token is written as ``token + ' '``; an int32 as the byte 4
  followed by 4 little-endian bytes; a vector as ``FV ``/``DV `` + size + raw data; a matrix as
  ``FM ``/``DM `` + rows + cols + raw row-major data; compressed matrices (``CM``/``CM2``/``CM3``)
  are decoded by :mod:`tfspk.io.compressed`;
* text objects: a vector is `` [ a b c ]\\n``, a matrix `` [\\n  a b \\n  c d ]\\n``, a token
  ``token + ' '``. Numbers are printed with a ``precision`` chosen by the caller, because the
  two families of tools differ on purpose and their bytes must stay as they are: model files of the
  back-end tools (``ivector-mean``, ``ivector-compute-lda``, PLDA) use ``%.7g`` as Kaldi's text
  streams (``InitKaldiOutputStream``: precision 7); archives written by :class:`tfspk.io.ark.ArchiveWriter`
  use ``%.9g`` for float and ``%.17g`` for double (an exact round trip);
* a PLDA model is ``<Plda> mean transform psi </Plda>`` (Kaldi ``Plda::Write``), in doubles.

Two entry points read objects: :func:`read_object_from` (one object at the current position of a
stream, as in an archive; float32 text) and the whole-file readers :func:`read_vector`,
:func:`read_matrix`, :func:`read_plda_parts` (float64; extended filenames through
:mod:`tfspk.io.xfilename`). Both decode binary vectors/matrices with :func:`read_binary_body`.
"""
from __future__ import annotations

import io
import struct
from typing import BinaryIO

import numpy as np

from tfspk.errors import ToolError
from tfspk.io import compressed, xfilename

BINARY_TYPES = {"FM": (np.float32, 2), "DM": (np.float64, 2), "FV": (np.float32, 1),
                "DV": (np.float64, 1)}
# Larger objects than this are certainly a corrupt header, not data (16 GiB).
_MAX_OBJECT_BYTES = 1 << 34
_BINARY_HEADER = b"\0B"
_TEXT_FORMAT = "%.7g"  # Kaldi: os.precision(7) for text output streams
# ArchiveWriter's text precision: float32 with 9 significant digits, float64 with 17 (exact round trip)
ARCHIVE_PRECISION = None


# ----------------------------------------------------------------------------- stream reading
def _read_exact(stream: BinaryIO, count: int, where: str) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise ToolError(f"{where}: truncated data (expected {count} more bytes, found {len(data)})")
    return data


def _read_exact_writable(stream: BinaryIO, count: int, where: str) -> bytearray:
    """Like _read_exact into a bytearray, so numpy can use it without a copy (and it is writable)."""
    buffer = bytearray(count)
    view, filled = memoryview(buffer), 0
    while filled < count:
        got = stream.readinto(view[filled:])
        if not got:
            raise ToolError(f"{where}: truncated data (expected {count - filled} more bytes, found 0)"
                            if filled == 0 else
                            f"{where}: truncated data (expected {count} bytes, found {filled})")
        filled += got
    return buffer


def _read_token(stream: BinaryIO, where: str) -> str:
    """A binary-mode token: characters up to (and consuming) one space."""
    chars = bytearray()
    while True:
        char = stream.read(1)
        if not char:
            raise ToolError(f"{where}: truncated data (end of file inside a type token)")
        if char == b" ":
            break
        chars += char
        if len(chars) > 16:
            raise ToolError(f"{where}: corrupt data (no type token such as FM, DM, FV, DV, CM found)")
    return chars.decode("latin-1")


def _read_int32(stream: BinaryIO, where: str) -> int:
    size, value = struct.unpack("<bi", _read_exact(stream, 5, where))
    if size != 4:
        raise ToolError(f"{where}: corrupt data (expected a 4-byte integer, size marker is {size})")
    return value


def _read_binary_object(stream: BinaryIO, where: str) -> np.ndarray:
    """Read the object after ``\\0B``: a float/double matrix or vector, or a compressed matrix."""
    return read_binary_body(stream, _read_token(stream, where), where)


def read_binary_body(stream: BinaryIO, token: str, where: str) -> np.ndarray:
    """The object that follows the type ``token`` (already read): FM/DM/FV/DV or compressed."""
    if token in BINARY_TYPES:
        dtype, ndim = BINARY_TYPES[token]
        if ndim == 2:
            rows, cols = _read_int32(stream, where), _read_int32(stream, where)
            shape = (rows, cols)
        else:
            shape = (_read_int32(stream, where),)
        if min(shape) < 0:
            raise ToolError(f"{where}: corrupt data (negative dimension {shape} in a {token} object)")
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if nbytes > _MAX_OBJECT_BYTES:
            raise ToolError(f"{where}: corrupt data (implausible dimensions {shape})")
        data = _read_exact_writable(stream, nbytes, where)
        array = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<"))
        if array.dtype != np.dtype(dtype):           # big-endian host: convert
            array = array.astype(dtype)
        return array.reshape(shape)
    if token in compressed.TOKENS:
        return compressed.read_compressed(stream, token, where)
    raise ToolError(f"{where}: unsupported object type '{token}' (expected FM, DM, FV, DV, CM, CM2 or CM3)")


def _read_text_object(stream: BinaryIO, where: str, first: bytes) -> np.ndarray:
    """Text ``[ ... ]``: a vector if numbers follow ``[`` on its line, else a matrix (float32)."""
    buffer = bytearray(first)
    while b"]" not in buffer:
        line = stream.readline()
        if not line:
            raise ToolError(f"{where}: truncated text object (no closing ']')")
        buffer += line
    text = buffer.decode("latin-1")
    close = text.index("]")
    if text[close + 1:].strip():
        raise ToolError(f"{where}: unexpected text after ']'")
    return parse_text_body(text[text.index("[") + 1:close], where, np.float32)


def parse_text_body(body: str, where: str, dtype, layout: str | None = None) -> np.ndarray:
    """The numbers between ``[`` and ``]`` of a text object as ``dtype``: THE text parser.

    ``layout="vector"``: every number, one 1-D array; ``"matrix"``: one row per non-empty line;
    ``None`` (archives, where the type is not known in advance): Kaldi writes matrices with a
    newline after ``[`` and vectors on one line, so a one-line ``[ 1 2 ]`` is a vector and
    anything spanning lines a matrix (an empty ``[ ]`` is a 0x0 matrix)."""
    rows = [r.split() for r in body.replace("\r", "").split("\n") if r.strip()]
    if layout is None:
        layout = "matrix" if body.lstrip(" \t\r").startswith("\n") or len(rows) != 1 else "vector"
    try:
        if layout == "vector":
            return np.array([value for row in rows for value in row], dtype=dtype)
        if not rows:
            return np.zeros((0, 0), dtype=dtype)
        lengths = sorted({len(r) for r in rows})
        if len(lengths) != 1:
            raise ToolError(f"{where}: text matrix rows have different lengths (rows of different lengths "
                            f"{lengths} cannot form a matrix)")
        return np.array(rows, dtype=dtype)
    except ValueError as err:
        raise ToolError(f"{where}: corrupt text object (non-numeric value: {err})") from None


def read_object_from(stream: BinaryIO, where: str) -> np.ndarray:
    """Read one binary (``\\0B``) or text object from the current position of ``stream``."""
    head = stream.read(2)
    if head == b"\0B":
        return _read_binary_object(stream, where)
    while head[:1] in (b" ", b"\t", b"\n", b"\r"):
        head = head[1:] + stream.read(1)
    if head[:1] == b"[":
        return _read_text_object(stream, where, head)
    if not head:
        raise ToolError(f"{where}: truncated data (no object after the key)")
    raise ToolError(f"{where}: corrupt data (expected binary marker '\\0B' or text '[', found {head!r})")


# ----------------------------------------------------------------------------- writing
def _int32_binary(value: int) -> bytes:
    return struct.pack("<bi", 4, value)


def _token(name: str) -> bytes:
    return name.encode() + b" "


def binary_object_bytes(array: np.ndarray, compress: bool = False, method: str = "auto",
                        double: bool | None = None) -> bytes:
    """``\\0B`` + a binary vector/matrix (``double`` defaults to the array's dtype being float64);
    with ``compress`` a matrix becomes a Kaldi compressed matrix of ``method``."""
    array = np.asarray(array)
    if array.ndim == 2 and compress:
        return b"\0B" + compressed.compress(array, method)
    return b"\0B" + _binary_body(array, array.dtype == np.float64 if double is None else double)


def _binary_body(array: np.ndarray, double: bool) -> bytes:
    if array.ndim == 2:
        token = "DM" if double else "FM"
    else:
        token = "DV" if double else "FV"
    dims = b"".join(_int32_binary(d) for d in array.shape)
    return _token(token) + dims + np.ascontiguousarray(array, dtype="<f8" if double else "<f4").tobytes()


def text_object_bytes(array: np.ndarray, precision: int | None = ARCHIVE_PRECISION) -> bytes:
    """Kaldi text layout of a vector or matrix, numbers as ``%.{precision}g``.

    ``precision=None`` (archives): 9 digits for float32, 17 for float64, and an empty matrix is
    `` [ ]``; with a precision (model files, Kaldi's ``Matrix::Write``) only a matrix without
    columns is `` [ ]``, one with columns but no rows is `` []``."""
    array = np.asarray(array)
    if precision is None:
        fmt = "%.17g" if array.dtype == np.float64 else "%.9g"
    else:
        fmt = f"%.{precision}g"
    if array.ndim == 1:
        values = "".join(fmt % v + " " for v in array.tolist())
        return f" [ {values}]\n".encode()
    if array.shape[1] == 0 or (precision is None and array.size == 0):
        return b" [ ]\n"
    rows = "".join("\n  " + "".join(fmt % v + " " for v in row) for row in array.tolist())
    return f" [{rows}]\n".encode()


def format_number(value: float) -> str:
    """One number as Kaldi prints it in text mode (C++ ostream, precision 7)."""
    return _TEXT_FORMAT % value


def vector_bytes(vector, binary: bool, double: bool) -> bytes:
    """A Kaldi ``Vector<float|double>::Write`` body (no file header)."""
    vector = np.asarray(vector, dtype=np.float64 if double else np.float32).reshape(-1)
    return _binary_body(vector, double) if binary else text_object_bytes(vector, 7)


def matrix_bytes(matrix, binary: bool, double: bool) -> bytes:
    """A Kaldi ``Matrix<float|double>::Write`` body (no file header)."""
    matrix = np.asarray(matrix, dtype=np.float64 if double else np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"matrix must be 2-D, got shape {matrix.shape}")
    return _binary_body(matrix, double) if binary else text_object_bytes(matrix, 7)


def _with_header(body: bytes, binary: bool) -> bytes:
    return (_BINARY_HEADER + body) if binary else body


def write_vector(wxfilename: str, vector, binary: bool = True, double: bool = False) -> None:
    """``WriteKaldiObject(Vector<...>)``: float (``FV``) unless ``double``."""
    xfilename.write_bytes(wxfilename, _with_header(vector_bytes(vector, binary, double), binary))


def write_matrix(wxfilename: str, matrix, binary: bool = True, double: bool = False) -> None:
    """``WriteKaldiObject(Matrix<...>)``: float (``FM``) unless ``double``."""
    xfilename.write_bytes(wxfilename, _with_header(matrix_bytes(matrix, binary, double), binary))


def plda_bytes(mean, transform, psi, binary: bool) -> bytes:
    """Kaldi ``Plda::Write`` with the file header: doubles, ``<Plda> mean transform psi </Plda>``."""
    body = (_token("<Plda>") + vector_bytes(mean, binary, True) + matrix_bytes(transform, binary, True)
            + vector_bytes(psi, binary, True) + _token("</Plda>"))
    return _with_header(body, binary)


# ----------------------------------------------------------------------------- whole-file reading
class _Reader:
    """A cursor over one Kaldi object file (``binary`` from its header)."""

    def __init__(self, data: bytes, source: str):
        self.source = source
        self.binary = data.startswith(_BINARY_HEADER)
        self.data = data
        self.pos = 2 if self.binary else 0

    def fail(self, expected: str):
        found = self.data[self.pos:self.pos + 20]
        raise ToolError(f"{self.source}: corrupt or wrong Kaldi object at byte {self.pos}: "
                        f"expected {expected}, found {found!r}")

    def skip_space(self):
        while self.pos < len(self.data) and self.data[self.pos:self.pos + 1].isspace():
            self.pos += 1

    def read_token(self) -> str:
        self.skip_space()
        start = self.pos
        while self.pos < len(self.data) and not self.data[self.pos:self.pos + 1].isspace():
            self.pos += 1
        token = self.data[start:self.pos].decode("latin-1")
        if self.pos < len(self.data):
            self.pos += 1  # the one space after a token
        return token

    def expect_token(self, token: str):
        start = self.pos
        found = self.read_token()
        if found != token:
            self.pos = start
            self.fail(f"token '{token}'")

    def at_end(self) -> bool:
        self.skip_space()
        return self.pos >= len(self.data)

    def _binary_body(self, token: str) -> np.ndarray:
        """The shared binary decoder (:func:`read_binary_body`), as float64."""
        stream = io.BytesIO(self.data)
        stream.seek(self.pos)
        array = read_binary_body(stream, token, f"{self.source} (byte {self.pos})")
        self.pos = stream.tell()
        return array.astype(np.float64)

    def _text_bracketed(self, what: str) -> str:
        self.skip_space()
        if self.data[self.pos:self.pos + 1] != b"[":
            self.fail(f"'[' starting a text {what}")
        end = self.data.find(b"]", self.pos)
        if end < 0:
            self.fail(f"']' ending the text {what}")
        inside = self.data[self.pos + 1:end].decode("latin-1")
        self.pos = end + 1
        return inside

    def read_vector(self) -> np.ndarray:
        if self.binary:
            kind = self.read_token()
            if kind not in ("FV", "DV"):
                self.fail("a vector (FV or DV)")
            return self._binary_body(kind)
        return parse_text_body(self._text_bracketed("vector"), self.source, np.float64, "vector")

    def read_matrix(self) -> np.ndarray:
        if self.binary:
            kind = self.read_token()
            if kind not in ("FM", "DM"):
                if kind in ("CM", "CM2", "CM3"):
                    raise ToolError(f"{self.source}: compressed matrices are not supported as model files")
                self.fail("a matrix (FM or DM)")
            return self._binary_body(kind)
        return parse_text_body(self._text_bracketed("matrix"), self.source, np.float64, "matrix")


def _reader(rxfilename: str) -> _Reader:
    data = xfilename.read_bytes(rxfilename)
    if not data.strip():
        raise ToolError(f"{rxfilename}: empty file (expected a Kaldi object)")
    return _Reader(data, rxfilename)


def _finish(reader: _Reader, what: str):
    if not reader.at_end():
        reader.fail(f"end of file after the {what}")


def read_vector(rxfilename: str) -> np.ndarray:
    """``ReadKaldiObject(Vector)``: a float64 1-D array from a binary or text Kaldi vector file."""
    reader = _reader(rxfilename)
    vector = reader.read_vector()
    _finish(reader, "vector")
    return vector


def read_matrix(rxfilename: str) -> np.ndarray:
    """``ReadKaldiObject(Matrix)``: a float64 2-D array from a binary or text Kaldi matrix file."""
    reader = _reader(rxfilename)
    matrix = reader.read_matrix()
    _finish(reader, "matrix")
    return matrix


def read_plda_parts(rxfilename: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Plda::Read``: ``(mean [D], transform [D, D], psi [D])``, with their shapes checked."""
    reader = _reader(rxfilename)
    reader.expect_token("<Plda>")
    mean, transform, psi = reader.read_vector(), reader.read_matrix(), reader.read_vector()
    reader.expect_token("</Plda>")
    _finish(reader, "PLDA model")
    dim = mean.size
    if dim == 0 or transform.shape != (dim, dim) or psi.shape != (dim,):
        raise ToolError(f"{rxfilename}: inconsistent PLDA model: mean has dimension {dim}, transform "
                        f"is {transform.shape[0]}x{transform.shape[1]}, psi has dimension {psi.size}")
    return mean, transform, psi


def write_plda_parts(wxfilename: str, mean, transform, psi, binary: bool = True) -> None:
    xfilename.write_bytes(wxfilename, plda_bytes(mean, transform, psi, binary))
