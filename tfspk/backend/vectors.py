"""Operations on sets of embedding vectors: mean, mean subtraction, affine transforms, length norm.

Vectors are rows of a float64 array ``[N, D]``; keys travel alongside in the callers.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from tfspk.errors import ToolError


def check_vectors(keys: Sequence[str], vectors: np.ndarray, source: str) -> None:
    """ToolError naming the first key whose vector holds NaN or infinity."""
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ToolError(f"{source}: vector for key '{keys[bad]}' contains NaN or infinity "
                        f"({int((~finite).sum())} such vectors in total)")


def global_mean(vectors: np.ndarray) -> np.ndarray:
    """Mean of all vectors, accumulated in double precision (Kaldi ivector-mean, 2-argument form)."""
    if len(vectors) == 0:
        raise ToolError("No iVectors read")
    return np.asarray(vectors, dtype=np.float64).mean(axis=0)


def speaker_means(spk2utt: dict[str, list[str]], vectors: dict[str, np.ndarray]):
    """Average each speaker's utterance vectors (Kaldi ivector-mean, 3/4-argument form).

    Returns ``(speakers, means [S, D], counts [S], missing_utts)``; speakers none of whose
    utterances has a vector are left out, utterances without a vector are listed in
    ``missing_utts``.
    """
    speakers, means, counts, missing = [], [], [], []
    for speaker, utts in spk2utt.items():
        present = [vectors[u] for u in utts if u in vectors]
        missing.extend(u for u in utts if u not in vectors)
        if present:
            speakers.append(speaker)
            means.append(np.mean(np.asarray(present, dtype=np.float64), axis=0))
            counts.append(len(present))
    dim = next(iter(vectors.values())).shape[0] if vectors else 0
    return speakers, np.array(means).reshape(len(means), dim), np.array(counts, dtype=np.int64), missing


def apply_transform(transform: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Kaldi transform-vec: ``y = L x`` for a linear ``L`` [R, D], ``y = L x + b`` for ``[L | b]`` [R, D+1]."""
    transform = np.asarray(transform, dtype=np.float64)
    dim = vectors.shape[1]
    if transform.shape[1] == dim:
        return vectors @ transform.T
    if transform.shape[1] == dim + 1:
        return vectors @ transform[:, :dim].T + transform[:, dim]
    raise ToolError(f"Dimension mismatch: input vector has dimension {dim} and transform has "
                    f"{transform.shape[1]} columns (expected {dim} for a linear or {dim + 1} "
                    "for an affine transform)")


def normalize_length(vectors: np.ndarray, scaleup: bool = True, normalize: bool = True):
    """Kaldi ivector-normalize-length: ``x <- x / r`` with ``r = ||x|| / sqrt(D)`` (scaleup) or ``||x||``.

    Returns ``(normalised, ratios)``. A zero vector is left as it is (Kaldi warns "Zero iVector");
    ``normalize=False`` only computes the ratios.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1)
    ratios = norms / np.sqrt(vectors.shape[1]) if scaleup else norms
    if not normalize:
        return vectors.copy(), ratios
    safe = np.where(ratios == 0.0, 1.0, ratios)
    return vectors / safe[:, None], ratios


def unit_length(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to Euclidean length 1 (zero rows stay zero), for cosine scoring."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0.0, 1.0, norms)
