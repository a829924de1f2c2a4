"""The back-end's side of Kaldi tables: vector archives as matrices.

What the back-end tools add over :mod:`tfspk.io`: a whole vector table as one ``[N, D]`` array with
its keys (checked for dimension and finite values, errors naming the key), and utt2spk/spk2utt/trials
read in file order as the scoring tools expect. Text tables, score files, int32 tables and extended
filenames live in :mod:`tfspk.io` (:mod:`~tfspk.io.table`, :mod:`~tfspk.io.scores`,
:mod:`~tfspk.io.scalar_table`, :mod:`~tfspk.io.xfilename`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from tfspk.backend.vectors import check_vectors
from tfspk.errors import ToolError
from tfspk.io import ark, table


def load_vectors(rspecifier: str, allow_empty: bool = False) -> tuple[list[str], np.ndarray]:
    """All vectors of a table as ``(keys, float64 [N, D])``; ToolError for matrices, mixed
    dimensions, NaN/inf, duplicate keys (each naming the key), or an empty table."""
    keys, rows = [], []
    seen = set()
    dim = None
    for key, value in ark.read_rspecifier(rspecifier):
        if value.ndim != 1:
            raise ToolError(f"{rspecifier}: key '{key}' holds a matrix of shape {value.shape}, expected a vector")
        if dim is None:
            dim = value.shape[0]
        elif value.shape[0] != dim:
            raise ToolError(f"{rspecifier}: vector for key '{key}' has dimension {value.shape[0]}, "
                            f"expected {dim} like the vectors before it")
        if key in seen:
            raise ToolError(f"{rspecifier}: duplicate key '{key}'")
        seen.add(key)
        keys.append(key)
        rows.append(value)
    if not keys:
        if allow_empty:
            return [], np.zeros((0, 0))
        raise ToolError(f"{rspecifier}: no vectors read")
    vectors = np.asarray(rows, dtype=np.float64)
    check_vectors(keys, vectors, rspecifier)
    return keys, vectors


def write_vectors(wspecifier: str, keys: Sequence[str], vectors: np.ndarray) -> None:
    """Write rows as float (``FV``, Kaldi's BaseFloat) vectors, atomically."""
    vectors = np.asarray(vectors, dtype=np.float32)
    with ark.ArchiveWriter(wspecifier) as writer:
        for key, vector in zip(keys, vectors):
            writer.write(key, vector)


def read_spk2utt(rspecifier: str) -> dict[str, list[str]]:
    """spk2utt (``spk utt1 utt2 ...``) from an rspecifier (``ark:f``), path, ``-`` or ``cmd |``,
    in file order (:func:`tfspk.io.table.read_spk2utt`)."""
    return table.read_spk2utt(rspecifier, sorted_keys=False)


def read_utt2spk(rspecifier: str) -> dict[str, str]:
    """utt2spk from an rspecifier (``ark:f``), path, ``-`` or ``cmd |`` (:func:`tfspk.io.table.read_utt2spk`)."""
    return table.read_utt2spk(rspecifier, sorted_keys=False)


def read_trials(rxfilename: str) -> list[tuple[str, str]]:
    """Trial pairs as the scoring tools read them (:func:`tfspk.io.table.read_trial_pairs`)."""
    return table.read_trial_pairs(rxfilename)
