"""Speaker-balanced segment sampling over a Kaldi data dir ([Liu2019, sec. 4.2]).

"At every training step, we sample 64 speakers. For each speaker, a segment with 200 to 400 frames
is sliced from the utterances. [...] A 1000-utterance validation set is randomly selected from the
training set." Here, per step ``k``:

1. one segment length ``L`` is drawn uniformly from ``[min_frames, max_frames]`` (one per batch, so
   the batch is a dense ``[num_speakers, L, feat_dim]`` tensor);
2. ``num_speakers`` distinct speakers are drawn uniformly among the speakers that own a training
   utterance of at least ``L`` frames;
3. for each speaker one of its utterances with at least ``L`` frames is drawn uniformly, and a
   segment of ``L`` frames starts at an offset drawn uniformly from ``[0, frames - L]``.

With ``repeat_short`` every utterance of the data dir is used, whatever its length: in step 2 every
speaker is a candidate, in step 3 any of its utterances is drawn, and an utterance of ``n < L`` frames
gives its frames repeated cyclically, ``rows[i mod n]`` for ``i = 0..L-1`` (the short-utterance rule
of [Desplanques2020]'s public recipe, which repeats a waveform shorter than the crop). Without it an
utterance shorter than ``min_frames`` is never used and one shorter than ``L`` not in that batch,
so short utterances are under-sampled and their speakers drop out of the long batches.

Every draw of step ``k`` comes from ``numpy.random.default_rng([seed, 0, k])``, so a batch depends
only on (data, options, seed, step): training resumed at step ``k`` sees exactly the batches it would
have seen, and batches can be built by parallel threads in any order.

With ``spec_augment`` (a :class:`tfspk.data.augment.SpecAugment`) every training crop is masked after it
is read (and, with ``repeat_short``, tiled): the crop at position ``b`` of step ``k``'s batch gets the
[Park2019] masks drawn from ``(seed, k, b)``, whatever share of the batch a reader builds
(:meth:`SpeakerBalancedSampler.batch` with ``rows``); validation batches are never masked.

Features are read per segment through the scp byte offsets (``RandomAccessReader``), never loaded
as a whole; memory holds only the index (one location string and one length per utterance).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from tfspk.errors import ToolError
from tfspk.data.segments import SegmentReader
from tfspk.io.ark import RandomAccessReader
from tfspk.io.table import read_utt2num_frames, read_utt2spk, write_table, read_table

# Stream labels for numpy's SeedSequence: training steps, validation choice, validation crops.
_TRAIN_STREAM, _VALID_CHOICE_STREAM, _VALID_CROP_STREAM = 0, 1, 2
_MAX_ARCHIVES_CHECKED = 50


@dataclass(frozen=True)
class BatchPlan:
    """What one batch reads: utterance keys, start frames, the common length and the labels."""
    utts: tuple
    offsets: np.ndarray
    length: int
    labels: np.ndarray

    def rows(self, part: slice) -> "BatchPlan":
        """The plan of the batch positions ``part`` only (one replica's share)."""
        return BatchPlan(self.utts[part], self.offsets[part], self.length, self.labels[part])


def _require_file(path: str, hint: str) -> None:
    if not os.path.isfile(path):
        raise ToolError(f"{path} does not exist; {hint}")


def _example_keys(keys, limit=3) -> str:
    keys = sorted(keys)
    shown = ", ".join(f"'{k}'" for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def check_same_keys(path_a: str, keys_a, path_b: str, keys_b) -> None:
    """ToolError naming both files and example keys when two tables do not list the same utterances."""
    only_a, only_b = set(keys_a) - set(keys_b), set(keys_b) - set(keys_a)
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} key(s) of {path_a} missing from {path_b} ({_example_keys(only_a)})")
        if only_b:
            parts.append(f"{len(only_b)} key(s) of {path_b} missing from {path_a} ({_example_keys(only_b)})")
        raise ToolError("; ".join(parts) + "; run utils/fix_data_dir.sh on the data dir")


def check_feature_dims(reader: RandomAccessReader, keys, scp_path: str) -> int:
    """Read the first utterance of every archive (at most 50) and return their common dimension."""
    first_key_of_archive = {}
    for key in keys:
        archive = reader.location(key).rsplit(":", 1)[0]
        first_key_of_archive.setdefault(archive, key)
        if len(first_key_of_archive) >= _MAX_ARCHIVES_CHECKED:
            break
    dims = {}
    for archive, key in first_key_of_archive.items():
        matrix = reader[key]
        if matrix.ndim != 2:
            raise ToolError(f"{scp_path}: '{key}' ({reader.location(key)}) is not a matrix (shape {matrix.shape})")
        dims.setdefault(matrix.shape[1], (key, archive))
    if len(dims) > 1:
        listed = "; ".join(f"dim {dim} in {archive} (e.g. '{key}')" for dim, (key, archive) in dims.items())
        raise ToolError(f"{scp_path}: archives hold features of different dimensions: {listed}")
    return next(iter(dims))


def write_spk2int(path, spk2int: dict) -> None:
    """Write Kaldi-style ``speaker index`` lines (sorted by speaker, atomically)."""
    write_table(path, ((spk, str(index)) for spk, index in spk2int.items()))


def read_spk2int(path) -> dict:
    """Read a ``spk2int`` file; indices must be 0..N-1 each used once."""
    result = {}
    for number, (spk, value) in enumerate(read_table(path), 1):
        if not value.isdigit():
            raise ToolError(f"{path}:{number}: expected 'speaker index', got '{spk} {value}'")
        result[spk] = int(value)
    if sorted(result.values()) != list(range(len(result))):
        raise ToolError(f"{path}: speaker indices must be 0..{len(result) - 1}, each once")
    return result


# How the sampler's errors name its options: by default its own keyword arguments (what a library caller
# sets); a tool passes the names its user sets (tfspk-train: its config keys, see
# tfspk.train.inputs.SAMPLER_OPTION_NAMES), so the advice always names something that exists.
DEFAULT_OPTION_NAMES = {name: name for name in ("num_speakers", "min_frames", "max_frames", "num_valid_utts", "seed")}


class SpeakerBalancedSampler:
    """Plans and loads speaker-balanced batches from a data dir with feats.scp, utt2spk, utt2num_frames.

    Utterances shorter than ``min_frames`` are never used. ``num_valid_utts`` utterances (each of a
    speaker that keeps at least one training utterance) are held out as the validation set and never
    appear in training batches. ``spk2int`` maps every training speaker to its class index (sorted
    speaker ids -> 0..C-1). ``option_names`` maps option -> the name errors advise the user to change
    (default :data:`DEFAULT_OPTION_NAMES`). ``spec_augment``: a callable ``(feats [B, L, D], step,
    positions) -> feats`` applied to the training batches (:class:`tfspk.data.augment.SpecAugment`), None = none.
    """

    def __init__(self, data_dir, num_speakers: int = 64, min_frames: int = 200, max_frames: int = 400,
                 seed: int = 0, num_valid_utts: int = 1000, option_names: dict | None = None,
                 repeat_short: bool = False, spec_augment=None):
        self.data_dir = os.fspath(data_dir)
        self.repeat_short = bool(repeat_short)
        self.spec_augment = spec_augment
        self.option_names = {**DEFAULT_OPTION_NAMES, **(option_names or {})}
        self._check_options(num_speakers, min_frames, max_frames, seed, num_valid_utts)
        self.num_speakers, self.min_frames, self.max_frames = num_speakers, min_frames, max_frames
        self.seed = seed
        self.last_error: ToolError | None = None  # set by make_dataset's generator (see tool_errors)

        self.feats_scp = os.path.join(self.data_dir, "feats.scp")
        utt2spk_path = os.path.join(self.data_dir, "utt2spk")
        frames_path = os.path.join(self.data_dir, "utt2num_frames")
        _require_file(self.feats_scp, "the training data dir needs features (steps/prepare_feats_for_egs.sh)")
        _require_file(utt2spk_path, "every data dir needs utt2spk")
        _require_file(frames_path, "the sampler needs utterance lengths: run steps/prepare_feats_for_egs.sh "
                                   "(or utils/data/get_utt2num_frames.sh) on the data dir")
        self.reader = RandomAccessReader(self.feats_scp)
        self.segments = SegmentReader(self.reader)
        utt2spk = read_utt2spk(utt2spk_path)
        utt2num_frames = read_utt2num_frames(frames_path)
        check_same_keys(self.feats_scp, self.reader.keys(), utt2spk_path, utt2spk.keys())
        check_same_keys(self.feats_scp, self.reader.keys(), frames_path, utt2num_frames.keys())
        if not utt2spk:
            raise ToolError(f"{self.feats_scp} is empty")
        self.feat_dim = check_feature_dims(self.reader, sorted(self.reader.keys()), self.feats_scp)

        shortest = 1 if self.repeat_short else min_frames
        usable = sorted(u for u in utt2spk if utt2num_frames[u] >= shortest)
        if not usable:
            longest = max(utt2num_frames.values())
            raise ToolError(f"{frames_path}: no utterance has min_frames={min_frames} frames (the longest has "
                            f"{longest}); lower {self.option_names['min_frames']}/{self.option_names['max_frames']}")
        self.spk2int = {spk: i for i, spk in enumerate(sorted({utt2spk[u] for u in usable}))}
        self.valid_utts = self._choose_validation(usable, utt2spk, num_valid_utts)
        held_out = set(self.valid_utts)
        self._utt2spk, self._utt2num_frames = utt2spk, utt2num_frames
        self._index_training([u for u in usable if u not in held_out], utt2spk, utt2num_frames, frames_path)

    # ---------------------------------------------------------------------------------------- setup
    def _check_options(self, num_speakers, min_frames, max_frames, seed, num_valid_utts):
        for name, value, low in (("num_speakers", num_speakers, 1), ("min_frames", min_frames, 1),
                                 ("max_frames", max_frames, 1), ("seed", seed, 0),
                                 ("num_valid_utts", num_valid_utts, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ToolError(f"sampler option {name} must be an integer >= {low}, got {value!r} "
                                f"(set {self.option_names[name]})")
        if min_frames > max_frames:
            raise ToolError(f"sampler options: min_frames={min_frames} is larger than max_frames={max_frames} "
                            f"({self.option_names['min_frames']}, {self.option_names['max_frames']})")

    def _choose_validation(self, usable, utt2spk, num_valid_utts):
        """Draw held-out utterances in a seeded random order, skipping a speaker's last usable one."""
        if num_valid_utts == 0:
            return []
        remaining = {}
        for utt in usable:
            remaining[utt2spk[utt]] = remaining.get(utt2spk[utt], 0) + 1
        can_hold_out = sum(n - 1 for n in remaining.values())
        if can_hold_out < num_valid_utts:
            raise ToolError(f"{self.data_dir}: only {can_hold_out} utterances of >= {self.min_frames} frames can be "
                            f"held out for validation (each speaker keeps one for training), num_valid_utts="
                            f"{num_valid_utts} asked; lower {self.option_names['num_valid_utts']}")
        rng = np.random.default_rng([self.seed, _VALID_CHOICE_STREAM])
        chosen = []
        for position in rng.permutation(len(usable)):
            utt = usable[position]
            if remaining[utt2spk[utt]] > 1:
                remaining[utt2spk[utt]] -= 1
                chosen.append(utt)
                if len(chosen) == num_valid_utts:
                    break
        return sorted(chosen)

    def _index_training(self, train_utts, utt2spk, utt2num_frames, frames_path):
        """Arrays for fast planning: training utterances grouped by speaker, ascending length within."""
        labels = np.array([self.spk2int[utt2spk[u]] for u in train_utts], dtype=np.int64)
        lengths = np.array([utt2num_frames[u] for u in train_utts], dtype=np.int64)
        order = np.lexsort((lengths, labels))
        self._train_utts = np.array(train_utts, dtype=object)[order]
        self._train_lengths = lengths[order]
        num_classes = len(self.spk2int)
        counts = np.bincount(labels, minlength=num_classes)
        self._spk_end = np.cumsum(counts)
        self._spk_start = self._spk_end - counts
        self._spk_longest = np.where(counts > 0, self._train_lengths[np.maximum(self._spk_end - 1, 0)], 0)
        enough = int(np.sum(self._spk_longest >= (1 if self.repeat_short else self.max_frames)))
        if enough < self.num_speakers:
            longest = int(self._train_lengths.max())
            raise ToolError(
                f"{self.data_dir}: only {enough} speakers have a training utterance of at least max_frames="
                f"{self.max_frames} frames (longest utterance: {longest} frames, per {frames_path}; "
                f"{len(self.valid_utts)} utterances held out for validation), but num_speakers={self.num_speakers} "
                f"are drawn per batch; lower {self.option_names['num_speakers']} or {self.option_names['max_frames']}")

    # ------------------------------------------------------------------------------------- planning
    @property
    def num_classes(self) -> int:
        return len(self.spk2int)

    @property
    def num_train_utts(self) -> int:
        return len(self._train_utts)

    def plan(self, step: int) -> BatchPlan:
        """The batch of global step ``step`` (a pure function of the data, options, seed and step)."""
        rng = np.random.default_rng([self.seed, _TRAIN_STREAM, int(step)])
        length = int(rng.integers(self.min_frames, self.max_frames + 1))
        if self.repeat_short:
            return self._plan_repeating(rng, length)
        candidates = np.flatnonzero(self._spk_longest >= length)
        speakers = rng.choice(candidates, size=self.num_speakers, replace=False)
        starts, ends = self._spk_start[speakers], self._spk_end[speakers]
        # First utterance of each speaker long enough (lengths ascend within a speaker).
        firsts = np.array([s + np.searchsorted(self._train_lengths[s:e], length) for s, e in zip(starts, ends)])
        picks = firsts + (rng.random(len(speakers)) * (ends - firsts)).astype(np.int64)
        picks = np.minimum(picks, ends - 1)
        room = self._train_lengths[picks] - length + 1
        offsets = (rng.random(len(speakers)) * room).astype(np.int64)
        return BatchPlan(tuple(self._train_utts[picks]), offsets, length, speakers.astype(np.int32))

    def _plan_repeating(self, rng, length: int) -> BatchPlan:
        """``repeat_short``: any speaker, any of its utterances; offset 0 for one shorter than ``length``."""
        candidates = np.flatnonzero(self._spk_end > self._spk_start)
        speakers = rng.choice(candidates, size=self.num_speakers, replace=False)
        starts, ends = self._spk_start[speakers], self._spk_end[speakers]
        picks = np.minimum(starts + (rng.random(len(speakers)) * (ends - starts)).astype(np.int64), ends - 1)
        room = np.maximum(self._train_lengths[picks] - length + 1, 1)
        offsets = (rng.random(len(speakers)) * room).astype(np.int64)
        return BatchPlan(tuple(self._train_utts[picks]), offsets, length, speakers.astype(np.int32))

    # -------------------------------------------------------------------------------------- loading
    def read_segment(self, utt: str, offset: int, length: int) -> np.ndarray:
        """Frames [offset, offset + length) of ``utt`` as float32, checking dimension and length."""
        rows, num_rows, num_cols = self.segments.read(utt, offset, length)
        self._check_shape(utt, offset, length, num_rows, num_cols)
        if not np.isfinite(rows).all():  # one pass over the segment: cheap next to the network
            self._report_non_finite(utt, offset, rows)
        return rows

    def _check_shape(self, utt, offset, length, num_rows, num_cols):
        if num_cols != self.feat_dim:
            shape = f"{num_rows} x {num_cols}" if num_cols >= 0 else "not a matrix"
            raise ToolError(f"{self.feats_scp}: utterance '{utt}' ({self.reader.location(utt)}) has features of "
                            f"shape ({shape}), expected dimension {self.feat_dim} like the other archives")
        if num_rows < offset + length:
            raise ToolError(f"{self.feats_scp}: utterance '{utt}' has {num_rows} frames but utt2num_frames "
                            f"says {self._utt2num_frames[utt]}; regenerate utt2num_frames")

    def _report_non_finite(self, utt, offset, rows):
        length = len(rows)
        bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
        raise ToolError(f"{self.feats_scp}: utterance '{utt}' ({self.reader.location(utt)}) has non-finite "
                        f"values (NaN or Inf) in frame {offset + int(bad[0])} ({len(bad)} bad frame(s) in "
                        f"frames {offset}-{offset + length - 1}); fix or remove the utterance")

    def load(self, plan: BatchPlan) -> tuple[np.ndarray, np.ndarray]:
        """The batch of ``plan``: the segments are read and decoded together
        (:meth:`SegmentReader.read_batch`, the same values as :meth:`read_segment` each) and checked
        in batch order, so the first bad segment is the one reported, as per segment."""
        if self.repeat_short:
            short = [i for i, utt in enumerate(plan.utts) if self._utt2num_frames[utt] < plan.length]
            if short:
                return self._load_with_repeats(plan, short), plan.labels
        feats, shapes = self.segments.read_batch(plan.utts, plan.offsets, plan.length, self.feat_dim)
        finite = np.isfinite(feats).all(axis=(1, 2))   # one pass over the batch
        for position, (utt, offset, (num_rows, num_cols)) in enumerate(zip(plan.utts, plan.offsets, shapes)):
            self._check_shape(utt, int(offset), plan.length, num_rows, num_cols)
            if not finite[position]:
                self._report_non_finite(utt, int(offset), feats[position])
        return feats, plan.labels

    def _load_with_repeats(self, plan: BatchPlan, short: list) -> np.ndarray:
        """The batch of ``plan`` whose rows ``short`` are utterances shorter than the crop, tiled to it."""
        feats = np.empty((len(plan.utts), plan.length, self.feat_dim), np.float32)
        is_short = np.zeros(len(plan.utts), bool)
        is_short[short] = True
        full = np.flatnonzero(~is_short)
        if len(full):
            part = BatchPlan(tuple(plan.utts[i] for i in full), plan.offsets[full], plan.length, plan.labels[full])
            feats[full] = self.load(part)[0]
        for i in short:
            utt = plan.utts[i]
            rows = self.read_segment(utt, 0, self._utt2num_frames[utt])
            feats[i] = rows[np.arange(plan.length) % len(rows)]
        return feats

    def batch(self, step: int, rows: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(feats [num_speakers, L, feat_dim] float32, labels [num_speakers] int32) of training step ``step``:
        :meth:`load` of its plan, then ``spec_augment`` of each crop at its position in the batch. ``rows``:
        only the batch positions ``rows`` (one replica's share; the same values as those rows of the batch)."""
        plan, positions = self.plan(step), np.arange(self.num_speakers)
        if rows is not None:
            plan, positions = plan.rows(rows), positions[rows]
        feats, labels = self.load(plan)
        if self.spec_augment is not None:
            feats = self.spec_augment(feats, step, positions)
        return feats, labels

    # ----------------------------------------------------------------------------------- validation
    def validation_plans(self, batch_size: int = 64) -> list[BatchPlan]:
        """Fixed plans over the held-out utterances: sorted by length, ``batch_size`` per batch, each
        cropped to L = min(max_frames, shortest in the batch) at a seeded offset. Same every call."""
        if batch_size < 1:
            raise ToolError(f"validation batch_size must be >= 1, got {batch_size}")
        utts = sorted(self.valid_utts, key=lambda u: (self._utt2num_frames[u], u))
        rng = np.random.default_rng([self.seed, _VALID_CROP_STREAM])
        plans = []
        for first in range(0, len(utts), batch_size):
            group = utts[first:first + batch_size]
            lengths = np.array([self._utt2num_frames[u] for u in group])
            length = int(min(self.max_frames, lengths.min()))
            offsets = (rng.random(len(group)) * (lengths - length + 1)).astype(np.int64)
            labels = np.array([self.spk2int[self._utt2spk[u]] for u in group], dtype=np.int32)
            plans.append(BatchPlan(tuple(group), offsets, length, labels))
        return plans

    def write_spk2int(self, path) -> None:
        write_spk2int(path, self.spk2int)
