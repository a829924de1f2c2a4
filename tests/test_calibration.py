"""Calibration [Brummer2006]: Cllr, minCllr (PAV) and actDCF, the logistic-regression trainer, the
tfspk-calibrate / tfspk-apply-calibration tools, the calibrated score report and the recipe script."""
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.isotonic import IsotonicRegression

from tfspk.backend import calibration as backend_cal
from tfspk.errors import ToolError
from tfspk.metrics import calibration as cal
from tfspk.metrics import detection

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------- references
def cllr_reference(llr, is_target):
    """Cllr written out term by term: mean log2(1 + 1/LR) over targets, log2(1 + LR) over non-targets."""
    llr, is_target = np.asarray(llr, float), np.asarray(is_target, bool)
    with np.errstate(over="ignore"):
        return 0.5 * (np.mean(np.log2(1 + np.exp(-llr[is_target]))) + np.mean(np.log2(1 + np.exp(llr[~is_target]))))


def pav_llr_reference(scores, is_target):
    """Optimal monotonic LLRs from scikit-learn's isotonic regression (equal scores pooled by it)."""
    posterior = IsotonicRegression().fit_transform(scores, np.asarray(is_target, float))
    num_t = np.count_nonzero(is_target)
    with np.errstate(divide="ignore"):
        return np.log(posterior) - np.log1p(-posterior) - np.log(num_t / (len(scores) - num_t))


def min_cllr_reference(scores, is_target):
    llr = pav_llr_reference(scores, is_target)
    is_target = np.asarray(is_target, bool)
    # -inf for a non-target / +inf for a target cost nothing; mask them to avoid inf * 0.
    t = llr[is_target]
    n = llr[~is_target]
    return 0.5 * (np.mean(np.where(np.isinf(t), 0, np.log2(1 + np.exp(-np.clip(t, -700, 700)))))
                  + np.mean(np.where(np.isinf(n), 0, np.log2(1 + np.exp(np.clip(n, -700, 700))))))


def act_dcf_loop(scores, is_target, p, c_miss=1.0, c_fa=1.0):
    theta = math.log(c_fa * (1 - p) / (c_miss * p))
    misses = fas = nt = nn = 0
    for s, t in zip(scores, is_target):
        if t:
            nt += 1
            misses += s < theta
        else:
            nn += 1
            fas += s >= theta
    return (c_miss * p * misses / nt + c_fa * (1 - p) * fas / nn) / min(c_miss * p, c_fa * (1 - p))


def gaussian_trials(rng, num_t, num_n, m1=2.0, m0=-1.0, sd=1.5):
    scores = np.concatenate([rng.normal(m1, sd, num_t), rng.normal(m0, sd, num_n)])
    labels = np.concatenate([np.ones(num_t, bool), np.zeros(num_n, bool)])
    # Exact LLR of two equal-variance Gaussians: linear in the score.
    slope, offset = (m1 - m0) / sd ** 2, (m0 ** 2 - m1 ** 2) / (2 * sd ** 2)
    return scores, labels, slope, offset


# ---------------------------------------------------------------------- Cllr
def test_cllr_hand_worked():
    # LLR 0 everywhere: log2(2) per trial -> exactly 1 bit.
    assert cal.cllr([0.0, 0.0, 0.0], [True, False, False]) == pytest.approx(1.0, abs=1e-15)
    # Target LLR log 3, non-target -log 3: each costs log2(1 + 1/3) -> Cllr = log2(4/3).
    assert cal.cllr([math.log(3), -math.log(3)], [True, False]) == pytest.approx(math.log2(4 / 3), rel=1e-14)
    # Wrong-way LLRs of +-log 3 cost log2(4) = 2 bits each.
    assert cal.cllr([-math.log(3), math.log(3)], [True, False]) == pytest.approx(2.0, rel=1e-14)
    # Means are per class: two targets (log 3 and 0) and one non-target at 0.
    expected = 0.5 * ((math.log2(4 / 3) + 1) / 2 + 1)
    assert cal.cllr([math.log(3), 0.0, 0.0], [True, True, False]) == pytest.approx(expected, rel=1e-14)


def test_cllr_equals_the_written_out_formula_and_survives_huge_llrs():
    rng = np.random.default_rng(3)
    scores, labels, _, _ = gaussian_trials(rng, 300, 900)
    assert cal.cllr(scores, labels) == pytest.approx(cllr_reference(scores, labels), rel=1e-12)
    # exp(1000) overflows a direct formula; the cost of a confident wrong LLR is its size in bits.
    assert cal.cllr([-1000.0, -1000.0], [True, False]) == pytest.approx(0.5 * 1000 / math.log(2), rel=1e-12)


# ---------------------------------------------------------------------- PAV and minCllr
@pytest.mark.parametrize("passes", [0, 1, 30])
def test_pav_equals_sklearn_isotonic_regression(passes):
    rng = np.random.default_rng(passes)
    for n in (1, 2, 3, 7, 50, 400):
        for _ in range(10):
            values = np.round(rng.normal(size=n), 1)      # ties in the values too
            weights = rng.uniform(0.1, 3.0, size=n)
            fit, starts = cal.pav(values, weights, max_vector_passes=passes)
            reference = IsotonicRegression().fit_transform(np.arange(n), values, sample_weight=weights)
            np.testing.assert_allclose(fit, reference, rtol=0, atol=1e-12)
            assert np.all(np.diff(fit) >= 0) and starts[0] == 0


def test_pav_hand_worked_and_adversarial_order():
    fit, starts = cal.pav([1.0, 3.0, 2.0, 0.0, 5.0])
    # 3, 2, 0 violate: pooled (3 + 2 + 0) / 3 = 5/3; 1 < 5/3 stays alone.
    np.testing.assert_array_equal(fit, [1.0, 5 / 3, 5 / 3, 5 / 3, 5.0])
    np.testing.assert_array_equal(starts, [0, 1, 4])
    # 1, 2, ..., 999, 0 needs one pooling per pass: the stack algorithm must finish the job.
    values = np.append(np.arange(1.0, 1000.0), 0.0)
    fit, _ = cal.pav(values, max_vector_passes=5)
    np.testing.assert_allclose(fit, IsotonicRegression().fit_transform(np.arange(1000), values), atol=1e-9)


def test_min_cllr_hand_worked():
    # Sorted labels N T N T: PAV pools the middle pair -> p = 0, 1/2, 1/2, 1; N_t = N_n so
    # llr = -inf, 0, 0, +inf. Costs: target 0 -> 1 bit, +inf -> 0; non-target -inf -> 0, 0 -> 1 bit.
    assert cal.min_cllr([1.0, 2.0, 3.0, 4.0], [False, True, False, True]) == pytest.approx(0.5, abs=1e-15)
    # Separable -> 0; all targets below all non-targets -> one block at the data prior -> llr 0 -> 1.
    assert cal.min_cllr([1.0, 2.0, 3.0], [False, True, True]) == 0.0
    assert cal.min_cllr([1.0, 2.0, 3.0], [True, False, False]) == pytest.approx(1.0, abs=1e-15)
    # Ties are pooled before PAV: scores 1 (T), 1 (N), 2 (T): p(1) = 1/2, p(2) = 1; N_t/N_n = 2 so
    # llr(1) = -log 2, llr(2) = +inf. Targets: log2(3) and 0; non-target: log2(3/2).
    expected = 0.5 * (math.log2(3) / 2 + math.log2(1.5))
    assert cal.min_cllr([1.0, 1.0, 2.0], [True, False, True]) == pytest.approx(expected, rel=1e-14)
    # The tie pooled the other way round gives the same value (order in the input does not matter).
    assert cal.min_cllr([1.0, 2.0, 1.0], [False, True, True]) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("decimals", [None, 1])
def test_min_cllr_and_pav_llrs_equal_isotonic_regression(decimals):
    rng = np.random.default_rng(11)
    for num_t, num_n in ((1, 1), (3, 8), (50, 200), (700, 2100)):
        scores, labels, _, _ = gaussian_trials(rng, num_t, num_n)
        if decimals is not None:
            scores = np.round(scores, decimals)
        np.testing.assert_allclose(cal.pav_llrs(scores, labels), pav_llr_reference(scores, labels), atol=1e-9)
        assert cal.min_cllr(scores, labels) == pytest.approx(min_cllr_reference(scores, labels), abs=1e-12)
        sorted_scores = detection.SortedScores.from_arrays(scores, labels)
        assert cal.min_cllr(sorted_scores) == cal.min_cllr(scores, labels)


def test_min_cllr_is_below_cllr_and_invariant_to_monotonic_maps():
    rng = np.random.default_rng(5)
    scores, labels, slope, offset = gaussian_trials(rng, 500, 1500)
    base = cal.min_cllr(scores, labels)
    for transformed in (scores * 3 - 7, np.exp(scores / 4), slope * scores + offset):
        assert cal.min_cllr(transformed, labels) == pytest.approx(base, abs=1e-12)
        assert cal.cllr(transformed, labels) >= base


# ---------------------------------------------------------------------- actDCF
def test_act_dcf_hand_worked():
    theta = math.log(99.0)                                   # p = 0.01: 4.595
    scores = [5.0, 4.0, 10.0, -1.0, 4.6, theta]
    labels = [True, True, True, False, False, False]
    result = cal.act_dcf(scores, labels, 0.01)
    # Misses: 4.0 < theta (1 of 3). False alarms: 4.6 and theta itself (accepted), 2 of 3.
    assert result["p_miss"] == pytest.approx(1 / 3) and result["p_fa"] == pytest.approx(2 / 3)
    assert result["threshold"] == pytest.approx(theta, rel=1e-15)
    assert result["act_dcf"] == pytest.approx((0.01 / 3 + 0.99 * 2 / 3) / 0.01, rel=1e-12)
    # c_miss = 10: theta = log(0.99 / 0.1) = 2.29, so no miss and still 2 of 3 false alarms;
    # normaliser min(0.1, 0.99) = 0.1.
    result = cal.act_dcf(scores, labels, 0.01, c_miss=10.0)
    assert result["threshold"] == pytest.approx(math.log(9.9))
    assert result["p_miss"] == 0.0 and result["act_dcf"] == pytest.approx(0.99 * 2 / 3 / 0.1, rel=1e-12)


def test_act_dcf_equals_a_loop_and_is_never_below_min_dcf():
    rng = np.random.default_rng(8)
    scores, labels, slope, offset = gaussian_trials(rng, 400, 4000)
    sorted_scores = detection.SortedScores.from_arrays(scores, labels)
    for p in (0.5, 0.1, 0.01, 0.001):
        for llr in (scores, slope * scores + offset):
            actual = cal.act_dcf(llr, labels, p)["act_dcf"]
            assert actual == pytest.approx(act_dcf_loop(llr, labels, p), rel=1e-12)
            assert actual >= detection.min_dcf(detection.SortedScores.from_arrays(llr, labels), p)[0] - 1e-12
    # With the exact LLR the Bayes decisions are near optimal already.
    exact = cal.act_dcf(slope * scores + offset, labels, 0.1)["act_dcf"]
    assert exact <= 1.1 * detection.min_dcf(sorted_scores, 0.1)[0]


def test_bad_metric_inputs_are_tool_errors():
    with pytest.raises(ToolError, match="No non-target"):
        cal.cllr([1.0, 2.0], [True, True])
    with pytest.raises(ToolError, match="No target"):
        cal.min_cllr([1.0, 2.0], [False, False])
    with pytest.raises(ToolError, match="NaN"):
        cal.act_dcf([1.0, np.nan], [True, False])
    with pytest.raises(ToolError, match="p-target"):
        cal.act_dcf([1.0, 0.0], [True, False], 1.0)


# ---------------------------------------------------------------------- the trainer
@pytest.mark.parametrize("prior", [0.5, 0.01, 0.9])
def test_trainer_recovers_the_known_llr_of_gaussian_scores(prior):
    rng = np.random.default_rng(21)
    scores, labels, slope, offset = gaussian_trials(rng, 60000, 180000)
    # Raw scores on another scale: the fit must undo it (llr = slope * (raw - 7) / 3 + offset).
    model = backend_cal.train_linear_calibration(3 * scores + 7, labels, target_prior=prior)
    assert model.scale * 3 == pytest.approx(slope, rel=0.03)
    assert model.scale * 7 + model.offset == pytest.approx(offset, abs=0.05)
    assert model.target_prior == prior


def test_trainer_minimises_the_prior_weighted_objective_like_scipy():
    rng = np.random.default_rng(4)
    scores, labels, _, _ = gaussian_trials(rng, 300, 2000, sd=2.5)
    quality = rng.normal(size=(len(scores), 1)) + labels[:, None] * 0.3
    prior = 0.05
    model = backend_cal.train_linear_calibration(scores, labels, quality, ["min-norm"], target_prior=prior)

    def objective(theta):   # independent statement: Brummer's weighted cross-entropy in nats
        llr = theta[0] * scores + theta[1] + theta[2] * quality[:, 0]
        logit = math.log(prior / (1 - prior))
        return (prior * np.mean(np.log1p(np.exp(-(llr[labels] + logit))))
                + (1 - prior) * np.mean(np.log1p(np.exp(llr[~labels] + logit))))

    reference = minimize(objective, np.zeros(3), method="BFGS", options={"gtol": 1e-10}).x
    ours = np.array([model.scale, model.offset, model.quality_weights["min-norm"]])
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5)
    assert objective(ours) <= objective(reference) + 1e-12
    assert backend_cal.weighted_cross_entropy(model.apply(scores, quality), labels, prior) == \
        pytest.approx(objective(ours), rel=1e-12)


def test_trainer_recovers_a_quality_measure_weight():
    # Both classes shift with q by c: llr = (m1 - m0) (s - c q) + (m0^2 - m1^2) / 2 (unit variance).
    rng = np.random.default_rng(9)
    m1, m0, c = 2.0, 0.0, 1.5
    q = rng.uniform(0, 2, size=200000)
    labels = rng.random(len(q)) < 0.3
    scores = np.where(labels, m1, m0) + c * q + rng.normal(size=len(q))
    model = backend_cal.train_linear_calibration(scores, labels, q[:, None], ["min-log-duration"])
    assert model.scale == pytest.approx(m1 - m0, rel=0.03)
    assert model.quality_weights["min-log-duration"] == pytest.approx(-(m1 - m0) * c, rel=0.03)
    assert model.offset == pytest.approx((m0 ** 2 - m1 ** 2) / 2, abs=0.06)


def test_trainer_refuses_one_class_and_constant_scores():
    with pytest.raises(ToolError, match="0 non-target"):
        backend_cal.train_linear_calibration([1.0, 2.0, 3.0], [True, True, True])
    with pytest.raises(ToolError, match="all equal"):
        backend_cal.train_linear_calibration([1.0, 1.0, 1.0], [True, False, False])
    with pytest.raises(ToolError, match="target-prior"):
        backend_cal.train_linear_calibration([1.0, 2.0], [True, False], target_prior=1.0)


def test_model_file_round_trip_is_exact(tmp_path):
    model = backend_cal.LinearCalibration(1 / 3, -math.pi, 0.01, {"min-log-duration": 0.1, "min-norm": -2e-17})
    path = tmp_path / "model.cal"
    path.write_text(model.to_text())
    assert backend_cal.LinearCalibration.read(str(path)) == model
    assert "type linear" in path.read_text()


@pytest.mark.parametrize("text, message", [
    ("scale 1\noffset 0\n", "no 'type linear'"),
    ("type linear\nscale 1\n", "no 'offset'"),
    ("type linear\nscale x\noffset 0\n", "model.cal:2: expected a number"),
    ("type linear\nscale 1\noffset 0\nquality snr 1\n", "model.cal:4: expected 'quality"),
    ("type linear\nscale 1\noffset 0\nslope 2\n", "model.cal:4: unexpected line"),
])
def test_bad_model_files_name_the_line(tmp_path, text, message):
    path = tmp_path / "model.cal"
    path.write_text(text)
    with pytest.raises(ToolError, match=message):
        backend_cal.LinearCalibration.read(str(path))


# ---------------------------------------------------------------------- the tools


@pytest.fixture
def trial_files(tmp_path):
    """Labelled trials, their scores (Gaussian, raw scale x 4), utt2dur of every utterance."""
    rng = np.random.default_rng(2)
    scores, labels, slope, offset = gaussian_trials(rng, 400, 1600)
    pairs = [(f"e{i % 37}", f"t{i}") for i in range(len(scores))]
    (tmp_path / "trials").write_text("".join(f"{e} {t} {'target' if y else 'nontarget'}\n"
                                             for (e, t), y in zip(pairs, labels)))
    (tmp_path / "scores").write_text("".join(f"{e} {t} {4 * s:.7g}\n" for (e, t), s in zip(pairs, scores)))
    keys = sorted({k for pair in pairs for k in pair})
    (tmp_path / "utt2dur").write_text("".join(f"{k} {rng.uniform(1, 10):.2f}\n" for k in keys))
    return types.SimpleNamespace(dir=tmp_path, pairs=pairs, scores=4 * scores, labels=labels, slope=slope / 4,
                                 offset=offset)


def read_score_lines(path):
    rows = [line.split() for line in open(path)]
    return [(e, t) for e, t, _ in rows], np.array([float(s) for _, _, s in rows])


def test_calibrate_then_apply(tool, trial_files):
    d = trial_files.dir
    result = tool(f"tfspk-calibrate --target-prior=0.5 {d}/trials {d}/scores {d}/model.cal")
    assert "Trained on 400 target and 1600 non-target trials" in result.stderr
    model = backend_cal.LinearCalibration.read(str(d / "model.cal"))
    assert model.scale == pytest.approx(trial_files.slope, rel=0.2)
    tool(f"tfspk-apply-calibration {d}/model.cal {d}/scores {d}/llrs")
    pairs, llrs = read_score_lines(d / "llrs")
    assert pairs == trial_files.pairs
    np.testing.assert_allclose(llrs, model.scale * read_score_lines(d / "scores")[1] + model.offset, rtol=1e-6,
                               atol=1e-6)
    assert cal.cllr(llrs, trial_files.labels) < cal.cllr(trial_files.scores, trial_files.labels)
    # With a quality measure the model gets a line for it and apply needs the same option.
    tool(f"tfspk-calibrate --durations={d}/utt2dur {d}/trials {d}/scores {d}/model_q.cal")
    assert "quality min-log-duration" in (d / "model_q.cal").read_text()
    result = tool(f"tfspk-apply-calibration {d}/model_q.cal {d}/scores {d}/llrs_q", check=False)
    assert result.returncode == 1 and "[min-log-duration]" in result.stderr and not (d / "llrs_q").exists()
    tool(f"tfspk-apply-calibration --durations={d}/utt2dur {d}/model_q.cal {d}/scores {d}/llrs_q")
    assert read_score_lines(d / "llrs_q")[0] == trial_files.pairs


def test_calibrate_with_embedding_norms(tool, trial_files, tmp_path):
    from tfspk.io import ark
    rng = np.random.default_rng(0)
    keys = sorted({k for pair in trial_files.pairs for k in pair})
    with ark.ArchiveWriter(f"ark:{tmp_path}/xv.ark") as writer:
        for key in keys:
            writer.write(key, rng.normal(size=4).astype(np.float32))
    d = trial_files.dir
    tool(f"tfspk-calibrate --vectors=ark:{tmp_path}/xv.ark {d}/trials {d}/scores {d}/model_n.cal")
    assert "quality min-norm" in (d / "model_n.cal").read_text()


def test_calibrate_bad_inputs(tool, trial_files):
    d = trial_files.dir
    # A scores file where the labelled trials belong: the labels are missing.
    result = tool(f"tfspk-calibrate {d}/scores {d}/scores {d}/model.cal", check=False)
    assert result.returncode == 1 and "scores:1: label must be 'target' or 'nontarget', got '9.13432'" in result.stderr
    assert "Traceback" not in result.stderr and not (d / "model.cal").exists()
    # Only target trials scored.
    lines = [line for line in open(d / "scores") if line.split()[0:2] in
             [[e, t] for (e, t), y in zip(trial_files.pairs, trial_files.labels) if y]]
    (d / "targets_only").write_text("".join(lines))
    result = tool(f"tfspk-calibrate {d}/trials {d}/targets_only {d}/model.cal", check=False)
    assert result.returncode == 1 and "400 target and 0 non-target" in result.stderr
    assert not (d / "model.cal").exists()
    # A scored trial the list does not label.
    (d / "extra").write_text("x y 1.0\n")
    result = tool(f"tfspk-calibrate {d}/trials {d}/extra {d}/model.cal", check=False)
    assert result.returncode == 1 and "extra:1: trial 'x y' has no label" in result.stderr
    # Durations missing a key.
    (d / "short_utt2dur").write_text("e0 1.0\n")
    result = tool(f"tfspk-calibrate --durations={d}/short_utt2dur {d}/trials {d}/scores {d}/model.cal", check=False)
    assert result.returncode == 1 and "short_utt2dur has no entry for 't0'" in result.stderr
    assert not (d / "model.cal").exists()


def test_calibrate_warns_about_unscored_trials_and_refuses_too_few(tool, trial_files):
    """5 of 2000 trials scored (4 target, 1 non-target): before, a model giving every trial an LLR near +27
    was written silently; now a warning counts the unscored trials and the tool refuses, naming the minimum."""
    d = trial_files.dir
    targets = [i for i, y in enumerate(trial_files.labels) if y][:4]
    nontargets = [i for i, y in enumerate(trial_files.labels) if not y][:1]
    lines = open(d / "scores").read().splitlines()
    (d / "few").write_text("".join(lines[i] + "\n" for i in sorted(targets + nontargets)))
    result = tool(f"tfspk-calibrate {d}/trials {d}/few {d}/model.cal", check=False)
    assert result.returncode == 1 and not (d / "model.cal").exists()
    assert f"1995 of the 2000 labelled trials of {d}/trials have no score in {d}/few" in result.stderr
    assert ("only 4 target and 1 non-target trials have scores; calibration needs at least 10 of each "
            "(--min-trials-per-class)") in result.stderr, result.stderr
    # the minimum is an option; below it with enough scores: a warning only
    tool(f"tfspk-calibrate --min-trials-per-class=1 {d}/trials {d}/few {d}/model.cal")
    keep = sorted([i for i, y in enumerate(trial_files.labels) if y][:20] + [i for i, y in enumerate(trial_files.labels) if not y][:30])
    (d / "some").write_text("".join(lines[i] + "\n" for i in keep))
    result = tool(f"tfspk-calibrate {d}/trials {d}/some {d}/model2.cal")
    assert "1950 of the 2000 labelled trials" in result.stderr and "Trained on 20 target and 30 non-target" in result.stderr
    bad = tool(f"tfspk-calibrate --min-trials-per-class=0 {d}/trials {d}/some {d}/model3.cal", check=False)
    assert bad.returncode == 1 and "--min-trials-per-class must be >= 1" in bad.stderr


# ---------------------------------------------------------------------- score report
def test_score_report_calibrated_adds_a_table_and_marks_the_plot(tool, trial_files):
    d = trial_files.dir
    tool(f"tfspk-calibrate {d}/trials {d}/scores {d}/model.cal")
    tool(f"tfspk-apply-calibration {d}/model.cal {d}/scores {d}/llrs")
    plain = tool(f"tfspk-score-report --names=raw,cal {d}/trials {d}/scores {d}/llrs").stdout
    assert "Cllr" not in plain
    report = tool(f"tfspk-score-report --calibrated=true --det-plot={d}/det.png --names=raw,cal "
                  f"{d}/trials {d}/scores {d}/llrs").stdout
    assert report.startswith(plain)
    extra = report[len(plain):].splitlines()
    assert extra[0].split() == ["system", "Cllr", "minCllr", "actDCF(0.01)", "minDCF(0.01)", "actDCF(0.001)",
                                "minDCF(0.001)"]
    raw_row, cal_row = (dict(zip(extra[0].split()[1:], map(float, line.split()[1:]))) for line in extra[1:3])
    _, raw_scores = read_score_lines(d / "scores")
    _, llrs = read_score_lines(d / "llrs")
    assert raw_row["Cllr"] == pytest.approx(cal.cllr(raw_scores, trial_files.labels), abs=5e-5)
    assert cal_row["actDCF(0.01)"] == pytest.approx(cal.act_dcf(llrs, trial_files.labels, 0.01)["act_dcf"], abs=5e-5)
    # A monotonic map leaves the minimum metrics alone.
    assert raw_row["minCllr"] == cal_row["minCllr"] and raw_row["minDCF(0.01)"] == cal_row["minDCF(0.01)"]
    assert cal_row["Cllr"] < raw_row["Cllr"]
    assert (d / "det.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------------- the recipe script
def test_calibrate_scores_script_splits_by_speaker_and_reports(tmp_path):
    """steps/calibrate_scores.sh on a synthetic eval set: speaker halves, no cross-half trial, report."""
    rng = np.random.default_rng(6)
    speakers = [f"spk{i:02d}" for i in range(20)]
    utts = [(f"{s}-u{j}", s) for s in speakers for j in range(6)]
    data = tmp_path / "data"
    data.mkdir()
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utts))
    lines, plda, cosine = [], [], []
    for i, (u1, s1) in enumerate(utts):
        for u2, s2 in utts[i + 1:]:
            if s1 == s2 or rng.random() < 0.3:
                target = s1 == s2
                lines.append(f"{u1} {u2} {'target' if target else 'nontarget'}\n")
                plda.append(f"{u1} {u2} {rng.normal(8 if target else -4, 4):.4f}\n")
                cosine.append(f"{u1} {u2} {rng.normal(0.6 if target else 0.1, 0.15):.4f}\n")
    (data / "trials").write_text("".join(lines))
    scores = tmp_path / "scores"
    scores.mkdir()
    (scores / "plda_scores").write_text("".join(plda))
    (scores / "cosine_scores").write_text("".join(cosine))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    out = tmp_path / "calibration"
    run = subprocess.run(["bash", str(REPO / "steps/calibrate_scores.sh"), "--target-prior", "0.05",
                          str(data / "utt2spk"), str(data / "trials"), str(scores), str(out)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr + run.stdout
    cal_spk = set((out / "calibration_speakers").read_text().split())
    test_spk = set((out / "test_speakers").read_text().split())
    assert cal_spk | test_spk == set(speakers) and not cal_spk & test_spk and len(cal_spk) == 10
    spk = dict(utts)
    for name, half in (("trials_calibration", cal_spk), ("trials_test", test_spk)):
        rows = [line.split() for line in open(out / name)]
        assert rows and all(spk[a] in half and spk[b] in half for a, b, _ in rows)
    # Every within-half trial is kept.
    within = [line for line in lines if (spk[line.split()[0]] in test_spk) == (spk[line.split()[1]] in test_spk)]
    assert len(within) == sum(1 for _ in open(out / "trials_calibration")) + sum(1 for _ in open(out / "trials_test"))
    report = (out / "results.txt").read_text()
    for system in ("plda_raw", "plda_calibrated", "cosine_raw", "cosine_calibrated"):
        assert system in report
    assert "actDCF(0.01)" in report and (out / "det.png").exists()
    assert (out / "plda.cal").exists() and (out / "cosine.cal").exists()
    # A missing scores file is named.
    (scores / "cosine_scores").unlink()
    run = subprocess.run(["bash", str(REPO / "steps/calibrate_scores.sh"), str(data / "utt2spk"),
                          str(data / "trials"), str(scores), str(tmp_path / "out2")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode != 0 and "cosine_scores" in run.stderr


def test_calibrate_scores_script_with_too_few_speakers(tmp_path):
    (tmp_path / "utt2spk").write_text("a1 A\na2 A\nb1 B\nb2 B\n")
    (tmp_path / "trials").write_text("a1 a2 target\na1 b1 nontarget\nb1 b2 target\n")
    (tmp_path / "plda_scores").write_text("a1 a2 3\na1 b1 -2\nb1 b2 4\n")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    script = str(REPO / "steps/calibrate_scores.sh")
    args = ["--systems", "plda", str(tmp_path / "utt2spk"), str(tmp_path / "trials"), str(tmp_path), str(tmp_path / "out")]
    run = subprocess.run(["bash", script] + args, capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 1 and "has 2 speakers; at least 4 are needed" in run.stderr
    run = subprocess.run(["bash", script, "--skip-small", "true"] + args, capture_output=True, text=True, env=env,
                         timeout=60)
    assert run.returncode == 0 and "skipping calibration" in run.stderr
    assert not (tmp_path / "out" / "results.txt").exists()
    # A key of the trials without a speaker is named.
    (tmp_path / "trials").write_text("a1 zz nontarget\n")
    run = subprocess.run(["bash", script] + args, capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 1 and "key zz of the trials is not in" in run.stderr
