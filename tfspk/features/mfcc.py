"""MFCC and filterbank features as Kaldi's ``compute-mfcc-feats`` / ``compute-fbank-feats`` compute them.

The numbers come from kaldi-native-fbank (knf), a C++ port of Kaldi's feature code, fed with
samples on the int16 scale exactly as Kaldi reads WAV files. Two things are tfspk's own:

* options are checked before knf sees them (a bad option is a :class:`ToolError`);
* dithering (``--dither``, Kaldi default 1.0) is reproducible: Gaussian noise
  ``dither * N(0, 1)`` is added to each sample, read from a table of 2^20 standard normal
  values (generated once from ``dither_seed``) starting at an offset given by the utterance
  key, so an utterance gets the same features whatever the job split and the noise costs a
  vector add instead of a random-number draw per sample. Kaldi adds its noise to each
  extracted window instead (overlapping frames get independent noise); the distribution per
  frame is the same. With ``--dither=0`` the output is Kaldi's.
"""
from __future__ import annotations

import zlib

import numpy as np

from tfspk.errors import ToolError
from tfspk.features.options import FbankOptions, FrameOptions, MfccOptions, SpectrogramOptions, to_knf, validate
from tfspk.features.spectrogram import compute_spectrogram

DITHER_TABLE_SIZE = 1 << 20


def num_frames(num_samples: int, frame: FrameOptions) -> int:
    """Kaldi ``NumFrames(num_samples, opts, flush=true)``.

    snip-edges true: ``1 + (N - window) // shift`` (0 if N < window);
    snip-edges false: ``(N + shift // 2) // shift``, i.e. round(N / shift).
    """
    shift, window = frame.window_shift_samples, frame.window_size_samples
    if frame.snip_edges:
        return 0 if num_samples < window else 1 + (num_samples - window) // shift
    return (num_samples + shift // 2) // shift


class KnfComputer:
    """MFCC or fbank frames from kaldi-native-fbank."""

    def __init__(self, opts: MfccOptions | FbankOptions):
        import kaldi_native_fbank as knf
        self._knf_opts = to_knf(opts)
        self._knf_class = knf.OnlineMfcc if isinstance(opts, MfccOptions) else knf.OnlineFbank
        try:  # builds the mel banks once, so any option knf refuses fails here, not per utterance
            self.dim = int(self._knf_class(self._knf_opts).dim)
        except (ValueError, RuntimeError) as err:
            raise ToolError(f"invalid feature options: {err}") from None

    def __call__(self, samples: np.ndarray, rate: float) -> np.ndarray:
        extractor = self._knf_class(self._knf_opts)
        extractor.accept_waveform(float(rate), samples)
        extractor.input_finished()
        count = extractor.num_frames_ready
        feats = np.empty((count, self.dim), dtype=np.float32)
        for index in range(count):   # knf returns a view of its buffer per frame: copy row by row
            feats[index] = extractor.get_frame(index)
        return feats


class SpectrogramComputer:
    """Spectrogram frames from :mod:`tfspk.features.spectrogram` (knf has no spectrogram)."""

    def __init__(self, opts: SpectrogramOptions):
        self.opts = opts
        self.dim = opts.dim

    def __call__(self, samples: np.ndarray, rate: float) -> np.ndarray:
        return compute_spectrogram(samples, self.opts, num_frames(samples.size, self.opts.frame))


class FeatureExtractor:
    """Computes the features of one option set (of any registered feature type, :mod:`tfspk.features.registry`),
    then the post-processing steps ``post`` (``[(name, params)]``, e.g. add-deltas); reuse it across utterances."""

    def __init__(self, opts, dither_seed: int = 0, post=()):
        from tfspk.features.registry import feature_type_of, post_step
        validate(opts)
        self.opts = opts
        self.dither_seed = int(dither_seed)
        self._dither_table = None
        self._compute = feature_type_of(opts).compute(opts)
        self._post = [(post_step(name), params) for name, params in post]
        dim = int(getattr(self._compute, "dim", opts.dim))
        for step, params in self._post:
            dim = step.dim(params, dim)
        self.dim = dim

    @property
    def rate(self) -> float:
        return self.opts.frame.sample_frequency

    def __call__(self, samples: np.ndarray, rate: float, name: str = "") -> np.ndarray:
        """Features ``float32 [T, dim]`` of int16-scaled ``samples`` at ``rate`` Hz.

        T follows :func:`num_frames`; it is 0 when the audio is shorter than one frame
        (snip-edges true) or half a frame shift (snip-edges false).
        """
        label = f"utterance '{name}'" if name else "audio"
        if float(rate) != float(self.rate):
            raise ToolError(f"{label}: sample rate of the audio is {rate:g} Hz but --sample-frequency is "
                            f"{self.rate:g} Hz (resample the audio, e.g. 'sox in.wav -r {self.rate:g} out.wav', "
                            "or change --sample-frequency in the config; the compute-*-feats tools resample "
                            f"with --allow-{'down' if rate > self.rate else 'up'}sample=true)")
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ToolError(f"{label}: expected 1-D audio samples, got shape {samples.shape}")
        if samples.size == 0:
            raise ToolError(f"{label}: empty audio (0 samples)")
        if not np.all(np.isfinite(samples)):
            raise ToolError(f"{label}: audio contains NaN or Inf samples")
        if self.opts.frame.dither > 0:
            samples = self._dithered(samples, name)
        feats = self._compute(samples, self.rate)
        for step, params in self._post:
            feats = step.apply(params, feats)
        return feats

    def _dithered(self, samples: np.ndarray, name: str) -> np.ndarray:
        """``samples + dither * noise``, the noise read cyclically from the table from an
        offset that depends on the utterance key only."""
        if self._dither_table is None:
            rng = np.random.default_rng(self.dither_seed)
            table = rng.standard_normal(DITHER_TABLE_SIZE, dtype=np.float32)
            self._dither_table = table * np.float32(self.opts.frame.dither)
        table = self._dither_table
        out = samples.copy()
        offset = zlib.crc32(name.encode("utf-8", "surrogateescape")) % DITHER_TABLE_SIZE
        position = 0
        while position < out.size:
            count = min(out.size - position, DITHER_TABLE_SIZE - offset)
            out[position:position + count] += table[offset:offset + count]
            position += count
            offset = 0
        return out


def mfcc(samples: np.ndarray, rate: float, opts: MfccOptions | None = None, name: str = "") -> np.ndarray:
    """Kaldi MFCC (``compute-mfcc-feats``) of int16-scaled samples -> float32 ``[T, num_ceps]``."""
    return FeatureExtractor(opts or MfccOptions())(samples, rate, name)


def spectrogram(samples: np.ndarray, rate: float, opts: SpectrogramOptions | None = None,
                name: str = "") -> np.ndarray:
    """Kaldi log power spectrogram (``compute-spectrogram-feats``) -> float32 ``[T, padded_window / 2 + 1]``."""
    return FeatureExtractor(opts or SpectrogramOptions())(samples, rate, name)


def fbank(samples: np.ndarray, rate: float, opts: FbankOptions | None = None, name: str = "") -> np.ndarray:
    """Kaldi log mel filterbank (``compute-fbank-feats``) -> float32 ``[T, num_mel_bins (+1 energy)]``."""
    return FeatureExtractor(opts or FbankOptions())(samples, rate, name)
