"""Check and build what the config names: the network (``nnet:``), the loss head and aux losses.

The open-ended config sections are checked against the component itself, so the error lists what
that component accepts: ``nnet`` against the network registry (:func:`tfspk.nnet.network_from_config`:
the name, then the network's ``Params``), loss/aux names against the registries of :mod:`tfspk.losses`,
their ``params`` against the loss class's ``Params``. All of them go through :mod:`tfspk.params`.
:func:`resolve` runs once per experiment: afterwards the config holds canonical names and every
parameter explicitly (defaults filled in), so ``config.yaml`` documents the whole experiment, and the
builders below look the classes up by canonical name without resolving anything again.
"""
from __future__ import annotations

import dataclasses

from tfspk import losses, nnet
from tfspk.data import augment
from tfspk.errors import ToolError
from tfspk.params import build_params, field_default
from tfspk.train.config import NnetConfig, TrainConfig


def resolve(config: TrainConfig) -> TrainConfig:
    """Check the network and the loss names/params; return the config with canonical names and
    every parameter filled in (ToolError listing valid names/params otherwise)."""
    network = nnet.network_from_config(config.nnet)
    config.nnet = NnetConfig(**nnet.network_config(network))
    config.nnet.typed_params = network.params
    config.loss.name = losses.resolve_loss_name(config.loss.name)
    loss_cls = losses.LOSSES[config.loss.name]
    config.loss.typed_params = _typed_params(loss_cls, config.loss.params, f"loss '{config.loss.name}'")
    config.loss.params = _as_dict(config.loss.typed_params)
    names = []
    for entry in config.aux:
        entry.name = losses.resolve_aux_name(entry.name)
        aux_cls = losses.AUX_LOSSES[entry.name]
        entry.typed_params = _typed_params(aux_cls, entry.params, f"auxiliary loss '{entry.name}'")
        entry.params = _as_dict(entry.typed_params)
        names.append(entry.name)
    if len(set(names)) != len(names):
        raise ToolError(f"config key 'aux': each auxiliary loss may appear once, got {', '.join(names)}")
    return config


def _typed_params(cls, values: dict, owner: str):
    """The checked ``cls.Params`` instance of ``values`` (parsed here, once); None for a class without
    parameters. The builders hand it to the class, which takes a Params instance as it is."""
    params_cls = getattr(cls, "Params", None)
    if params_cls is None:
        if values:
            raise ToolError(f"{owner} takes no parameters, got {', '.join(values)}")
        return None
    return build_params(params_cls, values, owner)


def _as_dict(params) -> dict:
    """Every parameter explicitly, as config.yaml records it."""
    return {} if params is None else dataclasses.asdict(params)


def _typed(section):
    """The typed parameters :func:`resolve` made (a config section not resolved here: its dict)."""
    typed = getattr(section, "typed_params", None)
    return section.params if typed is None else typed


def _resolved(config: TrainConfig) -> NnetConfig:
    if not isinstance(config.nnet, NnetConfig):
        raise ValueError("components.resolve(config) must run before the components are built")
    return config.nnet


def get_network(config: TrainConfig) -> nnet.Network:
    """The registered network of a resolved config."""
    section = _resolved(config)
    return nnet.NETWORKS[section.name](_typed(section))


def build_network(config: TrainConfig, feat_dim: int):
    return get_network(config).build(feat_dim)


def build_head(config: TrainConfig, num_classes: int, embedding_dim: int):
    if num_classes < 2:
        raise ToolError(f"training needs at least 2 speakers, the data has {num_classes}")
    return losses.LOSSES[config.loss.name](num_classes, embedding_dim, _typed(config.loss))


def build_auxes(config: TrainConfig) -> list:
    return [losses.AUX_LOSSES[entry.name](_typed(entry)) for entry in config.aux]


def _params_line(name, cls) -> str:
    params_cls = getattr(cls, "Params", None)
    fields = dataclasses.fields(params_cls) if params_cls else ()
    return f"{name}: " + (", ".join(f"{f.name}={field_default(f)!r}" for f in fields) or "(no parameters)")


def parameter_docs() -> dict:
    """Comment lines for ``--print-config``: every network's, loss's and aux loss's parameters, the augment keys."""
    nnet_lines = ["networks and their params (tfspk.nnet; see docs/nnet.md):"]
    for name, cls in sorted(nnet.NETWORKS.items()):
        nnet_lines.append("  " + _params_line(name, cls))
    nnet_lines.append("example: nnet: {name: tdnn_kaldi, params: {embedding_dim: 256}}")
    docs = {"nnet": nnet_lines}
    lines = [_params_line(name, cls) for name, cls in sorted(losses.LOSSES.items())]
    docs["loss"] = ["losses and their params (tfspk.losses; see docs/losses.md):"] + ["  " + l for l in lines]
    aux_lines = ["  " + _params_line(name, cls) for name, cls in sorted(losses.AUX_LOSSES.items())]
    docs["aux"] = ["available:"] + aux_lines + ["example: aux: [{name: ring, params: {}}, {name: mhe}]"]
    docs["augment"] = augment.config_docs()
    return docs
