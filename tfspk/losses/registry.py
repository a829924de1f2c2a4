"""Loss registries by name and typed, documented parameter sets.

Names are looked up case-, hyphen- and underscore-insensitively (``AM-Softmax``,
``am_softmax`` and ``amsoftmax`` are the same loss). Every loss class carries a ``Params``
dataclass; each field has a default and a ``doc`` in its metadata, so a trainer can list,
validate and show them (:func:`describe_params`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from tfspk.errors import ToolError

SCALE_NORM = "norm"

#: canonical name -> head class (see docs/INTERFACES.md "tfspk.losses").
LOSSES: dict[str, type] = {}
#: canonical name -> auxiliary loss class.
AUX_LOSSES: dict[str, type] = {}
_LOSS_ALIASES: dict[str, str] = {}
_AUX_ALIASES: dict[str, str] = {}


def normalize_name(name: str) -> str:
    """The lookup key of a loss or parameter name: lower case, no '-', '_' or spaces."""
    return "".join(ch for ch in str(name).lower() if ch not in "-_ ")


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


# ----------------------------------------------------------------------------- parameters

def param(default: Any, doc: str, kind: str | None = None, choices: tuple | None = None):
    """A documented dataclass field. ``kind='scale'`` accepts ``"norm"`` or a positive float."""
    return dataclasses.field(default=default, metadata={"doc": doc, "kind": kind, "choices": choices})


_TYPES = {"float": float, "int": int, "bool": bool, "str": str}


def _coerce(owner: str, field: dataclasses.Field, value: Any) -> Any:
    kind = field.metadata.get("kind")
    where = f"{owner}: parameter '{field.name}'"
    if kind == "scale":
        if isinstance(value, str) and normalize_name(value) in ("norm", "featurenorm"):
            return SCALE_NORM
        number = _to_float(value, where, "'norm' or a positive number")
        if number <= 0:
            raise ToolError(f"{where} must be 'norm' or a positive number, got {value!r}")
        return number
    choices = field.metadata.get("choices")
    if choices:
        text = str(value).lower()
        if text not in choices:
            raise ToolError(f"{where} must be one of {', '.join(choices)}, got {value!r}")
        return text
    expected = _TYPES.get(field.type, field.type)
    if expected is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ToolError(f"{where} must be true or false, got {value!r}")
    if expected is int:
        number = _to_float(value, where, "an integer")
        if number != int(number):
            raise ToolError(f"{where} must be an integer, got {value!r}")
        return int(number)
    if expected is float:
        return _to_float(value, where, "a number")
    return value


def _to_float(value, where, expected) -> float:
    if isinstance(value, bool):
        raise ToolError(f"{where} must be {expected}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ToolError(f"{where} must be {expected}, got {value!r}") from None
    if not math.isfinite(number):
        raise ToolError(f"{where} must be finite, got {value!r}")
    return number


def param_aliases(params_cls: type) -> dict[str, str]:
    """Convenience names -> field names, merged over the class hierarchy (subclasses win)."""
    merged: dict[str, str] = {}
    for klass in reversed(params_cls.__mro__):
        merged.update(klass.__dict__.get("ALIASES", {}))
    return {alias: field for alias, field in merged.items()
            if field in {f.name for f in dataclasses.fields(params_cls)}}


def parse_params(params_cls: type, values: dict | None, owner: str):
    """Build ``params_cls`` from a plain dict (e.g. a YAML/CLI config), checking every key and value.

    Keys may use '-' or '_'; ``params_cls.ALIASES`` maps convenience names (e.g. ``margin``) to
    fields. Unknown keys, wrong types and impossible values raise ToolError naming the valid keys.
    """
    if values is None:
        values = {}
    if isinstance(values, params_cls):
        values = dataclasses.asdict(values)
    if not isinstance(values, dict):
        raise ToolError(f"{owner}: parameters must be a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    by_key = {normalize_name(name): name for name in fields}
    for alias, target in param_aliases(params_cls).items():
        by_key.setdefault(normalize_name(alias), target)
    chosen: dict[str, Any] = {}
    for key, value in values.items():
        name = by_key.get(normalize_name(key))
        if name is None:
            raise ToolError(f"{owner}: unknown parameter {key!r}; valid parameters: "
                            f"{describe_params(params_cls, one_line=True)}")
        if name in chosen:
            raise ToolError(f"{owner}: parameter '{name}' given twice (as {key!r})")
        chosen[name] = _coerce(owner, fields[name], value)
    params = params_cls(**chosen)
    validate = getattr(params, "validate", None)
    if validate is not None:
        validate(owner)
    return params


def ordered_fields(params_cls: type) -> list:
    """The fields of a Params class, the loss's own options first and the annealing options last."""
    fields = dataclasses.fields(params_cls)
    return sorted(fields, key=lambda f: f.name == "anneal" or f.name.startswith("anneal_"))


def describe_params(params_cls: type, one_line: bool = False) -> str:
    """Human-readable list of a Params class: name, default and doc of every field."""
    rows = []
    for f in ordered_fields(params_cls):
        default = f.default
        if one_line:
            rows.append(f"{f.name} (default {default!r})")
        else:
            rows.append(f"{f.name} = {default!r}: {f.metadata.get('doc', '')}")
    return ", ".join(rows) if one_line else "\n".join(rows)


def require(condition: bool, owner: str, message: str) -> None:
    """Raise ToolError ``owner: message`` unless ``condition`` holds."""
    if not condition:
        raise ToolError(f"{owner}: {message}")
