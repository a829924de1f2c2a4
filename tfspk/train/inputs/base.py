"""The interface every training input implements, and the registry of ``data.source`` names.

A source is one class in one module of this package, registered by name with :func:`register_source`.
It declares the config keys that only it reads (:attr:`TrainingInput.keys`); a key that some source
declares and the chosen one does not is *inapplicable*: set away from its default it is refused
before anything is written (:func:`check_source_keys`), so an option is never silently ignored.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

from tfspk.errors import ToolError

SOURCES: dict[str, type] = {}


def register_source(cls):
    """Class decorator: make ``cls`` the input of ``data.source: <cls.name>``."""
    if not cls.name or cls.name in SOURCES:
        raise ValueError(f"training input name {cls.name!r} is empty or registered twice")
    SOURCES[cls.name] = cls
    return cls


class TrainingInput(abc.ABC):
    """The trainer's view of its training data (``data.source``).

    After construction an input has ``feat_dim``, ``num_classes`` (network outputs),
    ``num_speakers`` (rows of a batch), ``num_train_utts``, ``valid_utts`` (held out for the
    validation loss; empty if the source has none) and ``notes`` (lines for the training log).
    Batches are ``(feats [B, L, feat_dim] float32, labels [B] int32)``; the batch of global step k
    is the same whether a run starts at 0 or resumes at k.
    """

    #: the ``data.source`` value
    name: ClassVar[str] = ""
    #: config keys (dotted) that this source reads and that not every source reads
    keys: ClassVar[tuple[str, ...]] = ()
    #: the input can feed several replicas (``dataset`` honours an ``input_context``)
    supports_replicas: ClassVar[bool] = False

    feat_dim: int
    num_classes: int
    num_speakers: int
    num_train_utts: int
    valid_utts: list
    notes: list
    last_error: ToolError | None = None

    @classmethod
    def check(cls, data_dir: str, config) -> None:
        """Cheap checks before the trainer locks and writes the experiment dir (keys, required files)."""
        check_source_keys(config)

    @abc.abstractmethod
    def write_spk2int(self, path: str) -> None:
        """``spk2int`` of the classes the network is trained on (and files inference needs beside it)."""

    @abc.abstractmethod
    def dataset(self, start_step: int, input_context=None):
        """tf.data.Dataset of the batches of steps ``start_step, start_step + 1, ...``; with an
        ``input_context`` (``supports_replicas`` only) the rows of the replicas of that input pipeline."""

    @abc.abstractmethod
    def describe_batch(self, step: int, batch=None) -> tuple[str, float]:
        """``(text naming the batch of global step `step` (0-based), its largest |feature|)``; ``batch`` is
        the batch the step trained on (the sources that can rebuild it from ``step`` ignore it)."""

    def validation_batches(self, batch_size: int):
        """The held-out validation batches (a list of numpy batches), or None without validation."""
        return None

    def errors(self):
        """Context manager around iterating :meth:`dataset`: tf.data reports a failed generator as an
        OpError; the input's own ToolError (kept in ``last_error``) is raised instead."""
        from tfspk import data as tfdata
        return tfdata.tool_errors(self)


def _default(path: str):
    from tfspk.train.config import TrainConfig
    value = TrainConfig()
    for part in path.split("."):
        value = getattr(value, part)
    return value


def config_value(config, path: str):
    """The value of a dotted config key, e.g. ``data.prefetch``."""
    value = config
    for part in path.split("."):
        if not dataclasses.is_dataclass(value) or not any(f.name == part for f in dataclasses.fields(value)):
            raise ToolError(f"internal: training inputs declare the config key '{path}', which does not exist")
        value = getattr(value, part)
    return value


def check_source_keys(config) -> None:
    """Refuse every key that a registered source reads but ``data.source`` does not, when it is set
    to something other than its default; the message names the key and the sources that use it."""
    source = source_class(config.data.source)
    used = set(source.keys)
    for other in SOURCES.values():
        for key in other.keys:
            if key in used:
                continue
            value = config_value(config, key)
            if value != _default(key):
                users = sorted(name for name, cls in SOURCES.items() if key in cls.keys)
                raise ToolError(f"config key '{key}' ({value!r}) does not apply to data.source {source.name}: only "
                                f"data.source {' and '.join(users)} read{'s' if len(users) == 1 else ''} it; "
                                "remove it from the config (or choose that source)")


def source_class(name: str) -> type:
    try:
        return SOURCES[name]
    except KeyError:
        raise ToolError(f"config key 'data.source': unknown training input '{name}'; valid names: "
                        f"{', '.join(sorted(SOURCES))}") from None


def make_input(data_dir: str, config) -> TrainingInput:
    """The training input named by ``config.data.source`` over ``data_dir`` (keys checked first)."""
    cls = source_class(config.data.source)
    cls.check(data_dir, config)
    return cls(data_dir, config)
