"""DET curves (miss vs false-alarm probability on normal-deviate axes) drawn with matplotlib.

Martin et al., "The DET curve in assessment of detection task performance", Eurospeech 1997:
both axes show probit(p) = Phi^-1(p), labelled in percent.
"""
from __future__ import annotations

import os

import numpy as np

from tfspk.cli import require_extra
from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_path
from tfspk.metrics.detection import SortedScores, det_points, probit

_TICKS_PERCENT = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99, 99.5,
                  99.8, 99.9, 99.95, 99.98, 99.99]
# The axes never go below this rate.
_FLOOR = 1e-4


def plot_range(curves, floors=None) -> tuple[float, float]:
    """Axis limits (the same on both axes) that hold every point of every DET curve ``(fpr, fnr)`` whose two
    rates are at least the curve's floor (default ``_FLOOR``; :func:`plot_det` passes the smallest rate its
    trials resolve, one error in the smaller class), widened to the nearest ticks: the whole range the scores
    reach, however poor the system (a curve with 80 % misses at 1 % false alarms is not cut at 50 %), and
    down to the floor, however good."""
    low, high = 0.5, 0.5
    for index, (fpr, fnr) in enumerate(curves):
        floor = max(_FLOOR, floors[index] if floors is not None else 0.0)
        low = min(low, floor)   # a curve can reach its floor (a perfect system runs along the frame there)
        inside = (fpr >= floor) & (fnr >= floor)
        if inside.any():
            rates = np.concatenate([fpr[inside], fnr[inside]])
            low, high = min(low, float(rates.min())), max(high, float(rates.max()))
    ticks = np.array(_TICKS_PERCENT) / 100
    low = float(ticks[ticks <= low * (1 + 1e-9)].max(initial=ticks[0]))
    high = float(ticks[ticks >= high * (1 - 1e-9)].min(initial=ticks[-1]))
    return low, high


def spaced_ticks(low: float, high: float, min_gap: float) -> list[float]:
    """The ticks (percent) within [low, high] no closer than ``min_gap`` probit units, kept from 50 % outward
    (the tails' ticks crowd on a probit axis)."""
    candidates = sorted((t for t in _TICKS_PERCENT if low <= t / 100 <= high), key=lambda t: abs(t - 50))
    kept = []
    for tick in candidates:
        if all(abs(probit(tick / 100) - probit(k / 100)) >= min_gap for k in kept):
            kept.append(tick)
    return sorted(kept)


def same_curve(a, b, low: float, high: float, tolerance: float = 0.05) -> bool:
    """True if DET curves ``a`` and ``b`` (``(fpr, fnr)``) lie within ``tolerance`` probit units of each other
    at 95 % of a's points in the plotted range: b's miss rate interpolated at a's false-alarm rates (score
    files round the scores, so raw and calibrated curves differ in a few ties, which the sparse tails show
    as steps)."""
    (fpr_a, fnr_a), (fpr_b, fnr_b) = a, b
    inside = (fpr_a >= low) & (fpr_a <= high) & (fnr_a >= low) & (fnr_a <= high)
    if not inside.any():
        return False
    x_a, y_a = probit(fpr_a[inside]), probit(fnr_a[inside])
    order = np.argsort(fpr_b, kind="stable")   # interp needs ascending x; fpr falls along the curve
    x_b = probit(np.clip(fpr_b[order], 1e-9, 1 - 1e-9))
    y_b = probit(np.clip(fnr_b[order], 1e-9, 1 - 1e-9))
    return bool(np.quantile(np.abs(np.interp(x_a, x_b, y_b) - y_a), 0.95) <= tolerance)


def plot_det(systems: list[tuple[str, SortedScores]], path: str, title: str = "DET curve",
             operating_points=None, operating_label: str = "actual decisions") -> None:
    """Write a PNG with one DET curve per ``(name, sorted_scores)``, EER marked on each (o) and, when
    ``operating_points`` gives one ``(p_fa, p_miss)`` per system, the actual operating point (x) with its
    rates in the legend (below the plot, so no label covers a curve). A curve equal to an earlier one (raw and
    linearly calibrated scores: calibration is monotone) is drawn dashed over it and says so."""
    require_extra("matplotlib", "plot", "a DET plot")
    # The object API on an Agg canvas, not pyplot: nothing global (no backend switch of the calling process, no
    # figure registry whose figures must be closed). It imports no faster: matplotlib.figure is most of pyplot.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from tfspk.metrics.detection import compute_eer

    if not systems:
        raise ToolError("no systems to plot")
    if operating_points is not None and len(operating_points) != len(systems):
        raise ToolError(f"{len(operating_points)} operating points for {len(systems)} systems")
    curves = [det_points(sorted_scores) for _, sorted_scores in systems]
    low, high = plot_range(curves, [1.0 / max(1, min(ss.num_targets, ss.num_nontargets)) for _, ss in systems])
    edge = (probit(low), probit(high))
    figure = Figure(figsize=(6.4, 7.6))
    FigureCanvasAgg(figure)   # attaches itself as figure.canvas
    axes = figure.subplots()
    for index, ((name, sorted_scores), (fpr, fnr)) in enumerate(zip(systems, curves)):
        same_as = next((systems[j][0] for j in range(index) if same_curve(curves[j], (fpr, fnr), low, high)), None)
        eer, _ = compute_eer(sorted_scores)
        label = f"{name}: EER {100 * eer:.2f}% (o)"
        if same_as:
            label += f", same curve as {same_as}"
        if operating_points is not None:
            p_fa, p_miss = (float(v) for v in operating_points[index])
            label += f"; {operating_label} (x): P_fa {100 * p_fa:.3g}%, P_miss {100 * p_miss:.3g}%"
            if not (low <= p_fa <= high and low <= p_miss <= high):
                label += " (outside: on the frame)"
        # Rates beyond the frame (0 and 1 have an infinite probit) are drawn on it, so every curve shows.
        x, y = (np.clip(probit(np.clip(v, 1e-7, 1 - 1e-7)), *edge) for v in (fpr, fnr))
        line, = axes.plot(x, y, "--" if same_as else "-", linewidth=1.3 if same_as else 2.4, label=label,
                          clip_on=False)
        if eer > 0:
            axes.plot(probit(eer), probit(eer), "o", color=line.get_color())
        if operating_points is not None:
            point = [float(np.clip(probit(np.clip(v, 1e-7, 1 - 1e-7)), *edge)) for v in (p_fa, p_miss)]
            axes.plot(*point, "x", color=line.get_color(), markersize=9, markeredgewidth=2, clip_on=False)
    ticks = spaced_ticks(low, high, (edge[1] - edge[0]) / 16)
    for set_ticks, set_labels in ((axes.set_xticks, axes.set_xticklabels), (axes.set_yticks, axes.set_yticklabels)):
        set_ticks(probit(np.array(ticks) / 100))
        set_labels([f"{t:g}" for t in ticks], fontsize="small")
    axes.set_xlim(*edge)
    axes.set_ylim(*edge)
    axes.set_aspect("equal")
    axes.plot(edge, edge, ":", color="grey", linewidth=0.8)
    axes.set_xlabel("False alarm probability (%)")
    axes.set_ylabel("Miss probability (%)")
    axes.set_title(title, fontsize="medium")
    axes.grid(True, linestyle=":", linewidth=0.5)
    legend = axes.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), fontsize="x-small", frameon=False)
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight", bbox_extra_artists=[legend])
    except OSError as err:
        raise ToolError(f"cannot write DET plot {path}: {err.strerror}") from None
    if not os.path.getsize(path):
        raise ToolError(f"DET plot {path} is empty")
