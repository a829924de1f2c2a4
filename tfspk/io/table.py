"""Kaldi text tables: ``key value...`` per line (wav.scp, utt2spk, spk2utt, feats.scp, trials, ...).

Conventions (Kaldi's, see ``utils/validate_data_dir.sh``):
* the key is everything before the first space or tab, the value the rest of the line;
* keys are unique and sorted in C locale (``LC_ALL=C sort``), i.e. by their UTF-8 bytes;
* lines are read as UTF-8; bytes that are not valid UTF-8 survive a read/write round trip
  (``surrogateescape``).

Line-ending policy: a trailing carriage return (Windows line ending) and trailing
whitespace are stripped on reading, so every reader accepts such files; the validator
(:func:`tfspk.io.datadir.validate_data_dir`) reports them so that the user can run
``fix_data_dir.sh``, which rewrites the files cleanly.
"""
from __future__ import annotations

import os
from typing import Iterable

from tfspk.errors import ToolError
from tfspk.io.util import without_gc
from tfspk.io import xfilename
from tfspk.io.atomic import atomic_open

ENCODING = "utf-8"
ERRORS = "surrogateescape"


def c_locale_key(text: str) -> bytes:
    """Sort key giving ``LC_ALL=C sort`` order (byte order of the UTF-8 encoding)."""
    return text.encode(ENCODING, ERRORS)


def table_location(rspecifier) -> str:
    """The rxfilename behind a text-table rspecifier: ``ark:data/utt2spk`` -> ``data/utt2spk``;
    a plain path, ``-`` or ``command |`` is returned as is (Kaldi tools take both forms)."""
    spec = os.fspath(rspecifier).strip()
    head = spec.split(":", 1)[0]
    if ":" in spec and head and all(w.isalpha() for w in head.split(",")) and \
            head.split(",")[0] in ("ark", "scp"):
        words = head.split(",")
        if "scp" in words:
            raise ToolError(f"'{rspecifier}': expected a text table (ark:file), not scp:")
        location = spec.split(":", 1)[1].strip()
        if not location:
            raise ToolError(f"invalid rspecifier '{rspecifier}': no file given")
        return location
    return spec


def read_lines(path) -> list[str]:
    """All lines of a text rxfilename (a file, ``-`` or ``command |``) without line endings;
    ToolError if missing or unreadable, or if the command fails."""
    path = os.fspath(path)
    # only an explicit '-' means stdin here: an empty name is a missing file, never a silent stdin read
    if path == "-" or xfilename.classify_rxfilename(path) == xfilename.PIPE:
        return xfilename.read_text_lines(path)[1]
    with xfilename.open_file(path, "r", encoding=ENCODING, errors=ERRORS, newline="") as handle:
        return handle.read().splitlines()


def split_key(line: str) -> tuple[str, str]:
    """Split ``key value...`` at the first run of spaces/tabs; the value may be empty."""
    line = line.rstrip(" \t\r\n")
    stripped = line.lstrip(" \t")
    for i, char in enumerate(stripped):
        if char in " \t":
            return stripped[:i], stripped[i:].lstrip(" \t")
    return stripped, ""


def read_table(path, sorted_keys: bool = True, unique: bool = True,
               allow_empty_value: bool = False) -> list[tuple[str, str]]:
    """Read ``key rest_of_line`` records, checking Kaldi's table rules.

    Errors name ``path:line``: empty lines, a key without value (unless
    ``allow_empty_value``), a key out of C-locale order (``sorted_keys``) or repeated
    (``unique``).
    """
    path = os.fspath(path)
    items: list[tuple[str, str]] = []
    first_line_of: dict[str, int] = {}
    previous = None
    for number, line in enumerate(read_lines(path), 1):
        key, value = split_key(line)
        if not key:
            raise ToolError(f"{path}:{number}: empty line (expected 'key value')")
        if not value and not allow_empty_value:
            raise ToolError(f"{path}:{number}: key '{key}' has no value (expected 'key value')")
        if unique:
            if key in first_line_of:
                raise ToolError(f"{path}:{number}: duplicate key '{key}' "
                                f"(first seen on line {first_line_of[key]})")
            first_line_of[key] = number
        if sorted_keys and previous is not None and c_locale_key(key) < c_locale_key(previous):
            raise ToolError(f"{path}:{number}: key '{key}' is not sorted (it comes after "
                            f"'{previous}'; keys must be in 'LC_ALL=C sort' order: run "
                            "utils/fix_data_dir.sh or LC_ALL=C sort -k1,1 -u)")
        previous = key
        items.append((key, value))
    return items


def read_dict(path, sorted_keys: bool = True) -> dict[str, str]:
    """Read a table into ``{key: rest_of_line}`` (keys unique)."""
    return dict(read_table(path, sorted_keys=sorted_keys, unique=True))


def format_table(items: Iterable[tuple[str, object]]) -> str:
    """Text of a table sorted by key in C-locale order; values may be strings or lists."""
    lines = []
    for key, value in sorted(items, key=lambda item: c_locale_key(item[0])):
        if not isinstance(value, str):
            value = " ".join(str(v) for v in value)
        lines.append(f"{key} {value}\n" if value != "" else f"{key}\n")
    return "".join(lines)


def write_table(path, items: Iterable[tuple[str, object]]) -> None:
    """Write ``key value`` lines sorted in C-locale order; the file appears atomically.

    ``items`` may be a dict or (key, value) pairs; list values are joined by spaces.
    Duplicate keys are refused (the table would be invalid).
    """
    if isinstance(items, dict):
        items = items.items()
    items = list(items)
    seen = set()
    for key, _ in items:
        if key in seen:
            raise ToolError(f"{os.fspath(path)}: refusing to write duplicate key '{key}'")
        if not key or any(c in key for c in " \t\n"):
            raise ToolError(f"{os.fspath(path)}: invalid key {key!r} (keys are non-empty, no whitespace)")
        seen.add(key)
    text = format_table(items)
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(21, "it is a directory", os.fspath(path))
        with atomic_open(path, "w", encoding=ENCODING, errors=ERRORS, newline="\n") as handle:
            handle.write(text)
    except OSError as err:
        raise ToolError(f"cannot write {os.fspath(path)}: {err.strerror}") from None


def read_utt2spk(path, sorted_keys: bool = True) -> dict[str, str]:
    """``utt2spk`` -> ``{utt: spk}``; the value must be a single speaker id.

    ``path`` is a file, ``-``, ``command |`` or a table rspecifier ``ark:file``."""
    return read_utt2word(path, "spk", "speaker", sorted_keys)


def read_utt2word(path, name: str, what: str, sorted_keys: bool = True) -> dict[str, str]:
    """A ``utt <name>`` table whose value is one word (``utt2spk``, ``utt2lang``, ...) -> ``{utt: value}``; a
    longer value is a ToolError ``path:line: expected 'utt <name>', got '...' (more than one <what>)``.

    ``path`` is a file, ``-``, ``command |`` or a table rspecifier ``ark:file``."""
    path = table_location(path)
    result = {}
    for number, (utt, value) in enumerate(read_table(path, sorted_keys=sorted_keys), 1):
        if len(value.split()) != 1:
            raise ToolError(f"{os.fspath(path)}:{number}: expected 'utt {name}', got "
                            f"'{utt} {value}' (more than one {what})")
        result[utt] = value
    return result


def read_spk2utt(path, sorted_keys: bool = True) -> dict[str, list[str]]:
    """``spk2utt`` -> ``{spk: [utt, ...]}`` (utterances unique across speakers; a speaker without
    utterances is an error). ``path`` is a file, ``-``, ``command |`` or ``ark:file``."""
    path = table_location(path)
    result: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for number, (spk, rest) in enumerate(read_table(path, sorted_keys=sorted_keys), 1):
        utts = rest.split()
        for utt in utts:
            if utt in owner:
                raise ToolError(f"{os.fspath(path)}:{number}: utterance '{utt}' listed for speaker "
                                f"'{spk}' and already for speaker '{owner[utt]}'")
            owner[utt] = spk
        result[spk] = utts
    return result


def _read_non_negative(path, sorted_keys: bool, number_type: type, expected: str) -> dict:
    """``utt value`` lines -> ``{utt: number_type(value)}``; a value that is not one non-negative number is a
    ToolError ``path:line: expected <expected>``."""
    result = {}
    for number, (utt, value) in enumerate(read_table(path, sorted_keys=sorted_keys), 1):
        try:
            parsed = number_type(value)
        except ValueError:
            parsed = -1
        if not parsed >= 0 or len(value.split()) != 1:
            raise ToolError(f"{os.fspath(path)}:{number}: expected {expected}, got '{utt} {value}'")
        result[utt] = parsed
    return result


def read_utt2num_frames(path, sorted_keys: bool = True) -> dict[str, int]:
    """``utt2num_frames`` -> ``{utt: frames}`` (non-negative integers)."""
    return _read_non_negative(path, sorted_keys, int, "'utt num_frames' with a non-negative integer")


def read_utt2dur(path, sorted_keys: bool = True) -> dict[str, float]:
    """``utt2dur`` -> ``{utt: seconds}`` (non-negative numbers)."""
    return _read_non_negative(path, sorted_keys, float, "'utt duration' in seconds")


TRIAL_LABELS = ("target", "nontarget")


@without_gc
def read_trials(rxfilename, labels: str = "consistent") -> list[tuple[str, str, str | None]]:
    """Trials ``enroll test [target|nontarget]`` -> ``[(enroll, test, label or None)]``.

    THE trials rule of tfspk, used by every reader of trials (scoring tools, metrics, validation
    trial sets, data-dir checks): a line has two fields (``enroll test``) or three whose third is
    ``target`` or ``nontarget``; anything else is an error naming ``file:line``. Trials are not a
    keyed table (an enrolment id repeats), so order and repeats are free. ``labels`` says what a
    caller needs of the whole file: ``"optional"`` (scoring: labels ignored, may be mixed),
    ``"consistent"`` (all lines labelled or none), ``"required"`` (every line labelled).
    ``rxfilename`` may be a file, ``-`` or ``command |``.
    """
    if labels not in ("optional", "consistent", "required"):
        raise ValueError(f"labels must be optional, consistent or required, got {labels!r}")
    name = os.fspath(rxfilename)
    trials = []
    labelled = None
    for number, line in enumerate(read_lines(name), 1):
        fields = line.split()
        if len(fields) not in (2, 3):
            raise ToolError(f"{name}:{number}: Bad line in trials (expected 'enroll test [target|nontarget]'), "
                            f"got '{line.strip()}'")
        if len(fields) == 3 and fields[2] not in TRIAL_LABELS:
            raise ToolError(f"{name}:{number}: label must be 'target' or 'nontarget', got '{fields[2]}'")
        has_label = len(fields) == 3
        if labels == "required" and not has_label:
            raise ToolError(f"{name}:{number}: expected 'enroll test target|nontarget', got '{line.strip()}'")
        if labels == "consistent":
            if labelled is None:
                labelled = has_label
            elif labelled != has_label:
                raise ToolError(f"{name}:{number}: some trials have a target/nontarget label and some do not")
        trials.append((fields[0], fields[1], fields[2] if has_label else None))
    return trials


def read_trial_pairs(rxfilename) -> list[tuple[str, str]]:
    """``[(enroll, test)]`` of a trials file (labels, if any, ignored), as the scoring tools read it."""
    return [(e, t) for e, t, _ in read_trials(rxfilename, labels="optional")]


def read_labelled_trials(rxfilename) -> dict[tuple[str, str], bool]:
    """``(enroll, test) -> is_target`` of a trials file whose every line is labelled (metrics)."""
    rows = read_trials(rxfilename, labels="required")
    if not rows:
        raise ToolError(f"{os.fspath(rxfilename)}: no trials")
    return {(e, t): label == "target" for e, t, label in rows}


def write_text(wxfilename, text: str) -> None:
    """Write text (UTF-8) to a wxfilename: a file (atomically), ``-`` or ``| command``."""
    xfilename.write_bytes(os.fspath(wxfilename), text.encode(ENCODING, ERRORS))


def utt2spk_to_spk2utt(utt2spk: dict[str, str]) -> dict[str, list[str]]:
    """Invert ``{utt: spk}``: speakers in C-locale order, each with its utterances in C-locale order."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=c_locale_key):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return {spk: spk2utt[spk] for spk in sorted(spk2utt, key=c_locale_key)}


def spk2utt_to_utt2spk(spk2utt: dict[str, list[str]]) -> dict[str, str]:
    """Invert ``{spk: [utt...]}``; ToolError if an utterance belongs to two speakers."""
    utt2spk: dict[str, str] = {}
    for spk, utts in spk2utt.items():
        for utt in utts:
            if utt in utt2spk and utt2spk[utt] != spk:
                raise ToolError(f"utterance '{utt}' belongs to speakers '{utt2spk[utt]}' and '{spk}'")
            utt2spk[utt] = spk
    return {utt: utt2spk[utt] for utt in sorted(utt2spk, key=c_locale_key)}
