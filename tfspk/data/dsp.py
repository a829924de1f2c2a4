"""Waveform and feature-matrix primitives of augmentation: additive noise at an SNR, reverberation by
a room impulse response, speed perturbation and SpecAugment masks. Each is a pure function of its
inputs (the random draws are the caller's, see :mod:`tfspk.data.augment`)."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from tfspk.errors import ToolError

def signal_power(x: np.ndarray) -> float:
    """Mean power ``sum(x^2) / len(x)`` in float64 (0 for an empty signal)."""
    x = np.asarray(x, dtype=np.float64)
    # not np.dot: a BLAS call can be slowed down a lot by BLAS threads on a loaded machine
    return float(np.square(x).sum() / x.size) if x.size else 0.0


def add_noise(speech: np.ndarray, noise: np.ndarray, snr_db: float, offset: int = 0) -> np.ndarray:
    """``speech`` plus ``noise`` scaled to ``snr_db``, the noise starting at sample ``offset``.

    The scale ``g`` makes ``10 log10(P_s / (g^2 P_n)) = snr_db`` where ``P_s`` is the mean power of
    the **whole** speech crop and ``P_n`` the mean power of the noise samples that are added (those
    inside the crop): ``g = sqrt(P_s / (P_n 10^(snr_db/10)))``. For a noise covering the whole crop
    the realised SNR of the mixture is exactly ``snr_db``. Kaldi's ``wav-reverberate`` scales
    each additive signal the same way (speech power over the whole utterance). A silent noise
    (``P_n = 0``) leaves the speech unchanged. Returns float32 of the speech's length.
    """
    speech = np.asarray(speech, dtype=np.float32)
    out = speech.copy()
    if offset < 0 or offset >= speech.size:
        return out
    piece = np.asarray(noise, dtype=np.float32)[: speech.size - offset]
    noise_power = signal_power(piece)
    if noise_power <= 0.0:
        return out
    gain = math.sqrt(signal_power(speech) / (noise_power * 10.0 ** (snr_db / 10.0)))
    out[offset:offset + piece.size] += np.float32(gain) * piece
    return out


def direct_path_index(rir: np.ndarray) -> int:
    """Index of the direct path of an impulse response: the sample of largest magnitude."""
    return int(np.argmax(np.abs(rir)))


def reverberate(speech: np.ndarray, rir: np.ndarray, normalize_output: bool = True) -> np.ndarray:
    """Convolve ``speech`` with the room impulse response ``rir``, aligned at the direct path.

    As Kaldi's ``wav-reverberate``: the RIR is normalised to unit energy (``h / ||h||``), the
    full convolution ``y = speech * h`` (length ``len(speech) + len(h) - 1``) is computed, and
    the output is ``y[d : d + len(speech)]`` with ``d`` = :func:`direct_path_index` (``h``), so the
    direct sound stays where the dry speech was (no delay from the source-microphone distance)
    and the output has the input's length (the reverberant tail past the end is cut).
    With ``normalize_output`` (Kaldi's default) the output is scaled to the input's mean power.
    Convolution by FFT (scipy.signal.fftconvolve); float32 out.
    """
    from scipy.signal import fftconvolve
    speech = np.asarray(speech, dtype=np.float64)
    rir = np.asarray(rir, dtype=np.float64)
    energy = float(np.square(rir).sum())
    if speech.size == 0 or energy <= 0.0:
        return speech.astype(np.float32)
    h = rir / math.sqrt(energy)
    d = direct_path_index(h)
    y = fftconvolve(speech, h)[d:d + speech.size]
    if normalize_output:
        out_power = signal_power(y)
        if out_power > 0.0:
            y = y * math.sqrt(signal_power(speech) / out_power)
    return y.astype(np.float32)


def speed_ratio(factor: float) -> tuple[int, int]:
    """``(up, down)`` with ``up/down = 1/factor`` as a small fraction (1.1 -> (10, 11))."""
    ratio = Fraction(1.0 / factor).limit_denominator(100)
    return ratio.numerator, ratio.denominator


def speed_perturb(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play ``samples`` ``factor`` times faster, like ``sox speed factor`` (tempo and pitch change).

    The signal is resampled by the rational ratio ``up/down = 1/factor`` (:func:`speed_ratio`) with
    a polyphase Kaiser-windowed FIR filter (scipy.signal.resample_poly), and the result is read at
    the original rate: the length becomes ``ceil(n * up / down)`` ~ ``n / factor``
    ([Ko2015]: 0.9, 1.0, 1.1). ``factor == 1`` returns a float32 copy.
    """
    if not (factor > 0 and math.isfinite(factor)):
        raise ToolError(f"speed factor must be a positive number, got {factor!r}")
    samples = np.asarray(samples, dtype=np.float32)
    up, down = speed_ratio(factor)
    if up == down:
        return samples.copy()
    from scipy.signal import resample_poly
    return resample_poly(samples, up, down).astype(np.float32)

def spec_augment_masks(num_frames: int, feat_dim: int, rng: np.random.Generator,
                       num_time_masks: int = 1, max_time_width: int = 10,
                       num_freq_masks: int = 1, max_freq_width: int = 8):
    """Draw SpecAugment masks ([Park2019, sec. 2]) for a ``[num_frames, feat_dim]`` matrix.

    Each time mask has a width ``t ~ U{0..min(max_time_width, num_frames)}`` and start
    ``t0 ~ U{0..num_frames - t}``; frequency masks likewise with ``max_freq_width``/``feat_dim``.
    Returns ``(time_masks, freq_masks)``, lists of ``(start, width)``, all inside the matrix.
    """
    def draw(count, max_width, size):
        masks = []
        for _ in range(count):
            width = int(rng.integers(0, min(max_width, size) + 1))
            start = int(rng.integers(0, size - width + 1))
            masks.append((start, width))
        return masks
    return draw(num_time_masks, max_time_width, num_frames), draw(num_freq_masks, max_freq_width, feat_dim)


def spec_augment(feats: np.ndarray, rng: np.random.Generator, num_time_masks: int = 1,
                 max_time_width: int = 10, num_freq_masks: int = 1, max_freq_width: int = 8,
                 mask_value: float = 0.0) -> np.ndarray:
    """SpecAugment time and frequency masking ([Park2019]; no time warping) of ``feats [T, D]``.

    Masks from :func:`spec_augment_masks`; masked rows/columns are set to ``mask_value`` (0: the
    mean of mean-normalised features). Returns a float32 copy.
    """
    feats = np.array(feats, dtype=np.float32)
    if feats.ndim != 2:
        raise ToolError(f"spec_augment expects a [frames, dim] matrix, got shape {feats.shape}")
    time_masks, freq_masks = spec_augment_masks(feats.shape[0], feats.shape[1], rng, num_time_masks,
                                                max_time_width, num_freq_masks, max_freq_width)
    for start, width in time_masks:
        feats[start:start + width, :] = mask_value
    for start, width in freq_masks:
        feats[:, start:start + width] = mask_value
    return feats


def apply_spec_augment_masks(feats: np.ndarray, time_masks: np.ndarray, freq_masks: np.ndarray,
                             mask_value: float = 0.0) -> np.ndarray:
    """Set the masked frames and bins of a batch ``feats [B, T, D]`` to ``mask_value``, in place.

    ``time_masks [B, n_t, 2]`` and ``freq_masks [B, n_f, 2]`` hold ``(start, width)`` per mask of each
    crop, as :func:`spec_augment_masks` draws them: frame ``t`` of crop ``b`` is masked iff
    ``start <= t < start + width`` for one of crop b's time masks, bin ``d`` likewise; the batch form of
    :func:`spec_augment` (one pass of boolean indexing over the batch, no loop over crops).
    Returns ``feats``.
    """
    if feats.ndim != 3:
        raise ToolError(f"SpecAugment expects a [batch, frames, dim] array, got shape {feats.shape}")

    def covered(masks, size):
        masks = np.asarray(masks, dtype=np.int64).reshape(feats.shape[0], -1, 2)
        index = np.arange(size)
        start, stop = masks[:, :, :1], masks[:, :, :1] + masks[:, :, 1:]
        return ((index >= start) & (index < stop)).any(axis=1)      # [B, size]

    feats[covered(time_masks, feats.shape[1])] = mask_value
    np.swapaxes(feats, 1, 2)[covered(freq_masks, feats.shape[2])] = mask_value   # a view: writes feats
    return feats
