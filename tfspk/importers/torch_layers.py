"""PyTorch module tensors -> Keras variables, one rule per kind of variable.

A Keras variable ``<layer>/<name>`` (nested: ``<layer>/<sublayer>/<name>``) takes the tensor
``<module>.<torch name>`` of the PyTorch module the source maps the layer to:

==================  ==================  ==============================================================
Keras               PyTorch             layout change
==================  ==================  ==============================================================
``kernel`` (2-D)    ``weight``          Linear [out, in] or Conv1d k=1 [out, in, 1] -> [in, out]
``kernel`` (3-D)    ``weight``          Conv1d [out, in, k] -> [k, in, out]
``kernel`` (4-D)    ``weight``          Conv2d on a (frequency, time) image [out, in, kF, kT] -> Keras on
                                        (time, frequency) [kT, kF, in, out]
``bias``            ``bias``            none
``gamma``/``beta``  ``weight``/``bias``  BatchNorm affine parameters
``moving_mean``     ``running_mean``    BatchNorm statistics
``moving_variance`` ``running_var``
==================  ==================  ==============================================================
"""
from __future__ import annotations

import numpy as np

from tfspk.errors import ToolError

TORCH_NAMES = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
               "moving_mean": "running_mean", "moving_variance": "running_var"}


def keras_layout(name: str, tensor: np.ndarray, rank: int) -> np.ndarray:
    """The PyTorch tensor rearranged for a Keras variable called ``name`` of rank ``rank``."""
    if name != "kernel":
        return tensor
    if rank == 2:
        if tensor.ndim == 3 and tensor.shape[-1] == 1:
            tensor = tensor[:, :, 0]
        return tensor.T
    if rank == 3:
        return np.transpose(tensor, (2, 1, 0))
    if rank == 4:
        return np.transpose(tensor, (3, 2, 1, 0))
    raise ToolError(f"no rule for a rank-{rank} kernel")


def map_variables(model, mapper, module_of_layer) -> dict:
    """Keras variable path -> array for every variable of ``model``, taken from ``mapper``
    (:class:`tfspk.importers.registry.KeyMapper`); ``module_of_layer(layer_path)`` gives the PyTorch
    module name of a Keras layer path (``a/b`` for nested layers)."""
    weights = {}
    for variable in model.weights:
        layer_path, _, name = variable.path.rpartition("/")
        if name not in TORCH_NAMES:
            raise ToolError(f"no PyTorch counterpart for the variable {variable.path}")
        key = f"{module_of_layer(layer_path)}.{TORCH_NAMES[name]}"
        tensor = mapper.take(key)
        value = keras_layout(name, tensor, len(variable.shape))
        if tuple(value.shape) != tuple(variable.shape):
            raise ToolError(f"{mapper.where}: tensor '{key}' of shape {tuple(tensor.shape)} does not fit "
                            f"{variable.path} of shape {tuple(variable.shape)} (a checkpoint of other options?)")
        weights[variable.path] = value.astype(np.float32)
    return weights
