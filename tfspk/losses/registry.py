"""Loss registries by name and typed, documented parameter sets.

Names are looked up case-, hyphen- and underscore-insensitively (``AM-Softmax``,
``am_softmax`` and ``amsoftmax`` are the same loss). Every loss class carries a ``Params``
dataclass; each field has a default and a ``doc`` in its metadata, so a trainer can list,
validate and show them (:func:`describe_params`).
"""
from __future__ import annotations

from typing import Callable

from tfspk.params import (SCALE_NORM, NameRegistry, build_params, describe_params, normalize_name,  # noqa: F401
                          param, param_aliases, require)

_LOSS_REGISTRY = NameRegistry("loss", "names", "loss_name")
_AUX_REGISTRY = NameRegistry("auxiliary loss", "names", "loss_name")
#: canonical name -> head class (see docs/INTERFACES.md "tfspk.losses").
LOSSES: dict[str, type] = _LOSS_REGISTRY.classes
#: canonical name -> auxiliary loss class.
AUX_LOSSES: dict[str, type] = _AUX_REGISTRY.classes


def register_loss(canonical: str, *aliases: str) -> Callable:
    """Class decorator: make a head available to :func:`build_loss` under these names."""
    return _LOSS_REGISTRY.register(canonical, *aliases)


def register_aux(canonical: str, *aliases: str) -> Callable:
    """Class decorator: make an auxiliary loss available to :func:`build_aux`."""
    return _AUX_REGISTRY.register(canonical, *aliases)


def resolve_loss_name(name: str) -> str:
    """Canonical name of a main loss, or ToolError listing the valid names."""
    return _LOSS_REGISTRY.resolve(name)


def resolve_aux_name(name: str) -> str:
    """Canonical name of an auxiliary loss, or ToolError listing the valid names."""
    return _AUX_REGISTRY.resolve(name)
