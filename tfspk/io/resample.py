"""Sample-rate conversion where audio is read: the one place every reader of audio resamples.

A model (or a feature config) expects one sample rate; audio at another rate is converted with a
polyphase FIR filter (``scipy.signal.resample_poly``, Kaiser window, beta 5): the rational ratio
``to/from`` is reduced by the greatest common divisor, the signal is upsampled by the numerator,
low-pass filtered at the lower of the two Nyquist frequencies and downsampled by the denominator.
Kaldi's feature tools do a windowed-sinc resampling only when asked (``--allow-downsample``,
``--allow-upsample``); tfspk's readers resample unless ``allow_resample`` is false, and then a rate
mismatch is the same clear error as before.
"""
from __future__ import annotations

from math import gcd

import numpy as np

from tfspk.errors import ToolError

_announced: set[tuple[int, int, str]] = set()


def _integer_rate(rate, what: str) -> int:
    value = float(rate)
    if not np.isfinite(value) or value <= 0 or value != round(value):
        raise ToolError(f"{what} sample rate must be a positive whole number of Hz, got {rate!r}")
    return int(round(value))


def resample(samples: np.ndarray, from_rate, to_rate) -> np.ndarray:
    """``samples`` (1-D) at ``from_rate`` Hz -> float32 samples at ``to_rate`` Hz, same scale.

    Output length is ``ceil(len * to / from)``, as ``resample_poly`` gives. Equal rates return the
    input as float32 without filtering.
    """
    source, target = _integer_rate(from_rate, "the audio's"), _integer_rate(to_rate, "the target")
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ToolError(f"resample expects 1-D samples, got shape {samples.shape}")
    if source == target:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    divisor = gcd(source, target)
    return resample_poly(samples.astype(np.float64), target // divisor, source // divisor).astype(np.float32)


def conform_rate(samples: np.ndarray, rate, target_rate, allow_resample: bool = True, where: str = "",
                 log=None) -> np.ndarray:
    """Samples at ``target_rate``: unchanged when ``rate`` equals it, else resampled (announced once
    per process and rate pair through ``log``), or a ToolError naming both rates when
    ``allow_resample`` is false."""
    source, target = _integer_rate(rate, f"{where or 'the audio'}'s"), _integer_rate(target_rate, "the target")
    if source == target:
        return samples
    label = where or "audio"
    if not allow_resample:
        raise ToolError(f"{label} has sample rate {source} Hz but {target} Hz is expected (resampling is off: "
                        "drop --allow-resample=false, or resample it first, e.g. 'sox in.wav -r "
                        f"{target} out.wav')")
    announce = (source, target, getattr(log, "__qualname__", ""))
    if log is not None and announce not in _announced:
        _announced.add(announce)
        log(f"resampling audio from {source} Hz to {target} Hz (polyphase filter; first case: {label})")
    return resample(samples, source, target)
