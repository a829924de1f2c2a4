"""Checkpoint averaging: the mean of several Keras ``.weights.h5`` files of one network.

    theta_avg = (1 / N) * sum_n theta_n          (every floating-point variable, element-wise)

as the WeSpeaker recipes do for the extraction model ([Wang2023]: the average of the last
epochs' models). Every floating-point array of the files is averaged, batch-norm moving
statistics included (they are part of the weights file); integer arrays (counters, seeds) are
taken from the last file. The files must hold the same arrays with the same shapes.
"""
from __future__ import annotations

import os
import re

import numpy as np

from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_path


def _arrays(path: str) -> dict:
    import h5py
    arrays = {}
    try:
        with h5py.File(path, "r") as handle:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    arrays[name] = obj[()]
            handle.visititems(visit)
    except FileNotFoundError:
        raise ToolError(f"no such weights file: {path}") from None
    except OSError as err:
        raise ToolError(f"cannot read weights file {path}: {err}") from None
    return arrays


def average_weight_files(paths, out_path: str) -> None:
    """Write the element-wise mean of the weights files ``paths`` to ``out_path`` (atomically).

    The output is a copy of the last file with every floating-point dataset replaced by the mean,
    accumulated in float64 and cast back to the stored dtype.
    """
    import h5py
    paths = list(paths)
    if not paths:
        raise ToolError("average of weights: no input files")
    first = _arrays(paths[0])
    sums = {name: value.astype(np.float64) for name, value in first.items()
            if np.issubdtype(np.asarray(value).dtype, np.floating)}
    for path in paths[1:]:
        arrays = _arrays(path)
        if set(arrays) != set(first):
            missing = sorted(set(first) ^ set(arrays))[0]
            raise ToolError(f"{path} does not hold the weights of the same network as {paths[0]} "
                            f"(array {missing} is in one of them only)")
        for name in sums:
            if np.shape(arrays[name]) != np.shape(first[name]):
                raise ToolError(f"{path}: array {name} has shape {np.shape(arrays[name])}, "
                                f"{paths[0]} has {np.shape(first[name])}")
            sums[name] += arrays[name]
    with atomic_path(out_path) as tmp:
        with h5py.File(paths[-1], "r") as src, h5py.File(tmp, "w") as dst:
            for key, value in src.attrs.items():
                dst.attrs[key] = value
            for key in src:
                src.copy(src[key], dst, name=key)
            for name, total in sums.items():
                dataset = dst[name]
                dataset[...] = (total / len(paths)).astype(dataset.dtype)


EPOCH_WEIGHTS = re.compile(r"^epoch-(\d+)\.weights\.h5$")


def epoch_weight_files(directory: str) -> list:
    """``epoch-<n>.weights.h5`` files of ``directory`` in epoch order."""
    if not os.path.isdir(directory):
        return []
    found = [(int(m.group(1)), name) for name in os.listdir(directory) if (m := EPOCH_WEIGHTS.match(name))]
    return [os.path.join(directory, name) for _, name in sorted(found)]


def prune_epoch_weights(directory: str, keep: int) -> None:
    """Delete all but the last ``keep`` epoch weight files."""
    files = epoch_weight_files(directory)
    for path in files[:max(len(files) - keep, 0)]:
        os.remove(path)
