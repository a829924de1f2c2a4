"""Trial scoring primitives shared by dot-product, cosine and PLDA scoring, and AS-norm.

All scorers work on a list of trials given as two index arrays into an enrolment and a test
matrix, so each vector is transformed once and the per-trial work is a batched dot product.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from tfspk.io.util import without_gc
from tfspk.backend.vectors import unit_length
from tfspk.errors import ToolError

# Trials per block of the gathered dot products: bounds memory at about 2 * block * D * 8 bytes.
_GATHER_BLOCK = 8192
# Use a dense (BLAS) score matrix when it holds at most this many entries per trial: a BLAS
# product computes ~10^8 pairs/s of 200-dim vectors on 2 cores, gathering rows ~3*10^6 trials/s.
_DENSE_RATIO = 32
# Loop over the distinct vectors of one side when each has at least this many trials on average.
_GROUP_RATIO = 16


def pair_dots(left: np.ndarray, right: np.ndarray, left_index: np.ndarray, right_index: np.ndarray) -> np.ndarray:
    """``out[k] = <left[left_index[k]], right[right_index[k]]>`` for all k, vectorised.

    Three strategies computing the same sums, chosen by the shape of the trial list:
    dense (row blocks of a matrix product) when most pairs of the vectors used are trials;
    one matrix-vector product per distinct vector of the side with fewer distinct vectors
    (the usual trial list: each enrolment against many tests); otherwise blocks of gathered rows.
    """
    left_index = np.asarray(left_index, dtype=np.int64)
    right_index = np.asarray(right_index, dtype=np.int64)
    num_trials = len(left_index)
    out = np.empty(num_trials, dtype=np.float64)
    if num_trials == 0:
        return out
    used_left, left_slot = _used_rows(left_index, len(left))
    used_right, right_slot = _used_rows(right_index, len(right))
    if len(used_left) * len(used_right) <= _DENSE_RATIO * num_trials:
        _dense_pair_dots(left[used_left], right[used_right], left_slot, right_slot, out)
    elif min(len(used_left), len(used_right)) * _GROUP_RATIO <= num_trials:
        if len(used_left) <= len(used_right):
            _grouped_pair_dots(left[used_left], right, left_slot, right_index, out)
        else:
            _grouped_pair_dots(right[used_right], left, right_slot, left_index, out)
    else:
        for start in range(0, num_trials, _GATHER_BLOCK):
            block = slice(start, start + _GATHER_BLOCK)
            out[block] = np.einsum("ij,ij->i", left[left_index[block]], right[right_index[block]])
    return out


def _used_rows(index: np.ndarray, num_rows: int):
    """The distinct rows an index array uses and each entry's position among them (no sort)."""
    if len(index) and (index.min() < 0 or index.max() >= num_rows):
        raise IndexError(f"trial index out of range for {num_rows} vectors")
    used = np.flatnonzero(np.bincount(index, minlength=num_rows))
    slot_of_row = np.zeros(num_rows, dtype=np.int64)
    slot_of_row[used] = np.arange(len(used))
    return used, slot_of_row[index]


def _grouped_pair_dots(few, many, few_slot, many_index, out):
    """For each row of ``few``: one gather of its partners in ``many`` and a matrix-vector product."""
    order = _group_order(few_slot, len(few))
    bounds = np.searchsorted(few_slot[order], np.arange(len(few) + 1))
    partners = many_index[order]
    for row in range(len(few)):
        lo, hi = bounds[row], bounds[row + 1]
        out[order[lo:hi]] = many[partners[lo:hi]] @ few[row]


def _group_order(slot: np.ndarray, num_groups: int) -> np.ndarray:
    """A stable ordering of entries by group number (radix sort when groups fit 16 bits)."""
    if num_groups <= 1 << 16:
        return np.argsort(slot.astype(np.uint16), kind="stable")
    return np.argsort(slot, kind="stable")


def _dense_pair_dots(left, right, left_slot, right_slot, out):
    """Row blocks of ``left @ right.T``, each read at the trials whose left row is in the block."""
    rows_per_block = max(1, (1 << 22) // max(1, len(right)))  # about 32 MB of scores per block
    if rows_per_block >= len(left):
        out[:] = (left @ right.T)[left_slot, right_slot]
        return
    order = _group_order(left_slot, len(left))
    sorted_slots = left_slot[order]
    for first in range(0, len(left), rows_per_block):
        last = min(first + rows_per_block, len(left))
        lo, hi = np.searchsorted(sorted_slots, [first, last])
        if lo == hi:
            continue
        block_scores = left[first:last] @ right.T
        trials = order[lo:hi]
        out[trials] = block_scores[left_slot[trials] - first, right_slot[trials]]


@without_gc
def resolve_trials(trials: Sequence[tuple[str, str]], enroll_keys: Sequence[str], test_keys: Sequence[str],
                   warn=None, enroll_name: str = "training iVectors", test_name: str = "test iVectors"):
    """Map trial key pairs to row indices, skipping (and counting) trials with a missing key.

    Returns ``(kept_positions, enroll_index, test_index, num_missing)``; ``warn(message)`` is
    called for each missing key as Kaldi does (``Key X not present in ...``).
    """
    enroll_pos = {k: i for i, k in enumerate(enroll_keys)}
    test_pos = {k: i for i, k in enumerate(test_keys)}
    enroll_index = np.array([enroll_pos.get(e, -1) for e, _ in trials], dtype=np.int64)
    test_index = np.array([test_pos.get(t, -1) for _, t in trials], dtype=np.int64)
    missing_enroll = enroll_index < 0
    missing = missing_enroll | (test_index < 0)
    if warn:
        for position in np.flatnonzero(missing):
            enroll, test = trials[position][:2]
            # Kaldi checks the enrolment key first and reports only that one.
            warn(f"Key {enroll} not present in {enroll_name}." if missing_enroll[position]
                 else f"Key {test} not present in {test_name}.")
    kept = np.flatnonzero(~missing)
    return kept, enroll_index[kept], test_index[kept], int(missing.sum())


def check_same_dim(left: np.ndarray, right: np.ndarray, left_name: str, right_name: str) -> None:
    if left.shape[1] != right.shape[1]:
        raise ToolError(f"dimension mismatch: vectors in {left_name} have dimension {left.shape[1]}, "
                        f"in {right_name} {right.shape[1]}")


def cosine_scores(enroll: np.ndarray, test: np.ndarray, enroll_index, test_index) -> np.ndarray:
    """``cos(u, v) = <u, v> / (||u|| ||v||)`` per trial (a zero vector scores 0)."""
    return pair_dots(unit_length(enroll), unit_length(test), enroll_index, test_index)


# ---------------------------------------------------------------------- AS-norm
def top_n_statistics(cohort_scores: np.ndarray, top_n: int):
    """Mean and standard deviation (ddof 0) of each row's ``top_n`` highest cohort scores.

    ``top_n <= 0`` or ``>= cohort size`` uses the whole cohort (plain S-norm statistics).
    """
    num_cohort = cohort_scores.shape[1]
    if num_cohort == 0:
        raise ToolError("the cohort is empty")
    if 0 < top_n < num_cohort:
        selected = np.partition(cohort_scores, num_cohort - top_n, axis=1)[:, num_cohort - top_n:]
    else:
        selected = cohort_scores
    return selected.mean(axis=1), selected.std(axis=1)


def cohort_statistics(score_rows, num_rows: int, top_n: int, rows_per_block: int = 1024):
    """:func:`top_n_statistics` of a score matrix produced block by block, never held whole.

    ``score_rows(start, stop)`` returns the cohort scores ``[stop - start, C]`` of those rows.
    """
    means, stds = np.empty(num_rows), np.empty(num_rows)
    for start in range(0, num_rows, rows_per_block):
        stop = min(start + rows_per_block, num_rows)
        means[start:stop], stds[start:stop] = top_n_statistics(score_rows(start, stop), top_n)
    return means, stds


def adaptive_snorm(raw_scores: np.ndarray, enroll_stats, test_stats,
                   enroll_index: np.ndarray, test_index: np.ndarray) -> np.ndarray:
    """Adaptive symmetric score normalisation (AS-norm; Matejka et al., Interspeech 2017, eq. 4):

        s' = 0.5 [ (s - mu_e) / sigma_e + (s - mu_t) / sigma_t ]

    where ``enroll_stats = (mu, sigma)`` per enrolment vector are the mean and standard deviation of
    its ``top_n`` highest scores against the cohort, and ``test_stats`` likewise per test vector
    (see :func:`top_n_statistics`, :func:`cohort_statistics`).
    """
    enroll_mean, enroll_std = enroll_stats
    test_mean, test_std = test_stats
    if (enroll_std[enroll_index] == 0).any() or (test_std[test_index] == 0).any():
        raise ToolError("a vector has identical scores against all selected cohort vectors "
                        "(standard deviation 0): use a larger or more varied cohort")
    return 0.5 * ((raw_scores - enroll_mean[enroll_index]) / enroll_std[enroll_index]
                  + (raw_scores - test_mean[test_index]) / test_std[test_index])
