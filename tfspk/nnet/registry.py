"""Networks found by name: the one way training, extraction, tools and benchmarks reach a network.

A network is one file holding a class decorated with :func:`register_network`::

    @register_network("ecapa_tdnn", "ecapa")
    class EcapaTdnn(Network):
        '''ECAPA-TDNN [Desplanques2020] ...'''

        @dataclasses.dataclass
        class Params:
            channels: int = param(512, "channels C of the SE-Res2Blocks")

        def min_frames(self) -> int: ...
        def build(self, feat_dim: int) -> keras.Model: ...

plus one import line in ``tfspk/nnet/__init__.py``.

Output contract of ``build(feat_dim)``: a ``keras.Model`` taking ``[batch, frames, feat_dim]`` float32
(``frames`` may vary, also under ``tf.function``; any ``frames >= min_frames()`` works) and returning
``{"embedding_a": [batch, D], "embedding_b": [batch, D]}``: ``embedding_a`` is the vector extracted for
the back-end (``tfspk-extract --embedding-layer a``, the default), ``embedding_b`` the one the loss head
sees. Each network documents which layers these are. ``embedding_dim()`` gives ``D``.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from tfspk.errors import ToolError
from tfspk.params import build_params, describe_params, normalize_name

#: canonical name -> network class.
NETWORKS: dict[str, type] = {}
_ALIASES: dict[str, str] = {}


class Network:
    """Base of registered networks: holds the checked ``Params``; subclasses define the rest."""

    network_name = ""
    aliases: tuple = ()

    @dataclasses.dataclass
    class Params:
        pass

    def __init__(self, params=None):
        self.params = build_params(self.Params, params, f"network '{self.network_name}'")

    def min_frames(self) -> int:
        """Smallest number of input frames the network accepts."""
        raise NotImplementedError

    def embedding_dim(self) -> int:
        """Dimension D of both outputs."""
        raise NotImplementedError

    def check_feat_dim(self, feat_dim: int) -> None:
        """ToolError when the network cannot take ``feat_dim``-dimensional features."""
        if int(feat_dim) < 1:
            raise ToolError(f"network '{self.network_name}': feature dimension must be >= 1, got {feat_dim}")

    def build(self, feat_dim: int):
        """The Keras model (see the module docstring for the output contract)."""
        raise NotImplementedError

    def check_num_frames(self, num_frames: int, what: str = "input") -> None:
        """ToolError naming ``what`` when ``num_frames`` is below :meth:`min_frames`."""
        needed = self.min_frames()
        if num_frames < needed:
            raise ToolError(f"{what} has {num_frames} frames; the '{self.network_name}' network needs at least "
                            f"{needed}")


def register_network(canonical: str, *aliases: str) -> Callable:
    """Class decorator: make a :class:`Network` subclass available under these names."""
    def decorate(cls):
        NETWORKS[canonical] = cls
        cls.network_name = canonical
        cls.aliases = tuple(aliases)
        for alias in (canonical,) + tuple(aliases):
            key = normalize_name(alias)
            if key in _ALIASES and _ALIASES[key] != canonical:
                raise RuntimeError(f"network name {alias!r} registered twice")
            _ALIASES[key] = canonical
        return cls
    return decorate


def network_names_listing() -> str:
    """``name (alias a, b), ...`` of every registered network, for errors and --help."""
    return ", ".join(f"{name} (alias {', '.join(cls.aliases)})" if cls.aliases else name
                     for name, cls in sorted(NETWORKS.items()))


def resolve_network_name(name: str) -> str:
    """Canonical name of a network, or ToolError listing the valid names."""
    key = normalize_name(name) if isinstance(name, str) else None
    if not key or key not in _ALIASES:
        raise ToolError(f"unknown network {name!r}; valid networks: {network_names_listing()}")
    return _ALIASES[key]


def get_network(name: str, params=None) -> Network:
    """The network ``name`` with checked ``params`` (a mapping, possibly partial, or a Params)."""
    return NETWORKS[resolve_network_name(name)](params)


def describe_network(name: str) -> str:
    """Every parameter of network ``name`` with its default and doc."""
    return describe_params(NETWORKS[resolve_network_name(name)].Params)
