"""SpeechBrain's log mel filterbank (``speechbrain.lobes.features.Fbank``), a feature type of its own.

It is not Kaldi's fbank (no pre-emphasis, DC removal or dither; frames centred on the hop grid;
SpeechBrain's triangles; decibels with a dynamic-range floor). For samples x on the int16 scale
(tfspk's audio convention) at ``sample_frequency`` r:

1. s = x / 32768 (SpeechBrain reads audio as floats in [-1, 1]);
2. framing as ``torch.stft(center=True, pad_mode="constant")``: n_fft / 2 zeros on each side, frames of
   n_fft samples every hop = round(r / 1000 x ``hop_length`` ms) samples, T = 1 + N // hop frames;
   window: the periodic Hamming window 0.54 - 0.46 cos(2 pi n / W) of W = round(r / 1000 x
   ``win_length`` ms) samples, centred in the n_fft-sample frame (zeros outside);
3. power spectrum P_{t,k} = |sum_n w_n s_{t,n} e^{-2 pi i k n / n_fft}|^2, k = 0..n_fft/2;
4. mel filterbank: m_j = linspace(mel(f_min), mel(f_max), M + 2) with mel(f) = 2595 log10(1 + f / 700),
   h_j = 700 (10^(m_j / 2595) - 1); filter b (b = 1..M) has centre c_b = h_b and half-width
   d_b = h_b - h_{b-1}; at the FFT frequencies f_k = linspace(0, r // 2, n_fft/2 + 1)_k its weight is
   max(0, 1 - |f_k - c_b| / d_b) (SpeechBrain uses the left spacing on both sides);
5. E = P F (``[T, M]``); L = 10 log10(max(E, amin)); L = max(L, max_{t,b} L - ``top_db``) (the floor is
   relative to the utterance's largest value).

``speechbrain_fbank`` is the numpy statement; :class:`SpeechBrainFbankTF` the same graph in TensorFlow
for export (builtin TFLite ops only: framing by gather, the DFT as two matrix products).
Options are read from a config file of ``--name=value`` lines (:func:`read_options`).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from tfspk.errors import ToolError

FEATURE_TYPE = "speechbrain_fbank"


@dataclasses.dataclass
class SpeechBrainFbankOptions:
    """SpeechBrain ``Fbank`` arguments (defaults: SpeechBrain's, except 80 mels as its ECAPA recipes)."""
    sample_frequency: float = 16000.0
    num_mel_bins: int = 80
    n_fft: int = 400
    win_length: float = 25.0      # ms
    hop_length: float = 10.0      # ms
    f_min: float = 0.0
    f_max: float = 0.0            # <= 0: sample_frequency // 2
    top_db: float = 80.0
    amin: float = 1e-10

    @property
    def dim(self) -> int:
        return self.num_mel_bins

    @property
    def hop(self) -> int:
        return int(round(self.sample_frequency / 1000.0 * self.hop_length))

    @property
    def win(self) -> int:
        return int(round(self.sample_frequency / 1000.0 * self.win_length))

    def upper(self) -> float:
        return self.f_max if self.f_max > 0 else float(int(self.sample_frequency) // 2)

    def validate(self, where: str = "speechbrain_fbank options") -> None:
        if self.num_mel_bins < 1 or self.n_fft < 2 or self.hop < 1 or not 1 <= self.win <= self.n_fft:
            raise ToolError(f"{where}: need num-mel-bins >= 1, n-fft >= 2, hop >= 1 sample and 1 <= window <= "
                            f"n-fft samples (got {self.num_mel_bins}, {self.n_fft}, {self.hop}, {self.win})")
        if not 0 <= self.f_min < self.upper() <= self.sample_frequency / 2:
            raise ToolError(f"{where}: need 0 <= f-min < f-max <= {self.sample_frequency / 2} Hz "
                            f"(got {self.f_min}, {self.upper()})")
        if self.top_db < 0 or self.amin <= 0:
            raise ToolError(f"{where}: need top-db >= 0 and amin > 0")


def read_options(path: str) -> SpeechBrainFbankOptions:
    """Options from a config file of ``--name=value`` lines (names as the dataclass fields, '-' for '_')."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as err:
        raise ToolError(f"cannot read {path}: {err.strerror}") from None
    return options_from_lines(lines, path)


def options_from_lines(lines, where: str) -> SpeechBrainFbankOptions:
    opts = SpeechBrainFbankOptions()
    types = {f.name: f.type for f in dataclasses.fields(opts)}
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, value = line.partition("=")
        key = name.removeprefix("--").replace("-", "_")
        if not name.startswith("--") or not sep or key not in types:
            raise ToolError(f"{where}:{number}: expected --name=value with a name of "
                            f"{', '.join(n.replace('_', '-') for n in types)}; got '{line}'")
        try:
            setattr(opts, key, int(value) if types[key] in (int, "int") else float(value))
        except ValueError:
            raise ToolError(f"{where}:{number}: bad value '{value}' for --{name.removeprefix('--')}") from None
    opts.validate(where)
    return opts


def options_to_text(opts: SpeechBrainFbankOptions) -> str:
    return "".join(f"--{f.name.replace('_', '-')}={getattr(opts, f.name)}\n" for f in dataclasses.fields(opts))


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
