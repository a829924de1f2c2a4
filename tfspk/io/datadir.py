"""Kaldi data directories: validate, fix, split, subset, combine, copy (the logic of utils/*.sh).

A data directory holds text tables keyed by utterance (``utt2spk``, ``feats.scp``, ``vad.scp``,
``utt2num_frames``, ``utt2dur``, ``segments``, ``text``, ...), by speaker (``spk2utt``,
``cmvn.scp``, ``spk2gender``) or by recording (``wav.scp`` when ``segments`` exists,
``reco2file_and_channel``, ``reco2dur``). Without ``segments``, ``wav.scp`` is keyed by
utterance. ``utt2spk`` is primary; ``spk2utt`` is always derived from it.

Behaviour follows Kaldi's egs/wsj/s5/utils scripts (restated, own code); differences:
* ``fix_data_dir`` keeps the intersection over *every* per-utterance file present (Kaldi
  leaves ``vad.scp``, ``utt2dur``, ``utt2num_frames`` out of the intersection and then
  filters them, which can leave utterances without VAD); lines it cannot parse (empty,
  key without value, duplicate key) are dropped with a warning naming ``file:line``;
  Windows line endings and trailing whitespace are removed.
* ``validate_data_dir`` never requires ``text`` (speaker-verification data has none) and
  reports Windows line endings and a missing final newline as errors (Kaldi's awk/sort
  pipelines misread such files), naming ``file:line``.
* ``segments`` may use an end time of ``-1`` (whole recording), as extract-segments allows.

numpy is imported lazily (only to test-read ``feats.scp``) so the small utils/*.pl filters
start fast.
"""
from __future__ import annotations

import functools
import os
import random
import shutil
import tempfile
from dataclasses import dataclass, field

from tfspk.errors import ToolError
from tfspk.io.table import (c_locale_key, format_table, read_lines, read_table, split_key,
                            utt2spk_to_spk2utt, write_table)

UTT_FILES = ("utt2spk", "feats.scp", "vad.scp", "utt2num_frames", "utt2dur", "text", "utt2lang",
             "utt2uniq", "utt2warp", "segments")
SPK_FILES = ("cmvn.scp", "spk2gender", "spk2warp")
RECO_FILES = ("reco2file_and_channel", "reco2dur")
ALL_FILES = UTT_FILES + SPK_FILES + RECO_FILES + ("wav.scp", "spk2utt")


def _os_errors_as_tool_errors(function):
    """File-system failures (permissions, a file where a directory should be) are user errors."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except OSError as err:
            where = err.filename or (args[0] if args else "")
            raise ToolError(f"{where}: {err.strerror or err}") from None
    return wrapper


def _sorted_keys(keys):
    return sorted(keys, key=c_locale_key)


def _path(data, name):
    return os.path.join(data, name)


def _present(data, names):
    return [n for n in names if os.path.isfile(_path(data, n))]


def _require_dir(data):
    if not os.path.isdir(data):
        raise ToolError(f"no such directory {data}")


def _keys_differ(data, name_a, keys_a, name_b, keys_b, what="utterance"):
    only_a = _sorted_keys(set(keys_a) - set(keys_b))
    only_b = _sorted_keys(set(keys_b) - set(keys_a))
    if not only_a and not only_b:
        return None
    parts = []
    if only_a:
        parts.append(f"{len(only_a)} only in {name_a} (first: '{only_a[0]}')")
    if only_b:
        parts.append(f"{len(only_b)} only in {name_b} (first: '{only_b[0]}')")
    return (f"in {data}, the {what} lists of {name_a} and {name_b} differ: " + ", ".join(parts)
            + f"; run utils/fix_data_dir.sh {data}")


def _check_speaker_sorted(path, utt2spk_items):
    """Kaldi: ``sort -k2 utt2spk`` must equal utt2spk (speaker ids prefixes of utterance ids)."""
    lines = [f"{u} {s}" for u, s in utt2spk_items]
    by_speaker = sorted(lines, key=lambda line: (c_locale_key(line.split(" ", 1)[1]), c_locale_key(line)))
    if by_speaker != lines:
        first = next(i for i, (a, b) in enumerate(zip(lines, by_speaker)) if a != b)
        raise ToolError(f"{path}:{first + 1}: utt2spk is not in sorted order when sorted first on "
                        "speaker-id (fix this by making speaker-ids prefixes of utt-ids)")


# ----------------------------------------------------------------------------------------------
# validate
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


# ----------------------------------------------------------------------------------------------
# lenient reading (fix_data_dir, combine)
@dataclass
class _Table:
    name: str
    items: dict
    messages: list = field(default_factory=list)
    was_clean: bool = True


def _read_lenient(path, name) -> _Table:
    """Read a table tolerating mess: keeps the first of duplicate keys, drops bad lines with a note."""
    table = _Table(name, {})
    previous = None
    for number, line in enumerate(read_lines(path), 1):
        if line != line.rstrip(" \t\r"):
            table.was_clean = False
        key, value = split_key(line)
        if not key:
            table.messages.append(f"{path}:{number}: dropped empty line")
            table.was_clean = False
            continue
        if not value and name != "text":          # an empty transcript is legal in text
            table.messages.append(f"{path}:{number}: dropped key '{key}' without value")
            table.was_clean = False
            continue
        if key in table.items:
            table.messages.append(f"{path}:{number}: dropped duplicate key '{key}'")
            table.was_clean = False
            continue
        if previous is not None and c_locale_key(key) < c_locale_key(previous):
            table.was_clean = False
        previous = key
        table.items[key] = value
    return table


@dataclass
class FixReport:
    """What fix_data_dir did: utterance counts and human-readable messages (Kaldi's wording)."""
    kept: int
    total: int
    messages: list


def _parse_segment_value(value):
    fields = value.split()
    if len(fields) != 3:
        return None
    try:
        start, end = float(fields[1]), float(fields[2])
    except ValueError:
        return None
    if start < 0 or (end != -1 and end <= start):
        return None
    return fields[0]


@_os_errors_as_tool_errors
def fix_data_dir(data, utt_extra_files=(), spk_extra_files=(), backup=True) -> FixReport:
    """Kaldi fix_data_dir.sh: sort, make unique, keep the utterances present in every file.

    Utterances kept = utt2spk ∩ every per-utterance file present (+ ``utt_extra_files``) ∩
    wav.scp (by utterance, or through the recording of each segment); speakers kept = those
    of the kept utterances that appear in every per-speaker file present (+
    ``spk_extra_files``). spk2utt is rebuilt from utt2spk. With ``backup`` the original files
    are copied to ``<data>/.backup/`` first. Nothing is written if no utterance would remain.
    """
    data = os.fspath(data)
    _require_dir(data)
    if not os.path.isfile(_path(data, "utt2spk")):
        raise ToolError(f"no such file {_path(data, 'utt2spk')}")
    utt_names = list(UTT_FILES) + [n for n in utt_extra_files if n not in UTT_FILES]
    spk_names = list(SPK_FILES) + [n for n in spk_extra_files if n not in SPK_FILES]
    tables, messages = _read_for_fixing(data, utt_names + spk_names + list(RECO_FILES) + ["wav.scp"])
    total = len(tables["utt2spk"].items)
    utts, speakers, recordings = _kept_keys(data, tables, utt_names, spk_names)
    kept_utt2spk = [(u, tables["utt2spk"].items[u]) for u in _sorted_keys(utts)]
    _check_speaker_sorted(_path(data, "utt2spk"), kept_utt2spk)

    new_tables = {}
    for name, table in tables.items():
        if name in utt_names or (name == "wav.scp" and "segments" not in tables):
            keep = utts
        else:
            keep = speakers if name in spk_names else recordings
        new_tables[name] = [(k, table.items[k]) for k in _sorted_keys(set(table.items) & keep)]
        before = len(read_lines(_path(data, name)))
        if not table.was_clean:
            messages.append(f"fix_data_dir.sh: file {_path(data, name)} is not in sorted order or not unique "
                            "(or has stray whitespace/CR), rewriting it")
        if len(new_tables[name]) != before:
            messages.append(f"fix_data_dir.sh: filtered {_path(data, name)} from {before} to "
                            f"{len(new_tables[name])} lines")
    new_tables["spk2utt"] = list(utt2spk_to_spk2utt(dict(kept_utt2spk)).items())

    if backup:
        backup_dir = _path(data, ".backup")
        os.makedirs(backup_dir, exist_ok=True)
        for name in list(tables) + _present(data, ["spk2utt"]):
            shutil.copy2(_path(data, name), _path(backup_dir, name))
    for name, items in new_tables.items():
        _write_if_changed(_path(data, name), items)
    messages.append(f"fix_data_dir.sh: kept {len(utts)} utterances out of {total}" if len(utts) != total
                    else f"fix_data_dir.sh: kept all {total} utterances.")
    if backup:
        messages.append(f"fix_data_dir.sh: old files are kept in {_path(data, '.backup')}")
    return FixReport(len(utts), total, messages)


def _read_for_fixing(data, names):
    """Read every present table leniently; drop utt2spk and segments lines that cannot be used."""
    tables = {name: _read_lenient(_path(data, name), name) for name in _present(data, names)}
    messages = [m for t in tables.values() for m in t.messages]
    utt2spk = tables["utt2spk"].items
    for utt, spk in list(utt2spk.items()):
        if len(spk.split()) != 1:
            messages.append(f"{_path(data, 'utt2spk')}: dropped '{utt} {spk}' (expected one speaker)")
            del utt2spk[utt]
    if "segments" in tables:
        if "wav.scp" not in tables:
            raise ToolError(f"{_path(data, 'segments')} exists but not {_path(data, 'wav.scp')}")
        segments = tables["segments"].items
        for utt, value in list(segments.items()):
            if _parse_segment_value(value) is None:
                messages.append(f"{_path(data, 'segments')}: dropped bad segment '{utt} {value}' "
                                "(expected 'recording start end' with 0 <= start < end or end -1)")
                del segments[utt]
    return tables, messages


def _kept_keys(data, tables, utt_names, spk_names):
    """(utterances, speakers, recordings) present in every file that is keyed by them."""
    utt2spk = tables["utt2spk"].items
    segments = tables["segments"].items if "segments" in tables else None
    utts = set(utt2spk)
    for name in utt_names:
        if name in tables:
            utts &= set(tables[name].items)
    if segments is not None:
        wav_keys = set(tables["wav.scp"].items)
        utts = {u for u in utts if segments[u].split()[0] in wav_keys}
    elif "wav.scp" in tables:
        utts &= set(tables["wav.scp"].items)
    speakers = {utt2spk[u] for u in utts}
    for name in spk_names:
        if name in tables:
            speakers &= set(tables[name].items)
    utts = {u for u in utts if utt2spk[u] in speakers}
    if not utts:
        intersected = [n for n in utt_names + ["wav.scp"] + spk_names if n in tables]
        raise ToolError(f"fix_data_dir.sh: no utterances remained in {data}: not proceeding further "
                        f"(files intersected: {', '.join(intersected)})")
    recordings = {segments[u].split()[0] for u in utts} if segments is not None else utts
    return utts, speakers, recordings


def _write_if_changed(path, items):
    """Rewrite a table only if its text changes (keeps mtimes, so split dirs stay up to date)."""
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            if handle.read() == format_table(items).encode("utf-8", "surrogateescape"):
                return
    write_table(path, items)


# ----------------------------------------------------------------------------------------------
# writing a filtered copy (split, subset, copy, combine)
@dataclass
class _DataDir:
    """A data dir read strictly into memory (text tables only: small)."""
    path: str
    tables: dict            # name -> dict key -> value (wav.scp included)

    @property
    def utt2spk(self):
        return self.tables["utt2spk"]

    @property
    def has_segments(self):
        return "segments" in self.tables


def _load(data, extra_utt=(), extra_spk=()) -> _DataDir:
    data = os.fspath(data)
    _require_dir(data)
    if not os.path.isfile(_path(data, "utt2spk")):
        raise ToolError(f"no such file {_path(data, 'utt2spk')}")
    names = _present(data, list(UTT_FILES) + list(extra_utt) + list(SPK_FILES) + list(extra_spk)
                     + list(RECO_FILES) + ["wav.scp"])
    tables = {}
    for name in names:
        tables[name] = dict(read_table(_path(data, name), allow_empty_value=(name == "text")))
    for number, (utt, spk) in enumerate(tables["utt2spk"].items(), 1):
        if len(spk.split()) != 1:
            raise ToolError(f"{_path(data, 'utt2spk')}:{number}: expected 'utt spk', got '{utt} {spk}'")
    return _DataDir(data, tables)


def _write_subset(source: _DataDir, dest, utts, utt_map=None, spk_map=None, extra_spk=()):
    """Write the part of ``source`` covering ``utts`` into ``dest`` (ids renamed by the maps)."""
    utt_map = utt_map or (lambda u: u)
    spk_map = spk_map or (lambda s: s)
    utts = set(utts)
    speakers = {source.utt2spk[u] for u in utts}
    if source.has_segments:
        recordings = {source.tables["segments"][u].split()[0] for u in utts if u in source.tables["segments"]}
    else:
        recordings = utts
    os.makedirs(dest, exist_ok=True)
    for name, table in source.tables.items():
        if name in SPK_FILES or name in extra_spk:
            rows = [(spk_map(k), v) for k, v in table.items() if k in speakers]
        elif name in RECO_FILES or (name == "wav.scp" and source.has_segments):
            rows = [(k, v) for k, v in table.items() if k in recordings]
        elif name == "utt2spk":
            rows = [(utt_map(k), spk_map(v)) for k, v in table.items() if k in utts]
        elif name == "wav.scp":
            rows = [(utt_map(k), v) for k, v in table.items() if k in utts]
        else:
            rows = [(utt_map(k), v) for k, v in table.items() if k in utts]
        write_table(_path(dest, name), rows)
    new_utt2spk = {utt_map(u): spk_map(source.utt2spk[u]) for u in utts}
    write_table(_path(dest, "spk2utt"), utt2spk_to_spk2utt(new_utt2spk).items())


# ----------------------------------------------------------------------------------------------
# split
def split_scp_by_speaker(utt2spk_items, num_splits):
    """Kaldi split_scp.pl --utt2spk: contiguous speaker groups balanced in utterance count.

    Speakers (in utt2spk order) start at split ``int(i * n / num_speakers)``; then the first
    and last speaker of each split move to the neighbour while that reduces the absolute
    difference of their utterance counts. Returns a list of utterance lists.
    """
    speakers, counts, members = [], {}, {}
    for utt, spk in utt2spk_items:
        if spk not in counts:
            speakers.append(spk)
            counts[spk], members[spk] = 0, []
        counts[spk] += 1
        members[spk].append(utt)
    if len(speakers) < num_splits:
        raise ToolError(f"number of speakers {len(speakers)} is less than {num_splits} "
                        "(argument to split_data.sh)")
    groups = [[] for _ in range(num_splits)]
    sizes = [0] * num_splits
    for index, spk in enumerate(speakers):
        target = index * num_splits // len(speakers)
        groups[target].append(spk)
        sizes[target] += counts[spk]
    changed = True
    while changed:
        changed = False
        for i in range(num_splits):
            if i < num_splits - 1 and groups[i]:
                count = counts[groups[i][-1]]
                if abs((sizes[i + 1] + count) - (sizes[i] - count)) < abs(sizes[i + 1] - sizes[i]):
                    groups[i + 1].insert(0, groups[i].pop())
                    sizes[i + 1] += count
                    sizes[i] -= count
                    changed = True
            if i > 0 and groups[i]:
                count = counts[groups[i][0]]
                if abs((sizes[i] - count) - (sizes[i - 1] + count)) < abs(sizes[i] - sizes[i - 1]):
                    groups[i - 1].append(groups[i].pop(0))
                    sizes[i - 1] += count
                    sizes[i] -= count
                    changed = True
    if any(not g for g in groups):
        raise ToolError(f"split_data.sh: would produce an empty split (too many splits ({num_splits}) "
                        "and too few speakers?)")
    return [[u for spk in group for u in members[spk]] for group in groups]


def split_scp_by_utterance(utts, num_splits):
    """Kaldi split_scp.pl without --utt2spk: contiguous chunks, the first ``N % n`` one line longer."""
    per, remainder = divmod(len(utts), num_splits)
    if per < 1:
        raise ToolError(f"you are splitting {len(utts)} utterances into too many pieces ({num_splits})")
    chunks, start = [], 0
    for index in range(num_splits):
        size = per + (1 if index < remainder else 0)
        chunks.append(utts[start:start + size])
        start += size
    return chunks


def split_dir_name(data, num_splits, per_utt=False):
    """``<data>/split<N>`` (per speaker) or ``<data>/split<N>utt`` (--per-utt, as modern Kaldi)."""
    return _path(os.fspath(data), f"split{num_splits}" + ("utt" if per_utt else ""))


def _split_up_to_date(data, target, num_splits):
    for job in range(1, num_splits + 1):
        if not os.path.isfile(_path(_path(target, str(job)), "utt2spk")):
            return False
    first = _path(target, "1")
    for name in _present(data, ALL_FILES):
        mine = _path(first, name)
        if not os.path.isfile(mine) or os.path.getmtime(mine) < os.path.getmtime(_path(data, name)):
            return False
    return True


@_os_errors_as_tool_errors
def split_data(data, num_splits: int, per_utt: bool = False) -> tuple[str, list[str]]:
    """Kaldi split_data.sh: write ``split<N>[utt]/<job>/`` for job = 1..N; return (dir, warnings).

    Per speaker by default (a speaker is in one split only). Files keyed by utterance,
    speaker or recording are filtered accordingly; spk2utt is rebuilt per split. Nothing is
    done if the split is newer than every file of the data dir. The split appears atomically.
    """
    data = os.fspath(data)
    if num_splits < 1:
        raise ToolError(f"invalid num-to-split {num_splits} (must be >= 1)")
    target = split_dir_name(data, num_splits, per_utt)
    source = _load(data)
    warnings = []
    for name in ("feats.scp", "text", "vad.scp"):
        if name in source.tables and len(source.tables[name]) != len(source.utt2spk):
            warnings.append(f"split_data.sh: warning, #lines is (utt2spk,{name}) is "
                            f"({len(source.utt2spk)},{len(source.tables[name])}); you can use "
                            f"utils/fix_data_dir.sh {data} to fix this.")
    if _split_up_to_date(data, target, num_splits):
        return target, warnings
    items = list(source.utt2spk.items())
    if per_utt:
        parts = split_scp_by_utterance([u for u, _ in items], num_splits)
    else:
        _check_speaker_sorted(_path(data, "utt2spk"), items)
        parts = split_scp_by_speaker(items, num_splits)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp.", dir=data)
    try:
        for job, utts in enumerate(parts, 1):
            _write_subset(source, _path(staging, str(job)), utts)
        if os.path.exists(target):
            trash = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.old.", dir=data)
            os.replace(target, _path(trash, "old"))
            os.replace(staging, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    return target, warnings


# ----------------------------------------------------------------------------------------------
# subset
def select_evenly(items, count):
    """Kaldi subset_scp.pl default: recursive halving picks ``count`` items spread over the list."""
    chosen = []

    def select(start, end, needed):
        diff = end - start
        if diff == 1:
            if needed > 0:
                chosen.append(items[start])
            return
        half, half_needed = diff // 2, needed // 2
        select(start, start + half, half_needed)
        select(start + half, end, needed - half_needed)

    if count > 0 and items:
        select(0, len(items), count)
    return chosen


def _read_id_list(path):
    ids = []
    for line in read_lines(path):
        fields = line.split()
        if fields:
            ids.append(fields[0])
    return ids


@_os_errors_as_tool_errors
def subset_data_dir(src, dest, num_utt=None, utt_list=None, spk_list=None, mode="even") -> list[str]:
    """Kaldi subset_data_dir.sh. Exactly one of ``num_utt`` / ``utt_list`` / ``spk_list``.

    ``mode`` (with ``num_utt``): ``even`` (subset_scp.pl spread), ``first``, ``last``,
    ``per-spk`` (up to N utterances per speaker, evenly spaced as Kaldi's awk), ``shortest``
    (by utt2num_frames, else feats.scp rows, else utt2dur), ``speakers`` (whole speakers in a
    seeded random order until at least N utterances). Returns warnings (e.g. listed ids not in ``src``).
    """
    src, dest = os.fspath(src), os.fspath(dest)
    if sum(x is not None for x in (num_utt, utt_list, spk_list)) != 1:
        raise ToolError("give exactly one of <num-utt>, --utt-list or --spk-list")
    if os.path.abspath(src) == os.path.abspath(dest):
        raise ToolError(f"source and destination are the same directory: {src}")
    source = _load(src)
    all_utts = list(source.utt2spk)
    warnings = []
    if utt_list is not None:
        wanted = _read_id_list(utt_list)
        missing = [u for u in wanted if u not in source.utt2spk]
        if missing:
            warnings.append(f"{len(missing)} utterances of {utt_list} are not in {src} (first: '{missing[0]}')")
        utts = set(wanted) & set(all_utts)
    elif spk_list is not None:
        wanted = set(_read_id_list(spk_list))
        known = set(source.utt2spk.values())
        missing = _sorted_keys(wanted - known)
        if missing:
            warnings.append(f"{len(missing)} speakers of {spk_list} are not in {src} (first: '{missing[0]}')")
        utts = {u for u, s in source.utt2spk.items() if s in wanted}
    else:
        utts = set(_select_num(source, all_utts, int(num_utt), mode))
    if not utts:
        raise ToolError(f"the subset of {src} is empty")
    _write_subset(source, dest, utts)
    return warnings


def _select_num(source, all_utts, num, mode):
    if num <= 0:
        raise ToolError(f"<num-utt> must be a positive integer, got {num}")
    if mode == "per-spk":
        chosen = []
        for spk, members in utt2spk_to_spk2utt(source.utt2spk).items():
            skip = 1
            while num * (skip + 1) <= len(members):
                skip += 1
            chosen += [members[i] for i in range(0, len(members), skip) if i <= num * skip - 1]
        return chosen
    if num > len(all_utts):
        raise ToolError(f"you requested {num} utterances but {source.path} has only {len(all_utts)}")
    if mode == "first":
        return all_utts[:num]
    if mode == "last":
        return all_utts[-num:]
    if mode == "shortest":
        lengths = _utterance_lengths(source)
        return sorted(all_utts, key=lambda u: (lengths[u], c_locale_key(u)))[:num]
    if mode == "speakers":
        # Kaldi: shuffle the speakers (fixed seed), take them while fewer than N utterances are taken
        spk2utt = utt2spk_to_spk2utt(source.utt2spk)
        order = list(spk2utt)
        random.Random(0).shuffle(order)
        chosen, total = [], 0
        for spk in order:
            if total >= num:
                break
            chosen += spk2utt[spk]
            total += len(spk2utt[spk])
        return chosen
    if mode == "even":
        return select_evenly(all_utts, num)
    raise ToolError(f"unknown subset mode '{mode}'")


def _utterance_lengths(source) -> dict:
    """Frames (utt2num_frames, else feats.scp rows as Kaldi's feat-to-len) or seconds (utt2dur)."""
    all_utts = list(source.utt2spk)
    if "utt2num_frames" in source.tables or "utt2dur" in source.tables:
        name = "utt2num_frames" if "utt2num_frames" in source.tables else "utt2dur"
        lengths = {u: float(v) for u, v in source.tables[name].items()}
    elif "feats.scp" in source.tables:
        from tfspk.io import ark
        name = "feats.scp"
        lengths = {u: ark.read_object(v).shape[0] for u, v in source.tables[name].items()}
    else:
        raise ToolError(f"--shortest needs utt2num_frames, feats.scp or utt2dur in {source.path}")
    missing = [u for u in all_utts if u not in lengths]
    if missing:
        raise ToolError(f"{_path(source.path, name)} has no entry for '{missing[0]}'")
    return lengths


# ----------------------------------------------------------------------------------------------
# copy
@_os_errors_as_tool_errors
def copy_data_dir(src, dest, utt_prefix="", utt_suffix="", spk_prefix="", spk_suffix="") -> None:
    """Kaldi copy_data_dir.sh: copy with utterance ids ``prefix+utt+suffix`` and speaker ids
    ``prefix+spk+suffix`` applied to every file (recording ids stay as they are)."""
    src, dest = os.fspath(src), os.fspath(dest)
    if os.path.abspath(src) == os.path.abspath(dest):
        raise ToolError(f"source and destination are the same directory: {src}")
    for text in (utt_prefix, utt_suffix, spk_prefix, spk_suffix):
        if any(c.isspace() for c in text):
            raise ToolError(f"prefixes and suffixes cannot contain whitespace: {text!r}")
    source = _load(src)
    _write_subset(source, dest, list(source.utt2spk),
                  utt_map=lambda u: f"{utt_prefix}{u}{utt_suffix}",
                  spk_map=lambda s: f"{spk_prefix}{s}{spk_suffix}")


# ----------------------------------------------------------------------------------------------
# combine
@_os_errors_as_tool_errors
def combine_data(dest, sources, extra_files=()) -> list[str]:
    """Kaldi combine_data.sh: union of the data dirs; returns informational messages.

    A file is combined only if every source has it (otherwise it is left out, with a message).
    ``segments``: sources without it get whole-recording segments ``utt utt 0 <utt2dur>``
    (needs their utt2dur). A key repeated across sources must have the same value.
    """
    dest = os.fspath(dest)
    sources = [os.fspath(s) for s in sources]
    if not sources:
        raise ToolError("no source data directories given")
    for src in sources:
        _require_dir(src)
        if os.path.abspath(src) == os.path.abspath(dest):
            raise ToolError(f"destination {dest} is also a source")
    messages = []
    names = [n for n in list(UTT_FILES) + list(SPK_FILES) + list(RECO_FILES) + ["wav.scp"] + list(extra_files)]
    some_segments = any(os.path.isfile(_path(s, "segments")) for s in sources)
    combined = {}
    for name in dict.fromkeys(names):
        have = [s for s in sources if os.path.isfile(_path(s, name))]
        if name == "segments" and some_segments:
            combined[name] = _combine_segments(sources)
            continue
        if name == "utt2spk" and len(have) != len(sources):
            missing = next(s for s in sources if s not in have)
            raise ToolError(f"no such file {_path(missing, 'utt2spk')}")
        if not have:
            continue
        if len(have) != len(sources):
            messages.append(f"combine_data.sh [info]: not combining {name} as it does not exist everywhere")
            continue
        merged, origin = {}, {}
        for src in sources:
            for key, value in read_table(_path(src, name), allow_empty_value=(name == "text")):
                if key in merged and merged[key] != value:
                    raise ToolError(f"key '{key}' of {name} has different values in {origin[key]} "
                                    f"and {src}: '{merged[key]}' vs '{value}'")
                merged.setdefault(key, value)
                origin.setdefault(key, src)
        combined[name] = merged
    if some_segments and "wav.scp" not in combined:
        raise ToolError("cannot combine segments without wav.scp in every source")
    os.makedirs(dest, exist_ok=True)
    for name in _present(dest, ALL_FILES):
        if name not in combined:
            os.remove(_path(dest, name))
            messages.append(f"combine_data.sh: removed stale {_path(dest, name)}")
    for name, table in combined.items():
        write_table(_path(dest, name), table)
    write_table(_path(dest, "spk2utt"), utt2spk_to_spk2utt(dict(combined["utt2spk"])).items())
    report = fix_data_dir(dest, backup=False)
    return messages + report.messages


def _combine_segments(sources):
    merged = {}
    for src in sources:
        if os.path.isfile(_path(src, "segments")):
            for key, value in read_table(_path(src, "segments")):
                if key in merged and merged[key] != value:
                    raise ToolError(f"segment '{key}' differs between sources ({src})")
                merged[key] = value
        else:
            if not os.path.isfile(_path(src, "utt2dur")):
                raise ToolError(f"{src} has no segments file and no utt2dur to make whole-recording "
                                "segments from (other sources have segments)")
            for utt, dur in read_table(_path(src, "utt2dur")):
                merged[utt] = f"{utt} 0 {dur}"
    return merged


# ----------------------------------------------------------------------------------------------
# the small filters behind utils/*.pl
def filter_scp(id_lines, scp_lines, exclude=False, field_index=1):
    """Kaldi filter_scp.pl: lines of ``scp_lines`` whose field ``field_index`` (1-based; negative
    counts from the end) is (``exclude``: is not) the first field of a line of ``id_lines``.
    Input order is kept."""
    ids = set()
    for line in id_lines:
        fields = line.split()
        if fields:
            ids.add(fields[0])
    for line in scp_lines:
        fields = line.split()
        if not fields:
            continue
        try:
            value = fields[field_index - 1 if field_index > 0 else field_index]
        except IndexError:
            raise ToolError(f"line has fewer than {abs(field_index)} fields: '{line.rstrip()}'") from None
        if (value in ids) != exclude:
            yield line.rstrip("\r\n").rstrip() + "\n"


def utt2spk_lines_to_spk2utt(lines):
    """Kaldi utt2spk_to_spk2utt.pl: speakers in order of first appearance, utterances in input order."""
    order, members = [], {}
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ToolError(f"line {number}: expected 'utt spk', got '{line.rstrip()}'")
        utt, spk = fields
        if spk not in members:
            order.append(spk)
            members[spk] = []
        members[spk].append(utt)
    for spk in order:
        yield f"{spk} {' '.join(members[spk])}\n"


def spk2utt_lines_to_utt2spk(lines):
    """Kaldi spk2utt_to_utt2spk.pl: one ``utt spk`` line per utterance, in input order."""
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise ToolError(f"line {number}: speaker '{fields[0]}' has no utterances")
        for utt in fields[1:]:
            yield f"{utt} {fields[0]}\n"


def run_line_converter(convert, prog, paths):
    """Main of the .pl line converters: ``convert`` the lines of ``paths`` (or stdin) to stdout.

    Exits with ``prog: message`` on unreadable input or a ToolError, as Kaldi's scripts die.
    """
    import sys

    def lines():
        if not paths:
            yield from open(sys.stdin.fileno(), encoding="utf-8", errors="surrogateescape", closefd=False)
        for path in paths:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                yield from handle
    try:
        with open(sys.stdout.fileno(), "w", encoding="utf-8", errors="surrogateescape", closefd=False) as out:
            out.writelines(convert(lines()))
    except BrokenPipeError:
        sys.exit(0)
    except OSError as err:
        sys.exit(f"{prog}: cannot read {err.filename}: {err.strerror}")
    except ToolError as err:
        sys.exit(f"{prog}: {err}")


__all__ = ["validate_data_dir", "fix_data_dir", "split_data", "subset_data_dir", "copy_data_dir",
           "combine_data", "filter_scp", "utt2spk_lines_to_spk2utt", "spk2utt_lines_to_utt2spk", "run_line_converter",
           "split_scp_by_speaker", "split_scp_by_utterance", "select_evenly", "split_dir_name",
           "FixReport", "format_table"]
