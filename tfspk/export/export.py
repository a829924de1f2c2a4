"""``tfspk-export``: a trained experiment dir -> SavedModel, TFLite and ONNX models that run alone.

The exported graphs (docs/export.md) hold the whole extraction of ``steps/extract_xvectors.sh``:

* ``embed_wav(samples float32 [N])``, samples on the int16 scale at the recorded rate: features
  (:class:`~tfspk.export.tf_features.KaldiFeaturesTF`, no dither) -> energy VAD on the VAD's MFCCs
  -> sliding CMN (centred, 300 frames, no variance normalisation) -> voiced frames -> padding to
  ``min_chunk_size`` -> network -> embedding;
* ``embed_feats(feats float32 [T, F], vad float32 [T])``: the raw features of ``feats.scp`` and the
  VAD of ``vad.scp`` (ones for none), then CMN -> voiced frames -> padding -> network, i.e. exactly
  ``tfspk-extract`` with its defaults (``--chunk-size=-1``: one forward pass per utterance).

Both return ``{"embedding": float32 [D], "num_frames": int32 []}`` (``num_frames``: frames the
network saw before padding; 0 means nothing was voiced and the embedding is meaningless).
``export.json`` records the feature, VAD and CMN options, the network config, the embedding layer,
the sample rate, the minimum input and the optional calibration, so a consumer needs nothing else.

Call sites into parts other engineers are reshaping are kept in :func:`load_network` (the trained
network and its minimum length) and :func:`read_calibration` (the calibration file).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile


from tfspk import __version__
from tfspk import cli
from tfspk.errors import ToolError
from tfspk.export.tf_features import (KaldiFeaturesTF, min_samples_for_frames, num_frames_formula,
                                      pad_to_min_chunk_tf, select_frames_tf, sliding_cmn_tf, vad_tf)
from tfspk.features.options import FEATURE_TYPES, add_feature_options, options_from_args
from tfspk.features.vad import VadOptions

EXPORT_FORMAT = 1
EXPORT_JSON = "export.json"
SAVED_MODEL = "saved_model"
TFLITE = "model.tflite"
ONNX_WAV = "model.onnx"
ONNX_FEATS = "model_feats.onnx"
ONNX_OPSET = 17
EMBEDDING_OUTPUTS = {"a": "embedding_a", "b": "embedding_b"}


@dataclasses.dataclass
class Network:
    """What the export needs of a trained network."""
    model: object          # keras.Model: [B, T, F] -> {"embedding_a", "embedding_b"}
    config: dict           # the experiment's config.yaml
    arch: str
    feat_dim: int
    min_frames: int        # smallest number of input frames the network accepts


def load_network(exp_dir: str) -> Network:
    """The trained network of ``exp_dir`` (:func:`tfspk.nnet.load_trained`: only a finished training)."""
    from tfspk.nnet import load_trained
    model, config, network = load_trained(exp_dir)
    return Network(model, config, network.network_name, int(config["feat_dim"]), int(network.min_frames()))


def read_calibration(path: str) -> dict:
    """The linear calibration ``llr = a * score + b`` of a ``tfspk-calibrate`` model file
    (:class:`tfspk.backend.calibration.LinearCalibration`, [Brummer2006]); one with quality measures is
    refused, since an exported model sees one pair of recordings, not the trial lists it was trained on."""
    from tfspk.backend.calibration import LinearCalibration
    model = LinearCalibration.read(path)
    if model.quality_weights:
        raise ToolError(f"{path}: the calibration uses quality measures ({', '.join(model.quality_weights)}); "
                        "export takes a calibration trained without them (tfspk-calibrate without "
                        "--durations/--vectors)")
    return {"type": "linear", "formula": "llr = a * score + b", "a": model.scale, "b": model.offset,
            "target_prior": model.target_prior}


class _OptionParser(cli.KaldiArgumentParser):
    """Parses a Kaldi config file's options; an unknown option is a ToolError, not an exit."""

    def error(self, message):
        raise ToolError(message)


def read_feature_config(path: str, kind: str):
    """MfccOptions / FbankOptions / SpectrogramOptions from a Kaldi config file (``conf/mfcc.conf``)."""
    if kind not in FEATURE_TYPES:
        raise ToolError(f"--feature-type must be one of {', '.join(FEATURE_TYPES)}, got '{kind}'")
    lines = cli.read_config_file(path)
    parser = _OptionParser(f"{kind} config")
    add_feature_options(parser, kind)
    try:
        args = parser.parse_args(lines)
    except ToolError as err:
        raise ToolError(f"{path}: {err} (options of compute-{kind}-feats expected)") from None
    opts = options_from_args(args, kind)
    opts.frame.dither = 0.0   # inference: no dither
    return opts


def read_vad_config(path: str) -> VadOptions:
    """VadOptions from a Kaldi config file (``conf/vad.conf``)."""
    parser = _OptionParser("vad config")
    defaults = VadOptions()
    for item in dataclasses.fields(VadOptions):
        parser.add_argument("--" + item.name.replace("_", "-"), type=type(getattr(defaults, item.name)),
                            default=getattr(defaults, item.name))
    try:
        args = parser.parse_args(cli.read_config_file(path))
    except ToolError as err:
        raise ToolError(f"{path}: {err} (options of compute-vad expected)") from None
    opts = VadOptions(**{item.name: getattr(args, item.name) for item in dataclasses.fields(VadOptions)})
    opts.validate()
    return opts


@dataclasses.dataclass
class ExportOptions:
    feature_type: str
    feature_config: str
    vad_feature_config: str | None   # MFCC config of the VAD (None: no VAD)
    vad_config: str | None
    embedding_layer: str = "a"
    apply_cmn: bool = True
    cmn_window: int = 300
    min_chunk_size: int = 25
    calibration: str | None = None
    tflite: bool = True
    onnx: bool = True


class ExportGraph:
    """The TF functions of the export around one network (see the module docstring)."""

    def __init__(self, network: Network, feature_opts, vad_feature_opts, vad_opts: VadOptions | None,
                 embedding_layer="a", apply_cmn=True, cmn_window=300, min_chunk_size=25):
        import tensorflow as tf
        if embedding_layer not in EMBEDDING_OUTPUTS:
            raise ToolError(f"--embedding-layer must be one of {', '.join(EMBEDDING_OUTPUTS)}, got '{embedding_layer}'")
        if min_chunk_size < network.min_frames:
            raise ToolError(f"--min-chunk-size={min_chunk_size} is below the network's minimum of "
                            f"{network.min_frames} frames")
        self.network = network
        self.features = KaldiFeaturesTF(feature_opts)
        if self.features.dim != network.feat_dim:
            raise ToolError(f"the feature config gives {self.features.dim}-dimensional features but the network was "
                            f"trained on dimension {network.feat_dim}")
        self.vad_opts = vad_opts
        self.vad_features = None
        if vad_opts is not None:
            self.vad_features = (self.features if vad_feature_opts == feature_opts
                                 else KaldiFeaturesTF(vad_feature_opts))
            for samples in (1000, 16001, 123457):   # frame counts must agree for every length
                if num_frames_formula(samples, vad_feature_opts.frame) != num_frames_formula(samples, feature_opts.frame):
                    raise ToolError("the VAD's MFCC config and the feature config give different numbers of frames "
                                    f"({num_frames_formula(samples, vad_feature_opts.frame)} vs "
                                    f"{num_frames_formula(samples, feature_opts.frame)} for {samples} samples): "
                                    "use --snip-edges=false and the same --frame-shift in both")
            if vad_feature_opts.frame.sample_frequency != feature_opts.frame.sample_frequency:
                raise ToolError("the VAD's MFCC config and the feature config have different sample frequencies")
        self.apply_cmn, self.cmn_window, self.min_chunk_size = apply_cmn, cmn_window, min_chunk_size
        self.output = EMBEDDING_OUTPUTS[embedding_layer]
        feat_dim = network.feat_dim
        model = network.model

        def run_network(prepared):
            count = tf.shape(prepared)[0]
            padded = pad_to_min_chunk_tf(prepared, min_chunk_size)
            embedding = model(padded[None], training=False)[self.output][0]
            return {"embedding": tf.identity(embedding, name="embedding"),
                    "num_frames": tf.identity(count, name="num_frames")}

        def prepare(feats, voiced):
            if apply_cmn:
                feats = sliding_cmn_tf(feats, cmn_window=cmn_window, center=True)
            if voiced is not None:
                feats = select_frames_tf(feats, voiced)
            return feats

        def voiced_frames(samples, feats):
            """compute-vad on the VAD's MFCCs. It reads only their column 0, the log energy (--use-energy=true,
            checked), so the VAD's own MFCCs need no spectrum: only their framing and energy options."""
            energy = feats if self.vad_features is self.features else self.vad_features.log_energy(samples)[:, None]
            o = self.vad_opts
            return vad_tf(energy, o.vad_energy_threshold, o.vad_energy_mean_scale, o.vad_proportion_threshold,
                          o.vad_frames_context)

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([None, feat_dim], tf.float32, name="feats"),
                                      tf.TensorSpec([None], tf.float32, name="vad")])
        def embed_feats(feats, vad):
            return run_network(prepare(feats, vad > 0.5))

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.float32, name="samples")])
        def embed_wav(samples):
            feats = self.features(samples)
            voiced = None if self.vad_opts is None else voiced_frames(samples, feats)
            return run_network(prepare(feats, voiced))

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.float32, name="samples")])
        def features_wav(samples):
            """Raw features and VAD of the wav graph (for tests and debugging)."""
            feats = self.features(samples)
            if self.vad_opts is None:
                return {"feats": feats, "vad": tf.ones([tf.shape(feats)[0]], tf.float32)}
            return {"feats": feats, "vad": tf.cast(voiced_frames(samples, feats), tf.float32)}

        self.embed_feats, self.embed_wav, self.features_wav = embed_feats, embed_wav, features_wav

    @property
    def sample_rate(self) -> float:
        return float(self.features.frame.sample_frequency)

    @property
    def min_samples(self) -> int:
        """Fewest samples whose features reach the network's minimum number of frames."""
        return min_samples_for_frames(self.network.min_frames, self.features.frame)


def _options_dict(opts) -> dict:
    return dataclasses.asdict(opts) if opts is not None else None


def export(exp_dir: str, out_dir: str, options: ExportOptions) -> dict:
    """Write the export of ``exp_dir`` to ``out_dir`` (replaced as a whole only on success); returns export.json."""
    import tensorflow as tf
    feature_opts = read_feature_config(options.feature_config, options.feature_type)
    vad_feature_opts = vad_opts = None
    if options.vad_config is not None:
        if options.vad_feature_config is None and options.feature_type != "mfcc":
            raise ToolError("the energy VAD needs MFCCs with the log energy in column 0: give --vad-mfcc-config "
                            f"(the features are {options.feature_type})")
        vad_feature_opts = read_feature_config(options.vad_feature_config or options.feature_config, "mfcc")
        if not vad_feature_opts.use_energy:
            raise ToolError(f"{options.vad_feature_config or options.feature_config}: the VAD needs "
                            "--use-energy=true (log energy in column 0)")
        vad_opts = read_vad_config(options.vad_config)
    calibration = read_calibration(options.calibration) if options.calibration else None
    network = load_network(exp_dir)   # last: the configs' errors come without waiting for TensorFlow
    graph = ExportGraph(network, feature_opts, vad_feature_opts, vad_opts, options.embedding_layer,
                        options.apply_cmn, options.cmn_window, options.min_chunk_size)
    embedding_dim = int(graph.embed_feats(tf.zeros([graph.min_chunk_size, network.feat_dim]),
                                          tf.ones([graph.min_chunk_size]))["embedding"].shape[0])
    info = {
        "format": EXPORT_FORMAT,
        "tfspk_version": __version__,
        "source_exp_dir": os.path.abspath(exp_dir),
        "sample_rate": graph.sample_rate,
        "min_samples": graph.min_samples,
        "network": {"arch": network.arch, "feat_dim": network.feat_dim, "embedding_dim": embedding_dim,
                    "min_frames": network.min_frames, "nnet": network.config.get("nnet")},
        "embedding_layer": options.embedding_layer,
        "features": {"type": options.feature_type, "options": _options_dict(feature_opts),
                     "config_file": "conf/features.conf"},
        "vad": None if vad_opts is None else {
            "mfcc_options": _options_dict(vad_feature_opts), "options": _options_dict(vad_opts),
            "mfcc_config_file": "conf/vad_mfcc.conf", "config_file": "conf/vad.conf"},
        "cmn": {"apply": options.apply_cmn, "window": options.cmn_window, "center": True, "norm_vars": False},
        "chunking": {"chunk_size": -1, "min_chunk_size": options.min_chunk_size},
        "calibration": calibration,
        "files": {"saved_model": SAVED_MODEL, "tflite": TFLITE if options.tflite else None,
                  "onnx_wav": ONNX_WAV if options.onnx else None, "onnx_feats": ONNX_FEATS if options.onnx else None},
        "signatures": {
            "embed_wav": "samples float32 [N] on the int16 scale at sample_rate -> embedding float32 [D], "
                         "num_frames int32 (voiced frames; 0 = nothing voiced)",
            "embed_feats": "feats float32 [T, feat_dim] (raw, as feats.scp), vad float32 [T] (as vad.scp; ones "
                           "for none) -> embedding, num_frames; CMN and voiced-frame selection inside"},
    }
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        _write_all(graph, work, info, options)
        if os.path.isdir(out_dir):
            old = tempfile.mkdtemp(prefix=".export-old-", dir=parent)
            os.rename(out_dir, os.path.join(old, "x"))
            os.rename(work, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(work, out_dir)
        os.chmod(out_dir, 0o777 & ~_umask())
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return info


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_all(graph: ExportGraph, work: str, info: dict, options: ExportOptions) -> None:
    import tensorflow as tf
    conf = os.path.join(work, "conf")
    os.makedirs(conf)
    shutil.copyfile(options.feature_config, os.path.join(conf, "features.conf"))
    if options.vad_config is not None:
        shutil.copyfile(options.vad_feature_config or options.feature_config, os.path.join(conf, "vad_mfcc.conf"))
        shutil.copyfile(options.vad_config, os.path.join(conf, "vad.conf"))
    if options.calibration:
        shutil.copyfile(options.calibration, os.path.join(work, "calibration.txt"))

    module = tf.Module()
    # The network's tf.Variables, listed: Keras 3 does not expose every variable to TF's object graph
    # (layers held in plain lists inside a custom layer, as ECAPA-TDNN's SE-Res2Block, stay 'untracked'
    # and the saver refuses the functions that read them), and attaching the Keras model itself would
    # only make the saver trace its layers' call functions too.
    module.network_variables = [_tf_variable(v) for v in graph.network.model.variables]
    module.embed_wav, module.embed_feats, module.features_wav = graph.embed_wav, graph.embed_feats, graph.features_wav
    signatures = {"embed_wav": graph.embed_wav.get_concrete_function(),
                  "embed_feats": graph.embed_feats.get_concrete_function(),
                  "features_wav": graph.features_wav.get_concrete_function()}
    saved = os.path.join(work, SAVED_MODEL)
    tf.saved_model.save(module, saved, signatures=signatures)
    cli.log(f"wrote the SavedModel (signatures {', '.join(signatures)})")
    # frozen once, converted twice (freezing a graph is a large part of each conversion)
    frozen = {"embed_wav": _frozen(graph.embed_wav), "embed_feats": _frozen(graph.embed_feats)} \
        if options.tflite or options.onnx else None
    if options.tflite:
        flat = _tflite_model(frozen, work)
        with open(os.path.join(work, TFLITE), "wb") as handle:
            handle.write(flat)
        cli.log(f"wrote {TFLITE} ({len(flat)} bytes, builtin ops only)")
    if options.onnx:
        _write_onnx(frozen, graph.network.feat_dim, work)
    with open(os.path.join(work, EXPORT_JSON), "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2, sort_keys=True)
        handle.write("\n")


def _tf_variable(variable):
    """The tf.Variable behind a Keras 3 variable (a tf.Variable stays itself)."""
    return getattr(variable, "_value", variable)


def _frozen(function):
    """``function`` with the network's variables turned into constants, outputs named again."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    concrete = function.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    specs = concrete.structured_input_signature[0]

    def call(*inputs):
        embedding, count = sorted(frozen(*inputs), key=lambda t: t.dtype != tf.float32)
        return {"embedding": embedding, "num_frames": count}
    return tf.function(call, input_signature=list(specs), autograph=False)


def _tflite_model(frozen: dict, work: str) -> bytes:
    """TFLite flatbuffer with signatures embed_wav and embed_feats (builtin ops only).

    The converter left Keras 3's weights as resource variables that the interpreter reads as
    uninitialised (NaN embeddings), so the functions (``frozen``: :func:`_frozen` of embed_wav and
    embed_feats) are converted from a variable-free SavedModel.
    """
    import tensorflow as tf
    module = tf.Module()
    module.embed_wav, module.embed_feats = frozen["embed_wav"], frozen["embed_feats"]
    frozen_dir = os.path.join(work, ".frozen")
    try:
        tf.saved_model.save(module, frozen_dir, signatures={"embed_wav": module.embed_wav.get_concrete_function(),
                                                            "embed_feats": module.embed_feats.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(frozen_dir, signature_keys=["embed_wav", "embed_feats"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            return converter.convert()
        except Exception as err:  # the converter raises assorted types; name the step
            raise ToolError(f"TFLite conversion failed: {err}") from None
    finally:
        shutil.rmtree(frozen_dir, ignore_errors=True)


def _write_onnx(frozen: dict, feat_dim: int, work: str) -> None:
    import tensorflow as tf
    try:
        import tf2onnx
    except ImportError:
        raise ToolError("ONNX export needs tf2onnx (pip install 'tfspk[export]'), or pass --onnx=false") from None
    for name, function, signature in (
            (ONNX_WAV, frozen["embed_wav"], [tf.TensorSpec([None], tf.float32, name="samples")]),
            (ONNX_FEATS, frozen["embed_feats"], [tf.TensorSpec([None, feat_dim], tf.float32, name="feats"),
                                             tf.TensorSpec([None], tf.float32, name="vad")])):
        try:
            tf2onnx.convert.from_function(function, input_signature=signature, opset=ONNX_OPSET,
                                          output_path=os.path.join(work, name))
        except Exception as err:  # tf2onnx raises assorted types; name the step
            raise ToolError(f"ONNX conversion of {name} failed: {err}") from None
        cli.log(f"wrote {name}")


def _find_config(dirs, names, what, option):
    for directory in dirs:
        for name in names:
            path = os.path.join(directory, "conf", name)
            if os.path.isfile(path):
                return path
    places = ", ".join(os.path.join(d, "conf", "{" + ",".join(names) + "}") for d in dirs)
    raise ToolError(f"no {what} found (looked for {places}); give {option}")


def _find_feature_config(exp_dir, dirs, feature_type):
    """The one ``conf/<type>.conf`` (first directory that has any) whose dimension is the network's."""
    kinds = [feature_type] if feature_type else list(FEATURE_TYPES)
    for directory in dirs:
        found = [(kind, os.path.join(directory, "conf", f"{kind}.conf")) for kind in kinds
                 if os.path.isfile(os.path.join(directory, "conf", f"{kind}.conf"))]
        if len(found) == 1:
            return found[0][1]
        if found:   # e.g. mfcc.conf for the VAD beside fbank.conf for the network: pick by dimension
            feat_dim = _recorded_feat_dim(exp_dir)
            matching = [path for kind, path in found if read_feature_config(path, kind).dim == feat_dim]
            if len(matching) == 1:
                return matching[0]
            raise ToolError(f"{len(matching) or 'none'} of {', '.join(p for _, p in found)} give the network's "
                            f"{feat_dim}-dimensional features: give --feature-config")
    _find_config(dirs, [f"{kind}.conf" for kind in kinds], "feature config", "--feature-config")


def _recorded_feat_dim(exp_dir):
    from tfspk.nnet.saved import read_experiment_config
    config = read_experiment_config(os.path.join(exp_dir, "config.yaml"))
    if "feat_dim" not in config:
        raise ToolError(f"{os.path.join(exp_dir, 'config.yaml')} has no 'feat_dim' key")
    return int(config["feat_dim"])


def default_options(exp_dir: str, data_dir: str | None = None, feature_config: str | None = None,
                    feature_type: str | None = None, vad_mfcc_config: str | None = None,
                    vad_config: str | None = None, **rest) -> ExportOptions:
    """Export options with the config files looked up where the recipe keeps them.

    The feature config defaults to ``conf/{mfcc,fbank,spectrogram}.conf`` of the experiment dir, else of
    ``data_dir`` (steps/make_*.sh copy the config into ``<data>/conf/``); the feature type is the file's
    stem unless given. The VAD uses ``conf/mfcc.conf`` and ``conf/vad.conf`` of the same places;
    ``vad_config="none"`` exports without VAD (every frame kept).
    """
    dirs = [exp_dir] + ([data_dir] if data_dir else [])
    if feature_config is None:
        feature_config = _find_feature_config(exp_dir, dirs, feature_type)
    if feature_type is None:
        stem = os.path.splitext(os.path.basename(feature_config))[0]
        if stem not in FEATURE_TYPES:
            raise ToolError(f"cannot tell the feature type from the name {feature_config}: give --feature-type "
                            f"({', '.join(FEATURE_TYPES)})")
        feature_type = stem
    if vad_config == "none":
        vad_config = vad_mfcc_config = None
    else:
        if vad_config is None:
            vad_config = _find_config(dirs, ["vad.conf"], "VAD config", "--vad-config (or --vad-config=none)")
        if vad_mfcc_config is None and feature_type != "mfcc":
            vad_mfcc_config = _find_config(dirs, ["mfcc.conf"], "MFCC config for the VAD", "--vad-mfcc-config")
    return ExportOptions(feature_type, feature_config, vad_mfcc_config, vad_config, **rest)
