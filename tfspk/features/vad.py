"""Energy voice activity detection and voiced-frame selection (Kaldi ``compute-vad``,
``select-voiced-frames``), vectorised with cumulative sums.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfspk.errors import ToolError


@dataclass
class VadOptions:
    """Kaldi ``VadEnergyOptions`` with the binary's defaults (the recipe's conf/vad.conf uses
    5.5 / 0.5 / 0.12 / 2)."""
    vad_energy_threshold: float = 5.0
    vad_energy_mean_scale: float = 0.5
    vad_frames_context: int = 0
    vad_proportion_threshold: float = 0.6

    def validate(self) -> None:
        if self.vad_energy_mean_scale < 0:
            raise ToolError(f"--vad-energy-mean-scale must be >= 0, got {self.vad_energy_mean_scale}")
        if self.vad_frames_context < 0:
            raise ToolError(f"--vad-frames-context must be >= 0, got {self.vad_frames_context}")
        if not 0.0 < self.vad_proportion_threshold < 1.0:
            raise ToolError("--vad-proportion-threshold must be strictly between 0 and 1, "
                            f"got {self.vad_proportion_threshold}")


def compute_vad(feats: np.ndarray, energy_threshold: float = 5.0, energy_mean_scale: float = 0.5,
                proportion_threshold: float = 0.6, frames_context: int = 0) -> np.ndarray:
    """Kaldi ``ComputeVadEnergy``: float32 ``[T]`` of 1.0 (voiced) / 0.0.

    E[t] = feats[t, 0] (log energy); thr = energy_threshold + energy_mean_scale * mean(E);
    frame t is voiced when, in the window [t - C, t + C] clipped to [0, T), the number of
    frames with E > thr is >= proportion_threshold * (window length).
    Kaldi's arithmetic is float32 (``BaseFloat``), kept here for the comparisons.
    """
    VadOptions(energy_threshold, energy_mean_scale, frames_context, proportion_threshold).validate()
    feats = np.asarray(feats)
    if feats.ndim != 2 or feats.shape[1] < 1:
        raise ToolError(f"compute_vad: expected a [frames, dim] matrix with dim >= 1, got shape {feats.shape}")
    num = feats.shape[0]
    if num == 0:
        return np.zeros(0, dtype=np.float32)
    log_energy = feats[:, 0].astype(np.float32)
    threshold = np.float32(energy_threshold)
    if energy_mean_scale != 0.0:
        # Kaldi: threshold += mean_scale * log_energy.Sum() / T, in that order, in float32
        total = np.float32(log_energy.sum(dtype=np.float64))
        threshold = np.float32(threshold + np.float32(np.float32(energy_mean_scale) * total) / np.float32(num))
    above = np.concatenate(([0], np.cumsum(log_energy > threshold)))
    frames = np.arange(num)
    first = np.maximum(frames - frames_context, 0)
    last = np.minimum(frames + frames_context, num - 1)
    count_above = above[last + 1] - above[first]
    window = (last - first + 1).astype(np.float32)
    voiced = count_above >= window * np.float32(proportion_threshold)
    return voiced.astype(np.float32)


def select_voiced_frames(feats: np.ndarray, vad: np.ndarray, name: str = "") -> np.ndarray:
    """Kaldi ``select-voiced-frames``: the rows of ``feats`` whose VAD value is > 0.5.

    ``vad`` must have one value per row (ToolError naming ``name`` otherwise).
    """
    feats = np.asarray(feats)
    vad = np.asarray(vad).reshape(-1)
    if feats.ndim != 2 or feats.shape[0] != vad.shape[0]:
        label = f"utterance '{name}': " if name else ""
        raise ToolError(f"{label}mismatch in number of frames: {feats.shape[0] if feats.ndim else 0} "
                        f"for the features and {vad.shape[0]} for the VAD")
    return feats[vad > 0.5]
