"""Check and build what the config names: the network (``nnet:``), the loss head and aux losses.

The open-ended config sections are checked against the component itself, so the error lists what
that component accepts: ``nnet`` keys against the signature of :func:`tfspk.nnet.build_xvector`,
loss/aux names against the registries of :mod:`tfspk.losses`, their ``params`` against the loss
class's ``Params`` dataclass. After :func:`resolve` the config holds canonical loss names and every
parameter explicitly (defaults filled in), so ``config.yaml`` documents the whole experiment.
"""
from __future__ import annotations

import dataclasses
import inspect

from tfspk import losses, nnet
from tfspk.errors import ToolError
from tfspk.losses import registry
from tfspk.train.config import TrainConfig

# build_xvector arguments the trainer sets itself.
_NNET_RESERVED = ("feat_dim", "name")


def nnet_options() -> dict:
    """Keyword arguments of build_xvector the config may set -> default."""
    signature = inspect.signature(nnet.build_xvector)
    return {name: p.default for name, p in signature.parameters.items()
            if name not in _NNET_RESERVED and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_nnet(config: TrainConfig) -> None:
    valid = nnet_options()
    for key in config.nnet:
        if key in _NNET_RESERVED:
            raise ToolError(f"config key 'nnet.{key}' is set by the trainer from the data; remove it")
        if key not in valid:
            raise ToolError(f"unknown config key 'nnet.{key}'; valid keys in nnet: {', '.join(valid)}")


def resolve(config: TrainConfig) -> TrainConfig:
    """Check the network keys and loss names/params; return the config with canonical names and
    every loss parameter filled in (ToolError listing valid names/params otherwise)."""
    check_nnet(config)
    config.nnet = {**nnet_options(), **config.nnet}
    if config.nnet.get("weight_decay", 0) and config.optimizer.weight_decay:
        raise ToolError("both nnet.weight_decay and optimizer.weight_decay are set: the L2 term would count "
                        "twice; set one of them to 0 (optimizer.weight_decay also decays the class weights)")
    config.loss.name = losses.resolve_loss_name(config.loss.name)
    loss_cls = losses.LOSSES[config.loss.name]
    config.loss.params = _full_params(loss_cls, config.loss.params, f"loss '{config.loss.name}'")
    names = []
    for entry in config.aux:
        entry.name = losses.resolve_aux_name(entry.name)
        aux_cls = losses.AUX_LOSSES[entry.name]
        entry.params = _full_params(aux_cls, entry.params, f"auxiliary loss '{entry.name}'")
        names.append(entry.name)
    if len(set(names)) != len(names):
        raise ToolError(f"config key 'aux': each auxiliary loss may appear once, got {', '.join(names)}")
    return config


def _full_params(cls, values: dict, owner: str) -> dict:
    params_cls = getattr(cls, "Params", None)
    if params_cls is None:
        if values:
            raise ToolError(f"{owner} takes no parameters, got {', '.join(values)}")
        return {}
    return dataclasses.asdict(registry.build_params(params_cls, values, owner))


def build_network(config: TrainConfig, feat_dim: int):
    return nnet.build_xvector(feat_dim=feat_dim, **config.nnet)


def build_head(config: TrainConfig, num_classes: int, embedding_dim: int):
    if num_classes < 2:
        raise ToolError(f"training needs at least 2 speakers, the data has {num_classes}")
    return losses.build_loss(config.loss.name, num_classes, embedding_dim, config.loss.params)


def build_auxes(config: TrainConfig) -> list:
    return [losses.build_aux(entry.name, entry.params) for entry in config.aux]


def parameter_docs() -> dict:
    """Comment lines for ``--print-config``: network options and every loss's parameters."""
    docs = {"nnet": [f"{name}: default {default!r}" for name, default in nnet_options().items()]}
    lines = []
    for name, cls in sorted(losses.LOSSES.items()):
        params_cls = getattr(cls, "Params", None)
        fields = dataclasses.fields(params_cls) if params_cls else ()
        lines.append(f"{name}: " + (", ".join(f"{f.name}={f.default!r}" for f in fields) or "(no parameters)"))
    docs["loss"] = ["losses and their params (tfspk.losses; see docs/losses.md):"] + ["  " + l for l in lines]
    aux_lines = []
    for name, cls in sorted(losses.AUX_LOSSES.items()):
        params_cls = getattr(cls, "Params", None)
        fields = dataclasses.fields(params_cls) if params_cls else ()
        aux_lines.append(f"  {name}: " + ", ".join(f"{f.name}={f.default!r}" for f in fields))
    docs["aux"] = ["available:"] + aux_lines + ["example: aux: [{name: ring, params: {}}, {name: mhe}]"]
    return docs
