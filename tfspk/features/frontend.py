"""The front end of a network: features, post-processing, energy VAD and CMN, recorded once per experiment.

The experiment config's ``features:`` section (:class:`tfspk.train.config.FeaturesConfig`) names it with
paths (``conf: conf/fbank.conf``); :func:`front_end_from_section` resolves it into a :class:`FrontEnd` of
option values, which ``tfspk-train`` writes to ``<exp>/features.yaml`` (:func:`write_front_end`) and
every consumer reads back with :func:`read_front_end` (training's audio input builds it from the
section, extraction, export, ``tfspk-embed`` and ``tfspk.Embedder`` from the experiment dir). The file
holds everything inference needs::

    format: 1
    type: fbank                  # a registered feature type (tfspk.features.registry)
    options: {frame: {sample_frequency: 8000.0, ...}, mel: {...}, ...}   # every option, as trained
    post: [{name: add_deltas, params: {order: 2, window: 2}}]           # post-processing, in order
    dim: 80                      # after post-processing
    sample_rate: 8000.0
    cmn: {mode: sliding, window: 300}   # sliding (Kaldi apply-cmvn-sliding, centred, no variance
                                        # normalisation) | crop (training from audio: the crop's mean;
                                        # inference: the utterance's mean) | none
    vad: {apply: true, options: {vad_energy_threshold: 5.5, ...}, mfcc: {frame: {...}, ...}}
                                 # energy VAD (Kaldi compute-vad) on the log energy of MFCCs with
                                 # 'mfcc' options (null: Kaldi's MFCC defaults on the features' framing)

An experiment dir made by other means (an importer) writes the same file with :func:`write_front_end`.
"""
from __future__ import annotations

import copy
import dataclasses
import os

import yaml

from tfspk.errors import ToolError
from tfspk.features.options import MfccOptions, option_lines, options_from_dict, read_options_file, validate
from tfspk.features.registry import feature_type, post_step, post_steps, post_steps_dicts
from tfspk.features.vad import VadOptions
from tfspk.params import read_yaml

FRONT_END_FILE = "features.yaml"
FORMAT = 1
CMN_MODES = ("sliding", "crop", "none")
VAD_MODES = ("auto", "true", "false")
#: sliding-CMN window that covers any utterance: CMN by the utterance's mean ("crop" at inference)
UTTERANCE_WINDOW = 1 << 30


@dataclasses.dataclass
class FrontEnd:
    """Features of a registered type, post-processing steps, CMN and energy VAD (see the module docstring)."""
    feature_type: str
    options: object
    post: list = dataclasses.field(default_factory=list)        # [(step name, Params)]
    cmn: str = "sliding"
    cmn_window: int = 300
    vad: bool = False
    vad_options: VadOptions = dataclasses.field(default_factory=VadOptions)
    vad_mfcc: MfccOptions | None = None                         # None: MFCC defaults on the features' framing

    def __post_init__(self):
        self.feature_type = feature_type(self.feature_type).feature_type
        if self.cmn not in CMN_MODES:
            raise ToolError(f"front end: cmn must be one of {', '.join(CMN_MODES)}, got {self.cmn!r}")
        if int(self.cmn_window) < 1:
            raise ToolError(f"front end: the CMN window must be a positive number of frames, got {self.cmn_window}")
        validate(self.options)
        self.vad_options.validate()
        if self.vad_mfcc is not None:
            validate(self.vad_mfcc)
        if self.vad:
            self._check_vad_framing()

    def _check_vad_framing(self) -> None:
        """The VAD applies frame by frame: its MFCCs must have the features' rate and frame count."""
        from tfspk.features.mfcc import num_frames
        energy = self.vad_energy_options().frame
        if energy.sample_frequency != self.frame.sample_frequency:
            raise ToolError(f"front end: the VAD's MFCCs are at {energy.sample_frequency:g} Hz but the features at "
                            f"{self.frame.sample_frequency:g} Hz")
        features = feature_type(self.feature_type)
        for samples in (1000, 16001, 123457):
            if num_frames(samples, energy) != features.num_frames(self.options, samples):
                raise ToolError(f"front end: the VAD's MFCCs and the features give different numbers of frames "
                                f"({num_frames(samples, energy)} vs {features.num_frames(self.options, samples)} "
                                f"for {samples} samples): use the same --frame-shift and --snip-edges=false in both")

    @property
    def frame(self):
        return self.options.frame

    @property
    def sample_rate(self) -> float:
        return float(self.options.frame.sample_frequency)

    @property
    def dim(self) -> int:
        dim = int(self.options.dim)
        for name, params in self.post:
            dim = post_step(name).dim(params, dim)
        return dim

    def extractor(self, dither_seed: int = 0, dither: bool = True):
        """The numpy features + post-processing (:class:`tfspk.features.FeatureExtractor`); ``dither=False``
        (inference) sets ``--dither=0``."""
        from tfspk.features.mfcc import FeatureExtractor
        options = self.options if dither else self.inference_options()
        return FeatureExtractor(options, dither_seed, post=self.post)

    def inference_options(self):
        """The feature options with ``--dither=0`` (inference adds no noise)."""
        options = copy.deepcopy(self.options)
        options.frame.dither = 0.0
        return options

    def vad_energy_options(self) -> MfccOptions:
        """The MFCC options whose log energy (column 0) the energy VAD thresholds (``--use-energy=true``, no
        dither); without recorded ones, Kaldi's MFCC defaults with the features' framing."""
        if self.vad_mfcc is not None:
            options = copy.deepcopy(self.vad_mfcc)
        else:
            options = MfccOptions(frame=copy.deepcopy(self.options.frame))
        options.frame.dither = 0.0
        if not options.use_energy:
            raise ToolError("front end: the energy VAD needs MFCCs with --use-energy=true (log energy in column 0)")
        return options

    def inference_cmn(self) -> tuple[bool, int]:
        """``(apply, window)`` of the centred sliding CMN at inference (crop: the utterance's mean)."""
        if self.cmn == "none":
            return False, int(self.cmn_window)
        return True, int(self.cmn_window) if self.cmn == "sliding" else UTTERANCE_WINDOW

    def config_files(self) -> dict:
        """The front end as Kaldi config files, ``{file name: [--name=value lines]}``: ``features.conf`` (the
        feature options at inference, ``--dither=0``; ``steps/make_<type>.sh --<type>-config``) and, when the
        energy VAD applies, ``vad_mfcc.conf`` (the MFCCs whose log energy it thresholds; ``steps/make_mfcc.sh``)
        and ``vad.conf`` (``steps/compute_vad_decision.sh --vad-config``). Post-processing steps have no
        config file (the caller says so where it matters)."""
        files = {"features.conf": option_lines(self.inference_options())}
        if self.vad:
            files["vad_mfcc.conf"] = option_lines(self.vad_energy_options())
            files["vad.conf"] = option_lines(self.vad_options)
        return files

    def tensorflow(self):
        """Features + post-processing as TensorFlow ops (an object with ``dim``, ``frame`` and, for
        features that carry it, ``log_energy``), for the exported graphs."""
        return _FrontEndTF(self)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "type": self.feature_type, "options": dataclasses.asdict(self.options),
                "post": post_steps_dicts(self.post), "dim": self.dim, "sample_rate": self.sample_rate,
                "cmn": {"mode": self.cmn, "window": int(self.cmn_window)},
                "vad": {"apply": bool(self.vad), "options": dataclasses.asdict(self.vad_options),
                        "mfcc": None if self.vad_mfcc is None else dataclasses.asdict(self.vad_mfcc)}}

    @classmethod
    def from_dict(cls, data, where: str) -> "FrontEnd":
        """The inverse of :meth:`to_dict`; ToolError naming ``where`` and the key for anything missing or wrong."""
        if not isinstance(data, dict):
            raise ToolError(f"{where}: expected a mapping, got {data!r}")
        missing = [key for key in ("format", "type", "options", "cmn", "vad") if key not in data]
        if missing:
            raise ToolError(f"{where}: missing key(s) {', '.join(missing)}")
        if data["format"] != FORMAT:
            raise ToolError(f"{where}: format {data['format']!r} is not {FORMAT} (written by another tfspk version)")
        try:
            entry = feature_type(data["type"])
        except ToolError as err:
            raise ToolError(f"{where}: {err}") from None
        options = options_from_dict(entry.Options(), data["options"], f"{where}: options")
        cmn, vad = data["cmn"], data["vad"]
        if not isinstance(cmn, dict) or set(cmn) != {"mode", "window"}:
            raise ToolError(f"{where}: cmn must be {{mode: ..., window: ...}}, got {cmn!r}")
        if not isinstance(vad, dict) or set(vad) != {"apply", "options", "mfcc"} or not isinstance(vad["apply"], bool):
            raise ToolError(f"{where}: vad must be {{apply: true|false, options: {{...}}, mfcc: {{...}}|null}}, "
                            f"got {vad!r}")
        vad_options = options_from_dict(VadOptions(), vad["options"], f"{where}: vad.options")
        vad_mfcc = None if vad["mfcc"] is None else options_from_dict(MfccOptions(), vad["mfcc"], f"{where}: vad.mfcc")
        try:
            front_end = cls(entry.feature_type, options, post_steps(data.get("post") or [], f"{where}: post"),
                            cmn["mode"], cmn["window"], vad["apply"], vad_options, vad_mfcc)
        except ToolError as err:
            raise ToolError(f"{where}: {err}") from None
        if "dim" in data and data["dim"] != front_end.dim:
            raise ToolError(f"{where}: dim {data['dim']} disagrees with the options ({front_end.dim})")
        return front_end


class _FrontEndTF:
    """The TensorFlow side of a front end's features: the feature type's ops, then the post-processing steps."""

    def __init__(self, front_end: FrontEnd):
        self.base = feature_type(front_end.feature_type).tensorflow(front_end.inference_options())
        self.post = [(post_step(name), params) for name, params in front_end.post]
        self.frame = self.base.frame
        self.dim = front_end.dim
        if hasattr(self.base, "log_energy"):
            self.log_energy = self.base.log_energy

    def __call__(self, samples):
        feats = self.base(samples)
        for step, params in self.post:
            feats = step.tensorflow(params, feats)
        return feats


# ---------------------------------------------------------------------------------------------- the section
def _read_conf(path: str, opts, program: str, key: str):
    if not path:
        return opts
    if not os.path.isfile(path):
        raise ToolError(f"config key '{key}': no such file {path}")
    return read_options_file(path, opts, program)


def front_end_from_section(section, vad: bool, where: str = "features") -> FrontEnd:
    """The front end named by an experiment config's ``features:`` section (attributes ``type``, ``conf``,
    ``post``, ``cmn``, ``cmn_window``, ``vad_conf``, ``vad_mfcc_conf``; ``type`` '' is fbank), with the
    energy VAD applied or not (``vad``: the caller resolves ``features.vad``). The Kaldi options files are
    read here; errors name the config key."""
    try:
        entry = feature_type(section.type or "fbank")
    except ToolError as err:
        raise ToolError(f"config key '{where}.type': {err}") from None
    options = _read_conf(section.conf, entry.Options(), f"the {entry.feature_type} features", f"{where}.conf")
    vad_options = _read_conf(section.vad_conf, VadOptions(), "compute-vad", f"{where}.vad_conf")
    vad_mfcc = (_read_conf(section.vad_mfcc_conf, MfccOptions(), "compute-mfcc-feats", f"{where}.vad_mfcc_conf")
                if section.vad_mfcc_conf else None)
    try:
        return FrontEnd(entry.feature_type, options, post_steps(section.post, f"config key '{where}.post'"),
                        section.cmn, section.cmn_window, vad, vad_options, vad_mfcc)
    except ToolError as err:
        message = str(err)
        raise ToolError(message if message.startswith("config key") else f"config key '{where}': {message}") from None


# ---------------------------------------------------------------------------------------------- the file
def front_end_path(exp_dir: str) -> str:
    return os.path.join(exp_dir, FRONT_END_FILE)


def write_front_end(exp_dir: str, front_end: FrontEnd) -> str:
    """Write ``<exp>/features.yaml`` atomically; returns its path."""
    from tfspk.io.atomic import atomic_open
    path = front_end_path(exp_dir)
    with atomic_open(path) as handle:
        handle.write("# the front end of this experiment's network (tfspk.features.frontend): read by extraction,\n"
                     "# tfspk-export, tfspk-embed and tfspk.Embedder\n")
        handle.write(yaml.safe_dump(front_end.to_dict(), sort_keys=False, default_flow_style=False))
    return path


def write_config_files(front_end: FrontEnd, conf_dir: str) -> list:
    """Write :meth:`FrontEnd.config_files` into ``conf_dir`` (created if needed; each file atomically) and remove
    a VAD file of an earlier call that this front end does not have; returns the written paths. ToolError for a
    front end with post-processing steps: its features are not what ``steps/make_<type>.sh`` computes."""
    from tfspk.io.atomic import atomic_open
    if front_end.post:
        raise ToolError(f"the front end post-processes its {front_end.feature_type} features "
                        f"({', '.join(name for name, _ in front_end.post)}), which no Kaldi config file of "
                        "steps/make_<type>.sh expresses")
    os.makedirs(conf_dir, exist_ok=True)
    files = front_end.config_files()
    written = []
    for name in ("features.conf", "vad_mfcc.conf", "vad.conf"):
        path = os.path.join(conf_dir, name)
        if name in files:
            with atomic_open(path) as handle:
                handle.write("".join(line + "\n" for line in files[name]))
            written.append(path)
        elif os.path.exists(path):
            os.remove(path)
    return written


def read_front_end(exp_dir: str) -> FrontEnd:
    """The front end recorded in ``exp_dir`` (``<exp>/features.yaml``): the one reader of it."""
    path = front_end_path(exp_dir)
    if not os.path.isfile(path):
        raise ToolError(f"{exp_dir} has no {FRONT_END_FILE}: its front end (feature type and options, VAD, CMN) "
                        "was not recorded. tfspk-train writes it from the experiment config's 'features:' section "
                        "(with data.source feats or shards, set features.type to the type of feats.scp); an "
                        "experiment dir made by other means writes it with tfspk.features.frontend.write_front_end")
    return FrontEnd.from_dict(read_yaml(path), path)
