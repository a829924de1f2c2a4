"""Shared parts of the data-dir operations: which files a data dir has, how they are keyed,
strict and lenient reading, and writing a filtered copy (split, subset, copy, combine)."""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

from tfspk.errors import ToolError
from tfspk.io.table import (c_locale_key, read_lines, read_table, split_key, utt2spk_to_spk2utt,
                            write_table)

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
