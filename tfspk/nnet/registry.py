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
from tfspk.params import NameRegistry, build_params, describe_params, normalize_name, require

_REGISTRY = NameRegistry("network", "networks", "network_name")
#: canonical name -> network class.
NETWORKS: dict[str, type] = _REGISTRY.classes


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
        """Dimension D of both outputs: the ``embedding_dim`` parameter where the Params has one."""
        if not hasattr(self.params, "embedding_dim"):
            raise NotImplementedError(f"network '{self.network_name}' has no 'embedding_dim' parameter: define "
                                      "embedding_dim()")
        return self.params.embedding_dim

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


def check_network_params(params, owner: str, positive: tuple = ()) -> None:
    """The range checks shared by the networks' ``Params.validate(owner)``; ToolError ``owner: ...`` naming the
    parameter and its value.

    * every field named in ``positive`` is >= 1 (widths, kernels, dimensions);
    * where the Params has them: ``variance_floor > 0`` (std = sqrt(max(var, floor)) must stay finite with a
      finite gradient), ``0 <= bn_momentum < 1`` and ``bn_epsilon > 0`` (Keras batch norm: moving mean
      m <- momentum * m + (1 - momentum) * batch mean, so momentum 1 would never learn the statistics;
      y = gamma (x - mean) / sqrt(var + epsilon) + beta needs epsilon > 0 for a constant channel).
    """
    for name in positive:
        value = getattr(params, name)
        require(value >= 1, owner, f"parameter '{name}' must be >= 1, got {value}")
    if hasattr(params, "variance_floor"):
        require(params.variance_floor > 0, owner, f"parameter 'variance_floor' must be > 0, got {params.variance_floor}")
    if hasattr(params, "bn_momentum"):
        require(0 <= params.bn_momentum < 1, owner, f"parameter 'bn_momentum' must be in [0, 1), got {params.bn_momentum}")
    if hasattr(params, "bn_epsilon"):
        require(params.bn_epsilon > 0, owner, f"parameter 'bn_epsilon' must be > 0, got {params.bn_epsilon}")


def register_network(canonical: str, *aliases: str) -> Callable:
    """Class decorator: make a :class:`Network` subclass available under these names."""
    return _REGISTRY.register(canonical, *aliases)


def network_names_listing() -> str:
    """``name (alias a, b), ...`` of every registered network, for errors and --help."""
    return _REGISTRY.listing()


def resolve_network_name(name: str) -> str:
    """Canonical name of a network, or ToolError listing the valid names."""
    return _REGISTRY.resolve(name)


def get_network(name: str, params=None) -> Network:
    """The network ``name`` with checked ``params`` (a mapping, possibly partial, or a Params)."""
    return NETWORKS[resolve_network_name(name)](params)


def describe_network(name: str) -> str:
    """Every parameter of network ``name`` with its default and doc."""
    return describe_params(NETWORKS[resolve_network_name(name)].Params)


# ---------------------------------------------------------------------------------------------- config
DEFAULT_NETWORK = "tdnn"
#: the spelling of ``nnet.name`` in the flat form of older configs (``nnet: {arch: tdnn, frame_dim: ...}``).
OLD_NAME_KEY = "arch"


def _section_dict(section, where: str) -> dict:
    if section is None:
        return {}
    if hasattr(section, "name") and hasattr(section, "params") and not isinstance(section, dict):
        return {"name": section.name, "params": section.params}
    if not isinstance(section, dict):
        raise ToolError(f"config key '{where}': expected a mapping {{name: NETWORK, params: {{...}}}}, got {section!r}")
    return dict(section)


def _misplaced_key(key: str, values: dict, cls: type, where: str) -> str:
    """The ToolError message for a key of an ``nnet`` section other than ``name`` and ``params``."""
    if key == "weight_decay":   # the network's own L2 term of older configs
        return (f"config key '{where}.weight_decay' is no longer supported: set optimizer.weight_decay instead, the "
                f"one L2 term (it decays the network and the class weights); with both {where}.weight_decay and "
                f"optimizer.weight_decay the L2 term would count twice")
    if normalize_name(key) in {normalize_name(f.name) for f in dataclasses.fields(cls.Params)}:
        return (f"config key '{where}.{key}': the network's parameters go under {where}.params ({where}: "
                f"{{name: {cls.network_name}, params: {{{key}: {values[key]}}}}}; --set {where}.params.{key}="
                f"{values[key]})")
    return f"unknown config key '{where}.{key}'; valid keys in {where}: name, params"


def network_from_config(section, where: str = "nnet") -> Network:
    """The network a config section names: ``{name: tdnn, params: {frame_dim: 512}}``; a missing name means
    ``tdnn``, missing (or null) params the defaults. Any other key is a ToolError naming it and what to write
    instead: the flat form of older configs (``{arch: tdnn, frame_dim: 512}``: the name as ``arch``, the
    parameters next to it), or ``weight_decay`` (the one L2 term is the trainer's ``optimizer.weight_decay``).
    """
    values = _section_dict(section, where)
    others = [key for key in values if key not in ("name", "params")]
    if OLD_NAME_KEY in others:
        first = next((key for key in others if key != OLD_NAME_KEY), None)
        example = f"{first}: ..." if first else "..."
        raise ToolError(f"config key '{where}.{OLD_NAME_KEY}' is the old spelling of {where}.name: write {where}: "
                        f"{{name: {values[OLD_NAME_KEY]}, params: {{{example}}}}}")
    cls = NETWORKS[resolve_network_name(values.get("name") or DEFAULT_NETWORK)]
    if others:
        raise ToolError(_misplaced_key(others[0], values, cls, where))
    params = values.get("params") or {}
    if not isinstance(params, dict):
        raise ToolError(f"config key '{where}.params': expected a mapping of network parameters, got {params!r}")
    return cls(params)


def network_config(network: Network) -> dict:
    """``{"name": canonical name, "params": every parameter}``: the ``nnet`` section that rebuilds ``network``."""
    return {"name": network.network_name, "params": dataclasses.asdict(network.params)}
