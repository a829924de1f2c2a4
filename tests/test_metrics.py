"""EER, minDCF and DET curves against hand-worked cases and independent implementations."""
import numpy as np
import pytest

from tfspk.errors import ToolError
from tfspk.metrics import detection


def kaldi_eer_loop(targets, nontargets):
    """Kaldi ComputeEer transcribed as a plain loop (compute-eer.cc)."""
    t, f = sorted(targets), sorted(nontargets)
    p = 0
    while p + 1 < len(t):
        nt = len(f) - 1 - int(len(f) * p * 1.0 / len(t))
        nt = max(nt, 0)
        if f[nt] < t[p]:
            break
        p += 1
    return p / len(t), t[p]


def compute_min_dcf_loop(scores, labels, p_target, c_miss, c_fa):
    """sid/compute_min_dcf.py transcribed: stable sort, cumulative counts, first minimum."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    fnrs, fprs, misses, rejects = [], [], 0, 0
    n_t = sum(labels)
    n_f = len(labels) - n_t
    for i in order:
        misses += labels[i]
        rejects += 1 - labels[i]
        fnrs.append(misses / float(n_t))
        fprs.append(1 - rejects / float(n_f))
    best, best_thr = float("inf"), None
    for k, i in enumerate(order):
        c = c_miss * fnrs[k] * p_target + c_fa * fprs[k] * (1 - p_target)
        if c < best:
            best, best_thr = c, scores[i]
    return best / min(c_miss * p_target, c_fa * (1 - p_target)), best_thr


def test_eer_hand_worked():
    # p=0: nt=4, F[4]=0.8 !< 0.1; p=1: nt=4-1=3, F[3]=0.7 !< 0.4; p=2: nt=4-2=2, F[2]=0.5 < 0.6 -> EER 2/4.
    eer, thr = detection.eer_from_arrays([0.9, 0.1, 0.6, 0.4], [0.0, 0.2, 0.5, 0.7, 0.8])
    assert eer == 0.5 and thr == 0.6
    assert detection.eer_from_arrays([2.0, 3.0], [0.0, 1.0]) == (0.0, 2.0)
    # Never crossing: the last target position is taken.
    assert detection.eer_from_arrays([0.0, 1.0, 2.0], [5.0, 6.0]) == (2 / 3, 2.0)


def test_eer_equals_kaldi_loop_and_brute_force_crossing():
    rng = np.random.default_rng(0)
    for trial in range(5):
        targets = rng.normal(2.0, 1.0, rng.integers(50, 400))
        nontargets = rng.normal(0.0, 1.0, rng.integers(500, 3000))
        eer, thr = detection.eer_from_arrays(targets, nontargets)
        assert (eer, thr) == kaldi_eer_loop(targets, nontargets)
        # Brute force: threshold sweep, the point where miss and false-alarm rates cross.
        thresholds = np.sort(np.concatenate([targets, nontargets]))
        miss = np.array([(targets < x).mean() for x in thresholds])
        fa = np.array([(nontargets >= x).mean() for x in thresholds])
        crossing = np.argmin(np.abs(miss - fa))
        brute = (miss[crossing] + fa[crossing]) / 2
        assert abs(eer - brute) <= 1.0 / len(targets) + 1.0 / len(nontargets)


def test_min_dcf_hand_worked():
    # Sorted: 0.1 n, 0.2 t, 0.3 n, 0.4 t. Rejecting <= each: (fnr, fpr) = (0, .5) (.5, .5) (.5, 0) (1, 0).
    # p = 0.5: Cdet = .25 .5 .25 .5 -> first minimum .25 at 0.1; C_def = .5 -> 0.5.
    scores, labels = [0.3, 0.2, 0.4, 0.1], [False, True, True, False]
    value, thr = detection.min_dcf(detection.SortedScores.from_arrays(scores, labels), 0.5, 1, 1)
    assert value == pytest.approx(0.5) and thr == 0.1
    # c_miss = 10, p = 0.01: Cdet = 0.1 fnr + 0.99 fpr = .495 .545 .05 .1; C_def = .1 -> 0.5 at 0.3.
    value, thr = detection.min_dcf(detection.SortedScores.from_arrays(scores, labels), 0.01, 10, 1)
    assert value == pytest.approx(0.5) and thr == 0.3


@pytest.mark.parametrize("p_target, c_miss, c_fa", [(0.01, 1, 1), (0.001, 1, 1), (0.01, 10, 1), (0.05, 1, 2)])
def test_min_dcf_equals_kaldi_script_bit_for_bit(p_target, c_miss, c_fa):
    rng = np.random.default_rng(1)
    scores = np.round(np.concatenate([rng.normal(1.5, 1, 300), rng.normal(0, 1, 3000)]), 2)  # ties on purpose
    labels = [1] * 300 + [0] * 3000
    perm = rng.permutation(len(scores))
    scores, labels = scores[perm], [labels[i] for i in perm]
    got = detection.min_dcf(detection.SortedScores.from_arrays(scores, np.array(labels, bool)), p_target, c_miss, c_fa)
    assert got == compute_min_dcf_loop(scores.tolist(), labels, p_target, c_miss, c_fa)


def test_summarize_matches_the_separate_computations():
    rng = np.random.default_rng(2)
    scores = np.concatenate([rng.normal(2, 1, 200), rng.normal(0, 1, 2000)])
    labels = np.arange(2200) < 200
    summary = detection.summarize(scores, labels)
    assert (summary.eer, summary.eer_threshold) == kaldi_eer_loop(scores[labels], scores[~labels])
    for name, (p, cm, cf) in detection.OPERATING_POINTS.items():
        assert summary.min_dcfs[name] == compute_min_dcf_loop(scores.tolist(), labels.astype(int).tolist(), p, cm, cf)
    assert detection.OPERATING_POINTS["minDCF08"] == (0.01, 10.0, 1.0)


def test_bad_metric_inputs():
    with pytest.raises(ToolError, match="No target scores"):
        detection.eer_from_arrays([], [1.0])
    with pytest.raises(ToolError, match="No non-target scores"):
        detection.eer_from_arrays([1.0], [])
    with pytest.raises(ToolError, match="Empty input"):
        detection.SortedScores.from_arrays([], [])
    with pytest.raises(ToolError, match="NaN or infinite"):
        detection.eer_from_arrays([np.nan, 1.0], [0.0])
    with pytest.raises(ToolError, match="--p-target must be greater than 0 and less than 1"):
        detection.check_dcf_params(1.0, 1, 1)


def test_det_points_follow_the_error_rates_and_keep_the_tails():
    rng = np.random.default_rng(3)
    scores = np.concatenate([rng.normal(2, 1, 2000), rng.normal(0, 1, 20000)])
    labels = np.arange(len(scores)) < 2000
    fpr, fnr = detection.det_points(detection.SortedScores.from_arrays(scores, labels))
    assert len(fpr) < len(scores) / 5
    # Every plotted point is the (false alarm, miss) pair of rejecting all scores <= some score.
    order = np.argsort(scores, kind="stable")
    full_miss = np.cumsum(labels[order]) / 2000
    full_fa = 1 - np.cumsum(~labels[order]) / 20000
    exact = set(zip(full_fa.tolist(), full_miss.tolist()))
    assert all(pair in exact for pair in zip(fpr.tolist(), fnr.tolist()))
    assert np.all(np.diff(fnr) >= 0) and np.all(np.diff(fpr) <= 0)
    # Both ends and the low false-alarm tail (below 0.1%) are kept.
    assert fnr[0] == full_miss[0] and fpr[-1] == 0 and fnr[-1] == 1
    assert np.count_nonzero((fpr > 0) & (fpr < 1e-3)) >= 10


def test_det_plot_writes_a_png(tmp_path):
    from tfspk.metrics.det_plot import plot_det
    rng = np.random.default_rng(4)
    systems = []
    for shift in (1.0, 2.0):
        scores = np.concatenate([rng.normal(shift, 1, 300), rng.normal(0, 1, 3000)])
        systems.append((f"sys{shift}", detection.SortedScores.from_arrays(scores, np.arange(3300) < 300)))
    out = tmp_path / "det.png"
    plot_det(systems, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


@pytest.mark.parametrize("decimals", [None, 1, 3])
def test_sorted_scores_equal_a_stable_argsort_even_with_ties(decimals):
    rng = np.random.default_rng(5)
    scores = rng.normal(0, 1, 20000)
    if decimals is not None:
        scores = np.round(scores, decimals)  # many target/non-target ties
    labels = rng.random(20000) < 0.1
    order = np.argsort(scores, kind="stable")
    got = detection.SortedScores.from_arrays(scores, labels)
    assert np.array_equal(got.scores, scores[order]) and np.array_equal(got.is_target, labels[order])
