"""Kaldi combine_data.sh."""
from __future__ import annotations

import os

from tfspk.errors import ToolError
from tfspk.io.datadir._common import (ALL_FILES, RECO_FILES, SPK_FILES, UTT_FILES, _os_errors_as_tool_errors,
                                      _path, _present, _require_dir)
from tfspk.io.datadir.fix import fix_data_dir
from tfspk.io.table import read_table, utt2spk_to_spk2utt, write_table

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
