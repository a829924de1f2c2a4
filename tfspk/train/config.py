"""The experiment config: one YAML file per experiment, typed keys with documented defaults.

Every key is a field of a dataclass below; its ``doc`` metadata is the documentation that
``tfspk-train --print-config`` prints as a comment. Loading is strict: an unknown key or a value
of the wrong type is a :class:`ToolError` naming the key and the valid ones. Any key can be
overridden from the command line with ``--set section.key=value`` (the value is parsed as YAML).

Three sections are open-ended and checked against the component they configure:
``nnet`` holds the keyword arguments of :func:`tfspk.nnet.build_xvector` (incl. ``arch``),
``loss.params`` and ``aux[*].params`` the fields of the loss classes' ``Params`` dataclasses
(:mod:`tfspk.losses`). Their checks live in :mod:`tfspk.train.components`.

The effective config written to ``<exp>/config.yaml`` adds the derived top-level keys
``feat_dim``, ``num_classes`` and ``tfspk_version``.
"""
from __future__ import annotations

import dataclasses
import io
import typing
from dataclasses import dataclass, field

import yaml

from tfspk.errors import ToolError
from tfspk.params import KALDI_FALSE, KALDI_TRUE

# Keys the trainer writes into the saved config; accepted (and replaced) when a saved config is read back.
DERIVED_KEYS = ("feat_dim", "num_classes", "tfspk_version")


def _doc(text, **kwargs):
    return field(metadata={"doc": text}, **kwargs)


@dataclass
class OptimizerConfig:
    name: str = _doc("optimizer: sgd (with momentum) or adam", default="sgd")
    lr: float = _doc("initial learning rate ([Liu2019]: SGD 0.01; [Li2022AR]: Adam 1e-3)", default=0.01)
    momentum: float = _doc("SGD momentum (0 = plain SGD)", default=0.9)
    nesterov: bool = _doc("SGD: Nesterov momentum", default=False)
    beta_1: float = _doc("Adam beta_1", default=0.9)
    beta_2: float = _doc("Adam beta_2", default=0.999)
    epsilon: float = _doc("Adam epsilon", default=1e-7)
    weight_decay: float = _doc(
        "L2 regularisation added to the loss: weight_decay/2 * sum of squared kernels of every layer "
        "(network and class weights; biases and batch-norm scale/offset excluded). With plain SGD its "
        "gradient is weight_decay * w, i.e. classic weight decay. [Liu2019]: 1e-2", default=1e-2)
    clip_norm: float = _doc("clip the global gradient norm to this value (0 = no clipping)", default=0.0)


@dataclass
class ScheduleConfig:
    steps_per_epoch: int = _doc("training steps per 'epoch' (sampling is random, so an epoch is a "
                                "number of steps: checkpoint, validation and LR policy run after each)",
                                default=1000)
    num_epochs: int = _doc("maximum number of epochs", default=100)
    lr_factor: float = _doc("multiply the learning rate by this when the validation loss stalls", default=0.5)
    patience: int = _doc("epochs without improvement of the validation loss before the LR is reduced",
                         default=2)
    min_improvement: float = _doc("relative decrease of the validation loss that counts as improvement",
                                  default=0.0)
    max_reductions_without_improvement: int = _doc(
        "stop when the LR would be reduced again after this many reductions without improvement", default=3)
    min_lr: float = _doc("stop when the learning rate falls below this ([Liu2019]: 1e-5)", default=1e-5)
    lr_policy: str = _doc(
        "plateau: reduce the LR by lr_factor when the validation loss stalls ([Liu2019]); exponential: "
        "lr * lr_decay**epoch ([Li2022AR]: 0.95); warmup_exponential: linear warm-up over warmup_steps "
        "(or warmup_epochs), then exponential decay to final_lr at the last step ([Wang2023]). "
        "The last two are functions of the global step (no early stop); see docs/training.md", default="plateau")
    lr_decay: float = _doc("exponential: LR factor per epoch ([Li2022AR]: 0.95)", default=0.95)
    warmup_epochs: float = _doc("warmup_exponential: epochs of linear LR warm-up (used if warmup_steps is 0)",
                                default=0.0)
    warmup_steps: int = _doc("warmup_exponential: steps of linear LR warm-up (overrides warmup_epochs)", default=0)
    final_lr: float = _doc("warmup_exponential: LR reached at the last step of num_epochs", default=5e-5)
    margin_warmup_epochs: float = _doc(
        "margin losses: the margin is multiplied by w = min(1, step / (this * steps_per_epoch)), rising "
        "0 -> 1, on top of [Liu2019, eq. 8] annealing (0 = off)", default=0.0)
    average_last: int = _doc("keep the weights of the last N epochs and write their average as "
                             "final/model.weights.h5 (0 = off: the best or last epoch's weights)", default=0)


@dataclass
class DataConfig:
    speakers_per_batch: int = _doc("speakers per training step, one segment each ([Liu2019]: 64); "
                                   "the global batch, split across replicas", default=64)
    min_frames: int = _doc("shortest training segment in frames ([Liu2019]: 200)", default=200)
    max_frames: int = _doc("longest training segment in frames ([Liu2019]: 400); one length per batch",
                           default=400)
    repeat_short: bool = _doc("source feats: use every utterance, repeating the frames of one shorter than the "
                              "segment cyclically up to its length ([Desplanques2020]'s recipe repeats short "
                              "waveforms); false: utterances shorter than the segment are skipped", default=False)
    prefetch: int = _doc("batches prepared ahead of the training step", default=4)
    num_threads: int = _doc("threads reading features (source feats) or worker processes computing "
                            "features from audio (source audio; 1 = in the trainer's process)", default=2)
    readers: str = _doc("source feats: threads (num_threads threads of the trainer's process) or processes "
                        "(num_threads forked worker processes: decoding runs outside the trainer's GIL); the "
                        "batches are the same either way (docs/training.md, Performance)", default="threads")
    worker_nice: int = _doc("niceness added to the input's worker processes (source audio; source feats with "
                            "readers processes), 0-19: 19 on a machine whose cores the trainer has to itself and "
                            "shares with the step (CPU training), where the workers then use the cycles the step "
                            "leaves idle instead of stalling it; 0 (the trainer's priority) where other jobs "
                            "compete for the CPU, which would starve niced workers; the batches are the same "
                            "(docs/training.md, Performance)", default=0)
    source: str = _doc("feats: the data dir's feats.scp (offline Kaldi features); audio: its wav.scp, random "
                       "crops with features computed on the fly (feature_type, feature_config, cmn) and the "
                       "augment section applied; shards: TFRecord feature shards (data.shards) read by "
                       "tf.data; see docs/training.md", default="feats")
    shards: str = _doc("source shards: the shard dir (shards.list); '' = the data dir argument", default="")
    service: str = _doc("source shards: address of a tf.data service dispatcher (grpc://host:port, started by "
                        "tfspk-data-service) whose workers run the shard pipeline for this trainer; '' = in this "
                        "process. One worker gives the local stream; with several, batches come in the order the "
                        "workers deliver them (not reproducible step for step)", default="")
    feature_type: str = _doc("source audio: fbank | mfcc | spectrogram", default="fbank")
    feature_config: str = _doc("source audio: Kaldi-style options file of compute-<feature_type>-feats "
                               "(--name=value lines, e.g. conf/fbank.conf); copied to <exp>/feature.conf. "
                               "'' = the tool's defaults", default="")
    cmn: str = _doc("source audio: crop (subtract the crop's mean feature vector) | sliding (Kaldi "
                    "apply-cmvn-sliding --cmn-window=300 --center=true --norm-vars=false on the crop's "
                    "features) | none", default="crop")
    vad: str = _doc("source audio: auto (crops from the voiced audio when the data dir has vad.scp) | true "
                    "(require vad.scp) | false (ignore it); see docs/training.md", default="auto")


@dataclass
class ValidConfig:
    num_utts: int = _doc("utterances of training speakers held out for the validation loss "
                         "([Liu2019]: 1000); 0 = no validation (the LR policy then never fires)", default=1000)
    frames: int = _doc("frames per validation segment (the centre of each utterance)", default=300)
    batch_size: int = _doc("validation batch size", default=64)
    eer_data: str = _doc("optional data dir of held-out speakers (feats.scp, utt2num_frames, trials): the "
                         "EER of cosine-scored embedding_a on its trials is logged each epoch", default="")
    eer_trials: str = _doc("trials file for eer_data (default: <eer_data>/trials)", default="")


@dataclass
class LossConfig:
    name: str = _doc("main loss (see tfspk.losses.LOSSES, e.g. softmax, amsoftmax, arcsoftmax)",
                     default="softmax")
    params: dict = _doc("parameters of the loss class (its Params dataclass); unset ones get their defaults",
                        default_factory=dict)


@dataclass
class AuxConfig:
    name: str = _doc("auxiliary loss added to the main loss (tfspk.losses.AUX_LOSSES: ring, mhe)", default="")
    params: dict = _doc("parameters of the auxiliary loss", default_factory=dict)


@dataclass
class NnetConfig:
    """The resolved ``nnet`` section: canonical network name and every parameter (see components.resolve)."""
    name: str = "tdnn"
    params: dict = field(default_factory=dict)

    def __getitem__(self, key):
        """Read access with the older flat keys: ``nnet["arch"]`` is the name, ``nnet["frame_dim"]`` a parameter."""
        if key in ("name", "arch"):
            return self.name
        return self.params[key]

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default


@dataclass
class FeaturesConfig:
    """What the network's input features are, so that extraction and export use the same ones."""
    type: str = _doc("feature type the network was trained on: mfcc, fbank, spectrogram (recipes compute it with "
                     "steps/make_<type>.sh; empty: not recorded)", default="")
    conf: str = _doc("the Kaldi feature config used (e.g. conf/fbank.conf); tfspk-train copies it to "
                     "<exp>/features.conf", default="")


@dataclass
class TrainConfig:
    seed: int = _doc("seed for weights, sampling and validation split (runs are reproducible)", default=777)
    nnet: dict = _doc("the network: {name: NAME, params: {...}} (tfspk.nnet registry, e.g. tdnn, tdnn_kaldi); "
                      "older configs' {arch: tdnn, frame_dim: ...} still load",
                      default_factory=lambda: {"name": "tdnn", "params": {}})
    loss: LossConfig = _doc("main loss", default_factory=LossConfig)
    aux: list = _doc("auxiliary losses, a list of {name, params}", default_factory=list)
    optimizer: OptimizerConfig = _doc("optimizer and L2 regularisation", default_factory=OptimizerConfig)
    schedule: ScheduleConfig = _doc("epochs, learning-rate halving on plateau, early stop",
                                    default_factory=ScheduleConfig)
    data: DataConfig = _doc("training batches", default_factory=DataConfig)
    valid: ValidConfig = _doc("validation", default_factory=ValidConfig)
    augment: dict = _doc("on-the-fly augmentation of data.source audio (tfspk.data.augment.AugmentParams: "
                         "noise_dir, noise_prob, music_dir, rir_dir, speed_factors, spec_augment, ...; "
                         "docs/augmentation.md); {} = none", default_factory=dict)
    features: FeaturesConfig = _doc("input features of the network (recorded for extraction)",
                                    default_factory=FeaturesConfig)
    strategy: str = _doc("tf.distribute strategy: auto (mirrored if several GPUs, multiworker if "
                         "TF_CONFIG is set, else one device) | one | mirrored | multiworker", default="auto")
    jit_compile: bool = _doc("XLA-compile the training step", default=False)
    sync_batchnorm: bool = _doc("with several replicas, batch-norm uses the moments of the global batch "
                                "(false: of each replica's share, as plain MirroredStrategy)", default=True)
    log_every: int = _doc("steps between progress lines and TensorBoard step summaries", default=100)
    keep_checkpoints: int = _doc("checkpoints kept in <exp>/ckpt", default=3)
    init_from: str = _doc("start a new experiment from the network and head weights of this experiment dir "
                          "(its latest checkpoint; same speakers): large-margin fine-tuning", default="")
    mixed_precision: str = _doc("Keras mixed-precision policy set before the model is built: none | "
                                "mixed_bfloat16 (CPU) | mixed_float16 (GPU; with dynamic loss scaling)",
                                default="none")


# ----------------------------------------------------------------------------------------------
# dict <-> dataclass
def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _resolved_types(cls):
    return typing.get_type_hints(cls)


_AUTO_TRUE_FALSE = {"data.vad"}  # string keys whose values include true and false


def _coerce(value, tp, key: str):
    """Check/convert one scalar value against the declared type; ToolError naming ``key``."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (str, int)) and str(value).strip().lower() in KALDI_TRUE + KALDI_FALSE:
            return str(value).strip().lower() in KALDI_TRUE
        raise ToolError(f"config key '{key}': expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ToolError(f"config key '{key}': expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # PyYAML (YAML 1.1) reads 1e-4 as a string: accept float syntax
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ToolError(f"config key '{key}': expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if value is None:
            return ""
        if isinstance(value, bool) and key in _AUTO_TRUE_FALSE:  # YAML reads a bare true/false as a bool
            return "true" if value else "false"
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ToolError(f"config key '{key}': expected a string, got {value!r}")
        return str(value)
    if tp is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ToolError(f"config key '{key}': expected a mapping (key: value), got {value!r}")
        return dict(value)
    if tp is list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ToolError(f"config key '{key}': expected a list, got {value!r}")
        return list(value)
    raise AssertionError(f"unsupported config type {tp} for {key}")


def from_dict(cls, data, prefix: str = ""):
    """Build dataclass ``cls`` from a (possibly partial) dict; unknown keys are a ToolError."""
    if data is None:
        data = {}
    where = prefix.rstrip(".") or "the config"
    if not isinstance(data, dict):
        raise ToolError(f"config section '{where}': expected a mapping, got {data!r}")
    types = _resolved_types(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ToolError(f"unknown config key '{prefix}{unknown[0]}'; valid keys"
                        f"{' in ' + where if prefix else ''}: {', '.join(names)}")
    kwargs = {}
    for name, value in data.items():
        tp = types[name]
        key = prefix + name
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, key + ".")
        else:
            kwargs[name] = _coerce(value, tp, key)
    config = cls(**kwargs)
    if cls is TrainConfig:
        config.aux = [_aux_entry(entry, i) for i, entry in enumerate(config.aux)]
    return config


def _aux_entry(entry, index):
    if isinstance(entry, AuxConfig):
        return entry
    if isinstance(entry, str):
        return AuxConfig(name=entry)
    return from_dict(AuxConfig, entry, f"aux[{index}].")


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


# ----------------------------------------------------------------------------------------------
# files and overrides
def load_yaml(path) -> dict:
    """Read a YAML config file into a dict (ToolError for missing files and YAML syntax errors)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ToolError(f"no such config file: {path}") from None
    except OSError as err:
        raise ToolError(f"cannot read config file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ToolError(f"config file {path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ToolError(f"config file {path}: expected a mapping of keys at the top level")
    return data


def apply_override(data: dict, assignment: str) -> None:
    """Apply ``section.key=value`` to a nested dict in place (value parsed as YAML)."""
    if "=" not in assignment:
        raise ToolError(f"override '{assignment}': expected key=value, e.g. optimizer.lr=0.01")
    dotted, text = assignment.split("=", 1)
    dotted = dotted.strip()
    if not dotted or any(not part for part in dotted.split(".")):
        raise ToolError(f"override '{assignment}': bad key '{dotted}'")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ToolError(f"override '{assignment}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def parse_assignments(text: str, what: str) -> dict:
    """``"margin=0.2,scale=30"`` -> ``{"margin": 0.2, "scale": 30}`` (values parsed as YAML)."""
    params = {}
    for item in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        if "=" not in item:
            raise ToolError(f"{what}: expected name=value[,name=value...], got '{item}'")
        name, value = item.split("=", 1)
        try:
            params[name.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            params[name.strip()] = value
    return params


def build_config(config_path=None, overrides=(), base: dict | None = None) -> TrainConfig:
    """Defaults <- YAML file <- overrides, checked. Derived keys of a saved config are dropped."""
    data = dict(base or {})
    if config_path:
        data.update(load_yaml(config_path))
    for key in DERIVED_KEYS:
        data.pop(key, None)
    for assignment in overrides:
        apply_override(data, assignment)
    config = from_dict(TrainConfig, data)
    check_values(config)
    return config


def check_values(config: TrainConfig) -> None:
    """Range checks of the trainer's own keys (losses and network check their own parameters)."""
    def need(condition, key, expected, value):
        if not condition:
            raise ToolError(f"config key '{key}': expected {expected}, got {value!r}")
    opt, sched, data, valid = config.optimizer, config.schedule, config.data, config.valid
    need(opt.name in ("sgd", "adam"), "optimizer.name", "one of sgd, adam", opt.name)
    need(opt.lr > 0, "optimizer.lr", "a positive number", opt.lr)
    need(0 <= opt.momentum < 1, "optimizer.momentum", "a number in [0, 1)", opt.momentum)
    need(opt.weight_decay >= 0, "optimizer.weight_decay", "a number >= 0", opt.weight_decay)
    need(opt.clip_norm >= 0, "optimizer.clip_norm", "a number >= 0", opt.clip_norm)
    need(sched.steps_per_epoch > 0, "schedule.steps_per_epoch", "a positive integer", sched.steps_per_epoch)
    need(sched.num_epochs > 0, "schedule.num_epochs", "a positive integer", sched.num_epochs)
    need(0 < sched.lr_factor < 1, "schedule.lr_factor", "a number in (0, 1)", sched.lr_factor)
    need(sched.patience >= 1, "schedule.patience", "an integer >= 1", sched.patience)
    need(sched.min_lr >= 0, "schedule.min_lr", "a number >= 0", sched.min_lr)
    need(sched.lr_policy in ("plateau", "exponential", "warmup_exponential"), "schedule.lr_policy",
         "one of plateau, exponential, warmup_exponential", sched.lr_policy)
    need(0 < sched.lr_decay <= 1, "schedule.lr_decay", "a number in (0, 1]", sched.lr_decay)
    need(sched.warmup_epochs >= 0, "schedule.warmup_epochs", "a number >= 0", sched.warmup_epochs)
    need(sched.warmup_steps >= 0, "schedule.warmup_steps", "an integer >= 0", sched.warmup_steps)
    need(sched.final_lr > 0, "schedule.final_lr", "a positive number", sched.final_lr)
    need(sched.margin_warmup_epochs >= 0, "schedule.margin_warmup_epochs", "a number >= 0",
         sched.margin_warmup_epochs)
    need(sched.average_last >= 0, "schedule.average_last", "an integer >= 0", sched.average_last)
    need(config.mixed_precision in ("none", "mixed_bfloat16", "mixed_float16"), "mixed_precision",
         "one of none, mixed_bfloat16, mixed_float16", config.mixed_precision)
    need(data.speakers_per_batch >= 2, "data.speakers_per_batch", "an integer >= 2", data.speakers_per_batch)
    need(data.min_frames >= 1, "data.min_frames", "a positive integer", data.min_frames)
    need(data.max_frames >= data.min_frames, "data.max_frames", f">= data.min_frames ({data.min_frames})",
         data.max_frames)
    need(data.source in ("feats", "audio", "shards"), "data.source", "one of feats, audio, shards", data.source)
    need(data.readers in ("threads", "processes"), "data.readers", "one of threads, processes", data.readers)
    need(not data.repeat_short or data.source == "feats", "data.repeat_short",
         "false unless data.source is feats (the audio and shards inputs skip short utterances)", data.repeat_short)
    need(0 <= data.worker_nice <= 19, "data.worker_nice", "an integer 0..19", data.worker_nice)
    need(not data.service or data.source == "shards", "data.service", "'' unless data.source is shards",
         data.service)
    if data.service:
        from tfspk.data.shards import service_host_port   # tfspk.data only when a service is asked for
        need(service_host_port(data.service), "data.service",
             "a dispatcher address grpc://host:port", data.service)
    need(data.feature_type in ("fbank", "mfcc", "spectrogram"), "data.feature_type",
         "one of fbank, mfcc, spectrogram", data.feature_type)
    need(data.cmn in ("crop", "sliding", "none"), "data.cmn", "one of crop, sliding, none", data.cmn)
    need(data.vad in ("auto", "true", "false"), "data.vad", "one of auto, true, false", data.vad)
    need(valid.num_utts >= 0, "valid.num_utts", "an integer >= 0", valid.num_utts)
    need(valid.frames >= 1, "valid.frames", "a positive integer", valid.frames)
    need(valid.batch_size >= 1, "valid.batch_size", "a positive integer", valid.batch_size)
    need(config.strategy in ("auto", "one", "mirrored", "multiworker"), "strategy",
         "one of auto, one, mirrored, multiworker", config.strategy)
    need(config.log_every >= 1, "log_every", "a positive integer", config.log_every)
    need(config.keep_checkpoints >= 1, "keep_checkpoints", "a positive integer", config.keep_checkpoints)
    names = [a.name for a in config.aux]
    need(all(names), "aux", "entries with a name", names)
    need(len(set(names)) == len(names), "aux", "each auxiliary loss at most once", names)


# ----------------------------------------------------------------------------------------------
# printing
def dump_yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def commented_default_config(extra_docs: dict | None = None) -> str:
    """The full default config as YAML with every key's documentation as a comment.

    ``extra_docs`` maps dotted keys (e.g. ``loss.params``) to additional comment lines
    (the trainer passes the loss and network parameters it knows about).
    """
    out = io.StringIO()
    out.write("# tfspk-train experiment config (YAML). Every key is optional; shown are the defaults.\n"
              "# Override any key on the command line: --set optimizer.lr=0.02\n")
    _write_section(out, TrainConfig(), "", 0, extra_docs or {})
    return out.getvalue()


def _write_section(out, obj, prefix, indent, extra_docs):
    pad = "  " * indent
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = prefix + f.name
        for line in f.metadata.get("doc", "").split("\n"):
            out.write(f"{pad}# {line}\n")
        for line in extra_docs.get(key, []):
            out.write(f"{pad}#   {line}\n")
        if dataclasses.is_dataclass(value):
            out.write(f"{pad}{f.name}:\n")
            _write_section(out, value, key + ".", indent + 1, extra_docs)
        else:
            empty = isinstance(value, (dict, list)) and not value
            text = yaml.safe_dump({f.name: value}, sort_keys=False,
                                  default_flow_style=None if empty else False).rstrip("\n")
            out.write("".join(f"{pad}{line}\n" for line in text.split("\n")))


#: command-line shortcut -> config key (tfspk-train --num-epochs 4 == --set schedule.num_epochs=4)
_SCALAR_SHORTCUTS = {"num_epochs": "schedule.num_epochs", "steps_per_epoch": "schedule.steps_per_epoch",
                     "lr": "optimizer.lr", "seed": "seed", "strategy": "strategy"}
SHORTCUT_OPTIONS = ("loss", "loss_params", "margin", "aux") + tuple(_SCALAR_SHORTCUTS)


def shortcut_overrides(loss=None, loss_params=None, margin=None, aux=None, **scalars):
    """The ``key=value`` overrides meant by the shortcut options (``--loss``, ``--margin``, ``--aux``, ...)."""
    overrides = []
    if loss is not None:
        overrides.append(f"loss.name={loss}")
    if loss_params:
        for name, value in parse_assignments(loss_params, "--loss-params").items():
            overrides.append(f"loss.params.{name}={value!r}" if isinstance(value, str) else f"loss.params.{name}={value}")
    if margin is not None:
        overrides.append(f"loss.params.margin={margin}")
    if aux is not None:
        names = [n.strip() for n in aux.split(",") if n.strip() and n.strip().lower() != "none"]
        overrides.append("aux=[" + ", ".join(f"{{name: {n}}}" for n in names) + "]")
    for option, value in scalars.items():
        if value is not None:
            overrides.append(f"{_SCALAR_SHORTCUTS[option]}={value}")
    return overrides
