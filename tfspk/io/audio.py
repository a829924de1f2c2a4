"""Audio from ``wav.scp`` values: file paths and ``cmd |`` pipes, cut by ``segments``.

Samples come back as float32 on the int16 scale (a 16-bit sample ``s`` is ``float(s)``), which
is what Kaldi's feature extractors see. Multi-channel audio uses channel 0 with a warning,
like Kaldi's ``compute-mfcc-feats --channel=-1``.
"""
from __future__ import annotations

import io
import os
from typing import Iterator

import numpy as np

from tfspk.errors import ToolError
from tfspk.io import xfilename
from tfspk.io.table import read_dict, read_table

# extract-segments defaults: a segment may end this far past the end of its recording, and
# must be longer than the minimum length
MAX_OVERSHOOT_SECONDS = 0.5
MIN_SEGMENT_SECONDS = 0.1


def _patch_streamed_wav_sizes(raw: bytes) -> bytes | None:
    """WAV written to a pipe may carry RIFF/data sizes of 0 (the writer could not seek back);
    like Kaldi's wave reader, take the data to run to the end of the stream. None if not such a WAV."""
    if len(raw) < 44 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        return None
    position = 12
    while position + 8 <= len(raw):
        chunk, size = raw[position:position + 4], int.from_bytes(raw[position + 4:position + 8], "little")
        if chunk == b"data":
            remaining = len(raw) - position - 8
            if size != 0 or remaining <= 0:
                return None
            patched = bytearray(raw)
            patched[4:8] = (len(raw) - 8).to_bytes(4, "little")
            patched[position + 4:position + 8] = remaining.to_bytes(4, "little")
            return bytes(patched)
        position += 8 + size + (size & 1)
    return None


def _wav_shortfall(handle) -> tuple[int, int] | None:
    """``(declared, present)`` data bytes of a RIFF/WAVE stream whose ``data`` chunk declares more
    bytes than the stream holds; None for complete files, streamed WAV (size 0 or 0xFFFFFFFF,
    Kaldi's "streamed" case) and other formats."""
    total = handle.seek(0, io.SEEK_END)
    handle.seek(0)
    head = handle.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    position = 12
    while position + 8 <= total:
        handle.seek(position)
        chunk = handle.read(8)
        size = int.from_bytes(chunk[4:8], "little")
        if chunk[:4] == b"data":
            present = total - position - 8
            if size in (0, 0xFFFFFFFF) or present >= size:
                return None
            return size, present
        position += 8 + size + (size & 1)
    return None


def _warn_if_truncated(data, name: str) -> None:
    """Kaldi's wave reader reads what there is of a data chunk that is shorter than its header
    says, with a warning ("... Truncated file?"); libsndfile reads it silently, so check here."""
    if isinstance(data, io.BytesIO):
        shortfall = _wav_shortfall(data)
        data.seek(0)
    else:
        with open(data, "rb") as handle:
            shortfall = _wav_shortfall(handle)
    if shortfall is not None:
        from tfspk import cli
        cli.warn(f"audio {name}: Expected {shortfall[0]} bytes of wave data, but read only "
                 f"{shortfall[1]} bytes. Truncated file?")


def _decode(data, name: str) -> tuple[np.ndarray, int]:
    _warn_if_truncated(data, name)
    samples, rate = _decode_once(data, name)
    if samples.size == 0:
        if isinstance(data, io.BytesIO):
            raw = data.getvalue()
        else:
            with open(data, "rb") as handle:
                raw = handle.read()
        patched = _patch_streamed_wav_sizes(raw)
        if patched is not None:
            samples, rate = _decode_once(io.BytesIO(patched), name)
    if samples.size == 0:
        raise ToolError(f"audio {name} is empty (0 samples)")
    return samples, rate


def _decode_once(data, name: str) -> tuple[np.ndarray, int]:
    import soundfile as sf
    try:
        with sf.SoundFile(data) as audio:
            # 16-bit PCM (the common case) is read as integers: the same values as the float
            # path times 32768, without a float64 copy of the whole file.
            if audio.subtype == "PCM_16":
                samples = audio.read(dtype="int16", always_2d=True)
            else:
                samples = audio.read(dtype="float64", always_2d=True) * 32768.0
            rate = audio.samplerate
    except (RuntimeError, sf.LibsndfileError, TypeError, ValueError) as err:
        raise ToolError(f"cannot read audio {name}: not a readable audio file ({err})") from None
    if samples.shape[1] > 1:
        from tfspk import cli
        cli.warn(f"{name} has {samples.shape[1]} channels; using channel 0")
    return samples[:, 0].astype(np.float32), int(rate)


def _run_pipe(value: str) -> bytes:
    """The output of a ``cmd |`` wav.scp value (its last stderr line joins a failure message)."""
    data = xfilename.read_bytes(value, capture_stderr=True)
    if not data:
        raise ToolError(f"command '{xfilename.pipe_command(value)}' produced no audio (empty output)")
    return data


def read_audio(wav_scp_value: str, segment: tuple[float, float] | None = None) -> tuple[np.ndarray, int]:
    """Read the audio a ``wav.scp`` value names; optionally cut ``segment=(start, end)`` seconds.

    Returns ``(samples, rate)``: float32 1-D samples on the int16 scale. A value ending in
    ``|`` is run with bash and its standard output decoded (WAV, FLAC, ... via soundfile);
    a non-zero exit status is an error. See :func:`cut_segment` for the segment rules.
    """
    value = wav_scp_value.strip()
    if not value:
        raise ToolError("empty wav.scp value")
    if value.endswith("|"):
        command = value[:-1].strip()
        samples, rate = _decode(io.BytesIO(_run_pipe(value)), f"from command '{command}'")
    else:
        if not os.path.exists(value):
            raise ToolError(f"audio file not found: {value}")
        if os.path.isdir(value):
            raise ToolError(f"audio path is a directory: {value}")
        if os.path.getsize(value) == 0:
            raise ToolError(f"audio file is empty (0 bytes): {value}")
        samples, rate = _decode(value, value)
    if segment is not None:
        samples = cut_segment(samples, rate, segment[0], segment[1], value)
    return samples, rate


def cut_segment(samples: np.ndarray, rate: int, start: float, end: float, name: str = "",
                min_seconds: float = 0.0) -> np.ndarray:
    """Samples ``[int(start*rate), int(end*rate))``, Kaldi ``extract-segments`` semantics.

    Sample indices are truncated (C++ conversion to int32); ``end`` -1 means the end of the
    recording; an end less than 0.5 s (``--max-overshoot``) past the recording is clipped to it.
    A segment Kaldi would skip (start outside the recording, end too far out, not longer than
    ``min_seconds``: extract-segments' ``--min-segment-length`` is 0.1) is a ToolError saying why.
    """
    total = len(samples)
    first = int(start * rate)
    last = total if end == -1 else int(end * rate)
    where = f"segment {start}-{end} s of {name or 'the recording'} ({total / rate:.3f} s)"
    if not 0 <= first < total:
        raise ToolError(f"{where}: start is outside the recording")
    if last > total:
        if last >= total + int(MAX_OVERSHOOT_SECONDS * rate):
            raise ToolError(f"{where}: ends more than {MAX_OVERSHOOT_SECONDS} s after the recording")
        last = total
    if last <= first + int(min_seconds * rate):
        raise ToolError(f"{where}: too short (not longer than {min_seconds:g} s)")
    return samples[first:last]


def read_segments(path) -> list[tuple[str, str, float, float]]:
    """``segments`` -> ``[(utt, recording, start, end)]``; checks numbers and order start < end."""
    result = []
    for number, (utt, rest) in enumerate(read_table(path), 1):
        fields = rest.split()
        try:
            if len(fields) != 3:
                raise ValueError
            start, end = float(fields[1]), float(fields[2])
        except ValueError:
            raise ToolError(f"{os.fspath(path)}:{number}: expected 'utt recording start end', "
                            f"got '{utt} {rest}'") from None
        if start < 0 or (end != -1 and end <= start):
            raise ToolError(f"{os.fspath(path)}:{number}: segment '{utt}' has start {start} and end {end} "
                            "(need 0 <= start < end, or end -1 for the whole recording)")
        result.append((utt, fields[0], start, end))
    return result


def iter_data_dir_audio(data_dir) -> Iterator[tuple[str, np.ndarray, int]]:
    """``(utt, samples, rate)`` for every utterance of a data dir, honouring ``segments``.

    Segments that Kaldi's extract-segments would skip are skipped with a warning (the caller's
    output then lacks them, and fix_data_dir.sh drops them, as in Kaldi). Only one recording is held in memory at a time (segments of a recording are usually
    consecutive; a recording is re-read if they are not).
    """
    data_dir = os.fspath(data_dir)
    wav_scp = read_dict(os.path.join(data_dir, "wav.scp"))
    segments_path = os.path.join(data_dir, "segments")
    if not os.path.exists(segments_path):
        for utt, value in wav_scp.items():
            samples, rate = _read_named(value, utt)
            yield utt, samples, rate
        return
    cached_id, cached = None, None
    for utt, recording, start, end in read_segments(segments_path):
        if recording not in wav_scp:
            raise ToolError(f"{segments_path}: recording '{recording}' of segment '{utt}' is not in "
                            f"{os.path.join(data_dir, 'wav.scp')}")
        if recording != cached_id:
            cached_id, cached = recording, _read_named(wav_scp[recording], recording)
        samples, rate = cached
        try:
            piece = cut_segment(samples, rate, start, end, f"'{recording}'", MIN_SEGMENT_SECONDS)
        except ToolError as err:            # extract-segments warns and skips such segments
            from tfspk import cli
            cli.warn(f"skipping segment '{utt}': {err}")
            continue
        yield utt, piece, rate


def _read_named(value: str, key: str) -> tuple[np.ndarray, int]:
    try:
        return read_audio(value)
    except ToolError as err:
        raise ToolError(f"wav.scp entry '{key}': {err}") from None
