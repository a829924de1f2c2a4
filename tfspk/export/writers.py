"""The format writers of an export: SavedModel, TFLite (from frozen functions) and ONNX (tf2onnx).

Each takes the :class:`~tfspk.export.graph.ExportGraph` (or its frozen functions) and writes into the
export's working directory; the caller renames that directory into place only when all succeeded.
"""
from __future__ import annotations

import json
import os
import shutil

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.features.frontend import write_front_end

EXPORT_JSON = "export.json"
SAVED_MODEL = "saved_model"
TFLITE = "model.tflite"
ONNX_WAV = "model.onnx"
ONNX_FEATS = "model_feats.onnx"
ONNX_OPSET = 17


def write_all(graph, work: str, info: dict, options) -> None:
    """conf/, the calibration, the SavedModel, TFLite and ONNX models and export.json into ``work``
    (``graph``: :class:`~tfspk.export.graph.ExportGraph`, ``options``: :class:`~tfspk.export.export.ExportOptions`)."""
    import tensorflow as tf
    conf = os.path.join(work, "conf")
    os.makedirs(conf)
    front_end = options.front_end
    write_front_end(work, front_end)
    for name, lines in front_end.config_files().items():   # with post-processing, the features before it
        _write_lines(os.path.join(conf, name), lines)
    if options.calibration:
        shutil.copyfile(options.calibration, os.path.join(work, "calibration.txt"))

    module = tf.Module()
    # The network's tf.Variables, listed: Keras 3 does not expose every variable to TF's object graph
    # (layers held in plain lists inside a custom layer, as ECAPA-TDNN's SE-Res2Block, stay 'untracked'
    # and the saver refuses the functions that read them), and attaching the Keras model itself would
    # only make the saver trace its layers' call functions too.
    module.network_variables = [_tf_variable(v) for v in graph.network.model.variables]
    signatures = {"embed_wav": graph.embed_wav.get_concrete_function(),
                  "embed_feats": graph.embed_feats.get_concrete_function(),
                  "features_wav": graph.features_wav.get_concrete_function()}
    # The traced (concrete) functions as attributes, not the tf.functions: the saver traces a tf.function
    # attribute again inside its save context (a new cache key), which is a second trace of the whole network
    # and front end for each of the three; the loaded object has the same callable attributes either way.
    module.embed_wav, module.embed_feats, module.features_wav = (
        signatures["embed_wav"], signatures["embed_feats"], signatures["features_wav"])
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
    signatures = {name: frozen[name].get_concrete_function() for name in ("embed_wav", "embed_feats")}
    module.embed_wav, module.embed_feats = signatures["embed_wav"], signatures["embed_feats"]   # traced once
    frozen_dir = os.path.join(work, ".frozen")
    try:
        tf.saved_model.save(module, frozen_dir, signatures=signatures)
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
            _onnx_convert(tf2onnx, function, signature, os.path.join(work, name))
        except Exception as err:  # tf2onnx raises assorted types; name the step
            raise ToolError(f"ONNX conversion of {name} failed: {err}") from None
        cli.log(f"wrote {name}")


def _onnx_convert(tf2onnx, function, signature, path: str) -> None:
    """tf2onnx's conversion of ``function`` to ``path``, first with its optimizer's error catching off.

    With catching on (tf2onnx's default) the optimizer deep-copies the whole ONNX graph before each of its
    passes, to fall back to the copy when a pass raises; that is about a fifth of a conversion's time. When no
    pass raises, both runs apply the same passes to the same graph; when one does, the conversion is made
    again from the start in the environment as it was (tf2onnx's default: catching on, the pass skipped).
    """
    from tf2onnx import constants
    key = constants.ENV_TF2ONNX_CATCH_ERRORS
    before = os.environ.get(key)

    def restore():
        # tf2onnx 1.17 turns catching off whenever the variable is set, whatever its value: unset it again
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before

    try:
        os.environ[key] = "FALSE"
        try:
            tf2onnx.convert.from_function(function, input_signature=signature, opset=ONNX_OPSET, output_path=path)
            return
        except Exception:  # noqa: BLE001 (any failure: the conversion as it was decides)
            pass
        restore()
        tf2onnx.convert.from_function(function, input_signature=signature, opset=ONNX_OPSET, output_path=path)
    finally:
        restore()
