"""Loss registries by name and typed, documented parameter sets.

Names are looked up case-, hyphen- and underscore-insensitively (``AM-Softmax``,
``am_softmax`` and ``amsoftmax`` are the same loss). Every loss class carries a ``Params``
dataclass; each field has a default and a ``doc`` in its metadata, so a trainer can list,
validate and show them (:func:`describe_params`).
"""
from __future__ import annotations

from typing import Callable

from tfspk.errors import ToolError
from tfspk.params import (SCALE_NORM, build_params, describe_params, normalize_name, param,  # noqa: F401
                          param_aliases, require)

#: canonical name -> head class (see docs/INTERFACES.md "tfspk.losses").
LOSSES: dict[str, type] = {}
#: canonical name -> auxiliary loss class.
AUX_LOSSES: dict[str, type] = {}
_LOSS_ALIASES: dict[str, str] = {}
_AUX_ALIASES: dict[str, str] = {}


def _register(registry: dict, aliases: dict, canonical: str, extra: tuple[str, ...]) -> Callable:
    def decorate(cls):
        registry[canonical] = cls
        cls.loss_name = canonical
        cls.aliases = tuple(extra)
        for alias in (canonical,) + tuple(extra):
            key = normalize_name(alias)
            if key in aliases and aliases[key] != canonical:
                raise RuntimeError(f"loss name {alias!r} registered twice")
            aliases[key] = canonical
        return cls
    return decorate


def register_loss(canonical: str, *aliases: str) -> Callable:
    """Class decorator: make a head available to :func:`build_loss` under these names."""
    return _register(LOSSES, _LOSS_ALIASES, canonical, aliases)


def register_aux(canonical: str, *aliases: str) -> Callable:
    """Class decorator: make an auxiliary loss available to :func:`build_aux`."""
    return _register(AUX_LOSSES, _AUX_ALIASES, canonical, aliases)


def _names_listing(registry: dict) -> str:
    parts = []
    for name, cls in sorted(registry.items()):
        parts.append(f"{name} (alias {', '.join(cls.aliases)})" if cls.aliases else name)
    return ", ".join(parts)


def resolve_loss_name(name: str) -> str:
    """Canonical name of a main loss, or ToolError listing the valid names."""
    return _resolve(name, _LOSS_ALIASES, LOSSES, "loss")


def resolve_aux_name(name: str) -> str:
    """Canonical name of an auxiliary loss, or ToolError listing the valid names."""
    return _resolve(name, _AUX_ALIASES, AUX_LOSSES, "auxiliary loss")


def _resolve(name, aliases, registry, what):
    key = normalize_name(name) if isinstance(name, str) else None
    if not key or key not in aliases:
        raise ToolError(f"unknown {what} {name!r}; valid names: {_names_listing(registry)}")
    return aliases[key]
