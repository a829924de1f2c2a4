"""Kaldi subset_data_dir.sh and subset_scp.pl."""
from __future__ import annotations

import os
import random

from tfspk.errors import ToolError
from tfspk.io.datadir._common import (_load, _os_errors_as_tool_errors, _path, _sorted_keys, _write_subset)
from tfspk.io.table import c_locale_key, read_lines, utt2spk_to_spk2utt

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
