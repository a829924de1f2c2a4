"""The trainer's side of the input pipeline (the sampling itself is :mod:`tfspk.data`).

* :func:`make_sampler`: the speaker-balanced sampler over the training data dir with the config's
  batch and validation options (it checks feats.scp/utt2spk/utt2num_frames, feature dimensions
  across archives, and that enough speakers have long-enough utterances).
* :func:`train_dataset`: the batches from the global step on. With one replica this is
  :func:`tfspk.data.make_dataset`. With several, each input pipeline (one per worker) loads only the
  rows of step ``k``'s global batch that its replicas train on, in replica order, so that the
  replicas together see exactly the single-device batch of step ``k`` (the sampler's plan of a step
  is a pure function of the seed and the step).
"""
from __future__ import annotations

import dataclasses
import itertools
import os

import tensorflow as tf

from tfspk import data as tfdata
from tfspk.errors import ToolError

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
    return tfdata.SpeakerBalancedSampler(data_dir, num_speakers=config.data.speakers_per_batch,
                                         min_frames=config.data.min_frames, max_frames=config.data.max_frames,
                                         seed=config.seed, num_valid_utts=config.valid.num_utts,
                                         option_names=SAMPLER_OPTION_NAMES,
                                         repeat_short=config.data.repeat_short)


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

    def replica_plans():
        for step in itertools.count(start_step):
            plan = sampler.plan(step)
            for replica in range(first_replica, first_replica + local):
                part = slice(replica * rows, (replica + 1) * rows)
                yield dataclasses.replace(plan, utts=plan.utts[part], offsets=plan.offsets[part],
                                          labels=plan.labels[part])

    def generate():
        try:
            with tfdata.OrderedPrefetcher(replica_plans(), sampler.load, config.data.num_threads,
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
