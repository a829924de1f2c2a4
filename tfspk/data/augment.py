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
* **SpecAugment** on features (:class:`SpecAugment`, [Park2019] time and frequency masks), the one
  part that needs no waveform: training from offline features (``data.source: feats``) takes it alone
  (:func:`features_only`), on each training crop.

Order of application: speed -> reverberation -> additive noise (SNRs are relative to the
reverberated speech, as in Kaldi where ``wav-reverberate`` adds the noise after the RIR).

Everything random is drawn by :meth:`Augmenter.plan` from
``numpy.random.Generator(PCG64(SeedSequence([seed, step, position])))`` (:func:`crop_rng`), the
SpecAugment masks from ``SeedSequence([seed, step, position, 1])``: the augmented crop of batch
position ``position`` (in the global batch) at training step ``step`` is a pure function of those
numbers and the data, so a run resumed at step k sees exactly the batches an uninterrupted run would.

Noise and RIR directories are Kaldi data dirs (``wav.scp``; ``utt2spk`` is not needed). Only the
audio headers are read at construction (rate and length of every path entry are checked then);
the audio itself is read when drawn, the part that is needed, and kept in a bounded LRU cache.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from tfspk.data.dsp import add_noise, apply_spec_augment_masks, reverberate, spec_augment_masks, speed_perturb
from tfspk.data.noise_sources import AudioSource, LruCache
from tfspk.data.ranges import check_snrs
from tfspk.errors import ToolError
from tfspk.params import build_params, coerce, normalize_name, param

KINDS = ("noise", "music", "babble")
#: the ``augment:`` keys of SpecAugment, which acts on features; every other key acts on the waveform
SPEC_AUGMENT_KEYS = ("spec_augment", "num_time_masks", "max_time_width", "num_freq_masks", "max_freq_width")
#: the stream word of the SpecAugment draws of a crop (:func:`crop_rng`)
SPEC_AUGMENT_STREAM = 1


def crop_rng(seed: int, step: int, position: int, stream: int = 0) -> np.random.Generator:
    """The generator of the crop at batch position ``position`` of step ``step``:
    ``Generator(PCG64(SeedSequence([seed, step, position] (+ [stream] if stream))))``."""
    words = [int(seed), int(step), int(position)] + ([int(stream)] if stream else [])
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))


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
        for name in SPEC_AUGMENT_KEYS[1:]:
            if getattr(self, name) < 0:
                raise ToolError(f"{owner}: {name} must be >= 0, got {getattr(self, name)}")
        idle = changed_keys(self, SPEC_AUGMENT_KEYS[1:])
        if idle and not self.spec_augment:
            # the masks' keys do nothing without spec_augment: an option that is set must act
            raise ToolError(f"{owner}: {', '.join(f'{name} = {getattr(self, name)!r}' for name in idle)} "
                            "set, but spec_augment is false (the masks are drawn only with spec_augment: true)")
        if self.cache_mb < 0:
            raise ToolError(f"{owner}: cache_mb must be >= 0, got {self.cache_mb}")


def changed_keys(params: AugmentParams, names) -> list[str]:
    """The fields of ``params`` among ``names`` whose value is not the default, in field order."""
    return [f.name for f in dataclasses.fields(params) if f.name in names and getattr(params, f.name) != f.default]


def config_docs() -> list[str]:
    """Comment lines of the ``augment:`` section for ``tfspk-train --print-config``."""
    def listed(names):
        return ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(AugmentParams) if f.name in names)
    waveform = [f.name for f in dataclasses.fields(AugmentParams) if f.name not in SPEC_AUGMENT_KEYS]
    return ["SpecAugment [Park2019] on each training crop (data.source feats or audio):",
            "  " + listed(SPEC_AUGMENT_KEYS),
            "waveform augmentation (data.source audio only; an error with data.source feats):",
            "  " + listed(waveform),
            "example: augment: {spec_augment: true, num_time_masks: 2, max_time_width: 20}"]


class SpecAugment:
    """SpecAugment time and frequency masks ([Park2019, sec. 2]; no time warping) of training crops, a pure
    function of ``(seed, step, position)``.

    ``SpecAugment(params, seed)`` (an :class:`AugmentParams` or the ``augment:`` dict); then
    ``spec(feats, step, positions)`` masks the batch ``feats [B, L, D]`` (float32) in place: crop ``b``
    gets the masks that :func:`tfspk.data.dsp.spec_augment_masks` draws from ``crop_rng(seed, step,
    positions[b], 1)`` (``positions``: the crops' places in the global batch of the step), set to 0
    (the mean of mean-normalised features) -- what :func:`tfspk.data.dsp.spec_augment` gives crop by
    crop with that generator. Without ``spec_augment: true`` nothing is masked.
    """

    def __init__(self, params=None, seed: int = 0):
        self.params = params if isinstance(params, AugmentParams) else build_params(
            AugmentParams, params, "augment")
        self.seed = int(seed)

    @property
    def enabled(self) -> bool:
        return bool(self.params.spec_augment)

    def rng(self, step: int, position: int) -> np.random.Generator:
        return crop_rng(self.seed, step, position, SPEC_AUGMENT_STREAM)

    def masks(self, step: int, positions, num_frames: int, feat_dim: int) -> tuple[np.ndarray, np.ndarray]:
        """``(time [B, num_time_masks, 2], freq [B, num_freq_masks, 2])`` ``(start, width)`` of the crops."""
        p = self.params
        positions = np.asarray(positions).reshape(-1)
        time = np.empty((positions.size, p.num_time_masks, 2), np.int64)
        freq = np.empty((positions.size, p.num_freq_masks, 2), np.int64)
        for row, position in enumerate(positions):
            time_masks, freq_masks = spec_augment_masks(num_frames, feat_dim, self.rng(step, position),
                                                        p.num_time_masks, p.max_time_width,
                                                        p.num_freq_masks, p.max_freq_width)
            time[row], freq[row] = np.reshape(time_masks, (-1, 2)), np.reshape(freq_masks, (-1, 2))
        return time, freq

    def __call__(self, feats: np.ndarray, step: int, positions) -> np.ndarray:
        """Mask the batch ``feats [B, L, D]`` of step ``step`` in place (if enabled); returns it."""
        if not self.enabled:
            return feats
        positions = np.asarray(positions).reshape(-1)
        if feats.ndim != 3 or positions.size != feats.shape[0]:
            raise ToolError(f"SpecAugment: a batch of shape {feats.shape} needs one position per crop, got "
                            f"{positions.size}")
        time, freq = self.masks(step, positions, feats.shape[1], feats.shape[2])
        return apply_spec_augment_masks(feats, time, freq)


def features_only(values, seed: int, source: str) -> SpecAugment:
    """The ``augment:`` section of a training input of features (``data.source`` ``source``): its
    :class:`SpecAugment`. A waveform key (noise, music, babble, reverberation, speed perturbation,
    their options) set away from its default is a ToolError naming every such key: that input never
    sees a waveform, so it would be ignored."""
    fields = {normalize_name(f.name): f for f in dataclasses.fields(AugmentParams)}
    waveform = []
    # before the section's own checks, whose advice (e.g. "reverb_prob > 0 needs rir_dir") would not help here
    for key, value in (values.items() if isinstance(values, dict) else ()):
        field = fields.get(normalize_name(key))
        if field is not None and field.name not in SPEC_AUGMENT_KEYS and value is not None \
                and coerce(field, value, f"augment: parameter '{field.name}'") != field.default:
            waveform.append((field.name, value))
    if waveform:
        named = ", ".join(f"'augment.{name}' ({value!r})" for name, value in waveform)
        raise ToolError(f"config key{'s' if len(waveform) > 1 else ''} {named} need{'' if len(waveform) > 1 else 's'} "
                        f"data.source audio: noise, music, babble, reverberation and speed perturbation act on "
                        f"the waveform, and data.source {source} reads features; with data.source {source} the "
                        f"augment section takes only SpecAugment ({', '.join(SPEC_AUGMENT_KEYS)})")
    return SpecAugment(build_params(AugmentParams, values, "augment"), seed)


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
    classes in the network) and ``augmenter.spec_augment(feats, step, position)`` on its features
    (:class:`SpecAugment`, ``augmenter.masks``).
    Speed perturbation changes the length by 1/factor: read ``augmenter.source_length(n, plan)``
    samples to obtain ``n`` after it, or crop after augmentation.
    """

    def __init__(self, params=None, sample_rate: int = 16000, seed: int = 0, allow_resample: bool = True):
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
        self._cache = LruCache(p.cache_mb * 2**20)
        self.sources = {}
        for kind in KINDS:
            if getattr(p, f"{kind}_prob") > 0:
                self.sources[kind] = AudioSource(getattr(p, f"{kind}_dir"), f"{kind} recording",
                                                 self.rate, self._cache, allow_resample)
        self.rirs = AudioSource(p.rir_dir, "RIR", self.rate, self._cache, allow_resample) \
            if p.reverb_prob > 0 else None
        self.masks = SpecAugment(p, self.seed)

    @property
    def num_class_copies(self) -> int:
        """Classes per speaker after speed perturbation (3 for factors 1.0,0.9,1.1)."""
        return len(self.speed_factors)

    def rng(self, step: int, position: int, stream: int = 0) -> np.random.Generator:
        """The generator of crop (step, position) (:func:`crop_rng`); ``stream`` 1 is SpecAugment's."""
        return crop_rng(self.seed, step, position, stream)

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
        """SpecAugment of crop (step, position)'s features ``[L, D]`` if enabled (else an unchanged copy)."""
        feats = np.array(feats, dtype=np.float32)
        if feats.ndim != 2:
            raise ToolError(f"spec_augment expects a [frames, dim] matrix, got shape {feats.shape}")
        return self.masks(feats[None], step, [position])[0]
