"""Typed, documented parameter sets: one home for every parameter coercion.

A ``Params`` class is a dataclass whose fields are made with :func:`param` (default, one-line doc,
optional ``kind``/``choices``). :func:`build_params` turns a plain mapping (YAML section, ``a=1,b=2``
on the command line) into a checked instance; :func:`describe_params` lists the fields for
``--print-config`` and error messages. Loss heads, auxiliary losses, networks, feature post-processing
steps and the experiment config (:mod:`tfspk.train.config`, through :func:`coerce`) all use it.
Booleans take Kaldi's spellings (``true``/``false``, ``t``/``f``, ``1``/``0``, any case).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

from tfspk.errors import ToolError

SCALE_NORM = "norm"
KALDI_TRUE = ("true", "t", "1")
KALDI_FALSE = ("false", "f", "0")


def normalize_name(name: str) -> str:
    """The lookup key of a loss or parameter name: lower case, no '-', '_' or spaces."""
    return "".join(ch for ch in str(name).lower() if ch not in "-_ ")



def param(default: Any, doc: str, kind: str | None = None, choices: tuple | None = None,
          check: str | None = None):
    """A documented dataclass field.

    ``kind='scale'`` accepts ``"norm"`` or a positive float; ``kind='text'`` a string (a number is
    taken as its text; lists, mappings and booleans are refused); ``kind='ints'`` a list (or tuple) of
    integers, kept as a list (the form YAML writes and reads back, so a recorded config compares equal),
    ``check`` applying to each. ``choices`` are the valid (lower-case) values of a string. ``check`` is a
    range of a number: ``">0"``, ``">=0"``, ``">=N"``, ``"(a,b)"``, ``"[a,b)"``, ``"(a,b]"``, ``"[a,b]"`` or
    ``"a..b"`` (integers). A list or dict default is copied for each instance (:func:`field_default` gives
    it for listings); a dataclass type as default makes a fresh instance of it (a nested section).
    """
    metadata = {"doc": doc, "kind": kind, "choices": choices, "check": check}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    if isinstance(default, type) and dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


_TYPES = {"float": float, "int": int, "bool": bool, "str": str, "dict": dict, "list": list}


def _coerce(owner: str, field: dataclasses.Field, value: Any) -> Any:
    return coerce(field, value, f"{owner}: parameter '{field.name}'", "must be")


def coerce(field: dataclasses.Field, value: Any, where: str, verb: str = "must be") -> Any:
    """``value`` checked and converted for ``field`` (its type, ``kind``, ``choices``, ``check``); the
    ToolError reads ``<where> <verb> <what is expected>, got <value>`` (``verb``: "must be" for
    parameters, "expected" for the experiment config's keys)."""
    def fail(expected):
        raise ToolError(f"{where} {verb} {expected}, got {value!r}")
    kind = field.metadata.get("kind")
    if kind == "scale":
        if isinstance(value, str) and normalize_name(value) in ("norm", "featurenorm"):
            return SCALE_NORM
        number = _to_float(value, fail, "'norm' or a positive number")
        if number <= 0:
            fail("'norm' or a positive number")
        return number
    if kind == "ints":
        check = field.metadata.get("check")
        expected = ("a list of positive integers" if check == ">0" else
                    f"a list of integers, each {_range_text(check, True)}" if check else "a list of integers")
        if not isinstance(value, (list, tuple)):
            fail(expected)
        return [_in_range(_to_int(item, lambda _: fail(expected)), field, lambda _: fail(expected)) for item in value]
    choices = field.metadata.get("choices")
    if choices:
        text = str(value).lower()
        if isinstance(value, (dict, list)) or text not in choices:
            fail(f"one of {', '.join(choices)}")
        return text
    expected = _TYPES.get(field.type, field.type)
    if expected is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if isinstance(value, (str, int)) and text in KALDI_TRUE:
            return True
        if isinstance(value, (str, int)) and text in KALDI_FALSE:
            return False
        fail("true or false")
    if expected is int:
        return _in_range(_to_int(value, fail), field, fail)
    if expected is float:
        return _in_range(_to_float(value, fail, "a number"), field, fail)
    if expected is dict:
        if not isinstance(value, dict):
            fail("a mapping (key: value)")
        return dict(value)
    if expected is list:
        if not isinstance(value, list):
            fail("a list")
        return list(value)
    if expected is str:
        if isinstance(value, (bool, dict)) or (kind == "text" and isinstance(value, (list, tuple))):
            fail("a string")
        return str(value) if isinstance(value, (int, float)) else value
    return value


def _to_float(value, fail, expected) -> float:
    if isinstance(value, bool) or isinstance(value, (list, dict)):
        fail(expected)
    try:
        number = float(value)
    except (TypeError, ValueError):
        fail(expected)
    if not math.isfinite(number):
        fail("a finite number")
    return number


def _to_int(value, fail) -> int:
    number = _to_float(value, fail, "an integer")
    if number != int(number):
        fail("an integer")
    return int(number)


def _range_text(check: str, integer: bool) -> str:
    noun = "an integer" if integer else "a number"
    if check == ">0":
        return "a positive integer" if integer else "a positive number"
    if check.startswith(">="):
        return f"{noun} {check[:2]} {check[2:]}"
    if ".." in check:
        return f"{noun} {check}"
    return f"{noun} in {check[0]}{check[1:-1].replace(',', ', ')}{check[-1]}"


def _in_range(number, field, fail):
    check = field.metadata.get("check")
    if not check:
        return number
    if check == ">0":
        ok = number > 0
    elif check.startswith(">="):
        ok = number >= float(check[2:])
    elif ".." in check:
        low, high = (float(x) for x in check.split(".."))
        ok = low <= number <= high
    else:
        low, high = (float(x) for x in check[1:-1].split(","))
        ok = ((number >= low) if check[0] == "[" else (number > low)) and \
             ((number <= high) if check[-1] == "]" else (number < high))
    if not ok:
        fail(_range_text(check, isinstance(number, int)))
    return number


def param_aliases(params_cls: type) -> dict[str, str]:
    """Convenience names -> field names, merged over the class hierarchy (subclasses win)."""
    merged: dict[str, str] = {}
    for klass in reversed(params_cls.__mro__):
        merged.update(klass.__dict__.get("ALIASES", {}))
    return {alias: field for alias, field in merged.items()
            if field in {f.name for f in dataclasses.fields(params_cls)}}


def build_params(params_cls: type, values: dict | None, owner: str):
    """Build ``params_cls`` from a plain dict (e.g. a YAML/CLI config), checking every key and value;
    an instance of ``params_cls`` is returned as it is (it was checked when it was built).

    Keys may use '-' or '_'; ``params_cls.ALIASES`` maps convenience names (e.g. ``margin``) to
    fields. Unknown keys, wrong types and impossible values raise ToolError naming the valid keys.
    """
    if isinstance(values, params_cls):  # built (and checked) by an earlier call: passed down as it is
        return values
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ToolError(f"{owner}: parameters must be a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    by_key = {normalize_name(name): name for name in fields}
    for alias, target in param_aliases(params_cls).items():
        by_key.setdefault(normalize_name(alias), target)
    chosen: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:  # null (e.g. a YAML ``key:`` with no value) means the default
            continue
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


def field_default(field: dataclasses.Field) -> Any:
    """The default of a :func:`param` field, also of one made for each instance (a list or dict default)."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def describe_params(params_cls: type, one_line: bool = False) -> str:
    """Human-readable list of a Params class: name, default and doc of every field."""
    rows = []
    for f in ordered_fields(params_cls):
        default = field_default(f)
        if one_line:
            rows.append(f"{f.name} (default {default!r})")
        else:
            rows.append(f"{f.name} = {default!r}: {f.metadata.get('doc', '')}")
    return ", ".join(rows) if one_line else "\n".join(rows)


def read_yaml(path, what: str = "file") -> Any:
    """The YAML document of the file ``path`` (None for an empty file); a missing or unreadable file or invalid
    YAML is a ToolError naming ``what`` (e.g. "config file") and the path."""
    import yaml
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError:
        raise ToolError(f"no such {what}: {path}") from None
    except OSError as err:
        raise ToolError(f"cannot read {what} {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ToolError(f"{what} {path} is not valid YAML: {err}") from None


def yaml_value(text: str) -> Any:
    """A value given on the command line (``key=value``), parsed as YAML (``0.2`` -> 0.2, ``true`` -> True,
    ``[a, b]`` -> a list); text that is not valid YAML stays the string it is."""
    import yaml
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def require(condition: bool, owner: str, message: str) -> None:
    """Raise ToolError ``owner: message`` unless ``condition`` holds."""
    if not condition:
        raise ToolError(f"{owner}: {message}")


class NameRegistry:
    """Classes found by name: the one lookup behind the network and loss registries.

    ``classes`` maps canonical name -> class; every canonical name and alias is looked up through
    :func:`normalize_name` (case, '-', '_' and spaces ignored). ``register(canonical, *aliases)`` is a
    class decorator that also sets ``cls.<name_attr> = canonical`` and ``cls.aliases``; ``resolve(name)``
    gives the canonical name or a ToolError ``unknown <what> 'x'; valid <valid_label>: <listing>``.
    """

    def __init__(self, what: str, valid_label: str, name_attr: str):
        self.what, self.valid_label, self.name_attr = what, valid_label, name_attr
        self.classes: dict[str, type] = {}
        self.aliases: dict[str, str] = {}

    def register(self, canonical: str, *aliases: str):
        """Class decorator: make ``cls`` available under ``canonical`` and ``aliases``."""
        def decorate(cls):
            names = (canonical,) + tuple(aliases)
            # Check every name before changing anything: a clash leaves the registry as it was.
            for alias in names:
                key = normalize_name(alias)
                if key in self.aliases and self.aliases[key] != canonical:
                    raise RuntimeError(f"{self.what} name {alias!r} registered twice")
            self.classes[canonical] = cls
            setattr(cls, self.name_attr, canonical)
            cls.aliases = tuple(aliases)
            for alias in names:
                self.aliases[normalize_name(alias)] = canonical
            return cls
        return decorate

    def listing(self) -> str:
        """``name (alias a, b), ...`` of every registered class, sorted by name (for errors and --help)."""
        return ", ".join(f"{name} (alias {', '.join(cls.aliases)})" if cls.aliases else name
                         for name, cls in sorted(self.classes.items()))

    def resolve(self, name) -> str:
        """Canonical name of ``name``, or ToolError listing the valid names."""
        key = normalize_name(name) if isinstance(name, str) else None
        if not key or key not in self.aliases:
            raise ToolError(f"unknown {self.what} {name!r}; valid {self.valid_label}: {self.listing()}")
        return self.aliases[key]
