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
            # A point outside the frame (e.g. P_miss near 1 for a poor system) is drawn on the frame
            # edge with its true rates written next to it, so it is never silently invisible.
            p_fa, p_miss = (float(v) for v in operating_points[index])
            x, y = (float(np.clip(probit(np.clip(v, 1e-7, 1 - 1e-7)), probit(low), probit(high)))
                    for v in (p_fa, p_miss))
            axes.plot(x, y, "x", color=line.get_color(), markersize=9, markeredgewidth=2, clip_on=False,
                      label=operating_label if index == 0 else None)
            if not (low <= p_fa <= high and low <= p_miss <= high):
                axes.annotate(f"P_fa {100 * p_fa:.3g}%, P_miss {100 * p_miss:.3g}%", (x, y), fontsize="x-small",
                              color=line.get_color(), xytext=(-6, -12 - 9 * index), textcoords="offset points",
                              ha="right" if x > 0 else "left")
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
    axes.legend(loc="upper right" if operating_points is None else "lower left", fontsize="small")
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
