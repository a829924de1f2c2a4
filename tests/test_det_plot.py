"""DET plots show the whole range the scores reach and keep raw and calibrated curves apart."""
import math
import statistics
import sys

import numpy as np
import pytest
from scipy.stats import norm

from conftest import run
from tfspk.metrics import detection
from tfspk.metrics.det_plot import plot_det, plot_range, spaced_ticks


def _sorted(shift, n_target, n_nontarget, seed=0):
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(shift, 1, n_target), rng.normal(0, 1, n_nontarget)])
    return detection.SortedScores.from_arrays(scores, np.arange(n_target + n_nontarget) < n_target)


def test_a_poor_system_is_not_cut_at_50_percent_miss():
    # Before: the axes ended at 50 %; at 1 % false alarms this system misses ~90 % of the targets.
    curve = detection.det_points(_sorted(0.8, 3000, 30000))
    low, high = plot_range([curve], [1 / 3000])
    fpr, fnr = curve
    miss_at_1 = fnr[np.argmin(np.abs(fpr - 0.01))]
    assert miss_at_1 > 0.8 and high >= miss_at_1
    # every point whose rates are both resolvable (>= 1/3000) is inside the frame
    inside = (fpr >= 1 / 3000) & (fnr >= 1 / 3000)
    assert low <= min(fpr[inside].min(), fnr[inside].min()) and high >= max(fpr[inside].max(), fnr[inside].max())
    assert low >= 1e-4


def test_range_of_a_good_system_stays_tight_and_on_ticks():
    curve = detection.det_points(_sorted(3.5, 500, 5000))
    low, high = plot_range([curve], [1 / 500])
    assert (low, high) != (1e-4, 0.9999) and high <= 0.9 and low >= 1e-3
    assert 100 * low in [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2] and round(100 * high, 2) in (50, 60, 70, 80, 90)


def test_ticks_do_not_crowd():
    ticks = spaced_ticks(1e-4, 0.9999, 0.45)
    probits = norm.ppf(np.array(ticks) / 100)
    assert 50 in ticks and np.all(np.diff(probits) >= 0.45) and len(ticks) >= 8


def test_calibration_plot_writes_a_png_with_equal_curves(tmp_path):
    raw = _sorted(1.0, 300, 3000)
    calibrated = detection.SortedScores.from_arrays(2 * raw.scores - 3, raw.is_target)   # monotone: same curve
    out = tmp_path / "det.png"
    plot_det([("plda_raw", raw), ("plda_calibrated", calibrated)], str(out), "t",
             [(0.0, 1.0), (0.01, 0.6)], "actual decisions")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(Exception, match="2 operating points for 1 systems"):
        plot_det([("a", raw)], str(tmp_path / "x.png"), "t", [(0, 1), (0, 1)])


def test_raw_and_rounded_calibrated_curves_count_as_the_same_and_others_not():
    from tfspk.metrics.det_plot import same_curve
    raw = _sorted(1.0, 2000, 20000)
    rounded = detection.SortedScores.from_arrays(np.round(4 * raw.scores - 3, 2), raw.is_target)   # score-file precision
    other = _sorted(1.5, 2000, 20000, seed=1)
    curves = [detection.det_points(s) for s in (raw, rounded, other)]
    low, high = plot_range(curves)
    assert same_curve(curves[0], curves[1], low, high)
    assert not same_curve(curves[0], curves[2], low, high)


def test_a_perfect_system_gets_a_frame_down_to_its_floor(tmp_path):
    perfect = detection.SortedScores.from_arrays(np.r_[np.arange(30) + 100.0, np.arange(36.0)], np.arange(66) < 30)
    low, high = plot_range([detection.det_points(perfect)], [1 / 30])
    assert low <= 1 / 30 and high == 0.5 and low < high
    plot_det([("perfect", perfect)], str(tmp_path / "p.png"))


def test_probit_and_normal_cdf_match_an_independent_statement_at_the_edges():
    # probit = NormalDist().inv_cdf (Wichura's AS241, pure Python); Phi(x) = erfc(-x / sqrt 2) / 2 (exact in
    # the lower tail, where 1 + erf(x / sqrt 2) would cancel).
    ps = [1e-12, 1e-7, 1e-4, 0.01, 0.5, 0.99, 1 - 1e-4, 1 - 1e-7]
    expected = [statistics.NormalDist().inv_cdf(p) for p in ps]
    np.testing.assert_allclose(detection.probit(np.array(ps)), expected, rtol=1e-12, atol=1e-15)
    assert detection.probit(0.5) == 0.0   # a scalar in, a scalar out (as norm.ppf)
    xs = [-7.0, -5.0, -1.0, 0.0, 0.5, 3.0, 5.0]
    np.testing.assert_allclose(detection.normal_cdf(np.array(xs)), [math.erfc(-x / math.sqrt(2)) / 2 for x in xs],
                               rtol=1e-13, atol=0)
    # the two are inverses over the DET grid's span
    grid = np.linspace(-5, 5, 201)
    np.testing.assert_allclose(detection.probit(detection.normal_cdf(grid)), grid, rtol=0, atol=1e-9)
    # beyond the rates: infinite at 0 and 1 (plot_det clips before), NaN outside [0, 1]
    assert list(detection.probit(np.array([0.0, 1.0]))) == [-np.inf, np.inf]
    assert np.isnan(detection.probit(np.array([-0.1, 1.1]))).all()
    # float32 rates are computed in float64, not rounded by a float32 loop
    rates32 = np.array([1e-7, 0.3], dtype=np.float32)
    out = detection.probit(rates32)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [statistics.NormalDist().inv_cdf(float(p)) for p in rates32], rtol=1e-12)


def test_plot_det_imports_neither_pyplot_nor_scipy_stats(tmp_path):
    # scipy.stats costs 0.7-1 s of CPU to import per tool call (scipy.special suffices); pyplot would switch the
    # backend of a process that runs the tool in-process and keep its figures in a global registry.
    script = f"""
import sys
import numpy as np
from tfspk.metrics import detection
from tfspk.metrics.det_plot import plot_det
scores = np.r_[np.linspace(0, 3, 50), np.linspace(-2, 1, 500)]
plot_det([("s", detection.SortedScores.from_arrays(scores, np.arange(550) < 50))], "{tmp_path}/d.png")
print(sorted(m for m in ("matplotlib.pyplot", "scipy.stats") if m in sys.modules))
"""
    proc = run([sys.executable, "-c", script])
    assert proc.stdout.strip() == "[]", proc.stdout
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
