"""Loading a trained experiment dir for extraction (docs/INTERFACES.md, "tfspk.train")."""
from __future__ import annotations

import os

from tfspk.errors import ToolError
from tfspk.train import config as config_mod, expdir

WEIGHTS = os.path.join("final", "model.weights.h5")


def load_for_inference(exp_dir: str, allow_unfinished: bool = False, warn=None):
    """``(model, config)``: the network built from ``<exp>/config.yaml`` with ``final/model.weights.h5``.

    ``config`` is the saved effective config (a dict incl. ``feat_dim``, ``num_classes``, ``nnet``).
    ToolError names what is missing or inconsistent in an incomplete experiment dir. A training that
    did not finish (no ``final/DONE``, see :mod:`tfspk.train.expdir`) is refused, or with
    ``allow_unfinished`` loaded after a warning through ``warn(message)``.
    """
    from tfspk import nnet
    if not os.path.isdir(exp_dir):
        raise ToolError(f"experiment dir {exp_dir} does not exist")
    config_path = os.path.join(exp_dir, "config.yaml")
    weights_path = os.path.join(exp_dir, WEIGHTS)
    for path, what in ((config_path, "the experiment config"), (weights_path, "the trained weights")):
        if not os.path.isfile(path):
            raise ToolError(f"{exp_dir} is incomplete: missing {path} ({what}; written by tfspk-train)")
    expdir.check_finished(exp_dir, allow_unfinished, warn)
    config = config_mod.load_yaml(config_path)
    for key in ("feat_dim", "nnet"):
        if key not in config:
            raise ToolError(f"{config_path} has no '{key}' key (not written by tfspk-train?)")
    nnet_kwargs = config["nnet"] or {}
    if not isinstance(nnet_kwargs, dict):
        raise ToolError(f"{config_path}: 'nnet' must be a mapping of build_xvector options")
    model = nnet.build_xvector(feat_dim=int(config["feat_dim"]), **nnet_kwargs)
    try:
        model.load_weights(weights_path)
    except (ValueError, OSError, KeyError) as err:
        raise ToolError(f"cannot load {weights_path} into the network of {config_path}: {err}") from None
    return model, config
