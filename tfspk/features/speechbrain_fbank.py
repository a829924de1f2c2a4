"""SpeechBrain's log mel filterbank (``speechbrain.lobes.features.Fbank``): the registered feature type
``speechbrain_fbank`` (:data:`tfspk.features.registry.FEATURE_TYPES`).

It is not Kaldi's fbank (no pre-emphasis, DC removal or dither; frames centred on the hop grid;
SpeechBrain's triangles; decibels with a dynamic-range floor). For samples x on the int16 scale
(tfspk's audio convention) at ``--sample-frequency`` r:

1. s = x / 32768 (SpeechBrain reads audio as floats in [-1, 1]);
2. framing as ``torch.stft(center=True, pad_mode="constant")``: n_fft / 2 zeros on each side, frames of
   n_fft samples every hop = round(r / 1000 x ``--frame-shift`` ms) samples, T = 1 + N // hop frames;
   window: the periodic Hamming window 0.54 - 0.46 cos(2 pi n / W) of W = round(r / 1000 x
   ``--frame-length`` ms) samples, centred in the n_fft-sample frame (zeros outside);
3. power spectrum P_{t,k} = |sum_n w_n s_{t,n} e^{-2 pi i k n / n_fft}|^2, k = 0..n_fft/2;
4. mel filterbank: m_j = linspace(mel(f_min), mel(f_max), M + 2) with mel(f) = 2595 log10(1 + f / 700),
   h_j = 700 (10^(m_j / 2595) - 1); filter b (b = 1..M) has centre c_b = h_b and half-width
   d_b = h_b - h_{b-1}; at the FFT frequencies f_k = linspace(0, r // 2, n_fft/2 + 1)_k its weight is
   max(0, 1 - |f_k - c_b| / d_b) (SpeechBrain uses the left spacing on both sides);
5. E = P F (``[T, M]``); L = 10 log10(max(E, amin)); L = max(L, max_{t,b} L - ``top_db``) (the floor is
   relative to the utterance's largest value).

The options (:class:`SpeechBrainFbankOptions`) are those of the registry: a ``frame`` of Kaldi's framing
options (sample rate, ``--frame-shift`` = SpeechBrain's ``hop_length``, ``--frame-length`` = its
``win_length``, ``--dither``, as tfspk dithers the waveform of any feature type) and SpeechBrain's own
(``--n-fft``, ``--num-mel-bins``, ``--f-min``, ``--f-max``, ``--top-db``, ``--amin``). The Kaldi framing
options SpeechBrain does not have must keep the values that describe it (no pre-emphasis, no DC removal,
Hamming window, frames not snipped, FFT size ``--n-fft``); another value is a ToolError, never ignored.

``speechbrain_fbank`` is the numpy statement; :class:`SpeechBrainFbankTF` the same graph in TensorFlow
for export (builtin TFLite ops only: framing by gather, the DFT as two matrix products).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from tfspk.errors import ToolError
from tfspk.features.options import FrameOptions
from tfspk.features.registry import FEATURE_TYPES, FeatureType
from tfspk.params import param

FEATURE_TYPE = "speechbrain_fbank"


def _speechbrain_frame() -> FrameOptions:
    """Kaldi's framing options set to what SpeechBrain's Fbank does (25 ms Hamming windows every 10 ms)."""
    return FrameOptions(dither=0.0, preemphasis_coefficient=0.0, remove_dc_offset=False, window_type="hamming",
                        round_to_power_of_two=False, snip_edges=False)


#: the Kaldi framing options SpeechBrain's computation has no counterpart for -> the value that describes it
_FIXED_FRAME = {"preemphasis_coefficient": 0.0, "remove_dc_offset": False, "window_type": "hamming",
                "round_to_power_of_two": False, "snip_edges": False}


@dataclasses.dataclass
class SpeechBrainFbankOptions:
    """SpeechBrain ``Fbank`` arguments (defaults: SpeechBrain's, except 80 mels as its ECAPA recipes)."""
    frame: FrameOptions = dataclasses.field(default_factory=_speechbrain_frame)
    num_mel_bins: int = param(80, "number of mel filters (SpeechBrain's n_mels)")
    n_fft: int = param(400, "FFT size in samples (SpeechBrain's n_fft)")
    f_min: float = param(0.0, "lowest frequency of the mel filters [Hz]")
    f_max: float = param(0.0, "highest frequency of the mel filters [Hz]; <= 0: sample-frequency // 2")
    top_db: float = param(80.0, "dynamic range: values below the utterance's maximum minus top-db dB are raised to it")
    amin: float = param(1e-10, "floor of the filterbank energies before the logarithm")

    @property
    def dim(self) -> int:
        return self.num_mel_bins

    @property
    def sample_frequency(self) -> float:
        return float(self.frame.sample_frequency)

    @property
    def hop(self) -> int:
        return int(round(self.frame.sample_frequency / 1000.0 * self.frame.frame_shift))

    @property
    def win(self) -> int:
        return int(round(self.frame.sample_frequency / 1000.0 * self.frame.frame_length))

    def upper(self) -> float:
        return self.f_max if self.f_max > 0 else float(int(self.frame.sample_frequency) // 2)

    def validate(self, where: str = "speechbrain_fbank options") -> None:
        """The checks beyond Kaldi's framing checks (:func:`tfspk.features.options.validate` runs both)."""
        for name, value in _FIXED_FRAME.items():
            if getattr(self.frame, name) != value:
                flag = "--" + name.replace("_", "-")
                raise ToolError(f"{where}: {flag} must be {str(value).lower()} for SpeechBrain's Fbank, which has "
                                f"no such option (got {getattr(self.frame, name)!r})")
        if self.num_mel_bins < 1 or self.n_fft < 2 or self.hop < 1 or not 1 <= self.win <= self.n_fft:
            raise ToolError(f"{where}: need num-mel-bins >= 1, n-fft >= 2, hop >= 1 sample and 1 <= window <= "
                            f"n-fft samples (got {self.num_mel_bins}, {self.n_fft}, {self.hop}, {self.win})")
        if not 0 <= self.f_min < self.upper() <= self.frame.sample_frequency / 2:
            raise ToolError(f"{where}: need 0 <= f-min < f-max <= {self.frame.sample_frequency / 2:g} Hz "
                            f"(got {self.f_min:g}, {self.upper():g})")
        if self.top_db < 0 or self.amin <= 0:
            raise ToolError(f"{where}: need top-db >= 0 and amin > 0 (got {self.top_db:g}, {self.amin:g})")


def filterbank_matrix(opts: SpeechBrainFbankOptions) -> np.ndarray:
    """``[n_fft // 2 + 1, M]`` float32: SpeechBrain's triangular filters (step 4 of the module docstring)."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)
    points = np.linspace(mel(opts.f_min), mel(opts.upper()), opts.num_mel_bins + 2, dtype=np.float32)
    hz = (700.0 * (10.0 ** (points.astype(np.float64) / 2595.0) - 1.0)).astype(np.float32)
    centre, width = hz[1:-1], (hz[1:] - hz[:-1])[:-1]
    freqs = np.linspace(0, int(opts.sample_frequency) // 2, opts.n_fft // 2 + 1, dtype=np.float32)
    slope = (freqs[:, None] - centre[None, :]) / width[None, :]
    return np.maximum(0.0, np.minimum(slope + 1.0, 1.0 - slope)).astype(np.float32)


def window(opts: SpeechBrainFbankOptions) -> np.ndarray:
    """The periodic Hamming window of ``win`` samples centred in an ``n_fft`` frame (float32)."""
    n = np.arange(opts.win)
    hamming = 0.54 - 0.46 * np.cos(2.0 * math.pi * n / opts.win)
    full = np.zeros(opts.n_fft)
    left = (opts.n_fft - opts.win) // 2
    full[left:left + opts.win] = hamming
    return full.astype(np.float32)


def num_frames(num_samples: int, opts: SpeechBrainFbankOptions) -> int:
    return 1 + int(num_samples) // opts.hop


def speechbrain_fbank(samples: np.ndarray, rate: float, opts: SpeechBrainFbankOptions | None = None,
                      name: str = "") -> np.ndarray:
    """float32 ``[T, M]`` features of int16-scaled ``samples`` (see the module docstring)."""
    opts = opts or SpeechBrainFbankOptions()
    opts.validate()
    if float(rate) != float(opts.sample_frequency):
        raise ToolError(f"{name or 'audio'}: sample rate {rate} Hz differs from the features' "
                        f"--sample-frequency={opts.sample_frequency:g}")
    signal = np.asarray(samples, dtype=np.float32).reshape(-1) / np.float32(32768.0)
    pad = opts.n_fft // 2
    padded = np.pad(signal, pad)
    count = num_frames(signal.size, opts)
    index = np.arange(count)[:, None] * opts.hop + np.arange(opts.n_fft)[None, :]
    frames = padded[index] * window(opts)[None, :]
    spectrum = np.fft.rfft(frames.astype(np.float64), axis=1)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
    energies = power @ filterbank_matrix(opts)
    decibels = 10.0 * np.log10(np.maximum(energies, np.float32(opts.amin)))
    return np.maximum(decibels, decibels.max() - np.float32(opts.top_db)).astype(np.float32)


class SpeechBrainFbankTF:
    """Callable ``samples float32 [N] (int16 scale) -> float32 [T, M]`` in TensorFlow (for export)."""

    def __init__(self, opts: SpeechBrainFbankOptions):
        opts.validate()
        self.opts = opts
        self.frame = opts.frame
        self.dim = opts.num_mel_bins
        k = np.arange(opts.n_fft // 2 + 1)
        n = np.arange(opts.n_fft)
        angle = 2.0 * math.pi * np.mod(np.outer(n, k), opts.n_fft) / opts.n_fft
        win = window(opts)[:, None].astype(np.float64)
        # the window folded into the DFT basis: one product per real/imaginary part
        self.cos = (win * np.cos(angle)).astype(np.float32)
        self.sin = (win * np.sin(angle)).astype(np.float32)
        self.banks = filterbank_matrix(opts)

    def __call__(self, samples):
        import tensorflow as tf
        o = self.opts
        signal = tf.reshape(tf.cast(samples, tf.float32), [-1]) / 32768.0
        pad = o.n_fft // 2
        padded = tf.concat([tf.zeros([pad]), signal, tf.zeros([pad])], axis=0)
        count = 1 + tf.shape(signal)[0] // o.hop
        index = tf.range(count)[:, None] * o.hop + tf.range(o.n_fft)[None, :]
        frames = tf.gather(padded, index)
        real = tf.matmul(frames, self.cos)
        imag = tf.matmul(frames, self.sin)
        energies = tf.matmul(real * real + imag * imag, self.banks)
        decibels = 10.0 * tf.math.log(tf.maximum(energies, o.amin)) / math.log(10.0)
        return tf.maximum(decibels, tf.reduce_max(decibels) - o.top_db)


@FEATURE_TYPES.register(FEATURE_TYPE)
class SpeechBrainFbank(FeatureType):
    """SpeechBrain's log mel filterbank (``speechbrain.lobes.features.Fbank``; the module docstring)."""
    Options = SpeechBrainFbankOptions

    @classmethod
    def check(cls, opts) -> None:
        opts.validate()

    @classmethod
    def num_frames(cls, opts, num_samples: int) -> int:
        return num_frames(num_samples, opts)

    @classmethod
    def compute(cls, opts):
        return _Computer(opts)

    @classmethod
    def tensorflow(cls, opts):
        return SpeechBrainFbankTF(opts)


class _Computer:
    """``(samples, rate) -> [T, M]`` of one option set (the registry's numpy side)."""

    def __init__(self, opts: SpeechBrainFbankOptions):
        self.opts = opts
        self.dim = opts.num_mel_bins

    def __call__(self, samples: np.ndarray, rate: float) -> np.ndarray:
        return speechbrain_fbank(samples, rate, self.opts)
