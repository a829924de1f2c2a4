"""Kaldi validate_data_dir.sh (see :mod:`tfspk.io.datadir` for the differences)."""
from __future__ import annotations

import os

from tfspk.errors import ToolError
from tfspk.io.datadir._common import (ALL_FILES, RECO_FILES, SPK_FILES, _check_speaker_sorted, _keys_differ,
                                      _os_errors_as_tool_errors, _path, _present, _require_dir, _sorted_keys)
from tfspk.io.table import read_table, utt2spk_to_spk2utt

def _check_line_endings(path):
    """Strict text checks the readers do not make: CR line endings, missing final newline."""
    with open(path, "rb") as handle:
        raw = handle.read()
    if not raw:
        return
    if b"\r" in raw:
        line = raw[:raw.index(b"\r")].count(b"\n") + 1
        raise ToolError(f"{path}:{line}: Windows line ending (carriage return); "
                        f"run utils/fix_data_dir.sh {os.path.dirname(path) or '.'} to rewrite it")
    if not raw.endswith(b"\n"):
        last_line = raw.count(b"\n") + 1
        raise ToolError(f"{path}:{last_line}: last line has no newline")


def _read_checked(data, name, **kwargs):
    path = _path(data, name)
    _check_line_endings(path)
    items = read_table(path, **kwargs)
    if not items:
        raise ToolError(f"empty file {path}")
    return items


@_os_errors_as_tool_errors
def validate_data_dir(data, no_feats=False, no_wav=False, no_text=True, no_spk_sort=False,
                      check_feats_readable=True) -> list[str]:
    """Check a data dir like Kaldi's validate_data_dir.sh; return warnings, raise ToolError on errors.

    ``no_feats``/``no_wav``: feats.scp/wav.scp need not exist (checked if present). ``text``
    is never required (``no_text`` is accepted for Kaldi compatibility) but checked if present.
    """
    data = os.fspath(data)
    _require_dir(data)
    for name in ("utt2spk", "spk2utt"):
        if not os.path.isfile(_path(data, name)):
            raise ToolError(f"no such file {_path(data, name)}")
    for name in _present(data, ALL_FILES):
        _check_line_endings(_path(data, name))
    utts, spk2utt, warnings = _validate_speakers(data, no_spk_sort)

    def same_keys(name, keys, reference=utts, reference_name="utt2spk", what="utterance"):
        problem = _keys_differ(data, reference_name, reference, name, keys, what)
        if problem:
            raise ToolError(problem)

    if os.path.isfile(_path(data, "text")):
        same_keys("text", [k for k, _ in _read_checked(data, "text", allow_empty_value=True)])
    recordings = _validate_audio_tables(data, utts, no_wav, same_keys)
    _validate_utterance_tables(data, no_feats, check_feats_readable, same_keys)
    for name in SPK_FILES:
        if os.path.isfile(_path(data, name)):
            items = _read_checked(data, name)
            same_keys(name, [k for k, _ in items], spk2utt, "spk2utt", "speaker")
            if name == "spk2gender":
                for number, (spk, gender) in enumerate(items, 1):
                    if gender not in ("m", "f"):
                        raise ToolError(f"{_path(data, name)}:{number}: gender of '{spk}' must be m or f, got '{gender}'")
    for name in RECO_FILES:
        if os.path.isfile(_path(data, name)) and recordings is not None:
            same_keys(name, [k for k, _ in _read_checked(data, name)], recordings, "wav.scp/segments", "recording")
    if os.path.isfile(_path(data, "trials")):
        warnings += _check_trials(data, set(utts), set(spk2utt))
    return warnings


def _validate_speakers(data, no_spk_sort):
    """utt2spk well formed (and speaker-sorted), spk2utt exactly its inverse."""
    from tfspk.io.table import read_utt2spk
    utt2spk_items = _read_checked(data, "utt2spk")
    utt2spk = read_utt2spk(_path(data, "utt2spk"))
    if not no_spk_sort:
        _check_speaker_sorted(_path(data, "utt2spk"), utt2spk_items)
    spk2utt = {spk: rest.split() for spk, rest in _read_checked(data, "spk2utt")}
    expected = utt2spk_to_spk2utt(utt2spk)
    if spk2utt != expected:
        bad = next(s for s in _sorted_keys(set(spk2utt) | set(expected)) if spk2utt.get(s) != expected.get(s))
        raise ToolError(f"in {data}, spk2utt and utt2spk do not match (first difference: speaker "
                        f"'{bad}': spk2utt lists {spk2utt.get(bad)}, utt2spk gives {expected.get(bad)}); "
                        f"run utils/fix_data_dir.sh {data}")
    warnings = []
    if len(spk2utt) == 1:
        warnings.append(f"{data}: you have only one speaker. This is probably a bad idea.")
    return list(utt2spk), spk2utt, warnings


def _validate_audio_tables(data, utts, no_wav, same_keys):
    """wav.scp (by utterance, or by the recordings of segments); returns the recording ids."""
    from tfspk.io.audio import read_segments
    has_segments = os.path.isfile(_path(data, "segments"))
    has_wav = os.path.isfile(_path(data, "wav.scp"))
    if has_segments and not has_wav:
        raise ToolError(f"in directory {data}, segments file exists but no wav.scp")
    if not has_wav:
        if not no_wav:
            raise ToolError(f"no such file {_path(data, 'wav.scp')} (if this is by design, specify --no-wav)")
        return None
    wav_items = _read_checked(data, "wav.scp")
    for number, (_, value) in enumerate(wav_items, 1):
        if value.startswith("~"):
            raise ToolError(f"{_path(data, 'wav.scp')}:{number}: do not use tilde (~) in wav.scp")
    wav_keys = [k for k, _ in wav_items]
    if not has_segments:
        same_keys("wav.scp", wav_keys)
        return utts
    segments = read_segments(_path(data, "segments"))
    same_keys("segments", [s[0] for s in segments])
    recordings = _sorted_keys({s[1] for s in segments})
    same_keys("wav.scp", wav_keys, recordings, "segments", "recording")
    return recordings


def _validate_utterance_tables(data, no_feats, check_feats_readable, same_keys):
    """feats.scp (required unless no_feats; first entry test-read), vad.scp, utt2dur, utt2num_frames..."""
    from tfspk.io.table import read_utt2dur, read_utt2num_frames
    if not os.path.isfile(_path(data, "feats.scp")) and not no_feats:
        raise ToolError(f"no such file {_path(data, 'feats.scp')} (if this is by design, specify --no-feats)")
    for name in ("feats.scp", "vad.scp", "utt2lang", "utt2uniq", "utt2warp"):
        if os.path.isfile(_path(data, name)):
            items = _read_checked(data, name)
            same_keys(name, [k for k, _ in items])
            if name == "feats.scp" and check_feats_readable:
                _test_read(data, name, items[0])
    for name, reader, what in (("utt2dur", read_utt2dur, "a duration"),
                               ("utt2num_frames", read_utt2num_frames, "a number of frames")):
        if os.path.isfile(_path(data, name)):
            values = reader(_path(data, name))
            same_keys(name, values)
            bad = next((u for u, v in values.items() if not v > 0), None)
            if bad is not None:
                raise ToolError(f"{_path(data, name)}: utterance '{bad}' has {what} of {values[bad]} (expected > 0)")


def _check_trials(data, utts, speakers) -> list[str]:
    """trials ids must be utterances (or, for enrolment, speakers) of this data dir."""
    from tfspk.io.table import read_trials
    path = _path(data, "trials")
    unknown = [(number, key) for number, trial in enumerate(read_trials(path), 1)
               for key in trial[:2] if key not in utts and key not in speakers]
    if not unknown:
        return []
    number, key = unknown[0]
    return [f"{path}: {len(unknown)} trial ids are neither utterances nor speakers of {data} "
            f"(first: '{key}' on line {number}); scoring will skip those trials"]


def _test_read(data, name, first_item):
    """Read the first object of an scp (cheap check that archives exist and parse)."""
    from tfspk.io import ark
    key, value = first_item
    try:
        ark.read_object(value)
    except ToolError as err:
        raise ToolError(f"{_path(data, name)}:1 ('{key}'): cannot read '{value}': {err}") from None
