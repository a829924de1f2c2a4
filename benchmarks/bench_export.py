"""Single-thread real-time factor of extraction with the exported models (SavedModel and ONNX).

RTF = wall-clock seconds / seconds of audio (smaller is faster; WeSpeaker's convention), measured end
to end from 16 kHz int16-scale samples: features, energy VAD, sliding CMN, voiced frames and the
network (random weights: speed does not depend on them), one utterance at a time, one CPU thread
(TensorFlow intra/inter-op threads = 1, onnxruntime intra-op threads = 1). The first call (graph
building, memory planning) is left out of the timing. Beside the wall-clock RTF the script prints the
CPU RTF (process CPU seconds / audio seconds): on a machine shared with other jobs the wall clock also
counts the time the process waits for a core, the CPU time does not, so the CPU RTF is the better
estimate of the idle-machine figure (both are printed; the load average too).

Systems: the recipe's experiment configs (egs/voxceleb/v2/conf/<system>.yaml: its ``nnet`` section and
its feature config), plus ``ecapa_tdnn_c512`` (the C = 512 ECAPA-TDNN of [Desplanques2020], the size of
WeSpeaker's published figure: the c1024 config with channels 512 and mfa_channels 1536).
Mark to beat (WeSpeaker's published single-thread ONNX RTF): ECAPA-TDNN C=512 0.018, ResNet34 0.061.

    .venv/bin/python benchmarks/bench_export.py [--seconds 10] [--utt-seconds 10] [--systems tdnn,...]
        [--backends saved_model,onnx]
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
#: system -> (recipe config, overrides of its nnet params)
SYSTEMS = {
    "tdnn": ("tdnn.yaml", {}),
    "ecapa_tdnn_c512": ("ecapa_tdnn_c1024.yaml", {"channels": 512, "mfa_channels": 1536}),
    "ecapa_tdnn_c1024": ("ecapa_tdnn_c1024.yaml", {}),
    "resnet34": ("resnet34.yaml", {}),
    "rescnn": ("rescnn.yaml", {}),
}
WESPEAKER_ONNX_RTF = {"ecapa_tdnn_c512": 0.018, "resnet34": 0.061}


def make_exp_dir(root: Path, system: str) -> tuple[Path, str, str]:
    """An experiment dir with random weights for ``system``; returns (dir, feature config, feature type)."""
    import yaml

    from tfspk.features.options import read_options_file
    from tfspk.features.registry import feature_type
    from tfspk.nnet import network_config, network_from_config
    config_name, overrides = SYSTEMS[system]
    config = yaml.safe_load((CONF / config_name).read_text())
    section = dict(config["nnet"])
    if "params" in section:
        section["params"] = {**section["params"], **overrides}
    else:
        section.update(overrides)
    network = network_from_config(section)
    kind = config.get("features", {}).get("type", "mfcc")
    feature_config = str(CONF / f"{kind}.conf")
    entry = feature_type(kind)
    feat_dim = read_options_file(feature_config, entry.Options(), f"the {kind} features").dim
    exp = root / system
    (exp / "final").mkdir(parents=True)
    network.build(feat_dim).save_weights(str(exp / "final" / "model.weights.h5"))
    (exp / "final" / "DONE").write_text("benchmark\n")
    (exp / "config.yaml").write_text(yaml.safe_dump({"feat_dim": feat_dim, "num_classes": 2,
                                                     "nnet": network_config(network)}))
    return exp, feature_config, kind


def rtf(embedder, seconds_budget: float, utterance_seconds: float, min_utterances: int = 3) -> tuple[float, float, int]:
    """(wall-clock RTF, CPU RTF, utterances timed) over at least ``min_utterances`` and ``seconds_budget`` s."""
    import numpy as np
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import synth_speech
    audio = [synth_speech(utterance_seconds + 0.37 * k, 16000, seed=k).astype(np.float32) for k in range(3)]
    embedder.embed(audio[0], 16000)   # build / warm up outside the timing
    start, cpu_start, done, k = time.perf_counter(), time.process_time(), 0.0, 0
    while k < min_utterances or time.perf_counter() - start < seconds_budget:
        samples = audio[k % len(audio)]
        embedder.embed(samples, 16000)
        done += samples.size / 16000
        k += 1
    return (time.perf_counter() - start) / done, (time.process_time() - cpu_start) / done, k


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per system and runtime")
    parser.add_argument("--utt-seconds", type=float, default=10.0, help="utterance length")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {', '.join(SYSTEMS)}")
    parser.add_argument("--backends", default="saved_model,onnx", help="comma-separated: saved_model, tflite, onnx")
    args = parser.parse_args()
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from tfspk.export.embedder import Embedder
    from tfspk.export.export import default_options, export
    backends = [b for b in args.backends.split(",") if b]
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {os.getloadavg()[0]:.2f} "
          f"(1 min) at the start, {args.utt_seconds:g} s utterances", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for system in [s for s in args.systems.split(",") if s]:
            if system not in SYSTEMS:
                sys.exit(f"unknown system {system}; known: {', '.join(SYSTEMS)}")
            exp, feature_config, kind = make_exp_dir(Path(tmp), system)
            options = default_options(str(exp), feature_config=feature_config, feature_type=kind,
                                      vad_mfcc_config=str(CONF / "mfcc.conf"), vad_config=str(CONF / "vad.conf"),
                                      tflite="tflite" in backends, onnx="onnx" in backends)
            out = Path(tmp) / f"{system}-export"
            export(str(exp), str(out), options)
            for backend in backends:
                value, cpu, count = rtf(Embedder(str(out), backend=backend, num_threads=1), args.seconds, args.utt_seconds)
                mark = WESPEAKER_ONNX_RTF.get(system)
                note = f" (WeSpeaker ONNX: {mark}; wall {'beaten' if value < mark else 'NOT beaten'}, " \
                       f"CPU {'beaten' if cpu < mark else 'NOT beaten'})" if mark and backend == "onnx" else ""
                print(f"{system:17s} {backend:12s} single-thread RTF {value:.4f} wall, {cpu:.4f} CPU, over {count} "
                      f"utterances, load {os.getloadavg()[0]:.2f}{note}", flush=True)


if __name__ == "__main__":
    main()
