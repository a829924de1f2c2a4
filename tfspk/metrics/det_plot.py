"""DET curves (miss vs false-alarm probability on normal-deviate axes) drawn with matplotlib.

Martin et al., "The DET curve in assessment of detection task performance", Eurospeech 1997:
both axes show probit(p) = Phi^-1(p), labelled in percent.
"""
from __future__ import annotations

import os

import numpy as np

from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_path
from tfspk.metrics.detection import SortedScores, det_points

_TICKS_PERCENT = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 40, 60, 80, 90, 95, 98, 99]


def plot_det(systems: list[tuple[str, SortedScores]], path: str, title: str = "DET curve",
             operating_points=None, operating_label: str = "actual decisions") -> None:
    """Write a PNG with one DET curve per ``(name, sorted_scores)``, EER marked on each (o) and, when
    ``operating_points`` gives one ``(p_fa, p_miss)`` per system, the actual operating point (x)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    from tfspk.metrics.detection import compute_eer

    if not systems:
        raise ToolError("no systems to plot")
    probit = norm.ppf
    low, high = 0.0005, 0.5
    figure, axes = plt.subplots(figsize=(6, 6))
    if operating_points is not None and len(operating_points) != len(systems):
        raise ToolError(f"{len(operating_points)} operating points for {len(systems)} systems")
    for index, (name, sorted_scores) in enumerate(systems):
        fpr, fnr = det_points(sorted_scores)
        # Clip 0 and 1 (infinite probit) to the plotted range so the curve meets the frame.
        fpr, fnr = np.clip(fpr, 1e-7, 1 - 1e-7), np.clip(fnr, 1e-7, 1 - 1e-7)
        eer, _ = compute_eer(sorted_scores)
        line, = axes.plot(probit(fpr), probit(fnr), label=f"{name} (EER {100 * eer:.2f}%)")
        if eer > 0:
            axes.plot(probit(eer), probit(eer), "o", color=line.get_color())
        if operating_points is not None:
            p_fa, p_miss = np.clip(operating_points[index], 1e-7, 1 - 1e-7)
            axes.plot(probit(p_fa), probit(p_miss), "x", color=line.get_color(), markersize=9,
                      markeredgewidth=2, label=operating_label if index == 0 else None)
    ticks = [t for t in _TICKS_PERCENT if low <= t / 100 <= high]
    for set_ticks, set_labels in ((axes.set_xticks, axes.set_xticklabels), (axes.set_yticks, axes.set_yticklabels)):
        set_ticks(probit(np.array(ticks) / 100))
        set_labels([f"{t:g}" for t in ticks])
    axes.set_xlim(probit(low), probit(high))
    axes.set_ylim(probit(low), probit(high))
    axes.plot([probit(low), probit(high)], [probit(low), probit(high)], ":", color="grey", linewidth=0.8)
    axes.set_xlabel("False alarm probability (%)")
    axes.set_ylabel("Miss probability (%)")
    axes.set_title(title)
    axes.grid(True, linestyle=":", linewidth=0.5)
    axes.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=120)
    except OSError as err:
        raise ToolError(f"cannot write DET plot {path}: {err.strerror}") from None
    finally:
        plt.close(figure)
    if not os.path.getsize(path):
        raise ToolError(f"DET plot {path} is empty")
