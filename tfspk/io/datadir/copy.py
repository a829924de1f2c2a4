"""Kaldi copy_data_dir.sh."""
from __future__ import annotations

import os

from tfspk.errors import ToolError
from tfspk.io.datadir._common import _load, _os_errors_as_tool_errors, _write_subset

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
