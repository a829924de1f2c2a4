"""``data.source: shards``: TFRecord feature shards (tfspk-make-shards) read by tf.data, optionally on
the workers of a tf.data service."""
from __future__ import annotations

import contextlib
import os
import shutil

import numpy as np
import tensorflow as tf

from tfspk import cli
from tfspk.data.shards import service_host_port, shard_errors, wait_for_service
from tfspk.errors import ToolError
from tfspk.train.inputs.base import TrainingInput, register_source


@register_source
class ShardInput(TrainingInput):
    """The trainer's input for ``data.source: shards``: :func:`tfspk.data.shards.shard_dataset` over the
    feature shards of ``data.shards`` (default: the data dir argument holds ``shards.list``).

    Batches are random utterances of the shuffled shard stream (not the speaker-balanced plan of the
    feats path, so the two sources do not give equal runs), cropped to ``L ~ U{min..max}`` frames by
    tf.data ops in parallel (no Python, no GIL). The stream is a function of the seed; a resumed run
    skips the ``start_step`` batches already trained (read again, not trained on), so it sees the
    batches an uninterrupted run would have seen.
    """

    name = "shards"
    keys = ("data.shards", "data.service", "data.service_timeout")

    def __init__(self, data_dir: str, config):
        from tfspk.data.shards import read_shard_list
        self.dir = config.data.shards or data_dir
        self.index = read_shard_list(self.dir)
        if self.index.kind != "feats":
            raise ToolError(f"{self.index.list_path}: shards of {self.index.kind}; data.source shards needs "
                            "feature shards (tfspk-make-shards --source feats)")
        self.config = config
        self.feat_dim = self.index.dim
        self.num_classes = self.index.num_classes
        self.num_speakers = config.data.speakers_per_batch
        self.num_train_utts = self.index.num_utts
        self.valid_utts = []
        self.notes = []
        self.last_error = None

    def write_spk2int(self, path) -> None:
        shutil.copyfile(os.path.join(os.path.dirname(self.index.list_path), "spk2int"), path)

    def describe_batch(self, step: int, batch=None) -> tuple[str, float]:
        """The shard stream does not keep utterance keys in its batches: name the stream, the batch and
        its speakers (labels through the shards' spk2int), from the batch the step trained on."""
        from tfspk.data.sampler import read_spk2int
        feats, labels = (np.asarray(part) for part in batch)
        speakers = {index: spk for spk, index in
                    read_spk2int(os.path.join(os.path.dirname(self.index.list_path), "spk2int")).items()}
        names = ", ".join(speakers.get(int(label), f"class {int(label)}") for label in labels[:8])
        more = f" and {len(labels) - 8} more" if len(labels) > 8 else ""
        return (f"batch {step} of the shard stream of {self.index.list_path} (seed {self.config.seed}): "
                f"{feats.shape[0]} crops of {feats.shape[1]} frames of speakers {names}{more}",
                float(np.max(np.abs(feats))))

    def dataset(self, start_step: int, input_context=None) -> tf.data.Dataset:
        from tfspk.data.shards import shard_dataset
        data = self.config.data
        dataset = shard_dataset(self.index, batch_size=data.speakers_per_batch, min_frames=data.min_frames,
                                max_frames=data.max_frames, seed=self.config.seed).skip(start_step)
        if data.service:
            wait_for_service(data.service, data.service_timeout, log=cli.log)   # a dead address fails, it does not hang
            # The whole pipeline (skip included) runs on the service's workers; "parallel_epochs": each
            # worker produces the stream, so one worker delivers exactly the local batches.
            dataset = dataset.apply(tf.data.experimental.service.distribute(
                processing_mode="parallel_epochs", service="grpc://" + service_host_port(data.service)))
        return dataset

    @contextlib.contextmanager
    def errors(self):
        """As every input's, and a damaged shard or a record that contradicts shards.list is named with its
        shard (:func:`tfspk.data.shards.shard_errors`)."""
        with super().errors(), shard_errors(self):
            yield
