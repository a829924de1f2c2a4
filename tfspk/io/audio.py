"""Audio from ``wav.scp`` values: file paths and ``cmd |`` pipes, cut by ``segments``.

Samples come back as float32 on the int16 scale (a 16-bit sample ``s`` is ``float(s)``), which
is what Kaldi's feature extractors see. Multi-channel audio uses channel 0 with a warning,
like Kaldi's ``compute-mfcc-feats --channel=-1``.
"""
from __future__ import annotations

import io
import os
from typing import Iterator, NamedTuple

import numpy as np

from tfspk.errors import ToolError
from tfspk.io import xfilename
from tfspk.io.table import read_lines, read_table, split_key

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


def segment_range(total: int, rate: int, start: float, end: float, name: str = "",
                  min_seconds: float = 0.0) -> tuple[int, int]:
    """Samples ``[first, last)`` of a segment of a recording of ``total`` samples, Kaldi
    ``extract-segments`` semantics (the one statement of its rule here).

    Sample indices are truncated (C++ conversion to int32); ``end`` -1 means the end of the
    recording; an end less than 0.5 s (``--max-overshoot``) past the recording is clipped to it.
    A segment Kaldi would skip (start outside the recording, end too far out, not longer than
    ``min_seconds``: extract-segments' ``--min-segment-length`` is 0.1) is a ToolError saying why.
    """
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
    return first, last


def cut_segment(samples: np.ndarray, rate: int, start: float, end: float, name: str = "",
                min_seconds: float = 0.0) -> np.ndarray:
    """Samples ``[int(start*rate), int(end*rate))`` of ``samples`` (rules of :func:`segment_range`)."""
    first, last = segment_range(len(samples), rate, start, end, name, min_seconds)
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


# ----------------------------------------------------------------------------------------------
# a data dir's audio: wav.scp (+ segments), enumerated once

class Utterance(NamedTuple):
    """One utterance of a data dir: the whole recording ``recording`` of wav.scp (``start`` 0,
    ``end`` -1) or a segment of it (seconds, as in ``segments``)."""
    utt: str
    recording: str
    value: str              # the wav.scp value: a file path or ``cmd |``
    start: float = 0.0
    end: float = -1.0
    segment: bool = False


def read_wav_scp(path) -> list[tuple[str, str]]:
    """``[(key, value)]`` of a wav.scp in file order; a line without a value or a repeated key is an
    error naming the line."""
    path = os.fspath(path)
    entries, seen = [], {}
    for number, line in enumerate(read_lines(path), 1):
        key, value = split_key(line)
        if not key and not value:
            continue
        if not value:
            raise ToolError(f"{path}:{number}: expected 'key wav-path-or-command', got '{line.strip()}'")
        if key in seen:
            raise ToolError(f"{path}:{number}: duplicate key '{key}' (first on line {seen[key]})")
        seen[key] = number
        entries.append((key, value))
    return entries


def utterances(wav_scp, segments=None) -> list[Utterance]:
    """The utterances of ``wav_scp`` (a path, or its ``[(key, value)]``), cut by the ``segments``
    file if given (wav.scp is then keyed by recording; every segment's recording must be in it)."""
    entries = read_wav_scp(wav_scp) if isinstance(wav_scp, (str, os.PathLike)) else list(wav_scp)
    if segments is None:
        return [Utterance(key, key, value) for key, value in entries]
    recordings = dict(entries)
    result = []
    for number, (utt, recording, start, end) in enumerate(read_segments(segments), 1):
        if recording not in recordings:
            where = os.fspath(wav_scp) if isinstance(wav_scp, (str, os.PathLike)) else "the wav table"
            raise ToolError(f"{os.fspath(segments)}:{number}: recording '{recording}' of segment '{utt}' is not in "
                            f"{where}")
        result.append(Utterance(utt, recording, recordings[recording], start, end, True))
    return result


def data_dir_utterances(data_dir) -> list[Utterance]:
    """:func:`utterances` of a data dir: its wav.scp, and its segments file when there is one."""
    data_dir = os.fspath(data_dir)
    segments = os.path.join(data_dir, "segments")
    return utterances(os.path.join(data_dir, "wav.scp"), segments if os.path.exists(segments) else None)


def skip_segment(utt: str, err: ToolError) -> None:
    """What extract-segments does with a segment outside its recording or too short: warn, go on."""
    from tfspk import cli
    cli.warn(f"skipping segment '{utt}' (as extract-segments does): {err}")


def iter_utterance_audio(items, min_segment_seconds: float = MIN_SEGMENT_SECONDS,
                         permissive: bool = False) -> Iterator[tuple]:
    """``(utt, samples, rate)`` for each :class:`Utterance` of ``items``, in order. Segments are cut
    by :func:`segment_range`; one Kaldi would skip is skipped with a warning (:func:`skip_segment`).
    Only one recording is held in memory at a time (consecutive segments of a recording read it once).

    ``permissive`` (Kaldi's ``p`` rspecifier option): an unreadable recording is yielded as
    ``(utt, ToolError, None)`` for each of its utterances; otherwise its error is raised.
    """
    cached_id, cached = None, None
    for item in items:
        if item.recording != cached_id:
            cached_id = item.recording
            try:
                cached = read_named(item.value, item.recording)
            except ToolError as err:
                if not permissive:
                    raise
                cached = err
        if isinstance(cached, ToolError):
            yield item.utt, cached, None
            continue
        samples, rate = cached
        if not item.segment:
            yield item.utt, samples, rate
            continue
        try:
            first, last = segment_range(len(samples), rate, item.start, item.end, f"'{item.recording}'",
                                        min_segment_seconds)
        except ToolError as err:
            skip_segment(item.utt, err)
            continue
        yield item.utt, samples[first:last], rate


def iter_data_dir_audio(data_dir) -> Iterator[tuple[str, np.ndarray, int]]:
    """``(utt, samples, rate)`` for every utterance of a data dir (:func:`data_dir_utterances`,
    :func:`iter_utterance_audio`)."""
    return iter_utterance_audio(data_dir_utterances(data_dir))


def read_named(value: str, key: str) -> tuple[np.ndarray, int]:
    """:func:`read_audio` of a wav.scp value, errors naming its key."""
    try:
        return read_audio(value)
    except ToolError as err:
        raise ToolError(f"wav.scp entry '{key}': {err}") from None


def keep_valid_segments(items, min_segment_seconds: float = MIN_SEGMENT_SECONDS) -> list[Utterance]:
    """``items`` without the segments Kaldi's extract-segments would skip (each warned about, as
    :func:`iter_utterance_audio` does), for readers that take utterances in another order. Lengths come
    from file headers; a ``cmd |`` recording with segments is decoded once to learn its length."""
    lengths, kept = {}, []
    for item in items:
        if not item.segment:
            kept.append(item)
            continue
        if item.recording not in lengths:
            if item.value.rstrip().endswith("|"):
                samples, rate = read_named(item.value, item.recording)
                lengths[item.recording] = (len(samples), rate)
            else:
                lengths[item.recording] = file_info(item.value, f"wav.scp entry '{item.recording}'")
        total, rate = lengths[item.recording]
        try:
            segment_range(total, rate, item.start, item.end, f"'{item.recording}'", min_segment_seconds)
        except ToolError as err:
            skip_segment(item.utt, err)
            continue
        kept.append(item)
    return kept


def read_utterance(item: Utterance, min_segment_seconds: float = MIN_SEGMENT_SECONDS) -> tuple[np.ndarray, int]:
    """``(samples, rate)`` of one :class:`Utterance` (its recording read, the segment cut); a bad
    segment is an error here (filter with :func:`keep_valid_segments` first)."""
    samples, rate = read_named(item.value, item.recording)
    if not item.segment:
        return samples, rate
    first, last = segment_range(len(samples), rate, item.start, item.end, f"'{item.recording}'",
                                min_segment_seconds)
    return samples[first:last], rate


# ----------------------------------------------------------------------------------------------
# spans of files: partial reads

class Span(NamedTuple):
    """Samples ``[first, first + count)`` of the file ``path`` (at ``rate`` Hz): an utterance's audio."""
    utt: str
    path: str
    first: int
    count: int
    rate: int


def file_info(path: str, where: str) -> tuple[int, int]:
    """``(num_samples, rate)`` of an audio file from its header; ToolError naming ``where``."""
    import soundfile as sf
    try:
        found = sf.info(path)
    except Exception as err:  # soundfile raises several types for unreadable files
        raise ToolError(f"{where}: cannot read audio {path} ({err})") from None
    return int(found.frames), int(found.samplerate)


def utterance_spans(items, what: str, min_segment_seconds: float = MIN_SEGMENT_SECONDS,
                    scp: str = "wav.scp") -> list[Span]:
    """The :class:`Span` of each :class:`Utterance` from the file headers (no samples read), for
    readers that take parts of files (:func:`read_span`). Segments Kaldi would skip are skipped with
    a warning; ``cmd |`` values are an error (``what`` names the reader that needs files, ``scp`` the
    wav.scp in messages)."""
    headers, result = {}, []
    for item in items:
        if item.value.rstrip().endswith("|"):
            raise ToolError(f"{scp}: '{item.recording}' is a command; {what} needs files (decode the commands "
                            "once, e.g. egs/voxceleb/v2/local/wav_scp_to_files.py)")
        if item.recording not in headers:
            headers[item.recording] = file_info(item.value, f"{scp}: '{item.recording}'")
        total, rate = headers[item.recording]
        if not item.segment:
            result.append(Span(item.utt, item.value, 0, total, rate))
            continue
        try:
            first, last = segment_range(total, rate, item.start, item.end, f"'{item.recording}'",
                                        min_segment_seconds)
        except ToolError as err:
            skip_segment(item.utt, err)
            continue
        result.append(Span(item.utt, item.value, first, last - first, rate))
    return result


def read_span(path: str, start: int, stop: int, where: str = "") -> np.ndarray:
    """Samples ``[start, stop)`` of the audio file ``path`` (channel 0, float32 on the int16 scale);
    only that part of the file is read. A file shorter than ``stop`` is an error (truncated?)."""
    import soundfile as sf
    label = where or path
    try:
        raw = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)[0]
    except Exception as err:
        raise ToolError(f"cannot read audio {path} of {label} ({err})") from None
    if raw.shape[0] != stop - start:
        raise ToolError(f"audio {path} of {label}: expected samples {start}..{stop - 1}, the file has only "
                        f"{start + raw.shape[0]} (truncated?)")
    return raw[:, 0] * np.float32(32768.0)


def span_length_at(span: Span, target_rate: int) -> int:
    """Samples of ``span`` at ``target_rate``: its count, or the length resampling gives,
    ``ceil(count * target / rate)`` (:func:`tfspk.io.resample.resample`)."""
    if span.rate == target_rate:
        return span.count
    return -(-span.count * int(target_rate) // span.rate)


def read_span_at(span: Span, start: int, stop: int, target_rate: int, where: str = "",
                 allow_resample: bool = True) -> np.ndarray:
    """Samples ``[start, stop)`` of ``span``'s audio at ``target_rate`` (indices at that rate), reading
    only the part of the file they come from.

    At another rate the part is read with a margin of the polyphase filter's half length on each side
    (:func:`tfspk.io.resample.resample`: ``10 max(up, down)`` taps at the upsampled rate) and from a
    source sample that is a multiple of ``down`` (so the output grid of the part is the grid of the whole
    span), then resampled by :func:`tfspk.io.resample.conform_rate`; inside the span the samples are
    those of resampling the whole span.
    """
    from math import gcd

    from tfspk.io.resample import conform_rate
    if span.rate == target_rate:
        return read_span(span.path, span.first + start, span.first + stop, where)
    divisor = gcd(span.rate, int(target_rate))
    up, down = int(target_rate) // divisor, span.rate // divisor
    margin = -(-10 * max(up, down) // up) + 2
    first = max(0, (start * down // up - margin) // down * down)
    last = min(span.count, -(-stop * down // up) + margin)
    raw = read_span(span.path, span.first + first, span.first + last, where)
    out = conform_rate(raw, span.rate, target_rate, allow_resample, where or span.path)
    offset = start - first // down * up
    return out[offset:offset + stop - start]
