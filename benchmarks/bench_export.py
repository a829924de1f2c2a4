"""Single-thread real-time factor of extraction with the exported models (SavedModel and ONNX).

RTF = wall-clock seconds / seconds of audio (smaller is faster; WeSpeaker's convention), measured end
to end from 16 kHz int16-scale samples: features, energy VAD, sliding CMN, voiced frames and the
network (random weights: speed does not depend on them), one utterance at a time, one CPU thread
(TensorFlow intra/inter-op threads = 1, onnxruntime intra-op threads = 1).

Networks: every entry of ``tfspk.nnet.registry.NETWORKS`` when it has any, else the [Liu2019] TDNN.
Networks named tdnn* take the recipe's 30-dim MFCCs, the others 80-dim fbank (conf/fbank.conf).
Mark to beat (WeSpeaker's published single-thread ONNX RTF): ECAPA-TDNN C=512 0.018, ResNet34 0.061.

    .venv/bin/python benchmarks/bench_export.py [--seconds 10] [--utt-seconds 10] [--networks tdnn,...]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = "-1"

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "egs" / "voxceleb" / "v2" / "conf"
WESPEAKER_ONNX_RTF = {"ecapa_tdnn": 0.018, "resnet34": 0.061}


def network_names() -> list[str]:
    try:
        from tfspk.nnet.registry import NETWORKS
    except ImportError:
        NETWORKS = {}
    return sorted(NETWORKS) or ["tdnn"]


def make_exp_dir(root: Path, name: str) -> tuple[Path, str]:
    """An experiment dir with random weights for network ``name``; returns (dir, feature config).

    MERGE: the config.yaml layout of registry networks is the nnet layer's; today's loader takes
    ``nnet: {arch: ...}`` with build_xvector's keyword arguments.
    """
    import yaml

    from tfspk.nnet import build_xvector
    feature = "mfcc" if name.startswith("tdnn") else "fbank"
    feat_dim = 30 if feature == "mfcc" else 80
    exp = root / name
    (exp / "final").mkdir(parents=True)
    model = build_xvector(name, feat_dim)
    model.save_weights(str(exp / "final" / "model.weights.h5"))
    (exp / "config.yaml").write_text(yaml.safe_dump({"feat_dim": feat_dim, "num_classes": 2, "nnet": {"arch": name}}))
    return exp, str(CONF / f"{feature}.conf")


def rtf(embedder, seconds_budget: float, utterance_seconds: float) -> float:
    import numpy as np
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import synth_speech
    audio = [synth_speech(utterance_seconds + 0.37 * k, 16000, seed=k).astype(np.float32) for k in range(3)]
    embedder.embed(audio[0], 16000)   # build / warm up outside the timing
    start, done, k = time.perf_counter(), 0.0, 0
    while time.perf_counter() - start < seconds_budget:
        samples = audio[k % len(audio)]
        embedder.embed(samples, 16000)
        done += samples.size / 16000
        k += 1
    return (time.perf_counter() - start) / done


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per network and runtime")
    parser.add_argument("--utt-seconds", type=float, default=10.0, help="utterance length")
    parser.add_argument("--networks", default="", help="comma-separated names (default: the registry's)")
    args = parser.parse_args()
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from tfspk.export.embedder import Embedder
    from tfspk.export.export import default_options, export
    names = [n for n in args.networks.split(",") if n] or network_names()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            exp, feature_config = make_exp_dir(Path(tmp), name)
            options = default_options(str(exp), feature_config=feature_config,
                                      vad_mfcc_config=str(CONF / "mfcc.conf"), vad_config=str(CONF / "vad.conf"),
                                      tflite=False)
            out = Path(tmp) / f"{name}-export"
            export(str(exp), str(out), options)
            for backend in ("saved_model", "onnx"):
                value = rtf(Embedder(str(out), backend=backend, num_threads=1), args.seconds, args.utt_seconds)
                mark = WESPEAKER_ONNX_RTF.get(name)
                note = f" (WeSpeaker ONNX: {mark})" if mark and backend == "onnx" else ""
                print(f"{name:12s} {backend:12s} single-thread RTF {value:.4f}{note}", flush=True)


if __name__ == "__main__":
    main()
