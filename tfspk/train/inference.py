"""Loading a trained experiment dir for extraction (docs/INTERFACES.md, "tfspk.train")."""
from __future__ import annotations

import os

WEIGHTS = os.path.join("final", "model.weights.h5")  # as tfspk.nnet.saved.WEIGHTS (imported lazily: keras)


def load_for_inference(exp_dir: str, allow_unfinished: bool = False, warn=None):
    """``(model, config)``: the network built from ``<exp>/config.yaml`` with ``final/model.weights.h5``.

    Kept for callers of the trainer package; the work is :func:`tfspk.nnet.load_trained`.
    """
    from tfspk.nnet.saved import load_trained
    model, config, _ = load_trained(exp_dir, allow_unfinished=allow_unfinished, warn=warn)
    return model, config
