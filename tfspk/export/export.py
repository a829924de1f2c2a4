"""``tfspk-export``: a trained experiment dir -> SavedModel, TFLite and ONNX models that run alone.

The exported graphs (docs/export.md, :mod:`tfspk.export.graph`) hold the whole extraction of
``steps/extract_xvectors.sh``: ``embed_wav(samples)`` (int16-scaled samples at the recorded rate) and
``embed_feats(feats, vad)`` (raw features and VAD as in feats.scp / vad.scp), both returning
``{"embedding": float32 [D], "num_frames": int32 []}``. ``export.json`` records the feature, VAD and CMN
options, the network config, the embedding layer, the sample rate, the minimum input, the scoring
back-end (``backend/``: the recipe's training mean, LDA and PLDA, :class:`tfspk.backend.scorer.Scorer`)
and the calibration, so a consumer needs nothing else.

This module holds the orchestration and where the defaults are found; the parts are
:mod:`~tfspk.export.configs` (config files), :mod:`~tfspk.export.graph` (the TF functions) and
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
from tfspk.export.configs import read_calibration, read_feature_config, read_vad_config  # noqa: F401 (API)
from tfspk.export.graph import EMBEDDING_OUTPUTS, ExportGraph, Network, load_network  # noqa: F401 (API)
from tfspk.export.writers import ONNX_FEATS, ONNX_WAV, SAVED_MODEL, TFLITE, write_all
from tfspk.features.options import FEATURE_TYPES

EXPORT_FORMAT = 1
BACKEND_DIR = "backend"
#: where the recipe's back-end stage leaves mean.vec, transform.mat and plda (local/score_plda_cosine.sh)
RECIPE_BACKEND_DIR = "xvectors_train"


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
    scorer = Scorer.read(options.backend_dir, options.scoring) if options.scoring != "cosine" else Scorer()
    if calibration:
        calibration["scoring"] = options.scoring
        _check_calibration_name(options.calibration, options.scoring)
    network = load_network(exp_dir)   # last: the configs' errors come without waiting for TensorFlow
    graph = ExportGraph(network, feature_opts, vad_feature_opts, vad_opts, options.embedding_layer,
                        options.apply_cmn, options.cmn_window, options.min_chunk_size)
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
        "features": {"type": options.feature_type, "options": _options_dict(feature_opts),
                     "config_file": "conf/features.conf"},
        "vad": None if vad_opts is None else {
            "mfcc_options": _options_dict(vad_feature_opts), "options": _options_dict(vad_opts),
            "mfcc_config_file": "conf/vad_mfcc.conf", "config_file": "conf/vad.conf"},
        "cmn": {"apply": options.apply_cmn, "window": options.cmn_window, "center": True, "norm_vars": False},
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
                    vad_config: str | None = None, scoring: str | None = None, backend_dir: str | None = None,
                    **rest) -> ExportOptions:
    """Export options with the config files looked up where the recipe keeps them.

    The feature config defaults to ``conf/{mfcc,fbank,spectrogram}.conf`` of the experiment dir, else of
    ``data_dir`` (steps/make_*.sh copy the config into ``<data>/conf/``); the feature type is the file's
    stem unless given. The VAD uses ``conf/mfcc.conf`` and ``conf/vad.conf`` of the same places;
    ``vad_config="none"`` exports without VAD (every frame kept). The scoring back-end's files come
    from ``backend_dir``, else ``<exp_dir>/xvectors_train`` (where the recipe's back-end stage writes
    them); the kind defaults to ``plda`` when a PLDA is there, ``centred-cosine`` with only a mean,
    else ``cosine``.
    """
    scoring, backend_dir = default_scoring(exp_dir, scoring, backend_dir)
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
    return ExportOptions(feature_type, feature_config, vad_mfcc_config, vad_config, scoring=scoring,
                         backend_dir=backend_dir, **rest)


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
