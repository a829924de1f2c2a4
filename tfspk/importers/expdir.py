"""Write a finished tfspk experiment dir from an :class:`~tfspk.importers.registry.ImportedModel`.

:func:`write_experiment` is the only place that knows the experiment-dir layout for imported models
(the layout tfspk-train writes, docs/INTERFACES.md "tfspk.train"):

* ``config.yaml``: ``feat_dim``, ``num_classes: 0`` (no training head), ``nnet: {name, params}`` and
  ``imported`` (provenance);
* ``features.yaml``: the source toolkit's front end at inference
  (:func:`tfspk.features.frontend.write_front_end`, the file extraction, tfspk-export, tfspk-embed and
  tfspk.Embedder read);
* ``final/model.weights.h5`` and last ``final/DONE``.

The dir is assembled beside the target and renamed into place, so a failed import leaves nothing
that looks like a model.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import yaml

from tfspk.errors import ToolError
from tfspk.features.frontend import write_front_end
from tfspk.importers.registry import ImportedModel
from tfspk.nnet.registry import network_config
from tfspk.train.expdir import mark_done

WEIGHTS = os.path.join("final", "model.weights.h5")


def build_model(imported: ImportedModel):
    """The Keras model of ``imported.network`` with ``imported.weights`` assigned; ToolError if a variable of
    the model has no weight, a weight no variable, or a shape differs."""
    model = imported.network.build(int(imported.feat_dim))
    weights = dict(imported.weights)
    variables = {v.path: v for v in model.weights}
    missing = sorted(set(variables) - set(weights))
    extra = sorted(set(weights) - set(variables))
    if missing or extra:
        raise ToolError(f"conversion to '{imported.network.network_name}' is incomplete: variables without a weight: "
                        f"{missing[:6]}; weights without a variable: {extra[:6]}")
    for path, variable in variables.items():
        value = np.asarray(weights[path], dtype=np.float32)
        if tuple(value.shape) != tuple(variable.shape):
            raise ToolError(f"conversion to '{imported.network.network_name}': weight {path} has shape "
                            f"{value.shape}, the variable {tuple(variable.shape)}")
        variable.assign(value)
    return model


def experiment_config(imported: ImportedModel) -> dict:
    """The ``config.yaml`` of the experiment dir."""
    if imported.front_end.dim != int(imported.feat_dim):
        raise ToolError(f"conversion to '{imported.network.network_name}': the front end gives "
                        f"{imported.front_end.dim}-dim features, the network takes {imported.feat_dim}")
    return {
        "feat_dim": int(imported.feat_dim),
        "num_classes": 0,
        "nnet": network_config(imported.network),
        "imported": dict(imported.facts),
    }


def write_experiment(exp_dir: str, imported: ImportedModel, overwrite: bool = False) -> dict:
    """Write the finished experiment dir ``exp_dir`` (see the module docstring); returns its config.

    An existing non-empty ``exp_dir`` is an error unless ``overwrite`` (it is then replaced as a whole).
    """
    if os.path.exists(exp_dir) and not os.path.isdir(exp_dir):
        raise ToolError(f"{exp_dir} exists and is not a directory")
    if os.path.isdir(exp_dir) and os.listdir(exp_dir) and not overwrite:
        raise ToolError(f"{exp_dir} exists and is not empty; give another dir or --overwrite true")
    model = build_model(imported)
    config = experiment_config(imported)
    parent = os.path.dirname(os.path.abspath(exp_dir))
    os.makedirs(parent, exist_ok=True)
    work = os.path.join(parent, f".{os.path.basename(os.path.abspath(exp_dir))}.import-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        os.makedirs(os.path.join(work, "final"))
        with open(os.path.join(work, "config.yaml"), "w", encoding="utf-8") as handle:
            yaml.safe_dump(config, handle, sort_keys=False)
        write_front_end(work, imported.front_end)
        model.save_weights(os.path.join(work, WEIGHTS))
        mark_done(work, source=imported.facts.get("source", ""), checkpoint=imported.facts.get("checkpoint", ""))
        if os.path.isdir(exp_dir):
            shutil.rmtree(exp_dir)
        os.rename(work, exp_dir)
    except OSError as err:
        raise ToolError(f"cannot write {exp_dir}: {err.strerror or err} ({err.filename or work})") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return config
