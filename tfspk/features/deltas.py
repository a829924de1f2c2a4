"""Kaldi's ``add-deltas`` as a registered post-processing step (``features.post: [add_deltas]``).

Kaldi ``DeltaFeatures`` (``feature-functions.cc``): the coefficients of order 0 are the kernel ``[1]``;
the kernel of order ``i`` is the kernel of order ``i - 1`` convolved with ``[-N, ..., N] / sum_{n=-N}^{N}
n^2`` (``N`` = ``--delta-window``), so it has ``2 i N + 1`` taps. Output frame ``t`` is
``[c_0(t), c_1(t), ..., c_order(t)]`` with ``c_i(t) = sum_j k_i[j] x[clamp(t + j - iN, 0, T - 1)]``: the
kernel is applied to the input with the edge frames repeated (not the order ``i - 1`` output), so
``dim = in_dim * (order + 1)``. Kaldi's defaults: ``--delta-order=2 --delta-window=2``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfspk.errors import ToolError
from tfspk.features.registry import POST_STEPS, PostStep
from tfspk.params import param


@dataclass
class DeltaParams:
    order: int = param(2, "order of the deltas (Kaldi --delta-order)")
    window: int = param(2, "context N of each delta's regression, in frames (Kaldi --delta-window)")

    def validate(self, owner: str) -> None:
        if self.order < 0:
            raise ToolError(f"{owner}: parameter 'order' must be >= 0, got {self.order}")
        if self.window < 1:
            raise ToolError(f"{owner}: parameter 'window' must be >= 1, got {self.window}")


def delta_kernels(order: int, window: int) -> list[np.ndarray]:
    """Kaldi's ``scales_``: the kernel of each order 0..order (float64)."""
    regression = np.arange(-window, window + 1, dtype=np.float64)
    regression /= float(np.sum(regression ** 2))
    kernels = [np.ones(1)]
    for _ in range(order):
        kernels.append(np.convolve(kernels[-1], regression))
    return kernels


def delta_taps(order: int, window: int) -> list[list[tuple[int, np.float32]]]:
    """For each order 0..order, the non-zero taps of its kernel as ``(first row, float32 scale)`` into the
    input padded with ``order * window`` repeated edge frames on each side: ``c_i`` is the sum over the
    taps of ``scale * padded[first:first + T]`` (the numpy and TensorFlow forms share them)."""
    reach = order * window
    taps = []
    for kernel in delta_kernels(order, window):
        half = (len(kernel) - 1) // 2
        taps.append([(reach - half + j, scale) for j, scale in enumerate(kernel.astype(np.float32)) if scale != 0.0])
    return taps


@POST_STEPS.register("add_deltas", "deltas")
class AddDeltas(PostStep):
    """Kaldi ``add-deltas``: the features followed by their deltas of orders 1..order."""
    Params = DeltaParams

    @classmethod
    def dim(cls, params: DeltaParams, in_dim: int) -> int:
        return in_dim * (params.order + 1)

    @classmethod
    def apply(cls, params: DeltaParams, feats: np.ndarray) -> np.ndarray:
        feats = np.asarray(feats, dtype=np.float32)
        count = feats.shape[0]
        if count == 0:
            return np.zeros((0, cls.dim(params, feats.shape[1])), np.float32)
        reach = params.order * params.window
        padded = feats[np.clip(np.arange(-reach, count + reach), 0, count - 1)]
        blocks = []
        for taps in delta_taps(params.order, params.window):
            out = np.zeros_like(feats)
            for start, scale in taps:
                out += scale * padded[start:start + count]
            blocks.append(out)
        return np.concatenate(blocks, axis=1)

    @classmethod
    def tensorflow(cls, params: DeltaParams, feats):
        import tensorflow as tf
        count = tf.shape(feats)[0]
        reach = params.order * params.window
        index = tf.clip_by_value(tf.range(-reach, count + reach), 0, tf.maximum(count - 1, 0))
        # a zero row after the data: the index reaches it only when there are no frames
        source = tf.concat([feats, tf.zeros([1, tf.shape(feats)[1]], feats.dtype)], axis=0)
        padded = tf.gather(source, index)
        blocks = []
        for taps in delta_taps(params.order, params.window):
            out = tf.zeros_like(feats)
            for start, scale in taps:
                out = out + float(scale) * padded[start:start + count]
            blocks.append(out)
        return tf.concat(blocks, axis=1)
