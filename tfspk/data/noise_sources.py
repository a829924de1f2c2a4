"""The recordings of augmentation (noise, music, babble, room impulse responses): Kaldi data dirs read
lazily, decoded recordings kept in a bounded LRU cache shared by the sources of one augmenter."""
from __future__ import annotations

import collections
import os
import threading

import numpy as np

from tfspk.errors import ToolError


class LruCache:
    """Decoded recordings by key, at most ``max_bytes`` in total (thread-safe)."""

    def __init__(self, max_bytes: float):
        self._max = max_bytes
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value: np.ndarray) -> None:
        if value.nbytes > self._max:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._bytes += value.nbytes
            while self._bytes > self._max:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes


class AudioSource:
    """The recordings of a Kaldi data dir (``wav.scp``) at ``sample_rate``, read lazily.

    Construction reads ``wav.scp`` and the header of every file entry (rate, length, readable);
    ``cmd |`` entries are checked when first read. ToolErrors name the directory, file and key.
    Recordings at another rate are resampled to ``sample_rate`` where they are read
    (:func:`tfspk.io.audio.read_span_at`), unless ``allow_resample`` is false (then an error).
    """

    def __init__(self, data_dir: str, what: str, sample_rate: int, cache: LruCache, allow_resample: bool = True):
        self.dir = os.fspath(data_dir)
        self.what = what
        self.rate = int(sample_rate)
        self.allow_resample = bool(allow_resample)
        self._spans = {}      # key -> tfspk.io.audio.Span of the files at another rate
        self._cache = cache
        if not os.path.isdir(self.dir):
            raise ToolError(f"{what} dir '{self.dir}' does not exist")
        scp = os.path.join(self.dir, "wav.scp")
        if not os.path.isfile(scp):
            raise ToolError(f"{what} dir '{self.dir}' has no wav.scp ({scp} not found)")
        from tfspk.io.table import read_table
        entries = read_table(scp, sorted_keys=False)
        if not entries:
            raise ToolError(f"{what} dir '{self.dir}': {scp} is empty")
        self.scp = scp
        self.keys = [key for key, _ in entries]
        self._values = dict(entries)
        self._lengths: dict[str, int] = {}
        for key, value in entries:
            if not value.rstrip().endswith("|"):
                self._lengths[key] = self._check_header(key, value)

    def __len__(self) -> int:
        return len(self.keys)

    def _where(self, key: str) -> str:
        return f"{self.what} '{key}' ({self._values[key]}, in {self.scp})"

    def _check_header(self, key: str, path: str) -> int:
        import soundfile as sf
        if not os.path.isfile(path):
            raise ToolError(f"{self._where(key)}: file not found")
        if os.path.getsize(path) == 0:
            raise ToolError(f"{self._where(key)}: file is empty (0 bytes)")
        try:
            info = sf.info(path)
        except Exception as err:  # soundfile raises several types for unreadable files
            raise ToolError(f"{self._where(key)}: not a readable audio file ({err})") from None
        if info.frames <= 0:
            raise ToolError(f"{self._where(key)}: no samples")
        if info.samplerate != self.rate:
            self._check_rate(key, info.samplerate)
            from tfspk.io.audio import Span, span_length_at
            self._spans[key] = Span(key, path, 0, int(info.frames), int(info.samplerate))
            return span_length_at(self._spans[key], self.rate)
        return int(info.frames)

    def _check_rate(self, key: str, rate: int) -> None:
        if not self.allow_resample:
            raise ToolError(f"{self._where(key)}: sample rate {rate} Hz, expected {self.rate} Hz (resampling is "
                            "off; resample the directory, e.g. with sox in wav.scp)")

    def length(self, key: str) -> int:
        """Number of samples of recording ``key``."""
        if key not in self._lengths:
            self._lengths[key] = len(self.read(key))
        return self._lengths[key]

    def read(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``[start, stop)`` of ``key`` (float32, int16 scale). Whole recordings up to
        the cache budget are decoded once and cached; longer ones are read in part."""
        cached = self._cache.get((self.dir, key))
        if cached is not None:
            return cached[start:stop]
        value = self._values[key].strip()
        if value.endswith("|"):
            from tfspk.io.audio import read_audio
            try:
                samples, rate = read_audio(value)
            except ToolError as err:
                raise ToolError(f"{self._where(key)}: {err}") from None
            if rate != self.rate:
                self._check_rate(key, rate)
                from tfspk.io.resample import conform_rate
                samples = conform_rate(samples, rate, self.rate)
            self._cache.put((self.dir, key), samples)
            return samples[start:stop]
        whole = self._lengths[key] * 4 <= self._cache._max / 8  # small files: keep the whole file
        samples = self._read_file(key, value, 0 if whole else start, None if whole else stop)
        if whole:
            self._cache.put((self.dir, key), samples)
            return samples[start:stop]
        return samples

    def _read_file(self, key: str, path: str, start: int, stop: int | None) -> np.ndarray:
        import soundfile as sf
        if key in self._spans:
            from tfspk.io.audio import read_span_at
            return read_span_at(self._spans[key], start, self._lengths[key] if stop is None else stop, self.rate,
                                self._where(key))
        try:
            data = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)[0]
        except Exception as err:
            raise ToolError(f"{self._where(key)}: cannot read audio ({err})") from None
        return data[:, 0] * np.float32(32768.0)

    def looped(self, key: str, offset: int, length: int) -> np.ndarray:
        """``length`` samples of the recording looped (repeated) from sample ``offset``."""
        total = self.length(key)
        if total >= length + offset:
            return self.read(key, offset, offset + length)
        whole = self.read(key)
        reps = (offset + length) // total + 1
        return np.tile(whole, reps)[offset:offset + length]
