"""The network of a trained experiment dir: ``<exp>/config.yaml`` + ``<exp>/final/model.weights.h5``.

Extraction, the trainer and tools rebuild a trained model through here (only the nnet layer knows how a
network is made from its config section).
"""
from __future__ import annotations

import os

from tfspk.errors import ToolError
from tfspk.nnet.registry import Network, network_from_config
from tfspk.params import read_yaml

WEIGHTS = os.path.join("final", "model.weights.h5")
#: written atomically by the trainer at the very end of a finished training (tfspk.train.expdir.mark_done)
DONE = os.path.join("final", "DONE")
#: held by a running trainer (tfspk.train.expdir.ExpDirLock)
LOCK = ".lock"


def read_experiment_config(config_path: str) -> dict:
    """The saved effective config of an experiment dir (ToolError for unreadable or non-mapping YAML)."""
    config = read_yaml(config_path)
    if not isinstance(config, dict):
        raise ToolError(f"{config_path}: expected a mapping of keys at the top level")
    return config


def network_of_experiment(config: dict, config_path: str) -> Network:
    """The network of an experiment config's ``nnet`` section; a ToolError names ``config_path``."""
    try:
        return network_from_config(config["nnet"])
    except ToolError as err:
        raise ToolError(f"{config_path}: {err}") from None


def load_trained(exp_dir: str, allow_unfinished: bool = False, warn=None):
    """``(model, config, network)``: the network built from ``<exp>/config.yaml`` with the trained weights.

    ``config`` is the saved effective config (a dict incl. ``feat_dim``, ``num_classes``, ``nnet``), either
    form of ``nnet`` (see :func:`tfspk.nnet.network_from_config`). ToolError names what is missing or
    inconsistent in an incomplete experiment dir. A training that did not finish (no ``final/DONE``) is
    refused, or with ``allow_unfinished`` loaded after a warning through ``warn(message)``.
    """
    if not os.path.isdir(exp_dir):
        raise ToolError(f"experiment dir {exp_dir} does not exist")
    config_path = os.path.join(exp_dir, "config.yaml")
    weights_path = os.path.join(exp_dir, WEIGHTS)
    for path, what in ((config_path, "the experiment config"), (weights_path, "the trained weights")):
        if not os.path.isfile(path):
            raise ToolError(f"{exp_dir} is incomplete: missing {path} ({what}; written by tfspk-train)")
    check_finished(exp_dir, allow_unfinished, warn)
    config = read_experiment_config(config_path)
    for key in ("feat_dim", "nnet"):
        if key not in config:
            raise ToolError(f"{config_path} has no '{key}' key (not written by tfspk-train?)")
    network = network_of_experiment(config, config_path)
    model = network.build(int(config["feat_dim"]))
    try:
        model.load_weights(weights_path)
    except (ValueError, OSError, KeyError) as err:
        raise ToolError(f"cannot load {weights_path} into the network of {config_path}: {err}") from None
    return model, config, network


def is_done(exp_dir: str) -> bool:
    return os.path.isfile(os.path.join(exp_dir, DONE))


def check_finished(exp_dir: str, allow_unfinished: bool = False, warn=None) -> None:
    """ToolError if the training of ``exp_dir`` did not finish (no ``final/DONE``); with
    ``allow_unfinished`` a warning (through ``warn``) instead."""
    if is_done(exp_dir):
        return
    why = "is still running or was interrupted" if os.path.exists(os.path.join(exp_dir, LOCK)) else \
        "was interrupted"
    message = (f"the training of {exp_dir} did not finish ({os.path.join(exp_dir, DONE)} is missing: it {why}), "
               f"so {os.path.join(exp_dir, 'final', 'model.weights.h5')} is from an early epoch")
    if not allow_unfinished:
        raise ToolError(message + "; re-run tfspk-train to finish it, or pass --allow-unfinished true to use it")
    if warn:
        warn(message + "; using it anyway (--allow-unfinished true)")
