"""``tfspk-export``: a trained experiment dir -> SavedModel, TFLite and ONNX models that run alone.

The exported graphs (docs/export.md, :mod:`tfspk.export.graph`) hold the whole extraction of
``steps/extract_xvectors.sh``: ``embed_wav(samples)`` (int16-scaled samples at the recorded rate) and
``embed_feats(feats, vad)`` (raw features and VAD as in feats.scp / vad.scp), both returning
``{"embedding": float32 [D], "num_frames": int32 []}``. ``export.json`` records the feature, VAD and CMN
options, the network config, the embedding layer, the sample rate, the minimum input, the scoring
back-end (``backend/``: the recipe's training mean, LDA and PLDA, :class:`tfspk.backend.scorer.Scorer`)
and the calibration, so a consumer needs nothing else.

This module holds the orchestration and where the defaults are found; the parts are
:mod:`~tfspk.export.configs` (the calibration file), :mod:`~tfspk.export.graph` (the TF functions) and
:mod:`~tfspk.export.writers` (SavedModel, TFLite, ONNX).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile

from tfspk import __version__
from tfspk import cli
from tfspk.backend.scorer import KINDS as SCORING_KINDS
from tfspk.backend.scorer import MEAN, PLDA, Scorer
from tfspk.errors import ToolError
from tfspk.export.configs import read_calibration
from tfspk.export.graph import EMBEDDING_OUTPUTS, ExportGraph, Network, load_network  # noqa: F401 (API)
from tfspk.export.writers import ONNX_FEATS, ONNX_WAV, SAVED_MODEL, TFLITE, write_all
from tfspk.features.frontend import FRONT_END_FILE, FrontEnd, read_front_end

EXPORT_FORMAT = 1
BACKEND_DIR = "backend"
#: where the recipe's back-end stage leaves mean.vec, transform.mat and plda (local/score_plda_cosine.sh)
RECIPE_BACKEND_DIR = "xvectors_train"


@dataclasses.dataclass
class ExportOptions:
    front_end: FrontEnd              # features, post-processing, VAD and CMN (the experiment's features.yaml)
    embedding_layer: str = "a"
    min_chunk_size: int = 25
    calibration: str | None = None
    tflite: bool = True
    onnx: bool = True
    scoring: str = "cosine"          # tfspk.backend.scorer.KINDS
    backend_dir: str | None = None   # mean.vec, transform.mat, plda of the recipe (None for cosine)


#: steps/calibrate_scores.sh names its models <system>.cal after the recipe's score files
_CALIBRATION_STEMS = {"plda": "plda", "cosine": "centred-cosine"}


def _check_calibration_name(path: str, scoring: str) -> None:
    """Warn when a calibration named after the recipe's other score file is exported with this back-end:
    its LLRs would look right and be wrong."""
    stem = os.path.splitext(os.path.basename(path))[0]
    if _CALIBRATION_STEMS.get(stem, scoring) != scoring:
        cli.warn(f"{path} looks like a calibration of the recipe's {stem}_scores ({_CALIBRATION_STEMS[stem]} "
                 f"scoring) but the export scores with {scoring}: give --scoring={_CALIBRATION_STEMS[stem]} "
                 "or the calibration of these scores")


def _options_dict(opts) -> dict:
    return dataclasses.asdict(opts) if opts is not None else None


def export(exp_dir: str, out_dir: str, options: ExportOptions) -> dict:
    """Write the export of ``exp_dir`` to ``out_dir`` (replaced as a whole only on success); returns export.json."""
    import tensorflow as tf
    front_end = options.front_end
    vad_feature_opts = front_end.vad_energy_options() if front_end.vad else None
    calibration = read_calibration(options.calibration) if options.calibration else None
    scorer = Scorer.read(options.backend_dir, options.scoring) if options.scoring != "cosine" else Scorer()
    if calibration:
        calibration["scoring"] = options.scoring
        _check_calibration_name(options.calibration, options.scoring)
    network = load_network(exp_dir)   # last: the configs' errors come without waiting for TensorFlow
    graph = ExportGraph(network, front_end, options.embedding_layer, options.min_chunk_size)
    apply_cmn, cmn_window = front_end.inference_cmn()
    embedding_dim = int(graph.embed_feats(tf.zeros([graph.min_chunk_size, network.feat_dim]),
                                          tf.ones([graph.min_chunk_size]))["embedding"].shape[0])
    scorer.check_dim(embedding_dim, f"the embeddings of {exp_dir}")
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
        "scoring": {"kind": options.scoring, "dir": BACKEND_DIR if options.scoring != "cosine" else None,
                    "source": os.path.abspath(options.backend_dir) if options.backend_dir else None},
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
        if options.scoring != "cosine":
            scorer.write(os.path.join(work, BACKEND_DIR))
        write_all(graph, work, info, options)
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



def default_options(exp_dir: str, scoring: str | None = None, backend_dir: str | None = None,
                    **rest) -> ExportOptions:
    """Export options of ``exp_dir``: its recorded front end (``<exp>/features.yaml``, read by
    :func:`tfspk.features.frontend.read_front_end`), the scoring back-end and ``rest`` (embedding layer,
    calibration, formats). The back-end's files come from ``backend_dir``, else ``<exp_dir>/xvectors_train``
    (where the recipe's back-end stage writes them); the kind defaults to ``plda`` when a PLDA is there,
    ``centred-cosine`` with only a mean, else ``cosine``.
    """
    scoring, backend_dir = default_scoring(exp_dir, scoring, backend_dir)
    return ExportOptions(read_front_end(exp_dir), scoring=scoring, backend_dir=backend_dir, **rest)


def default_scoring(exp_dir: str, scoring: str | None, backend_dir: str | None):
    """``(kind, directory)`` of the scoring back-end (see :func:`default_options`)."""
    if scoring is not None and scoring not in SCORING_KINDS:
        raise ToolError(f"--scoring must be one of {', '.join(SCORING_KINDS)}, got '{scoring}'")
    if backend_dir is None:
        recipe = os.path.join(exp_dir, RECIPE_BACKEND_DIR)
        if scoring != "cosine" and os.path.isfile(os.path.join(recipe, MEAN)):
            backend_dir = recipe
        elif scoring not in (None, "cosine"):
            raise ToolError(f"--scoring={scoring} needs the recipe's back-end files: give --backend-dir "
                            f"(none in {recipe})")
    elif not os.path.isdir(backend_dir):
        raise ToolError(f"--backend-dir={backend_dir} is not a directory")
    if scoring is None:
        if backend_dir is None:
            scoring = "cosine"
        else:
            scoring = "plda" if os.path.isfile(os.path.join(backend_dir, PLDA)) else "centred-cosine"
    return scoring, (backend_dir if scoring != "cosine" else None)
