"""On-the-fly waveform and feature augmentation, reproducible from (seed, step, position).

What is drawn and how it is applied follows Kaldi's egs/voxceleb/v2 (run.sh stage 2, which calls
``steps/data/reverberate_data_dir.py`` and ``steps/data/augment_data_dir.py``, [Snyder2018]) and
WeSpeaker's speed perturbation ([Wang2023]); the noises are MUSAN's ([Snyder2015]) and the
impulse responses RIRS_NOISES' simulated rooms ([Ko2017]):

* **reverberation** (probability ``reverb_prob``): convolution with a room impulse response of
  ``rir_dir``, see :func:`reverberate`;
* **one additive kind** at most, chosen with probabilities ``noise_prob`` / ``music_prob`` /
  ``babble_prob`` (their sum is at most 1; the rest of the time nothing is added), as Kaldi makes
  one copy of the data per kind:

  - ``noise``: foreground noises of ``noise_dir`` one after another from the start of the crop,
    ``noise_interval`` seconds of silence between the end of one and the start of the next,
    each at an SNR drawn from ``noise_snrs`` (Kaldi: ``--fg-interval 1 --fg-snrs 15:10:5:0``);
  - ``music``: one background recording of ``music_dir``, looped over the whole crop from a
    random offset, SNR from ``music_snrs`` (Kaldi: ``--bg-snrs 15:10:8:5 --num-bg-noises 1``);
  - ``babble``: ``babble_speakers`` (drawn from the list) background utterances of
    ``babble_dir`` (MUSAN speech), each looped over the crop at its own SNR from ``babble_snrs``
    (Kaldi: ``--bg-snrs 20:17:15:13 --num-bg-noises 3:4:5:6:7``);

* **speed perturbation**: a factor drawn uniformly from ``speed_factors`` (e.g. ``1.0,0.9,1.1``);
  the speaker label becomes ``label + index * num_classes`` (:func:`expand_labels`, WeSpeaker's
  x3 classes: a perturbed voice counts as a new speaker);
* **SpecAugment** on features (:func:`spec_augment`, [Park2019] time and frequency masks).

Order of application: speed -> reverberation -> additive noise (SNRs are relative to the
reverberated speech, as in Kaldi where ``wav-reverberate`` adds the noise after the RIR).

Everything random is drawn by :meth:`Augmenter.plan` from
``numpy.random.Generator(PCG64(SeedSequence([seed, step, position])))``: the augmented crop of
batch position ``position`` at training step ``step`` is a pure function of those numbers and the
data, so a run resumed at step k sees exactly the batches an uninterrupted run would.

Noise and RIR directories are Kaldi data dirs (``wav.scp``; ``utt2spk`` is not needed). Only the
audio headers are read at construction (rate and length of every path entry are checked then);
the audio itself is read when drawn, the part that is needed, and kept in a bounded LRU cache.
"""
from __future__ import annotations

import collections
import dataclasses
import math
import os
import threading
from fractions import Fraction

import numpy as np

from tfspk.data.ranges import check_snrs
from tfspk.errors import ToolError
from tfspk.params import build_params, param

KINDS = ("noise", "music", "babble")


# ----------------------------------------------------------------------------------------------
# primitives

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


def expand_labels(label, factor_index, num_classes: int):
    """Speaker label after speed perturbation: ``label + factor_index * num_classes``.

    Each speed factor makes a new set of classes (WeSpeaker, [Wang2023]): with factors
    ``(1.0, 0.9, 1.1)`` and C speakers, the network has 3C classes and unperturbed speech keeps
    its label. Works elementwise on arrays.
    """
    label = np.asarray(label)
    factor_index = np.asarray(factor_index)
    if np.any(label < 0) or np.any(label >= num_classes):
        raise ToolError(f"speaker label out of range [0, {num_classes}): {label!r}")
    if np.any(factor_index < 0):
        raise ToolError(f"speed factor index must be >= 0, got {factor_index!r}")
    result = label + factor_index * num_classes
    return result if result.ndim else int(result)


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


# ----------------------------------------------------------------------------------------------
# parameters

def parse_number_list(text, what: str, kind=float) -> list:
    """``"0:5:10:15"`` or ``"1.0,0.9,1.1"`` (Kaldi uses colons) -> list of numbers; ToolError if bad."""
    if isinstance(text, (list, tuple)):
        items = list(text)
    else:
        items = [item for item in str(text).replace(",", ":").split(":") if item.strip() != ""]
    if not items:
        raise ToolError(f"{what}: empty list")
    values = []
    for item in items:
        try:
            value = kind(float(item)) if kind is int else float(item)
            if kind is int and float(item) != value:
                raise ValueError
        except (TypeError, ValueError):
            raise ToolError(f"{what}: '{item}' is not {'an integer' if kind is int else 'a number'} "
                            f"(in {text!r})") from None
        if not math.isfinite(value):
            raise ToolError(f"{what}: '{item}' is not finite (in {text!r})")
        values.append(value)
    return values


def parse_speed_factors(text) -> list[float]:
    """Speed factors, e.g. ``"1.0,0.9,1.1"``: distinct numbers in [0.5, 2]; the label expansion
    index of a factor is its position (put 1.0 first to keep the original labels)."""
    factors = parse_number_list(text, "speed_factors")
    for value in factors:
        if not 0.5 <= value <= 2.0:
            raise ToolError(f"speed_factors: {value:g} is outside [0.5, 2] (in {text!r})")
    if len(set(factors)) != len(factors):
        raise ToolError(f"speed_factors: a factor is repeated (in {text!r})")
    return factors


@dataclasses.dataclass
class AugmentParams:
    """Parameters of :class:`Augmenter` (YAML section ``augment:``; directories are Kaldi data dirs)."""
    noise_dir: str = param("", "data dir of foreground noises (MUSAN noise); '' = none")
    music_dir: str = param("", "data dir of music (MUSAN music); '' = none")
    babble_dir: str = param("", "data dir of speech for babble (MUSAN speech); '' = none")
    rir_dir: str = param("", "data dir of room impulse responses (RIRS_NOISES simulated rooms); '' = none")
    reverb_prob: float = param(0.0, "probability of reverberating a crop")
    noise_prob: float = param(0.0, "probability of adding foreground noises")
    music_prob: float = param(0.0, "probability of adding music")
    babble_prob: float = param(0.0, "probability of adding babble (noise+music+babble <= 1)")
    noise_snrs: str = param("0:5:10:15", "SNRs (dB) of foreground noises, one drawn per noise")
    music_snrs: str = param("5:8:10:15", "SNRs (dB) of music")
    babble_snrs: str = param("13:15:17:20", "SNRs (dB) of each babble speaker")
    babble_speakers: str = param("3:4:5:6:7", "numbers of babble speakers, one drawn per crop")
    noise_interval: float = param(1.0, "seconds between the end of a foreground noise and the next one")
    speed_factors: str = param("1.0", "speed factors drawn uniformly, e.g. '1.0,0.9,1.1' (x3 classes)")
    normalize_reverb: bool = param(True, "scale reverberated speech to the dry power (wav-reverberate)")
    spec_augment: bool = param(False, "apply SpecAugment masks to the features")
    num_time_masks: int = param(1, "SpecAugment: time masks per crop")
    max_time_width: int = param(10, "SpecAugment: maximum width of a time mask (frames)")
    num_freq_masks: int = param(1, "SpecAugment: frequency masks per crop")
    max_freq_width: int = param(8, "SpecAugment: maximum width of a frequency mask (bins)")
    cache_mb: float = param(256.0, "memory for decoded noise/RIR recordings (LRU)")

    def validate(self, owner: str) -> None:
        for name in ("reverb_prob", "noise_prob", "music_prob", "babble_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ToolError(f"{owner}: {name} must be in [0, 1], got {value}")
        total = self.noise_prob + self.music_prob + self.babble_prob
        if total > 1.0 + 1e-9:
            raise ToolError(f"{owner}: noise_prob + music_prob + babble_prob = {total:g} > 1 "
                            "(at most one additive kind is applied per crop)")
        for kind in KINDS:
            if getattr(self, f"{kind}_prob") > 0 and not getattr(self, f"{kind}_dir"):
                raise ToolError(f"{owner}: {kind}_prob > 0 needs {kind}_dir")
        if self.reverb_prob > 0 and not self.rir_dir:
            raise ToolError(f"{owner}: reverb_prob > 0 needs rir_dir")
        for kind in KINDS:
            text = getattr(self, f"{kind}_snrs")
            check_snrs(parse_number_list(text, f"{owner}: {kind}_snrs"), text, f"{owner}: {kind}_snrs")
        speakers = parse_number_list(self.babble_speakers, f"{owner}: babble_speakers", int)
        if min(speakers) < 1:
            raise ToolError(f"{owner}: babble_speakers must be >= 1, got {self.babble_speakers!r}")
        if self.noise_interval < 0:
            raise ToolError(f"{owner}: noise_interval must be >= 0, got {self.noise_interval}")
        try:
            parse_speed_factors(self.speed_factors)
        except ToolError as err:
            raise ToolError(f"{owner}: {err}") from None
        for name in ("num_time_masks", "max_time_width", "num_freq_masks", "max_freq_width"):
            if getattr(self, name) < 0:
                raise ToolError(f"{owner}: {name} must be >= 0, got {getattr(self, name)}")
        if self.cache_mb < 0:
            raise ToolError(f"{owner}: cache_mb must be >= 0, got {self.cache_mb}")


# ----------------------------------------------------------------------------------------------
# noise / RIR sources

class _LruCache:
    """Decoded recordings by key, at most ``max_bytes`` in total (thread-safe)."""

    def __init__(self, max_bytes: float):
        self._max = max_bytes
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value: np.ndarray) -> None:
        if value.nbytes > self._max:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._bytes += value.nbytes
            while self._bytes > self._max:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes


class AudioSource:
    """The recordings of a Kaldi data dir (``wav.scp``) at ``sample_rate``, read lazily.

    Construction reads ``wav.scp`` and the header of every file entry (rate, length, readable);
    ``cmd |`` entries are checked when first read. ToolErrors name the directory, file and key.
    """

    def __init__(self, data_dir: str, what: str, sample_rate: int, cache: _LruCache):
        self.dir = os.fspath(data_dir)
        self.what = what
        self.rate = int(sample_rate)
        self._cache = cache
        if not os.path.isdir(self.dir):
            raise ToolError(f"{what} dir '{self.dir}' does not exist")
        scp = os.path.join(self.dir, "wav.scp")
        if not os.path.isfile(scp):
            raise ToolError(f"{what} dir '{self.dir}' has no wav.scp ({scp} not found)")
        from tfspk.io.table import read_table
        entries = read_table(scp, sorted_keys=False)
        if not entries:
            raise ToolError(f"{what} dir '{self.dir}': {scp} is empty")
        self.scp = scp
        self.keys = [key for key, _ in entries]
        self._values = dict(entries)
        self._lengths: dict[str, int] = {}
        for key, value in entries:
            if not value.rstrip().endswith("|"):
                self._lengths[key] = self._check_header(key, value)

    def __len__(self) -> int:
        return len(self.keys)

    def _where(self, key: str) -> str:
        return f"{self.what} '{key}' ({self._values[key]}, in {self.scp})"

    def _check_header(self, key: str, path: str) -> int:
        import soundfile as sf
        if not os.path.isfile(path):
            raise ToolError(f"{self._where(key)}: file not found")
        if os.path.getsize(path) == 0:
            raise ToolError(f"{self._where(key)}: file is empty (0 bytes)")
        try:
            info = sf.info(path)
        except Exception as err:  # soundfile raises several types for unreadable files
            raise ToolError(f"{self._where(key)}: not a readable audio file ({err})") from None
        if info.samplerate != self.rate:
            raise ToolError(f"{self._where(key)}: sample rate {info.samplerate} Hz, expected {self.rate} Hz "
                            "(resample the directory, e.g. with sox in wav.scp)")
        if info.frames <= 0:
            raise ToolError(f"{self._where(key)}: no samples")
        return int(info.frames)

    def length(self, key: str) -> int:
        """Number of samples of recording ``key``."""
        if key not in self._lengths:
            self._lengths[key] = len(self.read(key))
        return self._lengths[key]

    def read(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``[start, stop)`` of ``key`` (float32, int16 scale). Whole recordings up to
        the cache budget are decoded once and cached; longer ones are read in part."""
        cached = self._cache.get((self.dir, key))
        if cached is not None:
            return cached[start:stop]
        value = self._values[key].strip()
        if value.endswith("|"):
            from tfspk.io.audio import read_audio
            try:
                samples, rate = read_audio(value)
            except ToolError as err:
                raise ToolError(f"{self._where(key)}: {err}") from None
            if rate != self.rate:
                raise ToolError(f"{self._where(key)}: sample rate {rate} Hz, expected {self.rate} Hz")
            self._cache.put((self.dir, key), samples)
            return samples[start:stop]
        whole = self._lengths[key] * 4 <= self._cache._max / 8  # small files: keep the whole file
        samples = self._read_file(key, value, 0 if whole else start, None if whole else stop)
        if whole:
            self._cache.put((self.dir, key), samples)
            return samples[start:stop]
        return samples

    def _read_file(self, key: str, path: str, start: int, stop: int | None) -> np.ndarray:
        import soundfile as sf
        try:
            data = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)[0]
        except Exception as err:
            raise ToolError(f"{self._where(key)}: cannot read audio ({err})") from None
        return data[:, 0] * np.float32(32768.0)

    def looped(self, key: str, offset: int, length: int) -> np.ndarray:
        """``length`` samples of the recording looped (repeated) from sample ``offset``."""
        total = self.length(key)
        if total >= length + offset:
            return self.read(key, offset, offset + length)
        whole = self.read(key)
        reps = (offset + length) // total + 1
        return np.tile(whole, reps)[offset:offset + length]


# ----------------------------------------------------------------------------------------------
# the augmenter

@dataclasses.dataclass
class AugmentPlan:
    """What :meth:`Augmenter.plan` drew for one crop. ``draws`` are uniform numbers in [0, 1)
    resolved against the data (offsets, noise lengths) in :meth:`Augmenter.apply`."""
    speed_index: int
    speed: float
    rir: str | None
    kind: str | None                    # 'noise', 'music', 'babble' or None
    noises: list                        # [(key, snr_db, uniform offset draw)]
    seed: int                           # for the foreground-noise sequence


class Augmenter:
    """On-the-fly augmentation of waveforms; a pure function of ``(seed, step, position)``.

    ``Augmenter(params, sample_rate, seed=0)`` with ``params`` an :class:`AugmentParams` or a dict
    (YAML). Use ``augmented, speed_index = augmenter(samples, step, position)`` on the waveform
    (float, int16 scale) of the crop that batch position ``position`` gets at step ``step``, then
    ``expand_labels(label, speed_index, num_classes)`` (or ``augmenter.num_class_copies`` times the
    classes in the network) and ``augmenter.spec_augment(feats, step, position)`` on its features.
    Speed perturbation changes the length by 1/factor: read ``augmenter.source_length(n, plan)``
    samples to obtain ``n`` after it, or crop after augmentation.
    """

    def __init__(self, params=None, sample_rate: int = 16000, seed: int = 0):
        self.params = params if isinstance(params, AugmentParams) else build_params(
            AugmentParams, params, "augment")
        if isinstance(params, AugmentParams):
            params.validate("augment")
        p = self.params
        self.rate = int(sample_rate)
        self.seed = int(seed)
        self.speed_factors = parse_speed_factors(p.speed_factors)
        self.snrs = {kind: parse_number_list(getattr(p, f"{kind}_snrs"), f"augment: {kind}_snrs")
                     for kind in KINDS}
        self.babble_counts = parse_number_list(p.babble_speakers, "augment: babble_speakers", int)
        self._cache = _LruCache(p.cache_mb * 2**20)
        self.sources = {}
        for kind in KINDS:
            if getattr(p, f"{kind}_prob") > 0:
                self.sources[kind] = AudioSource(getattr(p, f"{kind}_dir"), f"{kind} recording",
                                                 self.rate, self._cache)
        self.rirs = AudioSource(p.rir_dir, "RIR", self.rate, self._cache) if p.reverb_prob > 0 else None

    @property
    def num_class_copies(self) -> int:
        """Classes per speaker after speed perturbation (3 for factors 1.0,0.9,1.1)."""
        return len(self.speed_factors)

    def rng(self, step: int, position: int, stream: int = 0) -> np.random.Generator:
        """The generator of crop (step, position); ``stream`` 1 is SpecAugment's."""
        words = [self.seed, int(step), int(position)] + ([stream] if stream else [])
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))

    def plan(self, step: int, position: int) -> AugmentPlan:
        """Draw the augmentation of crop (step, position) (no audio is read)."""
        p = self.params
        rng = self.rng(step, position)
        # fixed number of draws in a fixed order, so that one option does not shift the others
        u_speed, u_reverb, u_rir, u_kind = rng.random(4)
        speed_index = min(int(u_speed * len(self.speed_factors)), len(self.speed_factors) - 1)
        rir = None
        if self.rirs is not None and u_reverb < p.reverb_prob:
            rir = self.rirs.keys[min(int(u_rir * len(self.rirs)), len(self.rirs) - 1)]
        kind, edge = None, 0.0
        for name in KINDS:
            edge += getattr(p, f"{name}_prob")
            if u_kind < edge:
                kind = name
                break
        noises = []
        seed = int(rng.integers(0, 2**63 - 1))
        if kind in ("music", "babble"):
            source = self.sources[kind]
            count = 1 if kind == "music" else int(rng.choice(self.babble_counts))
            keys = rng.choice(len(source), size=count, replace=count > len(source))
            for index in keys:
                noises.append((source.keys[int(index)], float(rng.choice(self.snrs[kind])), float(rng.random())))
        return AugmentPlan(speed_index, self.speed_factors[speed_index], rir, kind, noises, seed)

    def source_length(self, length: int, plan: AugmentPlan) -> int:
        """Input samples that give at least ``length`` samples after the plan's speed change."""
        return int(math.ceil(length * plan.speed)) + 1

    def apply(self, samples: np.ndarray, plan: AugmentPlan) -> np.ndarray:
        """Apply ``plan`` to ``samples``: speed -> reverberation -> additive noise. float32 out."""
        out = speed_perturb(samples, plan.speed)
        if plan.rir is not None:
            out = reverberate(out, self.rirs.read(plan.rir), self.params.normalize_reverb)
        if plan.kind == "noise":
            out = self._foreground(out, plan.seed)
        elif plan.kind is not None:
            source = self.sources[plan.kind]
            clean = out
            for key, snr, u_offset in plan.noises:
                offset = int(u_offset * source.length(key))
                out = out + (add_noise(clean, source.looped(key, offset, clean.size), snr) - clean)
        return out.astype(np.float32, copy=False)

    def _foreground(self, speech: np.ndarray, seed: int) -> np.ndarray:
        """Foreground noises from the start, ``noise_interval`` s apart (augment_data_dir.py)."""
        source = self.sources["noise"]
        rng = np.random.Generator(np.random.PCG64(seed))
        out = speech.copy()
        gap = int(round(self.params.noise_interval * self.rate))
        position = 0
        while position < speech.size:
            key = source.keys[int(rng.integers(len(source)))]
            snr = float(rng.choice(self.snrs["noise"]))
            noise = source.read(key, 0, speech.size - position)
            # each noise is scaled against the whole (clean) crop, added where it falls
            out += add_noise(speech, noise, snr, position) - speech
            position += noise.size + max(gap, 1)
        return out

    def __call__(self, samples: np.ndarray, step: int, position: int) -> tuple[np.ndarray, int]:
        """``(augmented samples, speed_index)`` of crop (step, position)."""
        plan = self.plan(step, position)
        return self.apply(samples, plan), plan.speed_index

    def spec_augment(self, feats: np.ndarray, step: int, position: int) -> np.ndarray:
        """SpecAugment of crop (step, position)'s features if enabled (else an unchanged copy)."""
        p = self.params
        if not p.spec_augment:
            return np.array(feats, dtype=np.float32)
        return spec_augment(feats, self.rng(step, position, stream=1), p.num_time_masks, p.max_time_width,
                            p.num_freq_masks, p.max_freq_width)


# ----------------------------------------------------------------------------------------------
# voiced audio: Kaldi energy VAD applied to the waveform

def voiced_runs(vad, num_samples: int, shift: int):
    """The voiced audio of an utterance, from its frame-level VAD (Kaldi ``compute-vad`` output).

    Frame ``f`` owns the samples ``[f * shift, (f + 1) * shift)`` (cut at ``num_samples``); the
    voiced audio is the concatenation, in order, of the blocks of the frames with ``vad > 0.5``
    (the threshold of ``select-voiced-frames``). Returned compactly as runs of consecutive voiced
    frames: ``(starts, offsets, num_voiced_samples)`` with ``starts[r]`` the first frame of run r
    and ``offsets[r]`` the number of voiced frames before it (int64 arrays), for
    :func:`voiced_positions`. ``num_voiced_samples = sum_f min(shift, max(0, num_samples - f shift))``
    over the voiced frames (only the trailing frames can be cut, so voiced sample ``v`` lies in
    voiced frame ``v // shift``).
    """
    voiced = np.asarray(vad).reshape(-1) > 0.5
    edges = np.flatnonzero(np.diff(np.concatenate(([False], voiced, [False])).astype(np.int8)))
    starts, ends = edges[0::2].astype(np.int64), edges[1::2].astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(ends - starts)[:-1])).astype(np.int64)
    frames = np.flatnonzero(voiced).astype(np.int64)
    total = int(np.clip(int(num_samples) - frames * shift, 0, shift).sum())
    return starts, offsets, total


def voiced_positions(runs, shift: int, start: int, length: int) -> np.ndarray:
    """Sample indices (in the utterance) of voiced samples ``start .. start + length - 1``.

    With ``runs = (starts, offsets, total)`` of :func:`voiced_runs`: voiced sample ``v`` is in voiced
    frame ``k = v // shift``, which is frame ``starts[r] + k - offsets[r]`` of the utterance for the
    run ``r`` with ``offsets[r] <= k < offsets[r + 1]``; its index is that frame times ``shift``
    plus ``v mod shift``. int64 ``[length]``, increasing.
    """
    starts, offsets, total = runs
    if start < 0 or length < 0 or start + length > total:
        raise ToolError(f"voiced samples [{start}, {start + length}) outside the {total} voiced samples")
    v = np.arange(start, start + length, dtype=np.int64)
    k = v // shift
    run = np.searchsorted(offsets, k, side="right") - 1
    return (starts[run] + k - offsets[run]) * shift + v % shift


def vad_frame_range(num_samples: int, frame) -> tuple[int, int]:
    """The VAD lengths accepted for audio of ``num_samples`` samples: Kaldi's frame count
    (:func:`tfspk.features.num_frames`) with snip-edges true and with snip-edges false (the VAD may come
    from MFCCs made with other options than the training features), each +-1 frame of rounding."""
    from tfspk.features import num_frames
    counts = [num_frames(num_samples, dataclasses.replace(frame, snip_edges=snip)) for snip in (True, False)]
    return max(min(counts) - 1, 0), max(counts) + 1


# ----------------------------------------------------------------------------------------------
# augmented feature batches from audio

CMN_MODES = ("crop", "sliding", "none")
# data.cmn sliding: the recipe's apply-cmvn-sliding options (steps/prepare_feats_for_egs.sh)
SLIDING_CMN = dict(cmn_window=300, center=True, norm_vars=False)


class Crop(collections.namedtuple("Crop", "key start length label plan")):
    """One batch position of :meth:`AudioCropBatches.plan`: ``length`` samples from sample ``start`` of
    utterance ``key``'s audio (its voiced audio when VAD is used), the label and the AugmentPlan."""


def _vad_mode(vad) -> str:
    text = {True: "true", False: "false"}.get(vad, str(vad).strip().lower())
    if text not in ("auto", "true", "false"):
        raise ToolError(f"vad must be auto, true or false, got {vad!r}")
    return text


class AudioCropBatches:
    """Speaker-balanced batches of augmented features computed from audio, a pure function of
    ``(seed, step)``: ``feats [B, L, D] float32, labels [B] int32`` = :meth:`batch` (step).

    ``data_dir`` has ``wav.scp`` (file paths) and ``utt2spk``; optionally ``segments``
    (``utt recording start end``, wav.scp then keyed by recording; only the segment's samples are
    read, Kaldi ``extract-segments`` sample rules) and ``vad.scp`` (see ``vad``). Labels follow
    ``spk2int`` (default: sorted speakers). Per step: ``L ~ U{min_frames..max_frames}``; B distinct
    speakers drawn uniformly (with replacement only if there are fewer than B), for each an
    utterance long enough for the crop and a uniform offset; the crop (read from the file, only the
    samples needed, allowing for the speed factor) goes through ``augmenter``, then
    ``extractor`` (a :class:`tfspk.features.FeatureExtractor`), then CMN, then SpecAugment; the label
    is expanded by the speed index (:func:`expand_labels`). :meth:`iterate` runs the steps in
    ``num_workers`` processes (numpy, scipy and the feature extractor hold the GIL too often for
    threads to scale) and yields them in step order. ``align_to_frames``: crop starts are
    multiples of the frame shift (the crop's features are then rows of the whole file's features,
    snip-edges semantics).

    ``cmn`` (before SpecAugment): ``crop`` subtracts the crop's mean feature vector; ``sliding`` is
    Kaldi's ``apply-cmvn-sliding --norm-vars=false --cmn-window=300 --center=true`` on the crop's
    features (:func:`tfspk.features.apply_cmvn_sliding`; for crops of at most 300 frames the
    centred window covers the whole crop, so it equals ``crop``); ``none``. ``crop_mean_norm=True``
    is the old spelling of ``cmn="crop"``.

    ``vad`` (``auto``: use ``vad.scp`` if the dir has one; ``true``: require it; ``false``): crops are
    drawn from the voiced audio only, the concatenated sample blocks ``[f shift, (f+1) shift)`` of the
    voiced frames f (:func:`voiced_runs`, shift = the extractor's frame shift). This approximates
    ``select-voiced-frames`` on offline features: frames whose window straddles the joint of two
    voiced blocks mix samples that were not adjacent, and with snip-edges true the block of frame f
    is not centred on its window (with snip-edges false, the recipe's setting, it is). Utterances
    with too few (voiced) samples for the longest crop are skipped; :attr:`notes` counts them.
    """

    def __init__(self, data_dir: str, augmenter: Augmenter, extractor, batch_size: int = 64,
                 min_frames: int = 200, max_frames: int = 400, spk2int: dict | None = None,
                 align_to_frames: bool = False, crop_mean_norm: bool = False, cmn: str | None = None,
                 vad="auto"):
        from tfspk.io.table import read_utt2spk
        self.dir = os.fspath(data_dir)
        if not 0 < min_frames <= max_frames:
            raise ToolError(f"need 0 < min_frames <= max_frames, got {min_frames} and {max_frames}")
        self.cmn = cmn if cmn is not None else ("crop" if crop_mean_norm else "none")
        if self.cmn not in CMN_MODES:
            raise ToolError(f"cmn must be one of {', '.join(CMN_MODES)}, got {self.cmn!r}")
        self.crop_mean_norm = self.cmn == "crop"
        self.augmenter, self.extractor = augmenter, extractor
        if float(extractor.rate) != float(augmenter.rate):
            raise ToolError(f"feature sample rate {extractor.rate:g} Hz differs from the augmenter's "
                            f"{augmenter.rate} Hz")
        self.batch_size, self.min_frames, self.max_frames = batch_size, min_frames, max_frames
        # align_to_frames: crops start at a multiple of the frame shift, so (snip-edges, no dither, no
        # speed change) the crop's L frames are exactly frames j..j+L-1 of the whole file's features.
        self.align_to_frames = bool(align_to_frames)
        frame = extractor.opts.frame
        self._shift, self._window = frame.window_shift_samples, frame.window_size_samples
        utt2spk = read_utt2spk(os.path.join(self.dir, "utt2spk"))
        self.spk2int = spk2int or {spk: i for i, spk in enumerate(sorted(set(utt2spk.values())))}
        utterances = self._utterances(utt2spk)      # [(key, path, first sample, num samples)]
        mode = _vad_mode(vad)
        vad_scp = os.path.join(self.dir, "vad.scp")
        if mode == "true" and not os.path.isfile(vad_scp):
            raise ToolError(f"data.vad true: {vad_scp} not found")
        self.uses_vad = mode == "true" or (mode == "auto" and os.path.isfile(vad_scp))
        runs = self._read_vad(vad_scp, utterances, frame) if self.uses_vad else {}
        # As the feats sampler: an utterance serves every step whose crop it can hold, so the
        # minimum crop decides which utterances are kept, and each step picks among those long enough.
        need = self._source_need(min_frames)
        self._keys, self._paths, self._bases, self._lengths, self._runs = [], [], [], [], []
        by_speaker, short, unvoiced, no_vad = {}, 0, 0, 0
        for key, path, first, count in utterances:
            voiced = runs.get(key) if self.uses_vad else None
            if self.uses_vad and voiced is None:
                no_vad += 1
                continue
            length = voiced[2] if voiced is not None else count
            if length < need:
                if count < need:
                    short += 1
                else:
                    unvoiced += 1
                continue
            by_speaker.setdefault(utt2spk[key], []).append(len(self._keys))
            self._keys.append(key)
            self._paths.append(path)
            self._bases.append(first)
            self._lengths.append(length)
            self._runs.append(voiced)
        self._index = {key: i for i, key in enumerate(self._keys)}
        self._speakers = sorted(by_speaker)
        # each speaker's utterances by ascending length: the usable ones of a step are a suffix
        self._utts = [sorted(by_speaker[spk], key=self._lengths.__getitem__) for spk in self._speakers]
        self._sorted_lengths = [np.array([self._lengths[u] for u in utts]) for utts in self._utts]
        self._longest = np.array([lengths[-1] for lengths in self._sorted_lengths], dtype=np.int64)
        vad_text = f"voiced audio from {vad_scp}" if self.uses_vad else "no VAD"
        self.notes = [f"audio input {self.dir}: {len(self._keys)} of {len(utterances)} utterances used ({vad_text}); "
                      f"skipped: {short} shorter than the shortest crop ({min_frames} frames)"
                      + (f", {unvoiced} with too few voiced samples, {no_vad} without an entry in vad.scp"
                         if self.uses_vad else "")]
        longest_need = self._source_need(max_frames)
        if not self._speakers or self._longest.max() < longest_need:
            raise ToolError(f"{self.dir}: no utterance is long enough for {max_frames} frames"
                            + (" of voiced audio" if self.uses_vad else "") + " (lower data.max_frames)")
        self.num_classes = len(self.spk2int) * augmenter.num_class_copies

    def _utterances(self, utt2spk):
        """``[(utt, file, first sample, num samples)]`` from wav.scp (+ segments), headers checked."""
        import soundfile as sf
        from tfspk.io.table import read_table
        scp = os.path.join(self.dir, "wav.scp")
        rate = self.augmenter.rate
        entries = read_table(scp)
        infos = {}

        def info(key, path):
            if key not in infos:
                if path.rstrip().endswith("|"):
                    raise ToolError(f"{scp}: '{key}' is a command; audio batches need files (decode "
                                    "the commands once, e.g. egs/voxceleb/v2/local/wav_scp_to_files.py)")
                try:
                    found = sf.info(path)
                except Exception as err:
                    raise ToolError(f"{scp}: '{key}': cannot read audio {path} ({err})") from None
                if found.samplerate != rate:
                    raise ToolError(f"{scp}: '{key}': {path} has rate {found.samplerate} Hz, expected {rate} Hz")
                infos[key] = int(found.frames)
            return infos[key]

        segments_path = os.path.join(self.dir, "segments")
        if not os.path.exists(segments_path):
            result = []
            for key, path in entries:
                if key not in utt2spk:
                    raise ToolError(f"{scp}: '{key}' has no speaker in {self.dir}/utt2spk")
                result.append((key, path, 0, info(key, path)))
            return result
        from tfspk.io.audio import MAX_OVERSHOOT_SECONDS, read_segments
        recordings = dict(entries)
        result = []
        for number, (utt, recording, start, end) in enumerate(read_segments(segments_path), 1):
            where = f"{segments_path}:{number}: segment '{utt}'"
            if recording not in recordings:
                raise ToolError(f"{where}: recording '{recording}' is not in {scp}")
            if utt not in utt2spk:
                raise ToolError(f"{where} has no speaker in {self.dir}/utt2spk")
            total = info(recording, recordings[recording])
            # extract-segments: sample indices truncated; end -1 = the end; <= 0.5 s past the end is clipped
            first, last = int(start * rate), total if end == -1 else int(end * rate)
            if first >= total:
                raise ToolError(f"{where}: starts at {start} s, after the end of '{recording}' "
                                f"({total / rate:.3f} s)")
            if last > total:
                if last >= total + int(MAX_OVERSHOOT_SECONDS * rate):
                    raise ToolError(f"{where}: ends at {end} s, more than {MAX_OVERSHOOT_SECONDS} s after the "
                                    f"end of '{recording}' ({total / rate:.3f} s)")
                last = total
            result.append((utt, recordings[recording], first, last - first))
        return result

    def _read_vad(self, vad_scp, utterances, frame) -> dict:
        """utt -> :func:`voiced_runs` of its vad.scp vector (length checked against its audio)."""
        from tfspk.io.ark import read_rspecifier
        counts = {key: count for key, _, _, count in utterances}
        runs = {}
        for key, vector in read_rspecifier(f"scp:{vad_scp}"):
            if key not in counts:
                continue
            vector = np.asarray(vector)
            if vector.ndim != 1:
                raise ToolError(f"{vad_scp}: '{key}' is not a vector (shape {vector.shape}); expected "
                                "compute-vad's 0/1 per frame")
            low, high = vad_frame_range(counts[key], frame)
            if not low <= vector.size <= high:
                raise ToolError(f"{vad_scp}: '{key}' has {vector.size} VAD frames, but its audio "
                                f"({counts[key]} samples) has {low + 1}..{high - 1} frames at a shift of "
                                f"{self._shift} samples (+-1 accepted): wrong VAD, features or audio?")
            runs[key] = voiced_runs(vector, counts[key], self._shift)
        return runs

    def samples_for(self, frames: int) -> int:
        """Samples that give at least ``frames`` frames: ``(frames - 1) * shift + window``."""
        return (frames - 1) * self._shift + self._window

    def read(self, key: str, start: int, length: int) -> np.ndarray:
        """Samples ``start .. start + length - 1`` of utterance ``key``'s (voiced) audio, float32 on
        the int16 scale. Only the span of the file that holds them is read."""
        import soundfile as sf
        utt = self._index[key]
        path, base, voiced = self._paths[utt], self._bases[utt], self._runs[utt]
        positions = None
        if voiced is not None:
            positions = voiced_positions(voiced, self._shift, start, length)
            first, stop = int(positions[0]), int(positions[-1]) + 1
        else:
            first, stop = start, start + length
        try:
            raw = sf.read(path, start=base + first, stop=base + stop, dtype="float32", always_2d=True)[0]
        except Exception as err:
            raise ToolError(f"cannot read audio {path} of '{key}' ({err})") from None
        if raw.shape[0] != stop - first:
            raise ToolError(f"audio {path} of '{key}': expected samples {base + first}..{base + stop - 1}, the "
                            f"file has only {base + first + raw.shape[0]} (truncated?)")
        samples = raw[:, 0] * np.float32(32768.0)
        return samples if positions is None else samples[positions - first]

    def _source_need(self, frames: int) -> int:
        """Samples an utterance needs for a crop of ``frames`` frames at the slowest speed factor."""
        return int(math.ceil(self.samples_for(frames) * max(self.augmenter.speed_factors))) + 2

    def plan(self, step: int):
        """``(frames, [Crop(key, start, num_samples, label, AugmentPlan)] per position)`` of ``step``.

        As the feats sampler: the speakers are drawn among those with an utterance long enough for
        the step's crop (at the slowest speed factor), and each one's utterance among its long-enough
        ones, so short utterances still serve short crops.
        """
        aug = self.augmenter
        rng = aug.rng(step, 0, stream=2)
        frames = int(rng.integers(self.min_frames, self.max_frames + 1))
        needed = self.samples_for(frames)
        candidates = np.flatnonzero(self._longest >= self._source_need(frames))
        count = len(candidates)
        speakers = candidates[rng.choice(count, self.batch_size, replace=count < self.batch_size)]
        crops = []
        for position, speaker in enumerate(speakers):
            plan = aug.plan(step, position)
            length = aug.source_length(needed, plan)
            utts, lengths = self._utts[int(speaker)], self._sorted_lengths[int(speaker)]
            first = int(np.searchsorted(lengths, length))   # the speaker's longest is >= length
            utt = utts[first + int(rng.integers(len(utts) - first))]
            if self.align_to_frames:
                start = self._shift * int(rng.integers(0, (self._lengths[utt] - length) // self._shift + 1))
            else:
                start = int(rng.integers(0, self._lengths[utt] - length + 1))
            label = expand_labels(self.spk2int[self._speakers[int(speaker)]], plan.speed_index, len(self.spk2int))
            crops.append(Crop(self._keys[utt], start, length, label, plan))
        return frames, crops

    def normalize(self, feats: np.ndarray) -> np.ndarray:
        """The ``cmn`` of the crop's features ``[L, D]`` (float32)."""
        if self.cmn == "crop":
            return feats - feats.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
        if self.cmn == "sliding":
            from tfspk.features import apply_cmvn_sliding
            return apply_cmvn_sliding(feats, **SLIDING_CMN)
        return feats

    def batch(self, step: int):
        """``(feats [B, L, D] float32, labels [B] int32)`` of ``step``."""
        aug = self.augmenter
        frames, crops = self.plan(step)
        needed = self.samples_for(frames)
        feats = np.empty((self.batch_size, frames, self.extractor.dim), np.float32)
        labels = np.empty(self.batch_size, np.int32)
        for position, crop in enumerate(crops):
            wave = aug.apply(self.read(crop.key, crop.start, crop.length), crop.plan)[:needed]
            # CMN before SpecAugment, whose zero masks are then the mean
            features = self.normalize(self.extractor(wave, aug.rate)[:frames])
            feats[position] = aug.spec_augment(features, step, position)
            labels[position] = crop.label
        return feats, labels

    def iterate(self, start_step: int = 0, num_steps: int | None = None, num_workers: int = 2,
                prefetch: int | None = None, nice: int = 0):
        """Batches of steps ``start_step, start_step + 1, ...`` in order, from ``num_workers`` forked
        worker processes, at most ``prefetch`` (default ``2 * num_workers``) batches ahead: the
        workers wait for the consumer instead of running ahead of it (multiprocessing's imap would
        keep computing, holding the results in memory and the cores away from the training step). The
        workers run ``nice`` steps below the caller's priority (:class:`tfspk.data.OrderedPrefetcher`)."""
        import itertools
        from tfspk.data.pipeline import OrderedPrefetcher
        steps = itertools.count(start_step) if num_steps is None else range(start_step, start_step + num_steps)
        if num_workers <= 1:
            yield from map(self.batch, steps)
            return
        with OrderedPrefetcher(steps, self.batch, num_workers, prefetch or 2 * num_workers, processes=True,
                               nice=nice) as batches:
            yield from batches
