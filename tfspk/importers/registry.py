"""Import sources found by name, and what a source gives back.

A source is one class decorated ``@register_source("name", *aliases)``, subclass of :class:`Source`,
with a typed ``Params`` (``tfspk.params.param`` fields; ``tfspk-import-model --param k=v``) and
``convert(checkpoint_path) -> ImportedModel``. A module may register several sources; the package
``__init__`` imports each module once.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tfspk.errors import ToolError
from tfspk.params import NameRegistry, build_params, describe_params

_REGISTRY = NameRegistry("import source", "sources", "source_name")
#: canonical name -> source class
SOURCES: dict[str, type] = _REGISTRY.classes
register_source = _REGISTRY.register


@dataclasses.dataclass
class ImportedModel:
    """A converted model: everything :func:`tfspk.importers.expdir.write_experiment` needs.

    * ``network``: a registered ``tfspk.nnet.Network`` (with its params) that computes what the source does;
    * ``feat_dim``: its input dimension;
    * ``weights``: Keras variable path (``variable.path`` of the built model) -> array, one entry for every
      variable of the model;
    * ``front_end``: the :class:`tfspk.features.frontend.FrontEnd` reproducing the source toolkit's front end
      at inference (feature type and options, mean normalisation as its CMN mode, VAD on or off); written
      to the experiment's ``features.yaml``, where extraction, export and the Embedder read it;
    * ``ignored``: checkpoint keys deliberately left out, key -> why (e.g. the training loss's class weights);
    * ``facts``: provenance written into the experiment (source, checkpoint, upstream names);
    * ``extra_files``: further files of the experiment dir, relative path -> text (e.g. ``conf/vad.conf``).
    """
    network: object
    feat_dim: int
    weights: dict
    front_end: object
    ignored: dict
    facts: dict
    extra_files: dict = dataclasses.field(default_factory=dict)


class Source:
    """Base of import sources: holds the checked ``Params``."""

    source_name = ""
    aliases: tuple = ()

    @dataclasses.dataclass
    class Params:
        pass

    def __init__(self, params=None):
        self.params = build_params(self.Params, params, f"import source '{self.source_name}'")

    def convert(self, checkpoint: str) -> ImportedModel:
        raise NotImplementedError


def get_source(name: str, params=None) -> Source:
    """The source registered as ``name`` (or an alias) with ``params``; ToolError listing the valid ones."""
    return SOURCES[_REGISTRY.resolve(name)](params)


def source_names_listing() -> str:
    return _REGISTRY.listing()


def describe_source(name: str) -> str:
    cls = SOURCES[_REGISTRY.resolve(name)]
    doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    return f"{cls.source_name}: {doc}\n{describe_params(cls.Params)}"


class KeyMapper:
    """Takes tensors out of a state dict by name, so that what is left over at the end is known.

    ``take(key, shape=None)`` returns the array (ToolError naming the key if it is missing or its shape
    differs); ``ignore(prefix_or_key, why)`` marks keys as deliberately unused; :meth:`finish` raises a
    ToolError listing any key neither taken nor ignored (a checkpoint of another architecture or size).
    """

    def __init__(self, state: dict, where: str):
        self.state, self.where = state, where
        self.used: set[str] = set()
        self.ignored: dict[str, str] = {}

    def has(self, key: str) -> bool:
        return key in self.state

    def take(self, key: str, shape=None) -> np.ndarray:
        if key not in self.state:
            raise ToolError(f"{self.where}: tensor '{key}' is missing (not a checkpoint of this architecture, "
                            "or of other options)")
        value = self.state[key]
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise ToolError(f"{self.where}: tensor '{key}' has shape {tuple(value.shape)}, {tuple(shape)} expected")
        self.used.add(key)
        return np.asarray(value, dtype=np.float32) if value.dtype.kind == "f" else value

    def ignore(self, predicate, why: str) -> None:
        for key in self.state:
            if key not in self.used and predicate(key):
                self.ignored[key] = why

    def finish(self) -> dict:
        left = [k for k in self.state if k not in self.used and k not in self.ignored]
        if left:
            shown = ", ".join(left[:8]) + (f" and {len(left) - 8} more" if len(left) > 8 else "")
            raise ToolError(f"{self.where}: {len(left)} tensor(s) of the checkpoint are not used by the conversion: "
                            f"{shown} (a checkpoint of another architecture or options?)")
        return dict(self.ignored)
