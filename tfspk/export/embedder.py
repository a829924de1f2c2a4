"""``tfspk.Embedder``: speaker embeddings and scores from an exported model, without the training code.

``Embedder(path, backend="auto")`` loads the directory written by ``tfspk-export`` (or an
experiment dir, exported on the fly to a temporary directory: that one path imports the training
code). Backends: ``saved_model`` (TensorFlow), ``tflite`` (``tf.lite.Interpreter``), ``onnx``
(onnxruntime). All run the same graph: features, energy VAD, sliding CMN, voiced frames, network
(docs/export.md).

``backend="auto"`` (the default) takes the fastest runtime the export holds: ONNX, then TFLite, then
the SavedModel (docs/export.md has the measurement); an experiment dir is exported with the SavedModel
only (a conversion to ONNX would cost more than it saves for one run).

Input samples: int16 arrays, or floats on the int16 scale (Kaldi's) or in [-1, 1] (soundfile,
torchaudio, librosa); ``scale="auto"`` tells them apart by the peak (:func:`int16_scale`). Audio at
another rate is resampled (:func:`tfspk.io.resample.conform_rate`) unless ``allow_resample=False``.

Scores: the export's back-end (:class:`tfspk.backend.scorer.Scorer`: the recipe's PLDA or centred
cosine, or raw cosine). With a calibration in the export, ``llr = a * score + b`` and the Bayes
decision for a target prior ``P`` (equal costs) is ``llr > -logit(P) = log((1 - P) / P)``
[Brummer2006], ``P`` by default the prior the calibration was trained for (``tfspk-calibrate
--target-prior``, default 0.5); without a calibration the decision is undefined and reported as such.
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
#: fastest first (docs/export.md, "Speed"): what backend="auto" tries
FASTEST_FIRST = ("onnx", "tflite", "saved_model")
SCALES = ("auto", "int16", "float")
INT16_FULL_SCALE = 32768.0
#: peaks above this are on no known scale (resampled int16 audio may overshoot 32768 a little)
_MAX_INT16_PEAK = 2.0 * INT16_FULL_SCALE
BACKEND_DIR = "backend"


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


def int16_scale(samples: np.ndarray, scale="auto", label: str = "the audio") -> tuple[np.ndarray, str]:
    """``(float32 samples on the int16 scale, what scale they were taken as)``; non-finite samples refused.

    The export's input is Kaldi's int16 scale. ``scale``: ``"int16"`` (taken as they are), ``"float"``
    (in [-1, 1], multiplied by 32768), a number (multiplied by it), or ``"auto"``: integer arrays by their
    type (int16 as they are, wider integers brought to the int16 range), float arrays with peak
    ``max |x| <= 1`` as [-1, 1], with a peak up to 65536 as int16; any other peak is a ToolError naming it.
    """
    samples = np.asarray(samples)
    if samples.dtype.kind not in "iuf":
        raise ToolError(f"{label}: samples of type {samples.dtype} are not audio (expected int16 or float)")
    if samples.dtype.kind == "f":
        finite = np.isfinite(samples)
        if not finite.all():
            first = int(np.flatnonzero(~finite)[0])
            raise ToolError(f"{label}: {int((~finite).sum())} samples are NaN or infinite (the first is sample "
                            f"{first})")
    if isinstance(scale, str) and scale not in SCALES:
        raise ToolError(f"scale must be one of {', '.join(SCALES)} or a number, got '{scale}'")
    if scale == "auto" and samples.dtype.kind in "iu":
        bits = samples.dtype.itemsize * 8
        factor = 1.0 if bits <= 16 else INT16_FULL_SCALE / 2.0 ** (bits - 1)
        taken = f"{samples.dtype} (x{factor:g})"
    elif scale == "auto":
        peak = float(np.abs(samples).max()) if samples.size else 0.0
        if peak > _MAX_INT16_PEAK:
            raise ToolError(f"{label}: cannot tell the scale of the samples: their peak {peak:g} is beyond both "
                            "[-1, 1] and the int16 range; give scale= (int16, float or a factor)")
        factor, taken = (INT16_FULL_SCALE, "float in [-1, 1]") if peak <= 1.0 else (1.0, "int16")
    elif scale in ("float", "int16"):
        factor, taken = (INT16_FULL_SCALE, "float in [-1, 1]") if scale == "float" else (1.0, "int16")
    else:
        factor = float(scale)
        if not np.isfinite(factor) or factor <= 0:
            raise ToolError(f"scale must be a positive factor, got {scale}")
        taken = f"x{factor:g}"
    converted = samples.astype(np.float64) * factor if factor != 1.0 else samples
    return np.asarray(converted, dtype=np.float32), taken


def pick_backend(export_dir: str, backend: str) -> str:
    """``backend``, or for ``auto`` the fastest runtime whose files the export has and whose package imports."""
    if backend != "auto":
        return backend
    import importlib.util
    for name in FASTEST_FIRST:
        if name == "onnx" and importlib.util.find_spec("onnxruntime") is None:
            continue
        try:
            read_export_info(export_dir, name)
        except ToolError:
            continue
        return name
    return "saved_model"


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
    """Speaker embeddings, scores and speaker identification from an export dir (or an experiment dir,
    exported to a temporary dir).

    ``embed(samples, rate, scale="auto")``: samples (int16, int16-scaled float or float in [-1, 1]) ->
    float32 ``[D]``, resampled to the export's rate unless ``allow_resample=False``; ToolError for
    non-finite samples, audio shorter than ``min_samples``, or no voiced frame (naming the scale taken).
    ``embed_features(feats, vad=None)``: raw features ``[T, F]`` and VAD ``[T]`` as in feats.scp/vad.scp.
    ``score(a, b)``: the export's back-end score of two embeddings (or of two wav files' embeddings).
    ``llr(score)``: calibrated log-likelihood ratio, or None without a calibration; ``decide(score)``.
    ``enroll(speakers)`` / ``identify(x, models)``: speaker models and ranked identification.
    """

    def __init__(self, path: str, backend: str = "auto", num_threads: int | None = None,
                 allow_resample: bool = True):
        if backend not in BACKENDS + ("auto",):
            raise ToolError(f"backend must be one of auto, {', '.join(BACKENDS)}, got '{backend}'")
        if not os.path.isdir(path):
            raise ToolError(f"{path} does not exist (expected a tfspk-export dir or an experiment dir)")
        temporary = None
        if not os.path.isfile(os.path.join(path, EXPORT_JSON)) and os.path.isfile(os.path.join(path, "config.yaml")):
            backend = "saved_model" if backend == "auto" else backend
            temporary = tempfile.mkdtemp(prefix="tfspk-export-")
            export_dir = os.path.join(temporary, "export")
            _export_experiment(path, export_dir, backend)
        else:
            export_dir = path
        try:
            backend = pick_backend(export_dir, backend)
            self.info = read_export_info(export_dir, backend)
            self.scorer = _read_scorer(export_dir, self.info)
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
        self.backend = backend
        self.path = path
        self.allow_resample = allow_resample
        self.sample_rate = float(self.info["sample_rate"])
        self.min_samples = int(self.info["min_samples"])
        self.feat_dim = int(self.info["network"]["feat_dim"])
        self.embedding_dim = int(self.info["network"]["embedding_dim"])
        self.calibration = self.info.get("calibration")

    @property
    def scoring(self) -> str:
        return self.scorer.kind

    def embed(self, samples, rate: float, name: str = "", scale="auto") -> np.ndarray:
        from tfspk import cli
        from tfspk.io.resample import conform_rate
        label = f"'{name}'" if name else "the audio"
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise ToolError(f"{label}: expected one channel of samples, got shape {samples.shape}")
        samples, taken = int16_scale(samples, scale, label)
        samples = conform_rate(samples, rate, self.sample_rate, allow_resample=self.allow_resample,
                               where=label, log=cli.log)
        if samples.size < self.min_samples:
            raise ToolError(f"{label} is too short: {samples.size} samples ({samples.size / self.sample_rate:.3f} s); "
                            f"the network needs at least {self.min_samples} ({self.min_samples / self.sample_rate:.3f} s)")
        embedding, count = self._runner.wav(np.ascontiguousarray(samples, dtype=np.float32))
        if count == 0:
            peak = float(np.abs(samples).max()) if samples.size else 0.0
            raise ToolError(f"{label} has no voiced frames (energy VAD); no embedding. The samples were taken as "
                            f"{taken} (scale={scale}; peak {peak:g} on the int16 scale); if that is wrong, give "
                            "scale=int16, float or a factor")
        return embedding.astype(np.float32)

    def embed_file(self, wav: str, name: str = "") -> np.ndarray:
        """The embedding of a wav file (or a wav.scp value such as ``cmd |``)."""
        from tfspk.io.audio import read_audio
        samples, rate = read_audio(wav)
        return self.embed(samples, rate, name or wav, scale="int16")   # read_audio gives the int16 scale

    def embed_features(self, feats, vad=None, name: str = "") -> np.ndarray:
        label = f"'{name}'" if name else "the features"
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        if feats.ndim != 2 or feats.shape[1] != self.feat_dim:
            raise ToolError(f"{label} have shape {feats.shape}; the network takes [frames, {self.feat_dim}]")
        if not np.isfinite(feats).all():
            raise ToolError(f"{label} hold NaN or infinite values")
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

    def _embedding(self, x) -> np.ndarray:
        return self.embed_file(x) if isinstance(x, (str, os.PathLike)) else np.asarray(x, dtype=np.float64)

    def score(self, a, b) -> float:
        """The export's back-end score (PLDA LLR, centred or raw cosine) of two embeddings (or wav paths)."""
        return self.scorer.score(self._embedding(a), self._embedding(b))

    def llr(self, score: float) -> float | None:
        """``a * score + b`` with the export's calibration, None without one."""
        if not self.calibration:
            return None
        return float(self.calibration["a"]) * float(score) + float(self.calibration["b"])

    @property
    def target_prior(self) -> float:
        """The default prior of decisions: the one the calibration was trained for (0.5 without one)."""
        return float((self.calibration or {}).get("target_prior", 0.5))

    def decide(self, score: float, target_prior: float | None = None) -> bool | None:
        """Bayes decision (target or not) at ``target_prior`` (default :attr:`target_prior`); None
        without a calibration."""
        llr = self.llr(score)
        prior = self.target_prior if target_prior is None else target_prior
        return None if llr is None else llr >= bayes_threshold(prior)

    # ------------------------------------------------------------------ speakers
    def enroll(self, speakers: dict):
        """Speaker models (:class:`tfspk.backend.speakers.SpeakerModels`) from ``{speaker: [wav path or
        embedding, ...]}``: the mean embedding and the number of utterances of each speaker."""
        from tfspk.backend.speakers import SpeakerModels
        spk2utt, embeddings = {}, {}
        for speaker, items in speakers.items():
            if isinstance(items, (str, os.PathLike)) or not len(items):
                raise ToolError(f"speaker '{speaker}': expected a non-empty list of wav files or embeddings")
            keys = []
            for number, item in enumerate(items):
                key = f"{speaker}/{number}"
                embeddings[key] = self._embedding(item)
                keys.append(key)
            spk2utt[speaker] = keys
        models = SpeakerModels.from_embeddings(spk2utt, embeddings, "the enrolment")
        self.scorer.check_dim(models.means.shape[1], "the enrolment embeddings")
        return models

    def identify(self, x, models, top_n: int = 5, threshold: float | None = None,
                 target_prior: float | None = None):
        """Ranked speakers for one wav path or embedding (:func:`tfspk.backend.speakers.identify`):
        an :class:`~tfspk.backend.speakers.Identification` with ``decision`` (a speaker or ``none``)."""
        from tfspk.backend.speakers import identify
        return identify(self.scorer, models, ["input"], self._embedding(x)[None], **self.decision_rule(
            threshold, target_prior), top_n=top_n)[0]

    def decision_rule(self, threshold: float | None = None, target_prior: float | None = None) -> dict:
        """Keyword arguments of :func:`tfspk.backend.speakers.identify` for this export."""
        calibration = None if not self.calibration else (float(self.calibration["a"]), float(self.calibration["b"]))
        prior = self.target_prior if target_prior is None else target_prior
        return {"calibration": calibration, "threshold": threshold,
                "llr_threshold": bayes_threshold(prior) if calibration else None}


def _read_scorer(export_dir: str, info: dict):
    """The export's scoring back-end (raw cosine for exports without one)."""
    from tfspk.backend.scorer import Scorer
    scoring = info.get("scoring") or {"kind": "cosine"}
    if scoring.get("kind", "cosine") == "cosine":
        return Scorer()
    return Scorer.read(os.path.join(export_dir, scoring.get("dir") or BACKEND_DIR), scoring["kind"])


def _export_experiment(exp_dir: str, out_dir: str, backend: str) -> None:
    """Export an experiment dir with the front end recorded in it (tfspk-export's defaults)."""
    from tfspk.export.export import default_options, export   # imports the training code
    options = default_options(exp_dir)
    options.tflite = backend == "tflite"
    options.onnx = backend == "onnx"
    export(exp_dir, out_dir, options)
