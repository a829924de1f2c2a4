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
from tfspk.io.datadir._common import ALL_FILES, RECO_FILES, SPK_FILES, UTT_FILES
from tfspk.io.datadir.combine import combine_data
from tfspk.io.datadir.copy import copy_data_dir
from tfspk.io.datadir.filters import (filter_scp, run_line_converter, spk2utt_lines_to_utt2spk,
                                      utt2spk_lines_to_spk2utt)
from tfspk.io.datadir.fix import FixReport, fix_data_dir
from tfspk.io.datadir.split import split_data, split_dir_name, split_scp_by_speaker, split_scp_by_utterance
from tfspk.io.datadir.subset import select_evenly, subset_data_dir
from tfspk.io.datadir.validate import validate_data_dir
from tfspk.io.table import format_table

__all__ = ["validate_data_dir", "fix_data_dir", "split_data", "subset_data_dir", "copy_data_dir",
           "combine_data", "filter_scp", "utt2spk_lines_to_spk2utt", "spk2utt_lines_to_utt2spk", "run_line_converter",
           "split_scp_by_speaker", "split_scp_by_utterance", "select_evenly", "split_dir_name",
           "FixReport", "format_table", "UTT_FILES", "SPK_FILES", "RECO_FILES", "ALL_FILES"]
