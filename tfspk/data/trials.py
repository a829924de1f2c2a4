"""A held-out-speaker trial set for validation EER during training.

A data dir prepared like the training data (feats.scp of CMN'd voiced frames, utt2num_frames) of
speakers *not* in training, plus a labelled trials file. The trainer embeds every utterance that a
trial uses (in equal-length batches; see :meth:`TrialSet.batches`), scores the trials (e.g. cosine)
and computes the EER.
"""
from __future__ import annotations

import os

import numpy as np

from tfspk.data.sampler import check_feature_dims, check_same_keys
from tfspk.errors import ToolError
from tfspk.io.ark import RandomAccessReader
from tfspk.io.table import read_trials, read_utt2num_frames


class TrialSet:
    """Utterances and labelled trials of held-out speakers.

    ``trials``: list of (enroll_utt, test_utt); ``is_target``: bool array, one per trial.
    """

    def __init__(self, data_dir, trials_path=None, feat_dim: int | None = None):
        self.data_dir = os.fspath(data_dir)
        self.feats_scp = os.path.join(self.data_dir, "feats.scp")
        trials_path = os.fspath(trials_path) if trials_path else os.path.join(self.data_dir, "trials")
        frames_path = os.path.join(self.data_dir, "utt2num_frames")
        for path in (self.feats_scp, trials_path, frames_path):
            if not os.path.isfile(path):
                raise ToolError(f"validation trial set: {path} does not exist")
        self.reader = RandomAccessReader(self.feats_scp)
        self.utt2num_frames = read_utt2num_frames(frames_path)
        check_same_keys(self.feats_scp, self.reader.keys(), frames_path, self.utt2num_frames.keys())
        rows = read_trials(trials_path)
        if not rows:
            raise ToolError(f"{trials_path} has no trials")
        if rows[0][2] is None:
            raise ToolError(f"{trials_path}: validation EER needs labelled trials ('enroll test target|nontarget')")
        missing = sorted({u for e, t, _ in rows for u in (e, t)} - set(self.reader.keys()))
        if missing:
            raise ToolError(f"{trials_path}: {len(missing)} utterance(s) not in {self.feats_scp}, e.g. '{missing[0]}'")
        labels = np.array([label == "target" for _, _, label in rows])
        if labels.all() or not labels.any():
            raise ToolError(f"{trials_path}: needs both target and nontarget trials for an EER")
        self.trials = [(e, t) for e, t, _ in rows]
        self.is_target = labels
        self.utts = sorted({u for pair in self.trials for u in pair})
        self.feat_dim = check_feature_dims(self.reader, self.utts, self.feats_scp)
        if feat_dim is not None and feat_dim != self.feat_dim:
            raise ToolError(f"{self.feats_scp}: features have dimension {self.feat_dim}, the network expects {feat_dim}")

    def batches(self, batch_size: int = 64, max_frames: int = 1000, min_frames: int = 1):
        """Yield (utt keys, feats [B, L, F] float32): utterances sorted by length, each batch cropped
        to its shortest member (at most ``max_frames``) from the centre, so no padding is needed."""
        utts = sorted(self.utts, key=lambda u: (self.utt2num_frames[u], u))
        for first in range(0, len(utts), batch_size):
            group = utts[first:first + batch_size]
            length = min(max_frames, min(self.utt2num_frames[u] for u in group))
            if length < min_frames:
                raise ToolError(f"{self.data_dir}: utterance '{group[0]}' has {length} frames, fewer than {min_frames}")
            feats = [self._centre_crop(u, length) for u in group]
            yield group, np.stack(feats)

    def _centre_crop(self, utt, length):
        matrix = self.reader[utt]
        if matrix.ndim != 2 or matrix.shape[1] != self.feat_dim or matrix.shape[0] < length:
            raise ToolError(f"{self.feats_scp}: utterance '{utt}' has shape {matrix.shape}; expected at least "
                            f"{length} frames of dimension {self.feat_dim}")
        start = (matrix.shape[0] - length) // 2
        return np.asarray(matrix[start:start + length], dtype=np.float32)
