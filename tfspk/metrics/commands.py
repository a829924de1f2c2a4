"""The metric tools as library functions (the ``tfspk-*`` entry points only parse options and print)."""
from __future__ import annotations

import os
from typing import Sequence

from tfspk import cli
from tfspk.io import table as tables
from tfspk.errors import ToolError
from tfspk.metrics import calibration, detection, scorefiles

REPORT_COLUMNS = ("EER(%)", "minDCF(0.01)", "minDCF(0.001)", "minDCF08")
CALIBRATION_COLUMNS = ("Cllr", "minCllr", "actDCF(0.01)", "minDCF(0.01)", "actDCF(0.001)", "minDCF(0.001)")
# The Bayes decision point marked on the DET plot of calibrated scores.
DET_OPERATING_POINT = 0.01


def compute_eer(scores_rxfilename: str) -> tuple[float, float]:
    """Kaldi ``compute-eer`` on ``<score> target|nontarget`` lines: ``(eer proportion, threshold)``."""
    scores, is_target = scorefiles.read_scores_with_labels(scores_rxfilename)
    eer, threshold = detection.compute_eer(detection.SortedScores.from_arrays(scores, is_target))
    cli.log(f"Equal error rate is {100.0 * eer:.6g}%, at threshold {threshold:.6g}")
    return eer, threshold


def compute_min_dcf(scores_filename: str, trials_filename: str, p_target: float = 0.01,
                    c_miss: float = 1.0, c_fa: float = 1.0) -> tuple[float, float]:
    """Kaldi ``sid/compute_min_dcf.py``: ``(normalised minDCF, threshold)``."""
    detection.check_dcf_params(p_target, c_miss, c_fa)
    labels = tables.read_labelled_trials(trials_filename)
    scores, is_target = scorefiles.match_scores_to_trials(scores_filename, labels, cli.warn)
    return detection.min_dcf(detection.SortedScores.from_arrays(scores, is_target), p_target, c_miss, c_fa)


def format_report(rows) -> str:
    """A fixed-width table, one row per system ``(name, detection.Summary)``."""
    width = max(8, *(len(name) for name, _ in rows))
    lines = [f"{'system':<{width}}  {'#target':>8}  {'#nontarget':>10}  "
             + "  ".join(f"{c:>13}" for c in REPORT_COLUMNS)]
    for name, summary in rows:
        values = [100 * summary.eer] + [summary.min_dcfs[c][0] for c in REPORT_COLUMNS[1:]]
        lines.append(f"{name:<{width}}  {summary.num_targets:>8}  {summary.num_nontargets:>10}  "
                     + "  ".join(f"{v:>13.4f}" for v in values))
    lines.append("EER: Kaldi compute-eer. minDCF: normalised as in Kaldi sid/compute_min_dcf.py; minDCF(p) has "
                 "c_miss = c_fa = 1; minDCF08 (SRE08) has p = 0.01, c_miss = 10, c_fa = 1 (unnormalised = "
                 "normalised x 0.1).")
    return "\n".join(lines) + "\n"


def format_calibration_report(rows) -> str:
    """The second table of ``--calibrated=true``: one row per system ``(name, dict of CALIBRATION_COLUMNS)``."""
    width = max(8, *(len(name) for name, _ in rows))
    lines = [f"{'system':<{width}}  " + "  ".join(f"{c:>13}" for c in CALIBRATION_COLUMNS)]
    for name, values in rows:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{values[c]:>13.4f}" for c in CALIBRATION_COLUMNS))
    lines.append("Scores read as natural-log LLRs [Brummer2006]: Cllr and minCllr (after PAV) in bits; actDCF(p) "
                 "decides target iff score >= log((1 - p) / p) (c_miss = c_fa = 1), normalised as minDCF.")
    return "\n".join(lines) + "\n"


def _calibration_row(scores, is_target, sorted_scores, summary) -> dict:
    row = {"Cllr": calibration.cllr(scores, is_target), "minCllr": calibration.min_cllr(sorted_scores)}
    for p in (0.01, 0.001):
        row[f"actDCF({p:g})"] = calibration.act_dcf(scores, is_target, p)["act_dcf"]
        row[f"minDCF({p:g})"] = summary.min_dcfs[f"minDCF({p:g})"][0]
    return row


def score_report(trials_rxfilename: str, scores_files: Sequence[str], names: Sequence[str] = (),
                 det_plot: str = "", det_title: str = "DET curve", calibrated: bool = False) -> str:
    """EER and minDCFs of each scores file as a table; optionally all DET curves in one PNG.

    With ``calibrated`` the scores are read as LLRs: a second table gives Cllr, minCllr and the actual
    DCFs next to the minimum ones, and the DET plot marks each system's actual operating point at the
    Bayes threshold of p_target = :data:`DET_OPERATING_POINT`.
    """
    names = list(names) or [os.path.basename(path) for path in scores_files]
    if len(names) != len(scores_files):
        raise ToolError(f"--names gives {len(names)} names for {len(scores_files)} scores files")
    labels = tables.read_labelled_trials(trials_rxfilename)
    rows, curves, calibration_rows, points = [], [], [], []
    for name, path in zip(names, scores_files):
        scores, is_target = scorefiles.match_scores_to_trials(path, labels, cli.warn)
        sorted_scores = detection.SortedScores.from_arrays(scores, is_target)
        rows.append((name, detection.summarize_sorted(sorted_scores)))
        curves.append((name, sorted_scores))
        if calibrated:
            calibration_rows.append((name, _calibration_row(scores, is_target, sorted_scores, rows[-1][1])))
            actual = calibration.act_dcf(scores, is_target, DET_OPERATING_POINT)
            points.append((actual["p_fa"], actual["p_miss"]))
    if det_plot:
        from tfspk.metrics.det_plot import plot_det  # matplotlib only when a plot is asked for
        plot_det(curves, det_plot, det_title, points if calibrated else None,
                 f"actual decisions at p_target={DET_OPERATING_POINT:g}")
        cli.log(f"Wrote DET curves to {det_plot}")
    report = format_report(rows)
    if calibrated:
        report += format_calibration_report(calibration_rows)
    return report
