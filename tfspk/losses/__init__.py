"""tfspk.losses: margin-based softmax heads, auxiliary losses, registries by name.

``build_loss(name, num_classes, embedding_dim, params) -> head`` and ``build_aux(name, params)``;
see docs/losses.md for names, parameters, formulas and defaults, docs/INTERFACES.md for the API.
"""
from __future__ import annotations

from tfspk.losses import annealing
from tfspk.losses import auxiliary as _auxiliary  # noqa: F401  (registers Ring and MHE)
from tfspk.losses import margin as _margin  # noqa: F401  (registers the heads)
from tfspk.losses import rectangle as _rectangle  # noqa: F401  (registers AR and Circle)
from tfspk.losses.registry import (AUX_LOSSES, LOSSES, describe_params, normalize_name, resolve_aux_name,
                                   resolve_loss_name)


def get_loss_class(name: str) -> type:
    """The head class registered under ``name`` (any alias, any '-'/'_' spelling)."""
    return LOSSES[resolve_loss_name(name)]


def get_aux_class(name: str) -> type:
    """The auxiliary loss class registered under ``name``."""
    return AUX_LOSSES[resolve_aux_name(name)]


def build_loss(name: str, num_classes: int, embedding_dim: int, params: dict | None = None):
    """A head (Keras layer owning its class weights); ToolError for unknown names or bad params."""
    return get_loss_class(name)(num_classes, embedding_dim, params)


def build_aux(name: str, params: dict | None = None):
    """An auxiliary loss ``aux(embeddings, labels, head) -> scalar``; ToolError for bad names/params."""
    return get_aux_class(name)(params)


__all__ = ["LOSSES", "AUX_LOSSES", "build_loss", "build_aux", "get_loss_class", "get_aux_class",
           "describe_params", "normalize_name", "annealing"]
