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
from tfspk.features.frontend import FRONT_END_FILE, FrontEnd, read_front_end, write_front_end
from tfspk.features.options import option_lines

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


@dataclasses.dataclass
class ExportOptions:
    front_end: FrontEnd              # features, post-processing, VAD and CMN (the experiment's features.yaml)
    embedding_layer: str = "a"
    min_chunk_size: int = 25
    calibration: str | None = None
    tflite: bool = True
    onnx: bool = True


class ExportGraph:
    """The TF functions of the export around one network (see the module docstring)."""

    def __init__(self, network: Network, front_end: FrontEnd, embedding_layer="a", min_chunk_size=25):
        import tensorflow as tf
        if embedding_layer not in EMBEDDING_OUTPUTS:
            raise ToolError(f"--embedding-layer must be one of {', '.join(EMBEDDING_OUTPUTS)}, got '{embedding_layer}'")
        if min_chunk_size < network.min_frames:
            raise ToolError(f"--min-chunk-size={min_chunk_size} is below the network's minimum of "
                            f"{network.min_frames} frames")
        self.network = network
        self.features = front_end.tensorflow()
        if self.features.dim != network.feat_dim:
            raise ToolError(f"the front end gives {self.features.dim}-dimensional features but the network was "
                            f"trained on dimension {network.feat_dim}")
        self.vad_opts = front_end.vad_options if front_end.vad else None
        self.vad_features = None
        feature_opts = front_end.inference_options()
        apply_cmn, cmn_window = front_end.inference_cmn()
        if self.vad_opts is not None:
            vad_feature_opts = front_end.vad_energy_options()
            self.vad_features = (self.features if vad_feature_opts == feature_opts and not front_end.post
                                 else KaldiFeaturesTF(vad_feature_opts))
            for samples in (1000, 16001, 123457):   # frame counts must agree for every length
                if num_frames_formula(samples, vad_feature_opts.frame) != num_frames_formula(samples, feature_opts.frame):
                    raise ToolError("the VAD's MFCC options and the features' give different numbers of frames "
                                    f"({num_frames_formula(samples, vad_feature_opts.frame)} vs "
                                    f"{num_frames_formula(samples, feature_opts.frame)} for {samples} samples): "
                                    "use --snip-edges=false and the same --frame-shift in both")
            if vad_feature_opts.frame.sample_frequency != feature_opts.frame.sample_frequency:
                raise ToolError("the VAD's MFCC options and the features' have different sample frequencies")
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
    front_end = options.front_end
    vad_feature_opts = front_end.vad_energy_options() if front_end.vad else None
    calibration = read_calibration(options.calibration) if options.calibration else None
    network = load_network(exp_dir)   # last: the configs' errors come without waiting for TensorFlow
    graph = ExportGraph(network, front_end, options.embedding_layer, options.min_chunk_size)
    apply_cmn, cmn_window = front_end.inference_cmn()
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
        "features": {"type": front_end.feature_type, "options": _options_dict(front_end.inference_options()),
                     "post": front_end.to_dict()["post"], "config_file": "conf/features.conf",
                     "front_end_file": FRONT_END_FILE},
        "vad": None if vad_feature_opts is None else {
            "mfcc_options": _options_dict(vad_feature_opts), "options": _options_dict(front_end.vad_options),
            "mfcc_config_file": "conf/vad_mfcc.conf", "config_file": "conf/vad.conf"},
        "cmn": {"apply": apply_cmn, "mode": front_end.cmn, "window": cmn_window, "center": True,
                "norm_vars": False},
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
    front_end = options.front_end
    write_front_end(work, front_end)
    _write_lines(os.path.join(conf, "features.conf"), option_lines(front_end.inference_options()))
    if front_end.vad:
        _write_lines(os.path.join(conf, "vad_mfcc.conf"), option_lines(front_end.vad_energy_options()))
        _write_lines(os.path.join(conf, "vad.conf"), option_lines(front_end.vad_options))
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


def _write_lines(path: str, lines: list) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


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


def default_options(exp_dir: str, **rest) -> ExportOptions:
    """Export options of ``exp_dir``: its recorded front end (``<exp>/features.yaml``, read by
    :func:`tfspk.features.frontend.read_front_end`) and ``rest`` (embedding layer, calibration, formats)."""
    return ExportOptions(read_front_end(exp_dir), **rest)
