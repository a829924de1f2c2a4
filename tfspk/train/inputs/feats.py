"""``data.source: feats``: the data dir's offline Kaldi features (feats.scp), sampled by
:class:`tfspk.data.SpeakerBalancedSampler` (the sampling itself is :mod:`tfspk.data`).

* :class:`FeatsInput`: the registered input; the only one that feeds several replicas.

* :func:`make_sampler`: the speaker-balanced sampler over the training data dir with the config's
  batch and validation options (it checks feats.scp/utt2spk/utt2num_frames, feature dimensions
  across archives, and that enough speakers have long-enough utterances).
* :func:`train_dataset`: the batches from the global step on. With one replica this is
  :func:`tfspk.data.make_dataset`. With several, each input pipeline (one per worker) loads only the
  rows of step ``k``'s global batch that its replicas train on, in replica order, so that the
  replicas together see exactly the single-device batch of step ``k`` (the sampler's plan of a step
  is a pure function of the seed and the step, and so are the SpecAugment masks of each position).

The ``augment:`` section takes SpecAugment only (:func:`tfspk.data.augment.features_only`): the masks
of [Park2019] on every training crop (after ``data.repeat_short`` tiling), never on validation batches;
a waveform option (noise, music, babble, reverberation, speed) is a ToolError naming it.
"""
from __future__ import annotations

import itertools
import os

import numpy as np
import tensorflow as tf

from tfspk import data as tfdata
from tfspk.data.augment import SPEC_AUGMENT_KEYS, features_only
from tfspk.errors import ToolError
from tfspk.train.inputs.base import TrainingInput, register_source

REQUIRED_FILES = ("feats.scp", "utt2spk", "utt2num_frames")


def check_data_dir(data_dir: str) -> None:
    """The training data dir and its required files exist (message names the missing one)."""
    if not os.path.isdir(data_dir):
        raise ToolError(f"training data dir {data_dir} does not exist")
    for name in REQUIRED_FILES:
        path = os.path.join(data_dir, name)
        if not os.path.isfile(path):
            raise ToolError(f"missing {path}: the training data dir needs {', '.join(REQUIRED_FILES)}")


#: the sampler's options are these tfspk-train config keys (its errors name them).
SAMPLER_OPTION_NAMES = {"num_speakers": "data.speakers_per_batch", "min_frames": "data.min_frames",
                        "max_frames": "data.max_frames", "num_valid_utts": "valid.num_utts", "seed": "seed"}


def make_sampler(data_dir: str, config) -> tfdata.SpeakerBalancedSampler:
    check_data_dir(data_dir)
    masks = features_only(config.augment, config.seed, "feats")
    return tfdata.SpeakerBalancedSampler(data_dir, num_speakers=config.data.speakers_per_batch,
                                         min_frames=config.data.min_frames, max_frames=config.data.max_frames,
                                         seed=config.seed, num_valid_utts=config.valid.num_utts,
                                         option_names=SAMPLER_OPTION_NAMES,
                                         repeat_short=config.data.repeat_short,
                                         spec_augment=masks if masks.enabled else None)


def train_dataset(sampler, config, start_step: int, input_context: tf.distribute.InputContext | None = None):
    """Training batches from ``start_step`` on: global batches, or per-replica ones for ``input_context``."""
    if input_context is None or input_context.num_replicas_in_sync == 1:
        return tfdata.make_dataset(sampler, start_step, num_threads=config.data.num_threads,
                                   prefetch=config.data.prefetch, processes=config.data.readers == "processes",
                                   nice=config.data.worker_nice)
    replicas = input_context.num_replicas_in_sync
    local = replicas // input_context.num_input_pipelines
    first_replica = input_context.input_pipeline_id * local
    rows = sampler.num_speakers // replicas

    def replica_rows():
        for step in itertools.count(start_step):
            for replica in range(first_replica, first_replica + local):
                yield step, slice(replica * rows, (replica + 1) * rows)

    def generate():
        try:
            with tfdata.OrderedPrefetcher(replica_rows(), lambda item: sampler.batch(*item), config.data.num_threads,
                                          config.data.prefetch * local,
                                          processes=config.data.readers == "processes",
                                          nice=config.data.worker_nice) as batches:
                yield from batches
        except ToolError as err:
            sampler.last_error = err  # tfspk.data.tool_errors() turns tf.data's error back into it
            raise

    signature = (tf.TensorSpec([rows, None, sampler.feat_dim], tf.float32), tf.TensorSpec([rows], tf.int32))
    return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(2)


def validation_batches(sampler, batch_size: int) -> list:
    """The held-out validation set as a list of numpy (feats, labels) batches (loaded once)."""
    with tfdata.iterate_validation_batches(sampler, batch_size) as batches:
        return list(batches)


@register_source
class FeatsInput(TrainingInput):
    """feats.scp + utt2spk + utt2num_frames; validation utterances held out of training speakers."""
    name = "feats"
    keys = ("augment", "data.readers", "data.repeat_short", "data.num_threads", "data.worker_nice", "data.prefetch")
    supports_replicas = True

    @classmethod
    def check(cls, data_dir: str, config) -> None:
        super().check(data_dir, config)
        features_only(config.augment, config.seed, "feats")
        check_data_dir(data_dir)

    def __init__(self, data_dir: str, config):
        self.config = config
        self.sampler = make_sampler(data_dir, config)
        self.feat_dim, self.num_classes = self.sampler.feat_dim, self.sampler.num_classes
        self.num_speakers, self.num_train_utts = self.sampler.num_speakers, self.sampler.num_train_utts
        self.valid_utts = self.sampler.valid_utts
        masks = self.sampler.spec_augment
        self.notes = [] if masks is None else [
            "SpecAugment [Park2019] on every training crop: " + ", ".join(
                f"{name} {getattr(masks.params, name)}" for name in SPEC_AUGMENT_KEYS[1:])]

    def write_spk2int(self, path: str) -> None:
        self.sampler.write_spk2int(path)

    def dataset(self, start_step: int, input_context=None):
        return train_dataset(self.sampler, self.config, start_step, input_context)

    def validation_batches(self, batch_size: int):
        return validation_batches(self.sampler, batch_size) if self.valid_utts else None

    def errors(self):
        return tfdata.tool_errors(self.sampler)   # the sampler's generators keep its error

    def describe_batch(self, step: int, batch=None) -> tuple[str, float]:
        """The utterances of the step's plan (a pure function of the seed and the step) with their
        archive locations; the features are read again."""
        plan = self.sampler.plan(step)
        feats, _ = self.sampler.batch(step)
        utts = ", ".join(f"{u} ({self.sampler.reader.location(u)})" for u in plan.utts[:8])
        more = f" and {len(plan.utts) - 8} more" if len(plan.utts) > 8 else ""
        return f"{plan.length} frames of {utts}{more}", float(np.max(np.abs(feats)))

