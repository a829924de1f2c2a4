"""Calibration metrics of speaker-verification scores read as log-likelihood ratios: Cllr, minCllr
(PAV) and the actual DCF at the Bayes threshold [Brummer2006].

All functions take ``scores`` (natural-log LLRs, float) and ``is_target`` (bool) arrays and are
vectorised (10M scores in seconds).

* Cllr [Brummer2006] in bits:
  ``Cllr = 1/(2 log 2) [mean_tar log(1 + e^-s) + mean_non log(1 + e^s)]``
  (0 for perfect LLRs, 1 for the uninformative s = 0, unbounded for bad calibration).
* minCllr: Cllr after the optimal monotonic recalibration, i.e. after the pool-adjacent-violators
  (PAV) isotonic regression of the labels on the scores [Brummer2006]:
  ``llr_i = logit(p_i) - log(N_tar / N_non)`` with ``p`` the PAV posterior. Cllr - minCllr is the
  calibration loss.
* actDCF: the detection cost of the decisions "target iff s >= theta" at the Bayes threshold
  ``theta = log(c_fa (1 - p) / (c_miss p))`` (the decision an LLR calls for), normalised like
  Kaldi's minDCF by ``min(c_miss p, c_fa (1 - p))`` (:func:`tfspk.metrics.detection.dcf_normalizer`).
  A score equal to theta is accepted (BOSARIS convention).
"""
from __future__ import annotations

import math

import numpy as np

from tfspk.errors import ToolError
from tfspk.metrics.detection import SortedScores, check_dcf_params, check_scores, dcf_normalizer

LOG2 = math.log(2.0)


def _arrays(scores, is_target):
    scores = np.asarray(scores, dtype=np.float64)
    is_target = np.asarray(is_target, dtype=bool)
    if scores.shape != is_target.shape or scores.ndim != 1:
        raise ToolError(f"scores {scores.shape} and labels {is_target.shape} differ in shape")
    check_scores(scores, is_target)
    return scores, is_target


def bayes_threshold(p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """theta = log(c_fa (1 - p) / (c_miss p)) = -logit(p_eff): accept an LLR >= theta."""
    check_dcf_params(p_target, c_miss, c_fa)
    return math.log(c_fa * (1.0 - p_target)) - math.log(c_miss * p_target)


def cllr(scores, is_target) -> float:
    """Cllr in bits [Brummer2006]; ``log(1 + e^x)`` as ``logaddexp(0, x)`` (no overflow)."""
    scores, is_target = _arrays(scores, is_target)
    target_cost = np.logaddexp(0.0, -scores[is_target]).mean()
    nontarget_cost = np.logaddexp(0.0, scores[~is_target]).mean()
    return float((target_cost + nontarget_cost) / (2.0 * LOG2))


def act_dcf(scores, is_target, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0) -> dict:
    """Normalised actual DCF of LLR decisions at :func:`bayes_threshold`.

    ``DCF = (c_miss p P_miss + c_fa (1 - p) P_fa) / min(c_miss p, c_fa (1 - p))`` with
    ``P_miss = #{tar < theta} / N_tar`` and ``P_fa = #{non >= theta} / N_non``. Returns a dict with
    ``act_dcf``, ``threshold``, ``p_miss``, ``p_fa``.
    """
    scores, is_target = _arrays(scores, is_target)
    theta = bayes_threshold(p_target, c_miss, c_fa)
    p_miss = np.count_nonzero(scores[is_target] < theta) / np.count_nonzero(is_target)
    p_fa = np.count_nonzero(scores[~is_target] >= theta) / np.count_nonzero(~is_target)
    cost = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    return {"act_dcf": float(cost / dcf_normalizer(p_target, c_miss, c_fa)), "threshold": theta,
            "p_miss": float(p_miss), "p_fa": float(p_fa)}


# ---------------------------------------------------------------------- PAV
def pav(values, weights=None, max_vector_passes: int = 30):
    """Isotonic (non-decreasing) least-squares fit to ``values`` in the given order:
    ``argmin_x sum_i w_i (x_i - y_i)^2`` subject to ``x_1 <= ... <= x_n`` (pool adjacent violators).

    Returns ``(fit [n], block_starts)``: the fit and the index where each constant block starts.

    Exactness rests on one fact: where ``y_i >= y_{i+1}`` (for weighted block means alike), the
    optimum has ``x_i = x_{i+1}`` (else raising x_i or lowering x_{i+1} lowers the cost), so pooling
    such pairs never changes the solution. Vectorised passes pool every maximal non-increasing run of
    block means at once; when ``max_vector_passes`` passes leave violators (adversarial orders need
    O(n) passes), the usual O(blocks) stack algorithm finishes the job on the remaining blocks.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != values.shape or (weights <= 0).any():
        raise ToolError("PAV weights must be positive and match the values")
    if n == 0:
        return values.copy(), np.zeros(0, dtype=np.int64)
    starts = np.arange(n)
    sums, totals = values * weights, weights.copy()
    for _ in range(max_vector_passes):
        means = sums / totals
        pooled = means[:-1] >= means[1:]
        if not pooled.any():
            break
        keep = np.concatenate([[True], ~pooled])
        first = np.flatnonzero(keep)
        starts = starts[first]
        sums = np.add.reduceat(sums, first)
        totals = np.add.reduceat(totals, first)
    else:
        starts, sums, totals = _pav_stack(starts, sums, totals)
    lengths = np.diff(np.append(starts, n))
    return np.repeat(sums / totals, lengths), starts


def _pav_stack(starts, sums, totals):
    """The sequential PAV on blocks: push each block, pool while the top two violate order."""
    out_starts, out_sums, out_totals = [], [], []
    for start, total_sum, weight in zip(starts.tolist(), sums.tolist(), totals.tolist()):
        while out_sums and out_sums[-1] / out_totals[-1] >= total_sum / weight:
            start = out_starts.pop()
            total_sum += out_sums.pop()
            weight += out_totals.pop()
        out_starts.append(start)
        out_sums.append(total_sum)
        out_totals.append(weight)
    return (np.array(out_starts, dtype=np.int64), np.array(out_sums), np.array(out_totals))


def _pav_posteriors(sorted_scores: SortedScores):
    """PAV of the target indicator over sorted scores, equal scores pooled first (a function of the
    score cannot split them). Returns ``(posterior, targets, nontargets, group_block)`` per PAV
    block, with ``group_block`` the block of each distinct score (ascending)."""
    values, labels = sorted_scores.scores, sorted_scores.is_target
    group_starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    sizes = np.diff(np.append(group_starts, len(values))).astype(np.float64)
    targets = np.add.reduceat(labels.astype(np.float64), group_starts)
    _, block_starts = pav(targets / sizes, sizes)
    block_targets = np.add.reduceat(targets, block_starts)
    block_sizes = np.add.reduceat(sizes, block_starts)
    group_block = np.repeat(np.arange(len(block_starts)), np.diff(np.append(block_starts, len(sizes))))
    return block_targets / block_sizes, block_targets, block_sizes - block_targets, group_block


def _posterior_to_llr(posterior, num_targets, num_nontargets):
    with np.errstate(divide="ignore"):
        return np.log(posterior) - np.log1p(-posterior) - math.log(num_targets / num_nontargets)


def pav_llrs(scores, is_target) -> np.ndarray:
    """The optimally (monotonically) recalibrated LLR of every score, in input order.

    PAV of the target indicator over the sorted scores (equal scores pooled) gives the posterior p,
    and ``llr = logit(p) - log(N_tar / N_non)`` removes the data's own prior; p = 0 or 1 gives
    -inf/+inf.
    """
    scores, is_target = _arrays(scores, is_target)
    sorted_scores = SortedScores.from_arrays(scores, is_target)
    posterior, _, _, group_block = _pav_posteriors(sorted_scores)
    llr = _posterior_to_llr(posterior, sorted_scores.num_targets, sorted_scores.num_nontargets)
    unique = np.unique(sorted_scores.scores)
    return llr[group_block[np.searchsorted(unique, scores)]]


def min_cllr(scores, is_target=None) -> float:
    """Cllr (bits) after the optimal monotonic recalibration (PAV), from ``(scores, is_target)`` or a
    :class:`~tfspk.metrics.detection.SortedScores`. Per PAV block with t targets, m non-targets and
    LLR l: ``t softplus(-l) / N_tar + m softplus(l) / N_non``; a block with t = 0 (l = -inf) costs
    nothing for its non-targets, likewise m = 0, so the cost is finite."""
    if not isinstance(scores, SortedScores):
        scores = SortedScores.from_arrays(*_arrays(scores, is_target))
    posterior, targets, nontargets, _ = _pav_posteriors(scores)
    num_targets, num_nontargets = scores.num_targets, scores.num_nontargets
    llr = _posterior_to_llr(posterior, num_targets, num_nontargets)
    with np.errstate(invalid="ignore"):
        target_cost = np.where(targets > 0, targets * np.logaddexp(0.0, -llr), 0.0).sum() / num_targets
        nontarget_cost = np.where(nontargets > 0, nontargets * np.logaddexp(0.0, llr), 0.0).sum() / num_nontargets
    return float((target_cost + nontarget_cost) / (2.0 * LOG2))
