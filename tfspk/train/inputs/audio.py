"""``data.source: audio``: training batches computed from audio on the fly.

The data dir needs ``wav.scp`` (files) and ``utt2spk``; ``segments`` (wav.scp then keyed by
recording; only each segment's samples are read) and ``vad.scp`` (``features.vad``) are used when
present. Every step is :class:`tfspk.data.audio_sampler.AudioCropBatches` (a pure function of
``(seed, step)``): B distinct speakers, a crop of ``L ~ U{min_frames..max_frames}`` frames of one of
their utterances (of its voiced audio with VAD), the ``augment:`` section applied to the waveform
(:class:`tfspk.data.augment.Augmenter`), features with the same Kaldi-exact
:class:`tfspk.features.FeatureExtractor` as the offline tools (the ``features:`` section's front end),
CMN (``features.cmn``: ``crop`` mean, Kaldi's ``sliding`` window of 300 centred frames, or ``none``) and
SpecAugment. Without speed perturbation and VAD the crops start at multiples of the frame shift, so
with dither 0 a crop's features are exactly rows ``j .. j+L-1`` of the offline tool's features of
the whole utterance (tested, also step for step in training).

VAD on the fly (``features.vad``: ``auto`` uses ``vad.scp`` if present, ``true`` requires it, ``false``
ignores it) concatenates the sample blocks of the voiced frames and crops from that
(:func:`tfspk.data.voiced.voiced_runs`), an approximation of select-voiced-frames on offline
features (docs/training.md). Files at another rate than the feature config's are resampled where they
are read (``data.allow_resample``; :mod:`tfspk.io.audio`). Validation batches come from the feats path only: with audio,
``valid.num_utts`` is ignored (the log says so) and ``valid.eer_data`` (features) works.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import tensorflow as tf

from tfspk.data.audio_sampler import AudioCropBatches
from tfspk.data.augment import Augmenter
from tfspk.data.sampler import write_spk2int
from tfspk.errors import ToolError
from tfspk.train.expdir import front_end_for_audio
from tfspk.train.inputs.base import TrainingInput, register_source


@register_source
class AudioInput(TrainingInput):
    """The trainer's input for ``data.source: audio``: wav.scp + utt2spk (+ segments, vad.scp)."""
    name = "audio"
    keys = ("augment", "data.allow_resample", "data.num_threads", "data.worker_nice", "data.prefetch")

    def __init__(self, data_dir: str, config):
        if not os.path.isdir(data_dir):
            raise ToolError(f"training data dir {data_dir} does not exist")
        for name in ("wav.scp", "utt2spk"):
            if not os.path.isfile(os.path.join(data_dir, name)):
                raise ToolError(f"missing {data_dir}/{name}: data.source audio needs wav.scp and utt2spk")
        data = config.data
        self.front_end = front_end_for_audio(config)
        self.extractor = self.front_end.extractor()
        self.augmenter = Augmenter(config.augment, sample_rate=int(self.extractor.rate), seed=config.seed,
                                   allow_resample=data.allow_resample)
        aligned = tuple(self.augmenter.speed_factors) == (1.0,)
        self.batches = AudioCropBatches(data_dir, self.augmenter, self.extractor, data.speakers_per_batch,
                                        data.min_frames, data.max_frames, align_to_frames=aligned,
                                        cmn=config.features.cmn, vad=config.features.vad,
                                        allow_resample=data.allow_resample)
        self.front_end.vad = self.batches.uses_vad   # recorded: inference applies the VAD iff training did
        self.notes = list(self.batches.notes)  # the trainer logs them
        self.num_workers = data.num_threads
        self.prefetch = data.prefetch
        self.worker_nice = data.worker_nice
        self.feat_dim = self.extractor.dim
        self.num_classes = self.batches.num_classes
        self.num_speakers = data.speakers_per_batch
        self.num_train_utts = len(self.batches._keys)
        self.valid_utts = []
        self.last_error = None

    def write_spk2int(self, path) -> None:
        """spk2int of the speakers (speed copies k add k * num_speakers to the index)."""
        write_spk2int(path, self.batches.spk2int)

    def batch(self, step: int):
        return self.batches.batch(step)

    def describe_batch(self, step: int, batch=None) -> tuple[str, float]:
        """The crops of the step's plan (a pure function of the seed and the step); features recomputed."""
        frames, crops = self.batches.plan(step)
        feats, _ = self.batches.batch(step)
        where = "voiced samples" if self.batches.uses_vad else "samples"
        names = ", ".join(f"{crop.key} ({self.batches.location(crop.key)}, {where} {crop.start}.."
                          f"{crop.start + crop.length - 1})" for crop in crops[:8])
        more = f" and {len(crops) - 8} more" if len(crops) > 8 else ""
        return f"{frames} frames of {names}{more}", float(np.max(np.abs(feats)))

    def dataset(self, start_step: int, input_context=None) -> tf.data.Dataset:
        """Batches of steps start_step, start_step + 1, ... (worker processes: data.num_threads)."""
        def generate():
            try:
                yield from self.batches.iterate(start_step, None, self.num_workers, nice=self.worker_nice)
            except ToolError as err:
                self.last_error = err  # tfspk.data.tool_errors() turns tf.data's error back into it
                raise
        signature = (tf.TensorSpec([self.num_speakers, None, self.feat_dim], tf.float32),
                     tf.TensorSpec([self.num_speakers], tf.int32))
        return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(self.prefetch)
