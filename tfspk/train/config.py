"""The experiment config: one YAML file per experiment, typed keys with documented defaults.

Every key is a field of a dataclass below made with :func:`tfspk.params.param`: its ``doc`` is the
documentation that ``tfspk-train --print-config`` prints as a comment, and its type, ``choices`` and
``check`` (range) are what :func:`tfspk.params.coerce` checks when the key is read. Loading is strict: an
unknown key or a value of the wrong type or range is a :class:`ToolError` naming the key and the valid
ones; :func:`check_values` adds the checks across keys. Any key can be
overridden from the command line with ``--set section.key=value`` (the value is parsed as YAML).

The ``features:`` section is the network's front end, resolved and recorded in ``<exp>/features.yaml``
by :mod:`tfspk.features.frontend`. Three sections are open-ended and checked against the component they configure:
``nnet`` the network's registered name and its ``params`` (:func:`tfspk.nnet.network_from_config`),
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
from tfspk.params import coerce, param, read_yaml, yaml_value
from tfspk.train import finetune

# Keys the trainer writes into the saved config; accepted (and replaced) when a saved config is read back.
DERIVED_KEYS = ("feat_dim", "num_classes", "tfspk_version")


@dataclass
class OptimizerConfig:
    name: str = param("sgd", "optimizer: sgd (with momentum) or adam", choices=("sgd", "adam"))
    lr: float = param(0.01, "initial learning rate ([Liu2019]: SGD 0.01; [Li2022AR]: Adam 1e-3)", check=">0")
    momentum: float = param(0.9, "SGD momentum (0 = plain SGD)", check="[0,1)")
    nesterov: bool = param(False, "SGD: Nesterov momentum")
    beta_1: float = param(0.9, "Adam beta_1")
    beta_2: float = param(0.999, "Adam beta_2")
    epsilon: float = param(1e-7, "Adam epsilon")
    weight_decay: float = param(
        1e-2, "L2 regularisation added to the loss: weight_decay/2 * sum of squared kernels of every layer "
        "(network and class weights; biases and batch-norm scale/offset excluded). With plain SGD its "
        "gradient is weight_decay * w, i.e. classic weight decay. [Liu2019]: 1e-2", check=">=0")
    clip_norm: float = param(0.0, "clip the global gradient norm to this value (0 = no clipping)", check=">=0")


@dataclass
class ScheduleConfig:
    steps_per_epoch: int = param(1000, "training steps per 'epoch' (sampling is random, so an epoch is a "
                                "number of steps: checkpoint, validation and LR policy run after each)", check=">0")
    num_epochs: int = param(100, "maximum number of epochs", check=">0")
    lr_factor: float = param(0.5, "multiply the learning rate by this when the validation loss stalls", check="(0,1)")
    patience: int = param(2, "epochs without improvement of the validation loss before the LR is reduced", check=">=1")
    min_improvement: float = param(0.0, "relative decrease of the validation loss that counts as improvement")
    max_reductions_without_improvement: int = param(
        3, "stop when the LR would be reduced again after this many reductions without improvement")
    min_lr: float = param(1e-5, "stop when the learning rate falls below this ([Liu2019]: 1e-5)", check=">=0")
    lr_policy: str = param(
        "plateau", "plateau: reduce the LR by lr_factor when the validation loss stalls ([Liu2019]); exponential: "
        "lr * lr_decay**epoch ([Li2022AR]: 0.95); warmup_exponential: linear warm-up over warmup_steps "
        "(or warmup_epochs), then exponential decay to final_lr at the last step ([Wang2023]). "
        "The last two are functions of the global step (no early stop); see docs/training.md",
        choices=("plateau", "exponential", "warmup_exponential"))
    lr_decay: float = param(0.95, "exponential: LR factor per epoch ([Li2022AR]: 0.95)", check="(0,1]")
    warmup_epochs: float = param(0.0, "warmup_exponential: epochs of linear LR warm-up (used if warmup_steps is 0)",
                                 check=">=0")
    warmup_steps: int = param(0, "warmup_exponential: steps of linear LR warm-up (overrides warmup_epochs)",
                              check=">=0")
    final_lr: float = param(5e-5, "warmup_exponential: LR reached at the last step of num_epochs", check=">0")
    margin_warmup_epochs: float = param(
        0.0, "margin losses: the margin is multiplied by w = min(1, step / (this * steps_per_epoch)), rising "
        "0 -> 1, on top of [Liu2019, eq. 8] annealing (0 = off)", check=">=0")
    average_last: int = param(0, "keep the weights of the last N epochs and write their average as "
                             "final/model.weights.h5 (0 = off: the best or last epoch's weights)", check=">=0")


@dataclass
class DataConfig:
    speakers_per_batch: int = param(64, "speakers per training step, one segment each ([Liu2019]: 64); "
                                   "the global batch, split across replicas", check=">=2")
    min_frames: int = param(200, "shortest training segment in frames ([Liu2019]: 200)", check=">0")
    max_frames: int = param(400, "longest training segment in frames ([Liu2019]: 400); one length per batch")
    repeat_short: bool = param(False, "source feats: use every utterance, repeating the frames of one shorter than "
                               "the segment cyclically up to its length ([Desplanques2020]'s recipe repeats short "
                               "waveforms); false: utterances shorter than the segment are skipped")
    prefetch: int = param(4, "batches prepared ahead of the training step")
    num_threads: int = param(2, "threads reading features (source feats) or worker processes computing "
                            "features from audio (source audio; 1 = in the trainer's process)")
    readers: str = param("threads", "source feats: threads (num_threads threads of the trainer's process) or processes "
                        "(num_threads forked worker processes: decoding runs outside the trainer's GIL); the "
                        "batches are the same either way (docs/training.md, Performance)",
                         choices=("threads", "processes"))
    worker_nice: int = param(0, "niceness added to the input's worker processes (source audio; source feats with "
                            "readers processes), 0-19: 19 on a machine whose cores the trainer has to itself and "
                            "shares with the step (CPU training), where the workers then use the cycles the step "
                            "leaves idle instead of stalling it; 0 (the trainer's priority) where other jobs "
                            "compete for the CPU, which would starve niced workers; the batches are the same "
                            "(docs/training.md, Performance)", check="0..19")
    source: str = param("feats", "feats: the data dir's feats.scp (offline Kaldi features); audio: its wav.scp, random "
                       "crops with the features of the features: section computed on the fly and the "
                       "augment section applied; shards: TFRecord feature shards (data.shards) read by "
                       "tf.data; see docs/training.md", choices=("feats", "audio", "shards"))
    shards: str = param("", "source shards: the shard dir (shards.list); '' = the data dir argument", kind="text")
    service: str = param("", "source shards: address of a tf.data service dispatcher (grpc://host:port, started by "
                        "tfspk-data-service) whose workers run the shard pipeline for this trainer; '' = in this "
                        "process. One worker gives the local stream; with several, batches come in the order the "
                        "workers deliver them (not reproducible step for step)", kind="text")
    allow_resample: bool = param(True, "source audio: audio at another rate than the feature config's is resampled "
                                 "(polyphase filter, said once in the log); false = such audio is an error")
    service_timeout: float = param(30.0, "source shards with data.service: seconds to wait for the dispatcher to "
                                   "answer (progress lines meanwhile) before failing with an error naming it",
                                   check=">0")


@dataclass
class ValidConfig:
    num_utts: int = param(1000, "utterances of training speakers held out for the validation loss "
                         "([Liu2019]: 1000); 0 = no validation (the LR policy then never fires)", check=">=0")
    frames: int = param(300, "frames per validation segment (the centre of each utterance)", check=">0")
    batch_size: int = param(64, "validation batch size", check=">0")
    eer_data: str = param("", "optional data dir of held-out speakers (feats.scp, utt2num_frames, trials): the "
                         "EER of cosine-scored embedding_a on its trials is logged each epoch", kind="text")
    eer_trials: str = param("", "trials file for eer_data (default: <eer_data>/trials)", kind="text")


@dataclass
class LossConfig:
    name: str = param("softmax", "main loss (see tfspk.losses.LOSSES, e.g. softmax, amsoftmax, arcsoftmax)",
                      kind="text")
    params: dict = param({}, "parameters of the loss class (its Params dataclass); unset ones get their defaults")


@dataclass
class AuxConfig:
    name: str = param("", "auxiliary loss added to the main loss (tfspk.losses.AUX_LOSSES: ring, mhe)", kind="text")
    params: dict = param({}, "parameters of the auxiliary loss")


@dataclass
class NnetConfig:
    """The resolved ``nnet`` section: canonical network name and every parameter (see components.resolve)."""
    name: str = "tdnn"
    params: dict = field(default_factory=dict)


@dataclass
class FeaturesConfig:
    """The front end of the network: recorded resolved in <exp>/features.yaml (tfspk.features.frontend), from
    which training from audio, extraction, export, tfspk-embed and tfspk.Embedder take it."""
    type: str = param("", "feature type (registered in tfspk.features.registry: fbank, mfcc, spectrogram, ...). "
                      "'' = fbank; with data.source feats or shards and no conf either, no front end is recorded "
                      "(the experiment cannot be exported): give the type and conf feats.scp was made with",
                      kind="text")
    conf: str = param("", "its options file (Kaldi --name=value lines, e.g. conf/fbank.conf, the file "
                      "steps/make_fbank.sh used); '' = the type's defaults", kind="text")
    post: list = param([], "post-processing steps after the features, in order: names or {name, params} "
                       "(registered: add_deltas, Kaldi add-deltas with params order, window)")
    cmn: str = param("sliding", "sliding: Kaldi apply-cmvn-sliding --center=true --norm-vars=false over cmn_window "
                     "frames (on the crop when training from audio; steps/prepare_feats_for_egs.sh does it "
                     "offline for feats); crop: training from audio subtracts the crop's mean (inference: the "
                     "utterance's mean); none", choices=("sliding", "crop", "none"))
    cmn_window: int = param(300, "sliding CMN window in frames (Kaldi --cmn-window)", check=">0")
    vad: str = param("auto", "energy VAD: true: voiced frames only (training from audio: crops of the voiced audio "
                     "of the data dir's vad.scp, required; inference: the VAD of vad_conf on MFCCs of "
                     "vad_mfcc_conf); false: every frame; auto: training from audio uses vad.scp when present, "
                     "feats and shards are taken as voiced frames (steps/prepare_feats_for_egs.sh)",
                     choices=("auto", "true", "false"))
    vad_conf: str = param("", "compute-vad options file (e.g. conf/vad.conf, the one compute_vad_decision.sh "
                          "used); '' = Kaldi's defaults", kind="text")
    vad_mfcc_conf: str = param("", "compute-mfcc-feats options of the MFCCs the VAD reads the log energy of (e.g. "
                               "conf/mfcc.conf); '' = Kaldi's MFCC defaults on the features' framing",
                               kind="text")


@dataclass
class TrainConfig:
    seed: int = param(777, "seed for weights, sampling and validation split (runs are reproducible)")
    nnet: dict = param({"name": "tdnn", "params": {}},
                       "the network: {name: NAME, params: {...}} (tfspk.nnet registry, e.g. tdnn, tdnn_kaldi)")
    loss: LossConfig = param(LossConfig, "main loss")
    aux: list = param([], "auxiliary losses, a list of {name, params}")
    optimizer: OptimizerConfig = param(OptimizerConfig, "optimizer and L2 regularisation")
    schedule: ScheduleConfig = param(ScheduleConfig, "epochs, learning-rate halving on plateau, early stop")
    data: DataConfig = param(DataConfig, "training batches")
    valid: ValidConfig = param(ValidConfig, "validation")
    augment: dict = param({}, "on-the-fly augmentation (tfspk.data.augment.AugmentParams; docs/augmentation.md): "
                         "data.source audio: noise, music, babble, reverberation, speed perturbation and "
                         "SpecAugment; data.source feats: SpecAugment only (spec_augment and its mask keys, on "
                         "each training crop; a waveform key is an error); {} = none")
    features: FeaturesConfig = param(FeaturesConfig, "the front end: features, post-processing, CMN and VAD "
                                    "(recorded in <exp>/features.yaml for extraction and export)")
    strategy: str = param("auto", "tf.distribute strategy: auto (mirrored if several GPUs, multiworker if "
                         "TF_CONFIG is set, else one device) | one | mirrored | multiworker",
                         choices=("auto", "one", "mirrored", "multiworker"))
    jit_compile: bool = param(False, "XLA-compile the training step")
    sync_batchnorm: bool = param(True, "with several replicas, batch-norm uses the moments of the global batch "
                                "(false: of each replica's share, as plain MirroredStrategy)")
    log_every: int = param(100, "steps between progress lines and TensorBoard step summaries", check=">0")
    keep_checkpoints: int = param(3, "checkpoints kept in <exp>/ckpt", check=">0")
    init_from: str = param("", "start a new experiment from the network and head weights of this experiment dir "
                          "(trained or imported); the finetune section says how", kind="text")
    finetune: finetune.FinetuneConfig = param(finetune.FinetuneConfig, "with init_from: the new head and frozen "
                                             "blocks (docs/training.md, Fine-tuning)")
    mixed_precision: str = param("none", "Keras mixed-precision policy set before the model is built: none | "
                                "mixed_bfloat16 (CPU) | mixed_float16 (GPU; with dynamic loss scaling)",
                                choices=("none", "mixed_bfloat16", "mixed_float16"))


# ----------------------------------------------------------------------------------------------
# dict <-> dataclass
def from_dict(cls, data, prefix: str = ""):
    """Build dataclass ``cls`` from a (possibly partial) dict; unknown keys are a ToolError.

    Values are checked by :func:`tfspk.params.coerce` against each field (type, choices, range); a null
    value means the default.
    """
    if data is None:
        data = {}
    where = prefix.rstrip(".") or "the config"
    if not isinstance(data, dict):
        raise ToolError(f"config section '{where}': expected a mapping, got {data!r}")
    types = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ToolError(f"unknown config key '{prefix}{unknown[0]}'; valid keys"
                        f"{' in ' + where if prefix else ''}: {', '.join(fields)}")
    kwargs = {}
    for name, value in data.items():
        key = prefix + name
        if dataclasses.is_dataclass(types[name]):
            kwargs[name] = from_dict(types[name], value, key + ".")
        elif value is not None:
            kwargs[name] = coerce(fields[name], value, f"config key '{key}':", "expected")
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
    data = read_yaml(path, "config file")
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
    value = yaml_value(text) if text.strip() else ""
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
        params[name.strip()] = yaml_value(value)
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
    config = from_dict(TrainConfig, finetune.inherit_source(data))
    check_values(config)
    return config


def check_values(config: TrainConfig) -> None:
    """The checks across keys (each key's own type, choices and range are checked when it is read)."""
    def need(condition, key, expected, value):
        if not condition:
            raise ToolError(f"config key '{key}': expected {expected}, got {value!r}")
    data = config.data
    need(data.max_frames >= data.min_frames, "data.max_frames", f">= data.min_frames ({data.min_frames})",
         data.max_frames)
    need(not data.service or data.source == "shards", "data.service", "'' unless data.source is shards",
         data.service)
    if data.service:
        from tfspk.data.shards import service_host_port   # tfspk.data only when a service is asked for
        need(service_host_port(data.service), "data.service",
             "a dispatcher address grpc://host:port", data.service)
    if config.features.type:
        from tfspk.features.registry import feature_type
        try:
            feature_type(config.features.type)
        except ToolError as err:
            raise ToolError(f"config key 'features.type': {err}") from None
    finetune.check_values(config)
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
