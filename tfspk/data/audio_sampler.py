"""Speaker-balanced batches of augmented features computed from audio: the audio counterpart of
:class:`tfspk.data.sampler.SpeakerBalancedSampler` (``data.source: audio``), a pure function of
``(seed, step)``. Crops go through :class:`tfspk.data.augment.Augmenter`, the feature extractor, CMN
and SpecAugment (see :class:`AudioCropBatches`)."""
from __future__ import annotations

import collections
import math
import os

import numpy as np

from tfspk.data.augment import Augmenter, expand_labels
from tfspk.data.voiced import vad_frame_range, voiced_positions, voiced_runs
from tfspk.errors import ToolError

CMN_MODES = ("crop", "sliding", "none")
# features.cmn sliding: the recipe's apply-cmvn-sliding options (steps/prepare_feats_for_egs.sh)
SLIDING_CMN = dict(cmn_window=300, center=True, norm_vars=False)


class Crop(collections.namedtuple("Crop", "key start length label plan")):
    """One batch position of :meth:`AudioCropBatches.plan`: ``length`` samples from sample ``start`` of
    utterance ``key``'s audio (its voiced audio when VAD is used), the label and the AugmentPlan."""


def _vad_mode(vad) -> str:
    text = {True: "true", False: "false"}.get(vad, str(vad).strip().lower())
    if text not in ("auto", "true", "false"):
        raise ToolError(f"vad must be auto, true or false, got {vad!r}")
    return text


class AudioCropBatches:
    """Speaker-balanced batches of augmented features computed from audio, a pure function of
    ``(seed, step)``: ``feats [B, L, D] float32, labels [B] int32`` = :meth:`batch` (step).

    ``data_dir`` has ``wav.scp`` (file paths) and ``utt2spk``; optionally ``segments``
    (``utt recording start end``, wav.scp then keyed by recording; only the segment's samples are
    read, Kaldi ``extract-segments`` sample rules) and ``vad.scp`` (see ``vad``). Labels follow
    ``spk2int`` (default: sorted speakers). Per step: ``L ~ U{min_frames..max_frames}``; B distinct
    speakers drawn uniformly (with replacement only if there are fewer than B), for each an
    utterance long enough for the crop and a uniform offset; the crop (read from the file, only the
    samples needed, allowing for the speed factor) goes through ``augmenter``, then
    ``extractor`` (a :class:`tfspk.features.FeatureExtractor`), then CMN, then SpecAugment; the label
    is expanded by the speed index (:func:`expand_labels`). :meth:`iterate` runs the steps in
    ``num_workers`` processes (numpy, scipy and the feature extractor hold the GIL too often for
    threads to scale) and yields them in step order. ``align_to_frames``: crop starts are
    multiples of the frame shift (the crop's features are then rows of the whole file's features,
    snip-edges semantics).

    ``cmn`` (before SpecAugment): ``crop`` subtracts the crop's mean feature vector; ``sliding`` is
    Kaldi's ``apply-cmvn-sliding --norm-vars=false --cmn-window=300 --center=true`` on the crop's
    features (:func:`tfspk.features.apply_cmvn_sliding`; for crops of at most 300 frames the
    centred window covers the whole crop, so it equals ``crop``); ``none``. ``crop_mean_norm=True``
    is the old spelling of ``cmn="crop"``.

    ``vad`` (``auto``: use ``vad.scp`` if the dir has one; ``true``: require it; ``false``): crops are
    drawn from the voiced audio only, the concatenated sample blocks ``[f shift, (f+1) shift)`` of the
    voiced frames f (:func:`voiced_runs`, shift = the extractor's frame shift). This approximates
    ``select-voiced-frames`` on offline features: frames whose window straddles the joint of two
    voiced blocks mix samples that were not adjacent, and with snip-edges true the block of frame f
    is not centred on its window (with snip-edges false, the recipe's setting, it is). Utterances
    with too few (voiced) samples for the longest crop are skipped; :attr:`notes` counts them.
    """

    def __init__(self, data_dir: str, augmenter: Augmenter, extractor, batch_size: int = 64,
                 min_frames: int = 200, max_frames: int = 400, spk2int: dict | None = None,
                 align_to_frames: bool = False, crop_mean_norm: bool = False, cmn: str | None = None,
                 vad="auto", allow_resample: bool = True):
        from tfspk.io.table import read_utt2spk
        self.dir = os.fspath(data_dir)
        if not 0 < min_frames <= max_frames:
            raise ToolError(f"need 0 < min_frames <= max_frames, got {min_frames} and {max_frames}")
        self.cmn = cmn if cmn is not None else ("crop" if crop_mean_norm else "none")
        if self.cmn not in CMN_MODES:
            raise ToolError(f"cmn must be one of {', '.join(CMN_MODES)}, got {self.cmn!r}")
        self.crop_mean_norm = self.cmn == "crop"
        self.augmenter, self.extractor = augmenter, extractor
        if float(extractor.rate) != float(augmenter.rate):
            raise ToolError(f"feature sample rate {extractor.rate:g} Hz differs from the augmenter's "
                            f"{augmenter.rate} Hz")
        self.rate = int(augmenter.rate)
        self.batch_size, self.min_frames, self.max_frames = batch_size, min_frames, max_frames
        # align_to_frames: crops start at a multiple of the frame shift, so (snip-edges, no dither, no
        # speed change) the crop's L frames are exactly frames j..j+L-1 of the whole file's features.
        self.align_to_frames = bool(align_to_frames)
        frame = extractor.opts.frame
        self._shift, self._window = frame.window_shift_samples, frame.window_size_samples
        utt2spk = read_utt2spk(os.path.join(self.dir, "utt2spk"))
        self.spk2int = spk2int or {spk: i for i, spk in enumerate(sorted(set(utt2spk.values())))}
        self.allow_resample = bool(allow_resample)
        utterances = self._utterances(utt2spk)      # [(key, tfspk.io.audio.Span, num samples at the feature rate)]
        mode = _vad_mode(vad)
        vad_scp = os.path.join(self.dir, "vad.scp")
        if mode == "true" and not os.path.isfile(vad_scp):
            raise ToolError(f"features.vad true: {vad_scp} not found")
        self.uses_vad = mode == "true" or (mode == "auto" and os.path.isfile(vad_scp))
        runs = self._read_vad(vad_scp, utterances, frame) if self.uses_vad else {}
        # As the feats sampler: an utterance serves every step whose crop it can hold, so the
        # minimum crop decides which utterances are kept, and each step picks among those long enough.
        need = self._source_need(min_frames)
        self._keys, self._spans, self._lengths, self._runs = [], [], [], []
        by_speaker, short, unvoiced, no_vad = {}, 0, 0, 0
        for key, span, count in utterances:
            voiced = runs.get(key) if self.uses_vad else None
            if self.uses_vad and voiced is None:
                no_vad += 1
                continue
            length = voiced[2] if voiced is not None else count
            if length < need:
                if count < need:
                    short += 1
                else:
                    unvoiced += 1
                continue
            by_speaker.setdefault(utt2spk[key], []).append(len(self._keys))
            self._keys.append(key)
            self._spans.append(span)
            self._lengths.append(length)
            self._runs.append(voiced)
        self._index = {key: i for i, key in enumerate(self._keys)}
        self._speakers = sorted(by_speaker)
        # each speaker's utterances by ascending length: the usable ones of a step are a suffix
        self._utts = [sorted(by_speaker[spk], key=self._lengths.__getitem__) for spk in self._speakers]
        self._sorted_lengths = [np.array([self._lengths[u] for u in utts]) for utts in self._utts]
        self._longest = np.array([lengths[-1] for lengths in self._sorted_lengths], dtype=np.int64)
        vad_text = f"voiced audio from {vad_scp}" if self.uses_vad else "no VAD"
        self.notes = [f"audio input {self.dir}: {len(self._keys)} of {len(utterances)} utterances used ({vad_text}); "
                      f"skipped: {short} shorter than the shortest crop ({min_frames} frames)"
                      + (f", {unvoiced} with too few voiced samples, {no_vad} without an entry in vad.scp"
                         if self.uses_vad else "")]
        resampled = sorted({span.rate for _, span, _ in utterances} - {self.rate})
        if resampled:
            count = sum(span.rate != self.rate for _, span, _ in utterances)
            self.notes.append(f"audio input {self.dir}: resampling {count} of {len(utterances)} utterances from "
                              f"{', '.join(map(str, resampled))} Hz to the features' {self.rate} Hz (polyphase "
                              "filter, tfspk.io.resample)")
        longest_need = self._source_need(max_frames)
        if not self._speakers or self._longest.max() < longest_need:
            raise ToolError(f"{self.dir}: no utterance is long enough for {max_frames} frames"
                            + (" of voiced audio" if self.uses_vad else "") + " (lower data.max_frames)")
        self.num_classes = len(self.spk2int) * augmenter.num_class_copies

    def _utterances(self, utt2spk):
        """``[(utt, Span, num samples at the feature rate)]`` of wav.scp (+ segments) from the file headers
        (:func:`tfspk.io.audio.utterance_spans`: a segment extract-segments would skip is skipped with a
        warning); files at another rate are resampled unless ``allow_resample`` is false."""
        from tfspk.io import audio
        items = audio.data_dir_utterances(self.dir)
        for item in items:
            if item.utt not in utt2spk:
                raise ToolError(f"{self.dir}/{'segments' if item.segment else 'wav.scp'}: '{item.utt}' has no "
                                f"speaker in {self.dir}/utt2spk")
        result = []
        for span in audio.utterance_spans(items, "data.source audio", min_segment_seconds=0.0,
                                           scp=os.path.join(self.dir, "wav.scp")):
            if span.rate != self.rate and not self.allow_resample:
                raise ToolError(f"{self.dir}/wav.scp: '{span.utt}': {span.path} has rate {span.rate} Hz, expected "
                                f"{self.rate} Hz (the feature config's; resampling is off: data.allow_resample false)")
            result.append((span.utt, span, audio.span_length_at(span, self.rate)))
        return result

    def _read_vad(self, vad_scp, utterances, frame) -> dict:
        """utt -> :func:`voiced_runs` of its vad.scp vector (length checked against its audio)."""
        from tfspk.io.ark import read_rspecifier
        counts = {key: count for key, _, count in utterances}
        runs = {}
        for key, vector in read_rspecifier(f"scp:{vad_scp}"):
            if key not in counts:
                continue
            vector = np.asarray(vector)
            if vector.ndim != 1:
                raise ToolError(f"{vad_scp}: '{key}' is not a vector (shape {vector.shape}); expected "
                                "compute-vad's 0/1 per frame")
            low, high = vad_frame_range(counts[key], frame)
            if not low <= vector.size <= high:
                raise ToolError(f"{vad_scp}: '{key}' has {vector.size} VAD frames, but its audio "
                                f"({counts[key]} samples) has {low + 1}..{high - 1} frames at a shift of "
                                f"{self._shift} samples (+-1 accepted): wrong VAD, features or audio?")
            runs[key] = voiced_runs(vector, counts[key], self._shift)
        return runs

    def location(self, key: str) -> str:
        """Where utterance ``key``'s audio is: its file (and first sample, for a segment)."""
        span = self._spans[self._index[key]]
        return span.path + (f" from sample {span.first}" if span.first else "")

    def samples_for(self, frames: int) -> int:
        """Samples that give at least ``frames`` frames: ``(frames - 1) * shift + window``."""
        return (frames - 1) * self._shift + self._window

    def read(self, key: str, start: int, length: int) -> np.ndarray:
        """Samples ``start .. start + length - 1`` of utterance ``key``'s (voiced) audio at the feature rate,
        float32 on the int16 scale. Only the span of the file that holds them is read."""
        from tfspk.io.audio import read_span_at
        utt = self._index[key]
        span, voiced = self._spans[utt], self._runs[utt]
        positions = None
        if voiced is not None:
            positions = voiced_positions(voiced, self._shift, start, length)
            first, stop = int(positions[0]), int(positions[-1]) + 1
        else:
            first, stop = start, start + length
        samples = read_span_at(span, first, stop, self.rate, f"'{key}'", self.allow_resample)
        return samples if positions is None else samples[positions - first]

    def _source_need(self, frames: int) -> int:
        """Samples an utterance needs for a crop of ``frames`` frames at the slowest speed factor."""
        return int(math.ceil(self.samples_for(frames) * max(self.augmenter.speed_factors))) + 2

    def plan(self, step: int):
        """``(frames, [Crop(key, start, num_samples, label, AugmentPlan)] per position)`` of ``step``.

        As the feats sampler: the speakers are drawn among those with an utterance long enough for
        the step's crop (at the slowest speed factor), and each one's utterance among its long-enough
        ones, so short utterances still serve short crops.
        """
        aug = self.augmenter
        rng = aug.rng(step, 0, stream=2)
        frames = int(rng.integers(self.min_frames, self.max_frames + 1))
        needed = self.samples_for(frames)
        candidates = np.flatnonzero(self._longest >= self._source_need(frames))
        count = len(candidates)
        speakers = candidates[rng.choice(count, self.batch_size, replace=count < self.batch_size)]
        crops = []
        for position, speaker in enumerate(speakers):
            plan = aug.plan(step, position)
            length = aug.source_length(needed, plan)
            utts, lengths = self._utts[int(speaker)], self._sorted_lengths[int(speaker)]
            first = int(np.searchsorted(lengths, length))   # the speaker's longest is >= length
            utt = utts[first + int(rng.integers(len(utts) - first))]
            if self.align_to_frames:
                start = self._shift * int(rng.integers(0, (self._lengths[utt] - length) // self._shift + 1))
            else:
                start = int(rng.integers(0, self._lengths[utt] - length + 1))
            label = expand_labels(self.spk2int[self._speakers[int(speaker)]], plan.speed_index, len(self.spk2int))
            crops.append(Crop(self._keys[utt], start, length, label, plan))
        return frames, crops

    def normalize(self, feats: np.ndarray) -> np.ndarray:
        """The ``cmn`` of the crop's features ``[L, D]`` (float32)."""
        if self.cmn == "crop":
            return feats - feats.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
        if self.cmn == "sliding":
            from tfspk.features import apply_cmvn_sliding
            return apply_cmvn_sliding(feats, **SLIDING_CMN)
        return feats

    def batch(self, step: int):
        """``(feats [B, L, D] float32, labels [B] int32)`` of ``step``."""
        aug = self.augmenter
        frames, crops = self.plan(step)
        needed = self.samples_for(frames)
        feats = np.empty((self.batch_size, frames, self.extractor.dim), np.float32)
        labels = np.empty(self.batch_size, np.int32)
        for position, crop in enumerate(crops):
            wave = aug.apply(self.read(crop.key, crop.start, crop.length), crop.plan)[:needed]
            # CMN before SpecAugment, whose zero masks are then the mean
            features = self.normalize(self.extractor(wave, aug.rate)[:frames])
            feats[position] = aug.spec_augment(features, step, position)
            labels[position] = crop.label
        return feats, labels

    def iterate(self, start_step: int = 0, num_steps: int | None = None, num_workers: int = 2,
                prefetch: int | None = None, nice: int = 0):
        """Batches of steps ``start_step, start_step + 1, ...`` in order, from ``num_workers`` forked
        worker processes, at most ``prefetch`` (default ``2 * num_workers``) batches ahead: the
        workers wait for the consumer instead of running ahead of it (multiprocessing's imap would
        keep computing, holding the results in memory and the cores away from the training step). The
        workers run ``nice`` steps below the caller's priority (:class:`tfspk.data.OrderedPrefetcher`)."""
        import itertools
        from tfspk.data.pipeline import OrderedPrefetcher
        steps = itertools.count(start_step) if num_steps is None else range(start_step, start_step + num_steps)
        if num_workers <= 1:
            yield from map(self.batch, steps)
            return
        with OrderedPrefetcher(steps, self.batch, num_workers, prefetch or 2 * num_workers, processes=True,
                               nice=nice) as batches:
            yield from batches
