"""LDA for embeddings, as Kaldi ivector-compute-lda computes it.

With the global mean removed from N vectors x_i and speaker means mu_s over n_s vectors:

    St = (1/N) sum_i x_i x_i^T,  Sb = (1/N) sum_s n_s mu_s mu_s^T,  Sw = St - Sb
    M  = tcf St + (1 - tcf) Sw                       (tcf: --total-covariance-factor)
    T  = diag(s)^-1/2 U^T  from M = U diag(s) U^T, s floored at covariance_floor * max(s)
    T Sb T^T = V diag(e) V^T, e descending;  L = V[:, :dim]^T T
    output [L | -L mean]  (dim x (D+1)), applied by transform-vec as L x + offset.

With tcf = 0 the rows of L solve the generalised eigenproblem Sb l = e Sw l (scipy.linalg.eigh(Sb, Sw)),
normalised so that L Sw L^T = I.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tfspk.errors import ToolError


@dataclass
class LdaResult:
    transform: np.ndarray        # [dim, D + 1] affine [L | offset]
    eigenvalues: np.ndarray      # between-class eigenvalues in the normalised space, descending
    num_speakers: int
    num_utterances: int
    num_floored: int             # eigenvalues of M raised to the floor


def _speaker_sums(centered: np.ndarray, speakers: Sequence[str]):
    """Per-speaker sums and counts, vectorised through a sort by speaker."""
    names, index = np.unique(np.asarray(speakers, dtype=object).astype(str), return_inverse=True)
    order = np.argsort(index, kind="stable")
    counts = np.bincount(index, minlength=len(names))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sums = np.add.reduceat(centered[order], starts, axis=0)
    return sums, counts


def _sorted_eigh(matrix: np.ndarray):
    """Symmetric eigendecomposition with eigenvalues in descending order (Kaldi SortSvd)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    order = np.argsort(-values, kind="stable")
    return values[order], vectors[:, order]


def compute_lda(vectors: np.ndarray, speakers: Sequence[str], dim: int,
                total_covariance_factor: float = 0.0, covariance_floor: float = 1e-6,
                warn=None) -> LdaResult:
    """Kaldi ivector-compute-lda on utterance vectors ``[N, D]`` labelled by ``speakers``.

    The between-class covariance of S speakers has rank at most S - 1, so at most S - 1 output
    directions are discriminative; asking for more is warned about through ``warn(message)``.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    num_utts, in_dim = vectors.shape
    if num_utts == 0:
        raise ToolError("Did not read any utterances.")
    if not 0 < dim <= in_dim:
        raise ToolError(f"--dim={dim} is impossible: the LDA output dimension must be between 1 and "
                        f"the input dimension {in_dim}")
    if not 0.0 <= total_covariance_factor <= 1.0:
        raise ToolError(f"--total-covariance-factor={total_covariance_factor} must be in [0, 1]")
    if covariance_floor < 0.0:
        raise ToolError(f"--covariance-floor={covariance_floor} must be >= 0")
    mean = vectors.mean(axis=0)
    centered = vectors - mean
    sums, counts = _speaker_sums(centered, speakers)
    num_spk = len(counts)
    if num_utts - num_spk == 0:
        raise ToolError(f"{num_spk} speakers, {num_utts} utterances: no speaker has more than one "
                        "utterance, so the within-class covariance would be zero")
    if dim > num_spk - 1 and warn:
        warn(f"--dim={dim} is more than the number of speakers minus one ({num_spk} - 1 = {num_spk - 1}): the "
             f"between-class covariance has rank at most {num_spk - 1}, so the last {dim - (num_spk - 1)} LDA "
             "directions carry no speaker information")
    if num_utts < in_dim:
        raise ToolError(f"Too little data for iVector dimension: {num_utts} utterances for dimension "
                        f"{in_dim} (need at least as many utterances as dimensions)")
    total = centered.T @ centered / num_utts
    between = (sums / counts[:, None]).T @ sums / num_utts
    within = total - between
    to_normalize = total_covariance_factor * total + (1.0 - total_covariance_factor) * within
    values, basis = _sorted_eigh(to_normalize)
    floor = covariance_floor * values[0]
    num_floored = int((values < floor).sum())
    values = np.maximum(values, floor)
    if values[0] <= 0.0:
        raise ToolError("the covariance to normalise is zero: all vectors are identical")
    whitening = basis.T / np.sqrt(values)[:, None]
    between_proj = whitening @ (total - within) @ whitening.T
    eigenvalues, rotation = _sorted_eigh(between_proj)
    linear = rotation[:, :dim].T @ whitening
    offset = -linear @ mean
    return LdaResult(np.hstack([linear, offset[:, None]]), eigenvalues, num_spk, num_utts, num_floored)
