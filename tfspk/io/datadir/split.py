"""Kaldi split_data.sh and split_scp.pl."""
from __future__ import annotations

import os
import shutil
import tempfile

from tfspk.errors import ToolError
from tfspk.io.datadir._common import (ALL_FILES, _check_speaker_sorted, _load, _os_errors_as_tool_errors, _path,
                                      _present, _write_subset)

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
