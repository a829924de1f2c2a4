"""The training input of tfspk-train: one interface (:class:`TrainingInput`), one module per ``data.source``.

* ``feats`` (:mod:`.feats`): offline Kaldi features, the speaker-balanced sampler; several replicas;
* ``audio`` (:mod:`.audio`): crops of wav.scp audio with features, CMN and augmentation on the fly;
* ``shards`` (:mod:`.shards`): TFRecord feature shards read by tf.data (optionally a tf.data service).

:func:`make_input` finds the source by name and refuses config keys that only other sources read
(:func:`check_source_keys`). A new source is a module with a registered :class:`TrainingInput`
subclass, imported below.
"""
from tfspk.train.inputs.base import SOURCES, TrainingInput, check_source_keys, make_input, register_source, source_class
from tfspk.train.inputs import audio, feats, shards  # noqa: F401,E402  (each registers its source)
from tfspk.train.inputs.feats import check_data_dir, make_sampler, train_dataset, validation_batches  # noqa: E402

__all__ = ["SOURCES", "TrainingInput", "check_data_dir", "check_source_keys", "make_input", "make_sampler",
           "register_source", "source_class", "train_dataset", "validation_batches"]
