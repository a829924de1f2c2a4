"""The feature types and feature post-processing steps, found by name.

A **feature type** is one class registered with ``@FEATURE_TYPES.register("name", *aliases)``; it
subclasses :class:`FeatureType` and declares

* ``Options``: a dataclass of its options with Kaldi's ``--name=value`` spelling (field ``a_b`` is
  ``--a-b``; nested dataclass fields are flattened, as ``frame.frame_shift`` is ``--frame-shift``), a
  ``frame`` field (:class:`tfspk.features.FrameOptions`: sample rate, framing, dither) and a ``dim``
  property;
* ``compute(opts)``: the numpy computation, ``(samples float32 [N] on the int16 scale, rate) -> float32
  [T, dim]`` (the offline tools, training from audio, extraction's feature tools);
* ``tensorflow(opts)``: the same computation as TensorFlow ops (the exported graphs), an object
  ``samples [N] -> [T, dim]`` with ``dim`` and ``frame`` attributes;
* optionally ``check(opts)``: option checks beyond the framing (ToolError naming the option);
* optionally ``num_frames(opts, num_samples)``: the number of frames of ``num_samples`` samples, if not
  Kaldi's (:func:`tfspk.features.mfcc.num_frames` of ``opts.frame``); the energy VAD must match it.

A **post-processing step** (e.g. Kaldi's ``add-deltas``) is one class registered with
``@POST_STEPS.register(...)``, subclassing :class:`PostStep`: a ``Params`` dataclass
(:func:`tfspk.params.param` fields), ``dim(params, in_dim)``, ``apply(params, feats)`` (numpy) and
``tensorflow(params, feats)`` (ops).

Nothing else in the toolkit lists feature types: the tools, the experiment config's ``features:``
section, the front end recorded in an experiment dir and the export all look them up here
(docs/features.md, "Adding a feature type").
"""
from __future__ import annotations

import dataclasses

from tfspk.errors import ToolError
from tfspk.params import NameRegistry, build_params

FEATURE_TYPES = NameRegistry("feature type", "feature types", "feature_type")
POST_STEPS = NameRegistry("feature post-processing step", "steps", "step_name")


class FeatureType:
    """Base of a registered feature type (see the module docstring for what a subclass declares)."""
    feature_type = ""
    aliases: tuple = ()
    Options: type = None

    @classmethod
    def check(cls, opts) -> None:
        """Option checks of this type beyond the framing (default: none)."""

    @classmethod
    def num_frames(cls, opts, num_samples: int) -> int:
        """Frames of ``num_samples`` samples (default: Kaldi's framing of ``opts.frame``)."""
        from tfspk.features.mfcc import num_frames
        return num_frames(num_samples, opts.frame)

    @classmethod
    def compute(cls, opts):
        """``callable(samples, rate) -> float32 [T, dim]`` (numpy)."""
        raise NotImplementedError

    @classmethod
    def tensorflow(cls, opts):
        """An object ``samples [N] -> [T, dim]`` of TensorFlow ops with ``dim`` and ``frame`` attributes."""
        raise NotImplementedError


class PostStep:
    """Base of a registered post-processing step applied to the features of every utterance."""
    step_name = ""
    aliases: tuple = ()
    Params: type = None

    @classmethod
    def dim(cls, params, in_dim: int) -> int:
        return in_dim

    @classmethod
    def apply(cls, params, feats):
        """numpy ``[T, in_dim] -> [T, dim]``."""
        raise NotImplementedError

    @classmethod
    def tensorflow(cls, params, feats):
        """The same as TensorFlow ops."""
        raise NotImplementedError


def _ensure_builtin() -> None:
    # The built-in entries register themselves when their modules are imported (tfspk.features does).
    import tfspk.features.kaldi_types  # noqa: F401
    import tfspk.features.speechbrain_fbank  # noqa: F401
    import tfspk.features.deltas  # noqa: F401


def feature_type(name: str) -> type:
    """The registered class of feature type ``name`` (ToolError listing the valid names)."""
    _ensure_builtin()
    return FEATURE_TYPES.classes[FEATURE_TYPES.resolve(name)]


def feature_type_of(opts) -> type:
    """The registered class whose ``Options`` ``opts`` is an instance of."""
    _ensure_builtin()
    for cls in FEATURE_TYPES.classes.values():
        if type(opts) is cls.Options:
            return cls
    raise ToolError(f"{type(opts).__name__} is not the options class of a registered feature type "
                    f"({FEATURE_TYPES.listing()})")


def post_step(name: str) -> type:
    _ensure_builtin()
    return POST_STEPS.classes[POST_STEPS.resolve(name)]


def post_steps(entries, where: str) -> list:
    """``[(canonical name, Params instance)]`` from a list of names or ``{name, params}`` mappings."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ToolError(f"{where}: expected a list of post-processing steps, got {entries!r}")
    steps = []
    for index, entry in enumerate(entries):
        here = f"{where}[{index}]"
        if isinstance(entry, str):
            name, values = entry, {}
        elif isinstance(entry, dict) and "name" in entry and set(entry) <= {"name", "params"}:
            name, values = entry["name"], entry.get("params") or {}
        else:
            raise ToolError(f"{here}: expected a step name or {{name: NAME, params: {{...}}}}, got {entry!r}")
        try:
            cls = post_step(name)
        except ToolError as err:
            raise ToolError(f"{here}: {err}") from None
        steps.append((cls.step_name, build_params(cls.Params, values, f"{here} ({cls.step_name})")))
    return steps


def post_steps_dicts(steps) -> list:
    """The recordable form of :func:`post_steps`' result."""
    return [{"name": name, "params": dataclasses.asdict(params)} for name, params in steps]
