"""Kaldi fix_data_dir.sh (see :mod:`tfspk.io.datadir` for the differences)."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from tfspk.errors import ToolError
from tfspk.io.datadir._common import (RECO_FILES, SPK_FILES, UTT_FILES, _check_speaker_sorted,
                                      _os_errors_as_tool_errors, _path, _present, _read_lenient, _require_dir,
                                      _sorted_keys)
from tfspk.io.table import format_table, read_lines, utt2spk_to_spk2utt, write_table

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
