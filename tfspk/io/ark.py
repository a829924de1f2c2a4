"""Kaldi archives (ark) and script files (scp): read and write float/double matrices and vectors.

Binary object layout (Kaldi ``kaldi-matrix.cc``, ``kaldi-vector.cc``, ``compressed-matrix.cc``,
``io-funcs``): an archive entry is ``key`` + space + object; a binary object starts with
``\\0B`` then a type token ended by a space (``FM``, ``DM``, ``FV``, ``DV``, ``CM``, ``CM2``,
``CM3``); integers are written as a size byte (4) followed by a little-endian int32.
A text object is ``[ v v v ]`` (vector) or ``[`` newline, rows, ``]`` (matrix).

Why not kaldi-io at run time: verified with kaldi-io 0.9.8 that importing it prints a
warning banner and runs a shell to change ``PATH``; a failing ``cmd |`` pipe raises in a
background thread so the reader sees silently truncated data; it reads ``CM`` but not
``CM2``/``CM3`` (and misparses their token); text matrices are always float32. This module
parses the same byte layout with numpy and turns every defect into a :class:`ToolError`
naming the file and key. The tests cross-check it against kaldi-io's reader.

Compressed matrices are decoded (and, with ``compress=True``, encoded) with Kaldi's
float32 arithmetic, see :mod:`tfspk.io.compressed`.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

import numpy as np

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.io import compressed, xfilename
from tfspk.io.objects import binary_object_bytes, read_object_from, text_object_bytes
from tfspk.io.table import read_table
from tfspk.io.util import new_thread_locals_after_fork
from tfspk.io.xfilename import Input

_SPEC_RE = re.compile(r"^([a-z]+(?:,[a-z]+)*):(.*)$", re.S)
_READ_OPTIONS = {"o", "no", "s", "ns", "cs", "ncs", "p", "np", "b", "t", "f", "nf", "bg"}
_WRITE_OPTIONS = {"b", "t", "f", "nf", "p", "np"}
_OFFSET_RE = re.compile(r"^(.*):(\d+)(\[[0-9:,]*\])?$", re.S)
_RANGE_ONLY_RE = re.compile(r"^(.*?)(\[[0-9:,]*\])$", re.S)



# ----------------------------------------------------------------------------------------------
# specifiers
@dataclass
class Spec:
    """A parsed rspecifier/wspecifier: ``kinds`` (e.g. ['ark', 'scp']), options, locations."""
    kinds: list
    options: set
    locations: list = field(default_factory=list)
    text: bool = False


def _split_specifier(spec: str, what: str, forms: str) -> tuple[list, set, str]:
    """``<kinds and options, comma-separated>:<location>`` -> (kinds among ark/scp in order, the other words,
    the location text); ToolError ``invalid <what> '<spec>': expected <forms>`` if it is not of that form."""
    match = _SPEC_RE.match(spec or "")
    if not match:
        raise ToolError(f"invalid {what} '{spec}': expected {forms}")
    words = match.group(1).split(",")
    return [w for w in words if w in ("ark", "scp")], {w for w in words if w not in ("ark", "scp")}, match.group(2)


def parse_rspecifier(rspec: str) -> Spec:
    """``ark[,opts]:location`` or ``scp[,opts]:location`` -> Spec (ToolError otherwise)."""
    kinds, options, location = _split_specifier(rspec, "rspecifier", "ark:<file>, scp:<file>, ark:- or "
                                                "'ark:<command> |' (with optional options such as ark,s,cs:)")
    bad = options - _READ_OPTIONS
    if len(kinds) != 1 or bad:
        raise ToolError(f"invalid rspecifier '{rspec}': need exactly one of ark/scp"
                        + (f"; unknown option(s) {sorted(bad)}" if bad else ""))
    if not location.strip():
        raise ToolError(f"invalid rspecifier '{rspec}': no file given")
    return Spec(kinds, options, [location.strip()])


def parse_wspecifier(wspec: str) -> Spec:
    """``ark:f``, ``ark,t:f``, ``ark,scp:f.ark,f.scp``, ``ark:-``, ``ark:| cmd`` -> Spec."""
    kinds, options, rest = _split_specifier(wspec, "wspecifier", "ark:<file>, ark,scp:<ark>,<scp>, ark,t:<file>, "
                                            "ark:- or 'ark:| <command>'")
    bad = options - _WRITE_OPTIONS
    if bad or not kinds or kinds[0] != "ark" or len(kinds) != len(set(kinds)):
        raise ToolError(f"invalid wspecifier '{wspec}': supported forms are ark:<file>, "
                        "ark,scp:<ark>,<scp> and ark,t:<file> (scp-only output is not supported)"
                        + (f"; unknown option(s) {sorted(bad)}" if bad else ""))
    rest = rest.strip()
    if "scp" in kinds:
        parts = rest.split(",")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise ToolError(f"invalid wspecifier '{wspec}': ark,scp needs '<ark-file>,<scp-file>'")
        locations = [p.strip() for p in parts]
    else:
        if not rest:
            raise ToolError(f"invalid wspecifier '{wspec}': no file given")
        locations = [rest]
    return Spec(kinds, options, locations, text="t" in options)


# ----------------------------------------------------------------------------------------------
# reading
def _read_key(stream: BinaryIO, where: str) -> str | None:
    """The next archive key (bytes up to a space), or None at a clean end of file."""
    chars = bytearray()
    while True:
        char = stream.read(1)
        if not char:
            if chars.strip():
                raise ToolError(f"{where}: truncated archive (end of file inside key '{chars.decode('utf-8', 'replace')}')")
            return None
        if char == b" ":
            if chars:
                break
            continue
        if char in b"\n\r\t" and not chars:
            continue
        if char in b"\n\r\t" or len(chars) > 4096:
            raise ToolError(f"{where}: corrupt archive (bad key {bytes(chars[:60])!r}...)")
        chars += char
    return chars.decode("utf-8", "surrogateescape")


def _iter_ark(location: str) -> Iterator[tuple[str, np.ndarray]]:
    source = Input(location)
    try:
        yield from _iter_ark_stream(source)
    except ToolError as err:       # a read error: a failed command explains it better
        source.close_after_error(err)
    except BaseException:          # GeneratorExit (the consumer stopped early) or worse
        source.close(check=False)
        raise
    source.close(check=True)


def _iter_ark_stream(source: Input) -> Iterator[tuple[str, np.ndarray]]:
    previous = None
    while True:
        where = f"{source.name}" + (f" after key '{previous}'" if previous else "")
        key = _read_key(source.stream, where)
        if key is None:
            return
        yield key, read_object_from(source.stream, f"{source.name}, key '{key}'")
        previous = key


def _split_range(value: str) -> tuple[str, str | None]:
    match = _RANGE_ONLY_RE.match(value)
    if match and not value.rstrip().endswith("|"):
        return match.group(1), match.group(2)
    return value, None


def _apply_range(array: np.ndarray, spec: str | None, where: str) -> np.ndarray:
    """Kaldi scp ranges ``[r1:r2]`` or ``[r1:r2,c1:c2]`` (inclusive ends)."""
    if spec is None:
        return array
    parts = spec[1:-1].split(",")
    try:
        slices = []
        for part in parts:
            if part == "":
                slices.append(slice(None))
                continue
            lo, hi = (int(x) for x in part.split(":"))
            slices.append(slice(lo, hi + 1))
    except ValueError:
        raise ToolError(f"{where}: bad range '{spec}' (expected [first:last] or [first:last,first:last])") from None
    if len(slices) > array.ndim:
        raise ToolError(f"{where}: range '{spec}' has more dimensions than the object")
    for axis, sl in enumerate(slices):
        if sl.start is not None and not (0 <= sl.start < sl.stop <= array.shape[axis]):
            raise ToolError(f"{where}: range '{spec}' is outside the object's shape {array.shape}")
    return array[tuple(slices)]


def split_location(value: str) -> tuple[str, int | None, str | None]:
    """``file.ark:123[range]`` -> (file, 123, range); ``file`` -> (file, None, None)."""
    value = value.strip()
    match = _OFFSET_RE.match(value)
    if match:
        return match.group(1), int(match.group(2)), match.group(3)
    path, rng = _split_range(value)
    return path, None, rng


class _FileCache:
    """Keeps the last opened archive so consecutive scp entries reuse one handle."""

    def __init__(self):
        self.path = None
        self.handle = None

    def get(self, path):
        if path != self.path:
            self.close()
            self.handle = xfilename.open_file(path, "rb")
            self.path = path
        return self.handle

    def close(self):
        if self.handle is not None:
            self.handle.close()
        self.path = self.handle = None


def _read_location(value: str, cache: _FileCache | None = None, key: str | None = None) -> np.ndarray:
    path, offset, rng = split_location(value)
    label = f"'{value}'" + (f" (key '{key}')" if key else "")
    if path.endswith("|") or path == "-":
        if offset is not None:
            raise ToolError(f"{label}: a byte offset needs a file, not a pipe")
        source = Input(path)
        try:
            obj = read_object_from(source.stream, f"{source.name}, {label}")
            # drain what follows so the command ends normally (no SIGPIPE exit status)
            while source.stream.read(1 << 16):
                pass
        except ToolError as err:
            source.close_after_error(err)
        except BaseException:
            source.close(check=False)
            raise
        source.close(check=True)
        return _apply_range(obj, rng, label)
    owned = cache is None
    cache = cache or _FileCache()
    try:
        handle = cache.get(path)
        if offset is not None:
            size = os.fstat(handle.fileno()).st_size
            if offset >= size:
                raise ToolError(f"{path}: offset {offset} is beyond the end of the file ({size} bytes)"
                                + (f" (key '{key}')" if key else ""))
            handle.seek(offset)
        else:
            handle.seek(0)
        where = f"{path}" + (f":{offset}" if offset is not None else "") + (f", key '{key}'" if key else "")
        return _apply_range(read_object_from(handle, where), rng, label)
    finally:
        if owned:
            cache.close()


def read_object(location: str) -> np.ndarray:
    """One object from an scp value: ``file.ark:byte_offset`` (seek, read one object only),
    ``file`` (a single-object file), ``cmd |``, optionally with a Kaldi range ``[a:b,c:d]``."""
    return _read_location(location)


def _iter_scp(location: str, permissive: bool = False) -> Iterator[tuple[str, np.ndarray]]:
    if xfilename.classify_rxfilename(location) != xfilename.FILE:
        name, lines = xfilename.read_text_lines(location)
        entries = []
        for number, line in enumerate(lines, 1):
            parts = line.strip().split(None, 1)
            if len(parts) != 2:
                raise ToolError(f"{name}:{number}: expected 'key location', got '{line.strip()}'")
            entries.append((parts[0], parts[1]))
    else:
        entries = read_table(location, sorted_keys=False, unique=False)
    cache = _FileCache()
    try:
        for key, value in entries:
            try:
                obj = _read_location(value, cache, key)
            except ToolError as err:
                if not permissive:
                    raise
                cli.warn(f"skipping '{key}' (permissive rspecifier): {err}")
                cache.close()
                continue
            yield key, obj
    finally:
        cache.close()


def _permissive_ark(items: Iterator[tuple[str, np.ndarray]]) -> Iterator[tuple[str, np.ndarray]]:
    """Kaldi's ``p`` option for archives: a read error ends the archive (with a warning)."""
    try:
        yield from items
    except ToolError as err:
        cli.warn(f"stopping at a read error (permissive rspecifier): {err}")


def read_rspecifier(rspec: str) -> Iterator[tuple[str, np.ndarray]]:
    """Iterate ``(key, array)`` over ``ark:f``, ``scp:f``, ``ark:-``, ``ark:cmd |``.

    FM/FV objects come back float32, DM/DV float64, compressed and text objects float32.
    Options ``s``, ``cs``, ``o`` are accepted and change nothing (reading is sequential);
    ``p`` (permissive, as Kaldi): unreadable scp entries are skipped and a read error ends an
    archive, each with a warning. Otherwise a failing pipe command or unreadable object is a
    ToolError.
    """
    spec = parse_rspecifier(rspec)
    location = spec.locations[0]
    permissive = "p" in spec.options
    if spec.kinds[0] == "ark":
        return _permissive_ark(_iter_ark(location)) if permissive else _iter_ark(location)
    return _iter_scp(location, permissive)


def read_dict_of_arrays(rspec: str) -> dict[str, np.ndarray]:
    """All objects of a (small) archive as a dict; for vectors such as x-vectors, not features."""
    result = {}
    for key, value in read_rspecifier(rspec):
        if key in result:
            raise ToolError(f"{rspec}: duplicate key '{key}'")
        result[key] = value
    return result


# ----------------------------------------------------------------------------------------------
# random access
class RandomAccessReader:
    """Random access to the objects of an scp file by key, seeking to each byte offset.

    Thread safe: each thread gets its own file handle.
    """

    def __init__(self, scp_path):
        """``scp_path``: an scp file, or an rspecifier ``scp[,opts]:file``."""
        scp_path = os.fspath(scp_path)
        if _SPEC_RE.match(scp_path) and scp_path.split(":", 1)[0].split(",")[0] in ("scp", "ark"):
            spec = parse_rspecifier(scp_path)
            if spec.kinds != ["scp"]:
                raise ToolError(f"random access needs an scp file (byte offsets), got '{scp_path}'")
            scp_path = spec.locations[0]
        self.path = scp_path
        self._locations = dict(read_table(self.path, sorted_keys=False, unique=True))
        self._local = threading.local()
        new_thread_locals_after_fork(self)   # forked readers open their own files

    def keys(self):
        return self._locations.keys()

    def __len__(self):
        return len(self._locations)

    def __contains__(self, key):
        return key in self._locations

    def __iter__(self):
        return iter(self._locations)

    def location(self, key: str) -> str:
        try:
            return self._locations[key]
        except KeyError:
            raise ToolError(f"key '{key}' not found in {self.path}") from None

    def __getitem__(self, key: str) -> np.ndarray:
        cache = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = _FileCache()
        return _read_location(self.location(key), cache, key)

    def close(self):
        cache = getattr(self._local, "cache", None)
        if cache is not None:
            cache.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ----------------------------------------------------------------------------------------------
# writing
class ArchiveWriter:
    """Write ``(key, array)`` to a wspecifier; use as a context manager.

    2-D float32 -> ``FM``, float64 -> ``DM``, 1-D -> ``FV``/``DV`` (other numeric dtypes are
    stored as float32); ``compress=True`` stores matrices as Kaldi compressed matrices with
    ``compression_method`` (``auto`` as in Kaldi's copy-feats: ``speech-feature`` (CM) for
    more than 8 rows, else ``2byte-auto`` (CM2)). Files appear only when the writer closes
    without error; a failing output pipe is a ToolError.
    """

    def __init__(self, wspec: str, compress: bool = False, compression_method: str = "auto"):
        self.spec = parse_wspecifier(wspec)
        if compression_method not in compressed.METHODS:
            raise ToolError(f"unknown compression method '{compression_method}' "
                            f"(expected one of {', '.join(compressed.METHODS)})")
        self.compress = compress
        self.method = compression_method
        self.text = self.spec.text
        self.ark_location = self.spec.locations[0]
        self.scp_location = self.spec.locations[1] if "scp" in self.spec.kinds else None
        if self.scp_location and (self.ark_location == "-" or self.ark_location.startswith("|")):
            raise ToolError(f"invalid wspecifier '{wspec}': ark,scp needs a real ark file (byte offsets)")
        self._offset = 0
        self._keys = set()
        self._scp_lines = []
        self._ark = xfilename.Output(self.ark_location)
        self._scp = None
        if self.scp_location:
            try:
                self._scp = xfilename.Output(self.scp_location)
            except ToolError:
                self._ark.close(failed=True)
                raise

    def write(self, key: str, array) -> None:
        if not isinstance(key, str) or not key or any(c in key for c in " \t\n\r"):
            raise ToolError(f"{self.ark_location}: invalid key {key!r} (non-empty, no whitespace)")
        if key in self._keys:
            raise ToolError(f"{self.ark_location}: duplicate key '{key}'")
        array = np.asarray(array)
        if array.ndim not in (1, 2):
            raise ToolError(f"{self.ark_location}: key '{key}': can write vectors and matrices only, "
                            f"got shape {array.shape}")
        if array.dtype not in (np.float32, np.float64):
            array = array.astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise ToolError(f"{self.ark_location}: key '{key}': array contains NaN or Inf")
        self._keys.add(key)
        head = key.encode("utf-8", "surrogateescape") + b" "
        if self.text:
            if self.compress and array.ndim == 2:
                # Kaldi writes a compressed matrix in text mode as its decompressed values
                array = compressed.decompress(compressed.compress(array, self.method))
            body = text_object_bytes(array)
        else:
            body = binary_object_bytes(array, self.compress, self.method)
        self._ark.write(head + body)
        if self.scp_location:
            self._scp_lines.append(f"{key} {self.ark_location}:{self._offset + len(head)}\n")
        self._offset += len(head) + len(body)

    def close(self, failed: bool = False) -> None:
        if self._ark is None:
            return
        outputs = [self._ark] + ([self._scp] if self._scp is not None else [])
        self._ark = self._scp = None
        try:
            outputs[0].finish(failed)
            if len(outputs) > 1:
                if not failed:
                    outputs[1].write("".join(self._scp_lines).encode("utf-8", "surrogateescape"))
                outputs[1].finish(failed)
            # the archive is renamed into place before its scp, so an scp never points at nothing
            for output in outputs:
                output.commit(failed)
        except BaseException:
            for output in outputs:
                output.commit(failed=True)
            raise

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(failed=exc_type is not None)
        return False


def write_archive(wspec: str, items, compress: bool = False) -> None:
    """Write an iterable of ``(key, array)`` to ``wspec`` (convenience wrapper)."""
    with ArchiveWriter(wspec, compress=compress) as writer:
        for key, array in items:
            writer.write(key, array)
