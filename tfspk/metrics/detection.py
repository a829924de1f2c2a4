"""Detection metrics of speaker verification: EER (Kaldi compute-eer), minDCF (Kaldi
sid/compute_min_dcf.py), DET curves and their normal-deviate (probit) scale.

Everything starts from one ordering of all scores (:class:`SortedScores`: the order of a stable
sort, obtained from fast value sorts), shared by the EER, any number of minDCF operating points and
the DET curve.

Operating points used in reports (kaldi.md, [Liu2019]):
* minDCF(0.01) and minDCF(0.001): p_target 0.01 / 0.001, c_miss = c_fa = 1 (Kaldi voxceleb recipe);
* minDCF08 (SRE08): p_target 0.01, c_miss 10, c_fa 1.
minDCF here is normalised by min(c_miss p, c_fa (1 - p)) as in compute_min_dcf.py; multiply by
that value (see :func:`dcf_normalizer`) for the unnormalised figure MATLAB DETware prints.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfspk.errors import ToolError

OPERATING_POINTS = {
    "minDCF(0.01)": (0.01, 1.0, 1.0),
    "minDCF(0.001)": (0.001, 1.0, 1.0),
    "minDCF08": (0.01, 10.0, 1.0),
}


def check_scores(scores: np.ndarray, is_target: np.ndarray) -> None:
    if len(scores) == 0:
        raise ToolError("Empty input: no scores")
    if not np.isfinite(scores).all():
        raise ToolError(f"{int((~np.isfinite(scores)).sum())} scores are NaN or infinite")
    num_targets = int(np.count_nonzero(is_target))
    if num_targets == 0:
        raise ToolError("No target scores seen.")
    if num_targets == len(scores):
        raise ToolError("No non-target scores seen.")


@dataclass
class SortedScores:
    """Scores sorted ascending (stable: ties keep input order) with their target flags."""
    scores: np.ndarray      # [N] ascending
    is_target: np.ndarray   # [N] bool

    @classmethod
    def from_arrays(cls, scores, is_target) -> "SortedScores":
        scores = np.asarray(scores)
        is_target = np.asarray(is_target, dtype=bool)
        if scores.shape != is_target.shape or scores.ndim != 1:
            raise ToolError(f"scores {scores.shape} and labels {is_target.shape} differ in shape")
        check_scores(scores, is_target)
        return cls(*_stable_sort_with_labels(scores, is_target))

    @property
    def num_targets(self) -> int:
        return int(np.count_nonzero(self.is_target))

    @property
    def num_nontargets(self) -> int:
        return len(self.scores) - self.num_targets

    def error_rates(self):
        """compute_min_dcf.py's curves: rejecting every score <= scores[i] gives
        ``fnr[i]`` = fraction of targets rejected, ``fpr[i]`` = 1 - fraction of non-targets rejected.

        Counts are exact in float64 (below 2**53), so ``count / total`` equals the script's
        ``int / float`` bit for bit; the arrays are updated in place to keep memory passes few.
        """
        fnr = np.cumsum(self.is_target, dtype=np.float64)
        fpr = np.arange(1, len(self.scores) + 1, dtype=np.float64)
        fpr -= fnr
        fnr /= float(self.num_targets)
        fpr /= float(self.num_nontargets)
        np.subtract(1.0, fpr, out=fpr)
        return fnr, fpr


def _stable_sort_with_labels(scores: np.ndarray, is_target: np.ndarray):
    """``scores[order], is_target[order]`` for ``order = argsort(scores, kind="stable")``, faster.

    A stable argsort of millions of floats is slow; sorting values is fast (SIMD). The label
    sequence of the stable order is recovered by merging the separately sorted target and
    non-target scores: it is ambiguous only where a target and a non-target score are equal, and
    for those tie values alone the original order is restored with a small stable sort.
    """
    targets, nontargets = np.sort(scores[is_target]), np.sort(scores[~is_target])
    target_pos = np.arange(len(targets)) + np.searchsorted(nontargets, targets, side="left")
    labels = np.zeros(len(scores), dtype=bool)
    labels[target_pos] = True
    merged = np.empty(len(scores), dtype=scores.dtype)
    merged[target_pos] = targets
    merged[~labels] = nontargets
    crosses = np.searchsorted(nontargets, targets, side="right") > np.searchsorted(nontargets, targets, side="left")
    if crosses.any():
        tie_values = np.unique(targets[crosses])
        slot = np.minimum(np.searchsorted(tie_values, scores), len(tie_values) - 1)
        members = np.flatnonzero(tie_values[slot] == scores)  # original order
        tied_labels = is_target[members][np.argsort(scores[members], kind="stable")]
        starts = np.searchsorted(merged, tie_values, side="left")
        lengths = np.searchsorted(merged, tie_values, side="right") - starts
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        labels[np.repeat(starts, lengths) + offsets] = tied_labels
    return merged, labels


def dcf_normalizer(p_target: float, c_miss: float, c_fa: float) -> float:
    """C_def = min(c_miss p, c_fa (1 - p)): the cost of the best decision without looking at scores."""
    return min(c_miss * p_target, c_fa * (1 - p_target))


def check_dcf_params(p_target: float, c_miss: float, c_fa: float) -> None:
    if c_fa <= 0:
        raise ToolError("--c-fa must be greater than 0")
    if c_miss <= 0:
        raise ToolError("--c-miss must be greater than 0")
    if p_target <= 0 or p_target >= 1:
        raise ToolError("--p-target must be greater than 0 and less than 1")


def min_dcf(sorted_scores: SortedScores, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0,
            rates=None) -> tuple[float, float]:
    """Kaldi sid/compute_min_dcf.py: ``(normalised minDCF, threshold)``.

    C_det[i] = c_miss fnr[i] p + c_fa fpr[i] (1 - p) over every sorted score as threshold; the first
    minimum is taken and divided by :func:`dcf_normalizer`. ``rates`` may pass precomputed
    :meth:`SortedScores.error_rates`.
    """
    check_dcf_params(p_target, c_miss, c_fa)
    fnr, fpr = rates if rates is not None else sorted_scores.error_rates()
    # c_miss * fnr * p + c_fa * fpr * (1 - p), in compute_min_dcf.py's operation order (so the
    # results agree to the last bit) but with two buffers instead of four temporaries.
    c_det = np.multiply(fnr, c_miss)
    c_det *= p_target
    false_alarm_part = np.multiply(fpr, c_fa)
    false_alarm_part *= 1 - p_target
    c_det += false_alarm_part
    best = int(np.argmin(c_det))
    return float(c_det[best] / dcf_normalizer(p_target, c_miss, c_fa)), float(sorted_scores.scores[best])


def compute_eer(sorted_scores: SortedScores) -> tuple[float, float]:
    """Kaldi compute-eer (``ComputeEer``): ``(eer as a proportion, threshold)``.

    With target scores T and non-target scores F sorted ascending, for p = 0, 1, ... while
    p + 1 < |T|: nt = max(|F| - 1 - floor(|F| p / |T|), 0); stop at the first p with F[nt] < T[p].
    EER = p / |T|, threshold T[p] (the last p if the condition never holds).
    """
    targets = sorted_scores.scores[sorted_scores.is_target]
    nontargets = sorted_scores.scores[~sorted_scores.is_target]
    num_t, num_f = len(targets), len(nontargets)
    positions = np.arange(num_t - 1, dtype=np.int64)
    # Kaldi: (ssize_t)(nontarget_size * target_position * 1.0 / target_size), an exact integer product.
    nontarget_n = ((num_f * positions).astype(np.float64) / num_t).astype(np.int64)
    nontarget_pos = np.maximum(num_f - 1 - nontarget_n, 0)
    crossed = np.flatnonzero(nontargets[nontarget_pos] < targets[positions])
    position = int(crossed[0]) if len(crossed) else num_t - 1
    return position / num_t, float(targets[position])


def eer_from_arrays(target_scores, nontarget_scores) -> tuple[float, float]:
    """:func:`compute_eer` on separate target and non-target score arrays."""
    target_scores, nontarget_scores = np.asarray(target_scores), np.asarray(nontarget_scores)
    scores = np.concatenate([target_scores, nontarget_scores])
    labels = np.concatenate([np.ones(len(target_scores), bool), np.zeros(len(nontarget_scores), bool)])
    return compute_eer(SortedScores.from_arrays(scores, labels))


@dataclass
class Summary:
    num_targets: int
    num_nontargets: int
    eer: float                      # proportion
    eer_threshold: float
    min_dcfs: dict                  # name -> (normalised minDCF, threshold)


def summarize(scores, is_target, operating_points=None) -> Summary:
    """EER and the minDCF of each operating point (default :data:`OPERATING_POINTS`) from one sort."""
    return summarize_sorted(SortedScores.from_arrays(scores, is_target), operating_points)


def summarize_sorted(sorted_scores: SortedScores, operating_points=None) -> Summary:
    """:func:`summarize` for scores already sorted."""
    eer, threshold = compute_eer(sorted_scores)
    rates = sorted_scores.error_rates()
    points = OPERATING_POINTS if operating_points is None else operating_points
    dcfs = {name: min_dcf(sorted_scores, *params, rates=rates) for name, params in points.items()}
    return Summary(sorted_scores.num_targets, sorted_scores.num_nontargets, eer, threshold, dcfs)


def normal_cdf(x):
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2, the standard normal CDF, elementwise (``scipy.special.ndtr``)."""
    from scipy.special import ndtr   # scipy.special alone: scipy.stats costs ~0.7-1 s of CPU to import

    return ndtr(np.asarray(x, dtype=np.float64))   # float64 whatever comes in (a float32 loop would round)


def probit(p):
    """probit(p) = Phi^-1(p) = sqrt(2) erfinv(2 p - 1), the inverse of :func:`normal_cdf` (the normal deviate
    of a DET plot's axes), elementwise: -inf at 0, +inf at 1, NaN outside [0, 1] (``scipy.special.ndtri``)."""
    from scipy.special import ndtri

    return ndtri(np.asarray(p, dtype=np.float64))


def det_points(sorted_scores: SortedScores, max_probit: float = 5.0, step: float = 0.005):
    """Points ``(fpr, fnr)`` of the DET curve thinned for plotting.

    The full curve has one point per score; this keeps the points nearest to a grid of
    ``step`` in probit units on both axes (plus both ends), so millions of scores plot quickly
    without losing the tails.
    """
    fnr, fpr = sorted_scores.error_rates()
    grid = normal_cdf(np.arange(-max_probit, max_probit + step, step))
    # fnr rises and fpr falls with the index; searchsorted needs ascending arrays.
    by_fnr = np.searchsorted(fnr, grid)
    by_fpr = len(fpr) - 1 - np.searchsorted(fpr[::-1], grid)
    keep = np.unique(np.clip(np.concatenate([by_fnr, by_fpr, [0, len(fnr) - 1]]), 0, len(fnr) - 1))
    return fpr[keep], fnr[keep]
