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
#: the older spelling of ``nnet.name`` (configs written before the registry: ``nnet: {arch: tdnn, frame_dim: ..}``).
LEGACY_NAME_KEY = "arch"
#: network keys of older configs that no network takes any more -> the value they may keep (else an error).
RETIRED_KEYS = {"weight_decay": 0}


def _section_dict(section, where: str) -> dict:
    if section is None:
        return {}
    if hasattr(section, "name") and hasattr(section, "params") and not isinstance(section, dict):
        return {"name": section.name, "params": section.params}
    if not isinstance(section, dict):
        raise ToolError(f"config key '{where}': expected a mapping {{name: NETWORK, params: {{...}}}}, got {section!r}")
    return dict(section)


def network_from_config(section, where: str = "nnet") -> Network:
    """The network a config section names: ``{name: tdnn, params: {frame_dim: 512}}``.

    Also accepted (configs and experiment dirs written before the registry): ``{arch: tdnn, frame_dim: 512,
    ...}``, the parameters next to the name; ``arch`` is ``name``. A missing name means ``tdnn``; null
    values mean the default. ``weight_decay: 0`` of old configs is dropped; a non-zero one is an error
    (the one L2 knob is the trainer's ``optimizer.weight_decay``). ToolError names the key.
    """
    values = _section_dict(section, where)
    name, legacy_name = values.pop("name", None), values.pop(LEGACY_NAME_KEY, None)
    if name is not None and legacy_name is not None and resolve_network_name(name) != resolve_network_name(legacy_name):
        raise ToolError(f"config keys '{where}.name' ({name}) and '{where}.{LEGACY_NAME_KEY}' ({legacy_name}) "
                        "disagree; give only name")
    cls = NETWORKS[resolve_network_name(name or legacy_name or DEFAULT_NETWORK)]
    params = values.pop("params", None) or {}
    if not isinstance(params, dict):
        raise ToolError(f"config key '{where}.params': expected a mapping of network parameters, got {params!r}")
    fields = {normalize_name(f.name) for f in dataclasses.fields(cls.Params)}
    merged = dict(params)
    for key, value in values.items():  # the older flat form: parameters next to the name
        if normalize_name(key) not in fields and key not in RETIRED_KEYS:
            valid = [LEGACY_NAME_KEY] + [f.name for f in dataclasses.fields(cls.Params)] + ["name", "params"]
            raise ToolError(f"unknown config key '{where}.{key}'; valid keys in {where}: {', '.join(valid)}")
        if key in merged:
            raise ToolError(f"config key '{where}.{key}' given twice (also as {where}.params.{key})")
        merged[key] = value
    for key, allowed in RETIRED_KEYS.items():
        if key in merged and normalize_name(key) not in fields:
            value = merged.pop(key)
            if value is not None and value != allowed:
                raise ToolError(
                    f"config key '{where}.{key}' ({value!r}) is no longer supported: set optimizer.{key} instead, the "
                    f"one L2 term (it decays the network and the class weights); with both {where}.{key} and "
                    f"optimizer.{key} the L2 term would count twice. Old configs may keep {where}.{key}: {allowed}")
    return cls(merged)


def network_config(network: Network) -> dict:
    """``{"name": canonical name, "params": every parameter}``: the ``nnet`` section that rebuilds ``network``."""
    return {"name": network.network_name, "params": dataclasses.asdict(network.params)}
