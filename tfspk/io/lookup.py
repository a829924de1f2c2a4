"""Lookups that readers of archives and tables share: the archive and offset of an scp value, per-thread
open files, vectors by key in bounded memory, and an entry's location for error messages."""
from __future__ import annotations

import threading

from tfspk.errors import ToolError
from tfspk.io.ark import RandomAccessReader, parse_rspecifier, read_dict_of_arrays, read_rspecifier, split_location
from tfspk.io.table import c_locale_key, read_table
from tfspk.io.util import new_thread_locals_after_fork


def file_offset(location: str) -> tuple[str, int] | None:
    """``(file, byte offset)`` of an scp value ``file:offset`` naming one object of an archive file;
    None for anything else (a pipe, a single-object file, a Kaldi range)."""
    path, offset, rng = split_location(location)
    if offset is None or rng is not None or "|" in path:
        return None
    return path, offset


class OpenFiles:
    """Binary read handles by path for readers that seek among many archives: each thread has its own
    (a forked child opens its own too: see :func:`tfspk.io.util.new_thread_locals_after_fork`), at most
    ``limit`` per thread (all are closed when a new one would exceed it)."""

    def __init__(self, limit: int = 32):
        self.limit = limit
        self._local = threading.local()
        new_thread_locals_after_fork(self)

    def get(self, path: str):
        handles = getattr(self._local, "handles", None)
        if handles is None:
            handles = self._local.handles = {}
        if path not in handles:
            if len(handles) >= self.limit:
                for handle in handles.values():
                    handle.close()
                handles.clear()
            try:
                handles[path] = open(path, "rb")
            except OSError as err:
                raise ToolError(f"cannot open {path}: {err.strerror}") from None
        return handles[path]

    def close(self) -> None:
        for handle in getattr(self._local, "handles", {}).values():
            handle.close()
        self._local.handles = {}


class VectorLookup:
    """Lookup of vectors by key from an rspecifier, in bounded memory where Kaldi would be:

    * ``scp:`` file: seeks by byte offset (only the offsets are held);
    * ``ark,s,cs:`` (sorted, called in sorted order, as Kaldi's option promises): read in step
      with the requests, holding one entry;
    * any other ``ark:``: read into memory (VAD vectors are 4 bytes per frame).
    """

    def __init__(self, rspec: str):
        spec = parse_rspecifier(rspec)
        self.rspec = rspec
        self._reader = self._stream = None
        self._pending = None
        location = spec.locations[0]
        if spec.kinds[0] == "scp" and location != "-" and not location.endswith("|"):
            self._reader = RandomAccessReader(location)
        elif spec.kinds[0] == "ark" and {"s", "cs"} <= spec.options:
            self._stream = read_rspecifier(rspec)
        else:
            self._reader = read_dict_of_arrays(rspec)

    def get(self, key: str):
        """The object of ``key``, or None if the table has none."""
        if self._stream is None:
            return self._reader[key] if key in self._reader else None
        wanted = c_locale_key(key)
        while True:
            if self._pending is None:
                self._pending = next(self._stream, None)
                if self._pending is None:
                    return None
            current = c_locale_key(self._pending[0])
            if current == wanted:
                return self._pending[1]
            if current > wanted:         # the wanted key is not in the (sorted) archive
                return None
            self._pending = None


def location_in(rspec: str, key: str) -> str:
    """``rspec``, with the archive location of ``key`` when it is an scp (for error messages)."""
    kind, _, path = rspec.partition(":")
    if "scp" in kind.split(","):
        try:
            for other, location in read_table(path, sorted_keys=False, unique=False):
                if other == key:
                    return f"{rspec} ({location.strip()})"
        except ToolError:
            pass
    return rspec
