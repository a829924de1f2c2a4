"""Single Kaldi objects in files: vectors, matrices and PLDA models, binary or text.

The byte layout is Kaldi's (``WriteKaldiObject`` / ``ReadKaldiObject``), so Kaldi binaries
read what tfspk writes and the reverse:

* binary files start with ``\\0B``; a token is written as ``token + ' '``; an int32 as the
  byte 4 followed by 4 little-endian bytes; a vector as ``FV ``/``DV `` + size + raw data;
  a matrix as ``FM ``/``DM `` + rows + cols + raw row-major data.
* text files have no header; numbers are printed like C++ ``ostream`` at precision 7
  (``%.7g``, Kaldi's ``InitKaldiOutputStream``); a vector is `` [ a b c ]\\n``; a matrix
  is `` [\\n  a b \\n  c d ]\\n``; a token is ``token + ' '``.
* a PLDA model is ``<Plda> mean transform psi </Plda>`` (Kaldi ``Plda::Write``).

Readers accept float and double storage in both modes. Extended file names work as in
Kaldi: ``-`` is stdin/stdout, ``command |`` reads a pipe, ``| command`` writes to one.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_open

_BINARY_HEADER = b"\0B"
_TEXT_FORMAT = "%.7g"  # Kaldi: os.precision(7) for text output streams


# ----------------------------------------------------------------------------- files
def read_rxfilename(rxfilename: str) -> bytes:
    """All bytes of a Kaldi rxfilename: a path, ``-`` (stdin) or ``command |``."""
    name = rxfilename.strip()
    if name == "-" or name == "":
        return sys.stdin.buffer.read()
    if name.endswith("|"):
        proc = subprocess.run(name[:-1], shell=True, stdout=subprocess.PIPE, executable="/bin/bash")
        if proc.returncode != 0:
            raise ToolError(f"command '{name[:-1].strip()}' failed with exit status {proc.returncode}")
        return proc.stdout
    try:
        with open(name, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ToolError(f"no such file: {name}") from None
    except IsADirectoryError:
        raise ToolError(f"expected a file, found a directory: {name}") from None
    except OSError as err:
        raise ToolError(f"cannot read {name}: {err.strerror}") from None


def write_wxfilename(wxfilename: str, data: bytes) -> None:
    """Write bytes to a Kaldi wxfilename: a path (atomically), ``-`` (stdout) or ``| command``."""
    name = wxfilename.strip()
    if name == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    if name.startswith("|"):
        proc = subprocess.run(name[1:], shell=True, input=data, executable="/bin/bash")
        if proc.returncode != 0:
            raise ToolError(f"command '{name[1:].strip()}' failed with exit status {proc.returncode}")
        return
    try:
        if is_special_file(name):
            with open(name, "wb") as handle:
                handle.write(data)
        else:
            with atomic_open(name, "wb") as handle:
                handle.write(data)
    except OSError as err:
        raise ToolError(f"cannot write {name}: {err.strerror}") from None


def is_special_file(path: str) -> bool:
    """True for an existing non-regular file (``/dev/null``, a FIFO): written in place, since
    renaming a temporary file over it would replace the device."""
    return os.path.exists(path) and not os.path.isfile(path)


# ----------------------------------------------------------------------------- writing
def format_number(value: float) -> str:
    """One number as Kaldi prints it in text mode (C++ ostream, precision 7)."""
    return _TEXT_FORMAT % value


def _token(name: str) -> bytes:
    return name.encode() + b" "


def _int32_binary(value: int) -> bytes:
    return b"\x04" + np.array([value], dtype="<i4").tobytes()


def vector_bytes(vector, binary: bool, double: bool) -> bytes:
    """A Kaldi ``Vector<float|double>::Write`` body (no file header)."""
    vector = np.asarray(vector, dtype=np.float64 if double else np.float32).reshape(-1)
    if binary:
        return (_token("DV" if double else "FV") + _int32_binary(vector.size)
                + vector.astype("<f8" if double else "<f4").tobytes())
    body = "".join(format_number(v) + " " for v in vector.tolist())
    return f" [ {body}]\n".encode()


def matrix_bytes(matrix, binary: bool, double: bool) -> bytes:
    """A Kaldi ``Matrix<float|double>::Write`` body (no file header)."""
    matrix = np.asarray(matrix, dtype=np.float64 if double else np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"matrix must be 2-D, got shape {matrix.shape}")
    rows, cols = matrix.shape
    if binary:
        return (_token("DM" if double else "FM") + _int32_binary(rows) + _int32_binary(cols)
                + matrix.astype("<f8" if double else "<f4").tobytes())
    if cols == 0:
        return b" [ ]\n"
    lines = ["\n  " + "".join(format_number(v) + " " for v in row) for row in matrix.tolist()]
    return (" [" + "".join(lines) + "]\n").encode()


def _with_header(body: bytes, binary: bool) -> bytes:
    return (_BINARY_HEADER + body) if binary else body


def write_vector(wxfilename: str, vector, binary: bool = True, double: bool = False) -> None:
    """``WriteKaldiObject(Vector<...>)``: float (``FV``) unless ``double``."""
    write_wxfilename(wxfilename, _with_header(vector_bytes(vector, binary, double), binary))


def write_matrix(wxfilename: str, matrix, binary: bool = True, double: bool = False) -> None:
    """``WriteKaldiObject(Matrix<...>)``: float (``FM``) unless ``double``."""
    write_wxfilename(wxfilename, _with_header(matrix_bytes(matrix, binary, double), binary))


def plda_bytes(mean, transform, psi, binary: bool) -> bytes:
    """Kaldi ``Plda::Write`` with the file header: doubles, ``<Plda> mean transform psi </Plda>``."""
    body = (_token("<Plda>") + vector_bytes(mean, binary, True) + matrix_bytes(transform, binary, True)
            + vector_bytes(psi, binary, True) + _token("</Plda>"))
    return _with_header(body, binary)


# ----------------------------------------------------------------------------- reading
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

    def _binary_int32(self) -> int:
        if self.data[self.pos:self.pos + 1] != b"\x04" or self.pos + 5 > len(self.data):
            self.fail("a binary int32 (size byte 4 + 4 bytes)")
        value = int(np.frombuffer(self.data, dtype="<i4", count=1, offset=self.pos + 1)[0])
        self.pos += 5
        return value

    def _binary_array(self, count: int, dtype: str) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if count < 0 or self.pos + size > len(self.data):
            self.fail(f"{count} values of {dtype} (file truncated)")
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos).astype(np.float64)
        self.pos += size
        return values

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

    @staticmethod
    def _numbers(text: str, source: str, what: str) -> list[float]:
        try:
            return [float(field) for field in text.split()]
        except ValueError:
            raise ToolError(f"{source}: non-numeric value in text {what}") from None

    def read_vector(self) -> np.ndarray:
        if self.binary:
            kind = self.read_token()
            if kind not in ("FV", "DV"):
                self.fail("a vector (FV or DV)")
            size = self._binary_int32()
            return self._binary_array(size, "<f4" if kind == "FV" else "<f8")
        return np.array(self._numbers(self._text_bracketed("vector"), self.source, "vector"), dtype=np.float64)

    def read_matrix(self) -> np.ndarray:
        if self.binary:
            kind = self.read_token()
            if kind not in ("FM", "DM"):
                if kind in ("CM", "CM2", "CM3"):
                    raise ToolError(f"{self.source}: compressed matrices are not supported as model files")
                self.fail("a matrix (FM or DM)")
            rows, cols = self._binary_int32(), self._binary_int32()
            return self._binary_array(rows * cols, "<f4" if kind == "FM" else "<f8").reshape(rows, cols)
        inside = self._text_bracketed("matrix")
        rows = [self._numbers(line, self.source, "matrix") for line in inside.splitlines()]
        rows = [row for row in rows if row]
        if not rows:
            return np.zeros((0, 0))
        if len({len(row) for row in rows}) != 1:
            raise ToolError(f"{self.source}: text matrix has rows of different lengths "
                            f"({sorted({len(row) for row in rows})})")
        return np.array(rows, dtype=np.float64)


def _reader(rxfilename: str) -> _Reader:
    data = read_rxfilename(rxfilename)
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
    write_wxfilename(wxfilename, plda_bytes(mean, transform, psi, binary))
