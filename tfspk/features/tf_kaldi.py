"""Kaldi MFCC, fbank and spectrogram features as TensorFlow ops (the ``tensorflow`` side of the built-in
feature types of :mod:`tfspk.features.registry`).

The graph built here is what the exported models run on raw audio, so it uses only ops that the
SavedModel, the TFLite converter (builtin ops) and tf2onnx all handle: gather, matmul, cumsum,
where, elementwise maths. Every constant (window, DFT basis, mel banks, DCT) is computed in numpy at
export time from the recorded options, with Kaldi's definitions:

* framing (``feature-window.cc`` ``ExtractWindow``): frame ``f`` starts at ``f * shift``
  (``--snip-edges=true``, ``1 + (N - L) // shift`` frames) or at ``f * shift + shift // 2 - L // 2``
  with the signal reflected at both edges (``--snip-edges=false``, ``(N + shift // 2) // shift``
  frames); the reflection is periodic with period ``2N``, so one floor-mod and one fold give it;
* ``ProcessWindow``: DC offset removed, raw log energy ``log(max(sum x^2, eps))``, pre-emphasis
  ``x[i] -= p x[i-1]`` (``x[0] -= p x[0]``), window function; no dither (0 at inference);
* power spectrum ``|X_k|^2``, ``k = 0 .. Nfft/2``, of the zero-padded frame. The zero padding adds
  nothing to ``X_k = sum_n x[n] e^{-2 pi i k n / Nfft}``, so the DFT is one matmul of the L windowed
  samples with a ``[L, Nfft/2 + 1]`` cosine and sine basis: exact arithmetic of the DFT, the same op
  in all three formats (TFLite and ONNX converters handle real FFTs unevenly), and cheap for
  speech frames;
* mel banks (``mel-computations.cc``): triangles on the mel scale ``1127 ln(1 + f / 700)``, the
  Nyquist bin left out; log with a float-epsilon floor;
* MFCC (``feature-mfcc.cc``): DCT-II with Kaldi's normalisation (``sqrt(1/M)`` for c0,
  ``sqrt(2/M) cos(pi k (m + 1/2) / M)`` otherwise), cepstral lifter ``1 + Q/2 sin(pi k / Q)``,
  c0 replaced by the log energy (floored at ``log(--energy-floor)`` if positive) with
  ``--use-energy``;
* fbank (``feature-fbank.cc``): log (or linear, ``--use-log-fbank=false``) mel energies of the power
  (or magnitude, ``--use-power=false``) spectrum, the energy prepended with ``--use-energy``;
* spectrogram (``feature-spectrogram.cc``): log power spectrum, component 0 replaced by the energy.

``--htk-compat=true`` and ``--return-raw-fft=true`` are refused (no recipe uses them).
Arithmetic is float32 like Kaldi's, so values agree with
``tfspk.features`` (kaldi-native-fbank / numpy) to float32 rounding.
"""
from __future__ import annotations

import math

import numpy as np

from tfspk.errors import ToolError
from tfspk.features.options import FbankOptions, FrameOptions, MfccOptions, SpectrogramOptions, validate
from tfspk.features.spectrogram import window_function

FLOAT_EPSILON = float(np.finfo(np.float32).eps)


# ---------------------------------------------------------------------------------- numpy constants
def mel_scale(freq):
    """Kaldi ``MelBanks::MelScale``: ``1127 ln(1 + f / 700)``."""
    return 1127.0 * np.log(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)


def kaldi_mel_banks(num_bins: int, fft_size: int, rate: float, low: float, high: float) -> np.ndarray:
    """``[fft_size // 2 + 1, num_bins]`` mel filter weights as Kaldi's ``MelBanks`` constructor builds them.

    Bin b has the triangle ``left = mel_low + b delta``, ``center = left + delta``, ``right = left +
    2 delta`` with ``delta = (mel_high - mel_low) / (num_bins + 1)``; FFT bin i (``i < fft_size / 2``,
    the Nyquist bin is left out) at mel ``m_i`` strictly inside (left, right) gets
    ``(m_i - left) / (center - left)`` up to the centre, ``(right - m_i) / (right - center)`` after.
    ``high <= 0`` is an offset from the Nyquist frequency.
    """
    nyquist = 0.5 * rate
    high = high if high > 0 else nyquist + high
    mel_low, mel_high = float(mel_scale(low)), float(mel_scale(high))
    delta = (mel_high - mel_low) / (num_bins + 1)
    left = mel_low + delta * np.arange(num_bins)[None, :]
    center, right = left + delta, left + 2.0 * delta
    mels = mel_scale(rate / fft_size * np.arange(fft_size // 2))[:, None]
    rising = (mels - left) / (center - left)
    falling = (right - mels) / (right - center)
    weights = np.where(mels <= center, rising, falling)
    weights = np.where((mels > left) & (mels < right), weights, 0.0)
    return np.concatenate([weights, np.zeros((1, num_bins))], axis=0)


def dft_basis(length: int, fft_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine and sine ``[length, fft_size // 2 + 1]``: ``X_k = sum_n x_n (cos - i sin)(2 pi k n / Nfft)``
    for a frame of ``length`` samples zero-padded to ``fft_size``."""
    k = np.arange(fft_size // 2 + 1)
    n = np.arange(length)
    # k n mod Nfft keeps the angle small, so the float64 cos/sin are exact to rounding before the cast
    angle = 2.0 * math.pi * np.mod(np.outer(n, k), fft_size) / fft_size
    return np.cos(angle), np.sin(angle)


def mfcc_dct(num_bins: int, num_ceps: int, lifter: float) -> np.ndarray:
    """``[num_bins, num_ceps]``: Kaldi's DCT (``ComputeDctMatrix``) rows 0..C-1, transposed, times the
    lifter ``1 + Q/2 sin(pi k / Q)`` (``ComputeLifterCoeffs``; none when ``Q = 0``)."""
    m = np.arange(num_bins)
    k = np.arange(num_ceps)[:, None]
    dct = math.sqrt(2.0 / num_bins) * np.cos(math.pi / num_bins * (m[None, :] + 0.5) * k)
    dct[0, :] = math.sqrt(1.0 / num_bins)
    if lifter != 0.0:
        dct *= (1.0 + 0.5 * lifter * np.sin(math.pi * np.arange(num_ceps) / lifter))[:, None]
    return dct.T


def num_frames_formula(num_samples, frame: FrameOptions):
    """Kaldi ``NumFrames(N, opts, flush=true)`` on a scalar tensor or int (see tfspk.features.mfcc.num_frames)."""
    shift, window = frame.window_shift_samples, frame.window_size_samples
    if frame.snip_edges:
        import tensorflow as tf
        return tf.maximum(0, (num_samples - window) // shift + 1) if not isinstance(num_samples, int) \
            else (0 if num_samples < window else 1 + (num_samples - window) // shift)
    return (num_samples + shift // 2) // shift


def min_samples_for_frames(frames: int, frame: FrameOptions) -> int:
    """Fewest samples giving at least ``frames`` feature frames."""
    shift, window = frame.window_shift_samples, frame.window_size_samples
    if frames <= 0:
        return 0
    if frame.snip_edges:
        return window + (frames - 1) * shift
    return frames * shift - shift // 2


# ---------------------------------------------------------------------------------- TF graph
class KaldiFeaturesTF:
    """Callable ``samples float32 [N] (int16 scale) -> features float32 [T, dim]`` for one option set."""

    def __init__(self, opts):
        validate(opts)
        if getattr(opts, "htk_compat", False):
            raise ToolError("--htk-compat=true is not supported by the exported feature graph")
        if isinstance(opts, SpectrogramOptions) and opts.return_raw_fft:
            raise ToolError("--return-raw-fft=true is not supported by the exported feature graph")
        self.opts = opts
        frame = opts.frame
        self.frame = frame
        self.length = frame.window_size_samples
        self.shift = frame.window_shift_samples
        self.fft_size = frame.padded_window_size
        cos, sin = dft_basis(self.length, self.fft_size)
        window = window_function(frame)
        # the window multiplies the frame before the DFT; fold it into the basis (one matmul fewer)
        self._cos = (window[:, None] * cos).astype(np.float32)
        self._sin = (window[:, None] * sin).astype(np.float32)
        self._window = window.astype(np.float32)
        self.dim = opts.dim
        if isinstance(opts, (MfccOptions, FbankOptions)):
            self._mel = kaldi_mel_banks(opts.mel.num_mel_bins, self.fft_size, frame.sample_frequency,
                                        opts.mel.low_freq, opts.mel.high_freq).astype(np.float32)
        if isinstance(opts, MfccOptions):
            self._dct = mfcc_dct(opts.mel.num_mel_bins, opts.num_ceps, opts.cepstral_lifter).astype(np.float32)

    def frame_indices(self, num_samples):
        """``int32 [T, L]`` sample index of each frame position, reflected at the edges (snip-edges false)."""
        import tensorflow as tf
        count = num_frames_formula(num_samples, self.frame)
        starts = tf.range(count) * self.shift
        if not self.frame.snip_edges:
            starts = starts + (self.shift // 2 - self.length // 2)
        index = starts[:, None] + tf.range(self.length)[None, :]
        if self.frame.snip_edges:
            return index
        period = 2 * tf.maximum(num_samples, 1)
        # the reflection is periodic in 2N; shift to non-negative indices first, as ONNX's Mod and
        # TFLite's FloorMod do not agree with TF on negative operands everywhere
        index = tf.math.floormod(index + period * (self.length // period + 1), period)
        return tf.where(index >= num_samples, period - 1 - index, index)

    def _frames_and_log_energy(self, samples):
        """Frames after DC removal and pre-emphasis (not yet windowed) and their log energy."""
        import tensorflow as tf
        samples = tf.reshape(tf.cast(samples, tf.float32), [-1])
        num_samples = tf.shape(samples)[0]
        frames = tf.gather(samples, self.frame_indices(num_samples))
        frame = self.frame
        if frame.remove_dc_offset:
            frames = frames - tf.reduce_mean(frames, axis=1, keepdims=True)
        log_energy = tf.math.log(tf.maximum(tf.reduce_sum(frames * frames, axis=1), FLOAT_EPSILON))
        p = float(frame.preemphasis_coefficient)
        if p != 0.0:
            previous = tf.concat([frames[:, :1], frames[:, :-1]], axis=1)
            frames = frames - p * previous
        opts = self.opts
        if not opts.raw_energy:   # energy of the pre-emphasised, windowed frame
            windowed = frames * self._window[None, :]
            log_energy = tf.math.log(tf.maximum(tf.reduce_sum(windowed * windowed, axis=1), FLOAT_EPSILON))
        if opts.energy_floor > 0.0:
            log_energy = tf.maximum(log_energy, math.log(opts.energy_floor))
        return frames, log_energy

    def log_energy(self, samples):
        """``float32 [T]``: the log energy of each frame, i.e. column 0 of the features when they carry it
        (MFCC / fbank with ``--use-energy``, spectrogram), without the spectrum. The energy VAD reads
        nothing else of its MFCCs, so it runs on this."""
        return self._frames_and_log_energy(samples)[1]

    def __call__(self, samples):
        import tensorflow as tf
        frames, log_energy = self._frames_and_log_energy(samples)
        opts = self.opts
        real = tf.matmul(frames, self._cos)
        imag = tf.matmul(frames, self._sin)
        power = real * real + imag * imag
        if isinstance(opts, SpectrogramOptions):
            feats = tf.math.log(tf.maximum(power, FLOAT_EPSILON))
            return tf.concat([log_energy[:, None], feats[:, 1:]], axis=1)
        if isinstance(opts, FbankOptions) and not opts.use_power:
            power = tf.sqrt(power)
        mel = tf.matmul(power, self._mel)
        if isinstance(opts, FbankOptions):
            if opts.use_log_fbank:
                mel = tf.math.log(tf.maximum(mel, FLOAT_EPSILON))
            return tf.concat([log_energy[:, None], mel], axis=1) if opts.use_energy else mel
        cepstra = tf.matmul(tf.math.log(tf.maximum(mel, FLOAT_EPSILON)), self._dct)
        if opts.use_energy:
            cepstra = tf.concat([log_energy[:, None], cepstra[:, 1:]], axis=1)
        return cepstra
