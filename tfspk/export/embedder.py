"""``tfspk.Embedder``: speaker embeddings and scores from an exported model, without the training code.

``Embedder(path, backend="saved_model")`` loads the directory written by ``tfspk-export`` (or an
experiment dir, exported on the fly to a temporary directory: that one path imports the training
code). Backends: ``saved_model`` (TensorFlow), ``tflite`` (``tf.lite.Interpreter``), ``onnx``
(onnxruntime). All run the same graph: features, energy VAD, sliding CMN, voiced frames, network
(docs/export.md).

Scores: cosine ``a.b / (|a| |b|)``. With a calibration in the export, ``llr = a * score + b``
and the Bayes decision for a target prior ``P`` (equal costs) is ``llr > -logit(P) = log((1 - P) / P)``
[Brummer2006]; without one, the decision threshold is undefined and reported as such.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile

import numpy as np

from tfspk.errors import ToolError

EXPORT_JSON = "export.json"
BACKENDS = ("saved_model", "tflite", "onnx")


def read_export_info(export_dir: str, backend: str = "saved_model") -> dict:
    """export.json of ``export_dir``, after checking that every part ``backend`` needs is there."""
    path = os.path.join(export_dir, EXPORT_JSON)
    if not os.path.isfile(path):
        raise ToolError(f"{export_dir} is not a tfspk export: missing {path} (written by tfspk-export)")
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except (OSError, ValueError) as err:
        raise ToolError(f"cannot read {path}: {err}") from None
    for key in ("sample_rate", "min_samples", "network", "files"):
        if key not in info:
            raise ToolError(f"{path} has no '{key}' key (not written by tfspk-export?)")
    files = info["files"]
    needed = {"saved_model": [os.path.join(files.get("saved_model") or "saved_model", "saved_model.pb")],
              "tflite": [files.get("tflite")],
              "onnx": [files.get("onnx_wav"), files.get("onnx_feats")]}[backend]
    for name in needed:
        if not name:
            raise ToolError(f"{export_dir} was exported without the {backend} model (see {path})")
        if not os.path.exists(os.path.join(export_dir, name)):
            raise ToolError(f"{export_dir} is incomplete: missing {os.path.join(export_dir, name)}")
    return info


def bayes_threshold(target_prior: float) -> float:
    """LLR threshold of the Bayes decision at prior ``P`` with unit costs, ``log((1 - P) / P)``
    (:func:`tfspk.metrics.calibration.bayes_threshold`; this checks the option under embed's name)."""
    from tfspk.metrics.calibration import bayes_threshold as metrics_bayes_threshold
    if not 0.0 < target_prior < 1.0:
        raise ToolError(f"--target-prior must be strictly between 0 and 1, got {target_prior}")
    return metrics_bayes_threshold(target_prior)


class _SavedModelRunner:
    def __init__(self, export_dir, info, num_threads):
        import tensorflow as tf
        if num_threads:
            _set_tf_threads(num_threads)
        loaded = tf.saved_model.load(os.path.join(export_dir, info["files"]["saved_model"]))
        self._loaded = loaded
        self._wav = loaded.signatures["embed_wav"]
        self._feats = loaded.signatures["embed_feats"]

    def wav(self, samples):
        out = self._wav(samples=samples)
        return out["embedding"].numpy(), int(out["num_frames"].numpy())

    def feats(self, feats, vad):
        out = self._feats(feats=feats, vad=vad)
        return out["embedding"].numpy(), int(out["num_frames"].numpy())


class _TfliteRunner:
    def __init__(self, export_dir, info, num_threads):
        import warnings

        import tensorflow as tf
        with warnings.catch_warnings():   # tf.lite.Interpreter's deprecation notice (LiteRT is not a dependency)
            warnings.simplefilter("ignore")
            self._interpreter = tf.lite.Interpreter(os.path.join(export_dir, info["files"]["tflite"]),
                                                    num_threads=num_threads or None)
        self._wav = self._interpreter.get_signature_runner("embed_wav")
        self._feats = self._interpreter.get_signature_runner("embed_feats")

    def wav(self, samples):
        out = self._wav(samples=samples)
        return np.asarray(out["embedding"]), int(out["num_frames"])

    def feats(self, feats, vad):
        out = self._feats(feats=feats, vad=vad)
        return np.asarray(out["embedding"]), int(out["num_frames"])


class _OnnxRunner:
    def __init__(self, export_dir, info, num_threads):
        try:
            import onnxruntime
        except ImportError:
            raise ToolError("the onnx backend needs onnxruntime (pip install 'tfspk[export]')") from None
        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        files = info["files"]
        self._wav = onnxruntime.InferenceSession(os.path.join(export_dir, files["onnx_wav"]), options,
                                                 providers=["CPUExecutionProvider"])
        self._feats = onnxruntime.InferenceSession(os.path.join(export_dir, files["onnx_feats"]), options,
                                                   providers=["CPUExecutionProvider"])

    @staticmethod
    def _run(session, inputs):
        names = [output.name for output in session.get_outputs()]
        values = dict(zip(names, session.run(None, inputs)))
        embedding = next(v for n, v in values.items() if n.startswith("embedding"))
        count = next(v for n, v in values.items() if n.startswith("num_frames"))
        return np.asarray(embedding), int(count)

    def wav(self, samples):
        return self._run(self._wav, {"samples": samples})

    def feats(self, feats, vad):
        return self._run(self._feats, {"feats": feats, "vad": vad})


_RUNNERS = {"saved_model": _SavedModelRunner, "tflite": _TfliteRunner, "onnx": _OnnxRunner}


def _set_tf_threads(num_threads):
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(num_threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:   # already initialised in this process: keep its setting
        pass


class Embedder:
    """Speaker embeddings from an export dir (or an experiment dir, exported to a temporary dir).

    ``embed(samples, rate)``: int16-scaled samples (int16 or float array) at the export's rate ->
    float32 ``[D]``; ToolError for another rate, audio shorter than ``min_samples``, or no voiced frame.
    ``embed_features(feats, vad=None)``: raw features ``[T, F]`` and VAD ``[T]`` as in feats.scp/vad.scp.
    ``score(a, b)``: cosine of two embeddings (or of two wav files' embeddings).
    ``llr(score)``: calibrated log-likelihood ratio, or None without a calibration.
    """

    def __init__(self, path: str, backend: str = "saved_model", num_threads: int | None = None):
        if backend not in BACKENDS:
            raise ToolError(f"backend must be one of {', '.join(BACKENDS)}, got '{backend}'")
        if not os.path.isdir(path):
            raise ToolError(f"{path} does not exist (expected a tfspk-export dir or an experiment dir)")
        self.backend = backend
        temporary = None
        if not os.path.isfile(os.path.join(path, EXPORT_JSON)) and os.path.isfile(os.path.join(path, "config.yaml")):
            temporary = tempfile.mkdtemp(prefix="tfspk-export-")
            export_dir = os.path.join(temporary, "export")
            _export_experiment(path, export_dir, backend)
        else:
            export_dir = path
        try:
            self.info = read_export_info(export_dir, backend)
            try:
                self._runner = _RUNNERS[backend](export_dir, self.info, num_threads)
            except ToolError:
                raise
            except Exception as err:  # TF / TFLite / onnxruntime raise assorted types for damaged files
                first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise ToolError(f"cannot load the {backend} model of {export_dir} (damaged or incomplete "
                                f"export?): {first_line}") from None
        finally:
            if temporary:   # everything is loaded in memory by now
                shutil.rmtree(temporary, ignore_errors=True)
        self.path = path
        self.sample_rate = float(self.info["sample_rate"])
        self.min_samples = int(self.info["min_samples"])
        self.feat_dim = int(self.info["network"]["feat_dim"])
        self.embedding_dim = int(self.info["network"]["embedding_dim"])
        self.calibration = self.info.get("calibration")

    def embed(self, samples, rate: float, name: str = "") -> np.ndarray:
        label = f"'{name}'" if name else "the audio"
        if float(rate) != self.sample_rate:
            raise ToolError(f"{label} has sample rate {float(rate):g} Hz but the model {self.path} expects "
                            f"{self.sample_rate:g} Hz; resample it first")
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise ToolError(f"{label}: expected one channel of samples, got shape {samples.shape}")
        if samples.size < self.min_samples:
            raise ToolError(f"{label} is too short: {samples.size} samples ({samples.size / self.sample_rate:.3f} s); "
                            f"the network needs at least {self.min_samples} ({self.min_samples / self.sample_rate:.3f} s)")
        embedding, count = self._runner.wav(np.ascontiguousarray(samples, dtype=np.float32))
        if count == 0:
            raise ToolError(f"{label} has no voiced frames (energy VAD); no embedding")
        return embedding.astype(np.float32)

    def embed_file(self, wav: str, name: str = "") -> np.ndarray:
        """The embedding of a wav file (or a wav.scp value such as ``cmd |``)."""
        from tfspk.io.audio import read_audio
        samples, rate = read_audio(wav)
        return self.embed(samples, rate, name or wav)

    def embed_features(self, feats, vad=None, name: str = "") -> np.ndarray:
        label = f"'{name}'" if name else "the features"
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        if feats.ndim != 2 or feats.shape[1] != self.feat_dim:
            raise ToolError(f"{label} have shape {feats.shape}; the network takes [frames, {self.feat_dim}]")
        vad = np.ones(feats.shape[0], np.float32) if vad is None else np.ascontiguousarray(vad, dtype=np.float32)
        if vad.shape != (feats.shape[0],):
            raise ToolError(f"{label}: {feats.shape[0]} frames of features but {vad.size} VAD values")
        if feats.shape[0] < int(self.info["network"]["min_frames"]):
            raise ToolError(f"{label} have {feats.shape[0]} frames; the network needs at least "
                            f"{self.info['network']['min_frames']}")
        embedding, count = self._runner.feats(feats, vad)
        if count == 0:
            raise ToolError(f"{label} have no voiced frames; no embedding")
        return embedding.astype(np.float32)

    def score(self, a, b) -> float:
        """Cosine score of two embeddings (or wav paths)."""
        a = self.embed_file(a) if isinstance(a, (str, os.PathLike)) else np.asarray(a, dtype=np.float64)
        b = self.embed_file(b) if isinstance(b, (str, os.PathLike)) else np.asarray(b, dtype=np.float64)
        norms = np.linalg.norm(a) * np.linalg.norm(b)
        return float(np.dot(a, b) / norms) if norms > 0 else 0.0

    def llr(self, score: float) -> float | None:
        """``a * score + b`` with the export's calibration, None without one."""
        if not self.calibration:
            return None
        return float(self.calibration["a"]) * float(score) + float(self.calibration["b"])

    def decide(self, score: float, target_prior: float = 0.01) -> bool | None:
        """Bayes decision (target or not) at ``target_prior``; None without a calibration."""
        llr = self.llr(score)
        return None if llr is None else llr >= bayes_threshold(target_prior)


def _export_experiment(exp_dir: str, out_dir: str, backend: str) -> None:
    """Export an experiment dir with the front end recorded in it (tfspk-export's defaults)."""
    from tfspk.export.export import default_options, export   # imports the training code
    options = default_options(exp_dir)
    options.tflite = backend == "tflite"
    options.onnx = backend == "onnx"
    export(exp_dir, out_dir, options)
