"""``data.source: audio``: training batches computed from audio on the fly.

The data dir needs ``wav.scp`` (files) and ``utt2spk``; ``segments`` (wav.scp then keyed by
recording; only each segment's samples are read) and ``vad.scp`` (``data.vad``) are used when
present. Every step is :class:`tfspk.data.augment.AudioCropBatches` (a pure function of
``(seed, step)``): B distinct speakers, a crop of ``L ~ U{min_frames..max_frames}`` frames of one of
their utterances (of its voiced audio with VAD), the ``augment:`` section applied to the waveform
(:class:`tfspk.data.augment.Augmenter`), features with the same Kaldi-exact
:class:`tfspk.features.FeatureExtractor` as the offline tools (options from ``data.feature_config``),
CMN (``data.cmn``: ``crop`` mean, Kaldi's ``sliding`` window of 300 centred frames, or ``none``) and
SpecAugment. Without speed perturbation and VAD the crops start at multiples of the frame shift, so
with dither 0 a crop's features are exactly rows ``j .. j+L-1`` of the offline tool's features of
the whole utterance (tested, also step for step in training).

VAD on the fly (``data.vad``: ``auto`` uses ``vad.scp`` if present, ``true`` requires it, ``false``
ignores it) concatenates the sample blocks of the voiced frames and crops from that
(:func:`tfspk.data.augment.voiced_runs`), an approximation of select-voiced-frames on offline
features (docs/training.md). Validation batches come from the feats path only: with audio,
``valid.num_utts`` is ignored (the log says so) and ``valid.eer_data`` (features) works.
"""
from __future__ import annotations

import os
import shutil

import tensorflow as tf

from tfspk import cli
from tfspk.data.augment import AudioCropBatches, Augmenter
from tfspk.data.sampler import write_spk2int
from tfspk.data.shards import service_host_port, wait_for_service
from tfspk.errors import ToolError
from tfspk.features import FeatureExtractor
from tfspk.features import options as feature_options


def feature_extractor(feature_type: str, config_path: str) -> FeatureExtractor:
    """A FeatureExtractor for ``compute-<feature_type>-feats`` with the options of ``config_path``."""
    parser = cli.KaldiArgumentParser(f"feature config of tfspk-train (compute-{feature_type}-feats options)")
    feature_options.add_feature_options(parser, feature_type)
    argv = [f"--config={config_path}"] if config_path else []
    if config_path and not os.path.isfile(config_path):
        raise ToolError(f"config key 'data.feature_config': no such file {config_path}")
    if config_path:
        with open(config_path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                option = line.split("#", 1)[0].strip().split("=", 1)[0]
                if option and option not in parser._option_string_actions:
                    raise ToolError(f"data.feature_config {config_path}:{number}: unknown option {option} for "
                                    f"compute-{feature_type}-feats")
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        raise ToolError(f"data.feature_config {config_path}: not valid compute-{feature_type}-feats options "
                        "(see the message above)") from None
    return FeatureExtractor(feature_options.options_from_args(args, feature_type))


class AudioInput:
    """The trainer's input for ``data.source: audio`` (the sampler interface tfspk-train uses)."""

    def __init__(self, data_dir: str, config):
        if not os.path.isdir(data_dir):
            raise ToolError(f"training data dir {data_dir} does not exist")
        for name in ("wav.scp", "utt2spk"):
            if not os.path.isfile(os.path.join(data_dir, name)):
                raise ToolError(f"missing {data_dir}/{name}: data.source audio needs wav.scp and utt2spk")
        data = config.data
        self.config_path = data.feature_config
        self.extractor = feature_extractor(data.feature_type, data.feature_config)
        self.augmenter = Augmenter(config.augment, sample_rate=int(self.extractor.rate), seed=config.seed)
        aligned = tuple(self.augmenter.speed_factors) == (1.0,)
        self.batches = AudioCropBatches(data_dir, self.augmenter, self.extractor, data.speakers_per_batch,
                                        data.min_frames, data.max_frames, align_to_frames=aligned,
                                        cmn=data.cmn, vad=data.vad)
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
        """spk2int of the speakers (speed copies k add k * num_speakers to the index) and the feature config."""
        write_spk2int(path, self.batches.spk2int)
        if self.config_path:
            shutil.copyfile(self.config_path, os.path.join(os.path.dirname(path), "feature.conf"))

    def batch(self, step: int):
        return self.batches.batch(step)

    def dataset(self, start_step: int) -> tf.data.Dataset:
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


class ShardInput:
    """The trainer's input for ``data.source: shards``: :func:`tfspk.data.shards.shard_dataset` over the
    feature shards of ``data.shards`` (default: the data dir argument holds ``shards.list``).

    Batches are random utterances of the shuffled shard stream (not the speaker-balanced plan of the
    feats path, so the two sources do not give equal runs), cropped to ``L ~ U{min..max}`` frames by
    tf.data ops in parallel (no Python, no GIL). The stream is a function of the seed; a resumed run
    skips the ``start_step`` batches already trained (read again, not trained on), so it sees the
    batches an uninterrupted run would have seen.
    """

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
        self.last_error = None

    def write_spk2int(self, path) -> None:
        shutil.copyfile(os.path.join(os.path.dirname(self.index.list_path), "spk2int"), path)

    def dataset(self, start_step: int) -> tf.data.Dataset:
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
