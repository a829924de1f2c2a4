"""Sliding-window cepstral mean (and variance) normalisation, Kaldi ``apply-cmvn-sliding``.

Kaldi's ``SlidingWindowCmnInternal`` keeps running sums while the window slides; here the
window sums are differences of one cumulative sum (float64, as Kaldi's double accumulators),
which is the same arithmetic up to float64 rounding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfspk.errors import ToolError


@dataclass
class SlidingCmnOptions:
    """Kaldi ``SlidingWindowCmnOptions`` defaults (the recipe passes 300 / center / no var-norm)."""
    cmn_window: int = 600
    min_cmn_window: int = 100
    center: bool = False
    norm_vars: bool = False

    def validate(self) -> None:
        if self.cmn_window <= 0:
            raise ToolError(f"--cmn-window must be positive, got {self.cmn_window}")
        # Kaldi's SlidingWindowCmnOptions::Check() tests min-cmn-window only with --center.
        if self.center and not 0 < self.min_cmn_window <= self.cmn_window:
            raise ToolError(f"--min-cmn-window must be in [1, --cmn-window={self.cmn_window}], "
                            f"got {self.min_cmn_window}")


def sliding_windows(num_frames: int, cmn_window: int, center: bool,
                    min_cmn_window: int) -> tuple[np.ndarray, np.ndarray]:
    """Kaldi's normalisation window ``[start, end)`` for every frame t of an utterance.

    center: start = t - window // 2, end = start + window;
    otherwise: start = t - window, end = t + 1 (window + 1 frames once t >= window).
    A window starting before 0 is shifted right; without center its end is then
    max(t + 1, min_cmn_window). A window ending after T is shifted left and clipped at 0.
    """
    return window_bounds(np.arange(num_frames), num_frames, cmn_window, center, min_cmn_window, np)


def window_bounds(frames, num_frames, cmn_window: int, center: bool, min_cmn_window: int, xp):
    """:func:`sliding_windows` for the frame indices ``frames`` (``0..num_frames - 1``) with the array module
    ``xp`` (numpy, or tensorflow for the exported graph: ``tfspk.export.tf_features.sliding_cmn_tf``)."""
    if center:
        start = frames - cmn_window // 2
        end = start + cmn_window
    else:
        start = frames - cmn_window
        end = frames + 1
    shift_right = xp.maximum(-start, 0)
    start, end = start + shift_right, end + shift_right
    if not center:
        end = xp.where(end > frames, xp.maximum(frames + 1, min_cmn_window), end)
    overshoot = xp.maximum(end - num_frames, 0)
    start = xp.maximum(start - overshoot, 0)
    end = end - overshoot
    return start, end


def apply_cmvn_sliding(feats: np.ndarray, cmn_window: int = 600, center: bool = False,
                       norm_vars: bool = False, min_cmn_window: int = 100) -> np.ndarray:
    """float32 ``[T, D]``: each row minus the mean of its window (see :func:`sliding_windows`).

    With ``norm_vars`` the row is also divided by the window's standard deviation
    (variance = E[x^2] - E[x]^2 floored at 1e-10; a one-frame window gives zeros), as Kaldi.
    """
    SlidingCmnOptions(cmn_window, min_cmn_window, center, norm_vars).validate()
    feats = np.asarray(feats)
    if feats.ndim != 2:
        raise ToolError(f"apply_cmvn_sliding: expected a [frames, dim] matrix, got shape {feats.shape}")
    num, dim = feats.shape
    if num == 0:
        return np.zeros((0, dim), dtype=np.float32)
    data = feats.astype(np.float64)
    start, end = sliding_windows(num, cmn_window, center, min_cmn_window)
    count = (end - start).astype(np.float64)[:, None]
    sums = _window_sums(data, start, end)
    output = data - sums / count
    if norm_vars:
        squares = _window_sums(data * data, start, end)
        variance = np.maximum(squares / count - (sums / count) ** 2, 1e-10)
        output = np.where(count == 1, 0.0, output / np.sqrt(variance))
    return output.astype(np.float32)


def _window_sums(data: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    cumulative = np.zeros((data.shape[0] + 1, data.shape[1]), dtype=np.float64)
    np.cumsum(data, axis=0, out=cumulative[1:])
    return cumulative[end] - cumulative[start]
