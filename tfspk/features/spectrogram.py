"""Log power spectrograms as Kaldi's ``compute-spectrogram-feats`` computes them (numpy, vectorised).

kaldi-native-fbank has no spectrogram, so the frame processing of Kaldi's ``feature-window.cc`` is
restated here over all frames at once:

* frame ``f`` starts at ``f * shift`` (``--snip-edges=true``) or at ``f * shift + shift // 2 -
  window // 2`` with the signal reflected at both edges (``--snip-edges=false``); the number of
  frames is :func:`tfspk.features.mfcc.num_frames`;
* per frame: DC offset removed (``--remove-dc-offset``), raw log energy ``log(max(sum x^2, eps))``,
  pre-emphasis ``x[i] -= p x[i-1]`` (``x[0] -= p x[0]``), window function, zero padding to
  ``padded_window_size``;
* ``feature-spectrogram.cc``: power spectrum ``|X_k|^2`` of the real FFT, ``k = 0 .. N/2``, floored
  at float epsilon, natural log; component 0 is replaced by the log energy (raw, before
  pre-emphasis and window, by default; of the windowed frame with ``--raw-energy=false``), floored at
  ``log(--energy-floor)`` when the floor is positive. ``--return-raw-fft=true`` returns the FFT in
  Kaldi's packed layout ``[Re X_0, Re X_{N/2}, Re X_1, Im X_1, ...]`` instead.

Dimension: ``padded_window_size / 2 + 1``, e.g. 161 for a 20 ms window at 16 kHz with
``--round-to-power-of-two=false`` (the input of the ResCNN of [Zhou2020]).
The arithmetic is float64 (Kaldi's is float32), so outputs agree with Kaldi's to float32 rounding.
"""
from __future__ import annotations

import math

import numpy as np

from tfspk.features.options import FrameOptions, SpectrogramOptions

FLOAT_EPSILON = float(np.finfo(np.float32).eps)


def window_function(frame: FrameOptions) -> np.ndarray:
    """Kaldi ``FeatureWindowFunction`` of ``frame.window_size_samples`` points (float64)."""
    length = frame.window_size_samples
    a = 2.0 * math.pi / (length - 1)
    phase = a * np.arange(length)
    kind = frame.window_type
    shapes = {
        "hanning": lambda: 0.5 - 0.5 * np.cos(phase),
        "sine": lambda: np.sin(0.5 * phase),
        "hamming": lambda: 0.54 - 0.46 * np.cos(phase),
        "povey": lambda: (0.5 - 0.5 * np.cos(phase)) ** 0.85,
        "rectangular": lambda: np.ones(length),
        "blackman": lambda: (frame.blackman_coeff - 0.5 * np.cos(phase)
                             + (0.5 - frame.blackman_coeff) * np.cos(2.0 * phase)),
    }
    return shapes[kind]()


def frame_indices(num_samples: int, num_frames: int, frame: FrameOptions) -> np.ndarray:
    """Sample index of every (frame, position) pair, reflected at the edges as Kaldi's ExtractWindow."""
    shift, length = frame.window_shift_samples, frame.window_size_samples
    starts = np.arange(num_frames) * shift
    if not frame.snip_edges:
        starts = starts + shift // 2 - length // 2
    index = starts[:, None] + np.arange(length)[None, :]
    # Reflection "s -> -s - 1" below 0 and "s -> 2n - 1 - s" above n - 1, repeated until inside;
    # it is periodic with period 2n, so one modulo and one fold do the same.
    period = 2 * num_samples
    index = np.mod(index, period)
    return np.where(index >= num_samples, period - 1 - index, index)


def process_frames(frames: np.ndarray, frame: FrameOptions) -> tuple[np.ndarray, np.ndarray]:
    """Kaldi ``ProcessWindow`` (no dither: tfspk dithers the waveform): windowed frames zero-padded to
    the FFT size, and the raw log energy of each frame."""
    if frame.remove_dc_offset:
        frames = frames - frames.mean(axis=1, keepdims=True)
    raw_log_energy = np.log(np.maximum(np.einsum("ij,ij->i", frames, frames), FLOAT_EPSILON))
    p = frame.preemphasis_coefficient
    if p != 0.0:
        emphasised = frames.copy()
        emphasised[:, 1:] -= p * frames[:, :-1]
        emphasised[:, 0] -= p * frames[:, 0]
        frames = emphasised
    windowed = frames * window_function(frame)[None, :]
    padded = np.zeros((frames.shape[0], frame.padded_window_size))
    padded[:, :frames.shape[1]] = windowed
    return padded, raw_log_energy


def packed_fft(spectrum: np.ndarray) -> np.ndarray:
    """Kaldi's ``RealFft`` output layout from numpy's rfft: ``[Re0, Re(N/2), Re1, Im1, Re2, Im2, ...]``."""
    count, half = spectrum.shape[0], spectrum.shape[1] - 1
    packed = np.empty((count, 2 * half))
    packed[:, 0] = spectrum[:, 0].real
    packed[:, 1] = spectrum[:, half].real
    packed[:, 2::2] = spectrum[:, 1:half].real
    packed[:, 3::2] = spectrum[:, 1:half].imag
    return packed


def compute_spectrogram(samples: np.ndarray, opts: SpectrogramOptions, num_frames: int) -> np.ndarray:
    """``float32 [num_frames, dim]`` spectrogram of int16-scaled, already dithered ``samples``."""
    frame = opts.frame
    if num_frames == 0:
        return np.zeros((0, opts.dim), dtype=np.float32)
    frames = np.asarray(samples, dtype=np.float64)[frame_indices(samples.size, num_frames, frame)]
    padded, log_energy = process_frames(frames, frame)
    spectrum = np.fft.rfft(padded, axis=1)
    if opts.return_raw_fft:
        return packed_fft(spectrum).astype(np.float32)
    if not opts.raw_energy:
        log_energy = np.log(np.maximum(np.einsum("ij,ij->i", padded, padded), FLOAT_EPSILON))
    if opts.energy_floor > 0.0:
        log_energy = np.maximum(log_energy, math.log(opts.energy_floor))
    power = spectrum.real ** 2 + spectrum.imag ** 2
    feats = np.log(np.maximum(power, FLOAT_EPSILON))
    feats[:, 0] = log_energy
    return feats.astype(np.float32)
