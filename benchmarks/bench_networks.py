#!/usr/bin/env python3
"""Speed of the registered networks at full size on this CPU, and the ratio to the TDNN x-vector.

For each network: training frames/s (forward + backward + SGD update of a batch of ``--batch``
segments of ``--frames`` frames, under tf.function, softmax head of 1000 classes) and the extraction
real-time factor (inference-mode forward pass of one ``--extract-seconds`` utterance; RTF = compute
time / audio duration at 100 frames/s). Run once with 1 intra-op thread and once with all threads
(``tf.config.threading`` must be set before TensorFlow initialises, so each setting runs in its own
process). Wall-clock times: on a shared machine they include the other processes' load.

    .venv/bin/python benchmarks/bench_networks.py [--networks=ecapa_tdnn,resnet34] [--batch=8] [--frames=200]
        [--extract-seconds=10] [--repeats=2]

Feature dimensions: 80 for ECAPA-TDNN and the ResNets (fbank), 161 for ResCNN, 30 for the TDNN (MFCC).
Keep runs short on the shared development machine (the defaults take a few minutes).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FEAT_DIMS = {"tdnn": 30, "ecapa_tdnn": 80, "resnet18": 80, "resnet34": 80, "resnet50": 80, "rescnn": 161}
DEFAULT_NETWORKS = "tdnn,ecapa_tdnn,resnet34,rescnn"


def _build(name, feat_dim):
    from tfspk.nnet.registry import NETWORKS, get_network
    if name in NETWORKS or name != "tdnn":
        network = get_network(name)
        return network.build(feat_dim), network.embedding_dim()
    from tfspk.nnet import build_xvector  # the TDNN before it is registered
    return build_xvector("tdnn", feat_dim), 512


def _measure(args):
    """Child process: time the networks with ``args.threads`` intra-op threads; print one JSON line."""
    import numpy as np
    import tensorflow as tf
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import tfspk.nnet  # noqa: F401
    from tfspk.losses import build_loss
    results = {}
    for name in args.networks.split(","):
        feat_dim = FEAT_DIMS.get(name, 80)
        model, dim = _build(name, feat_dim)
        head = build_loss("softmax", 1000, dim)
        optimizer = keras.optimizers.SGD(0.01)
        rng = np.random.default_rng(0)
        x = tf.constant(rng.normal(size=(args.batch, args.frames, feat_dim)), tf.float32)
        labels = tf.constant(rng.integers(0, 1000, args.batch), tf.int32)
        head(tf.zeros((1, dim)), tf.zeros((1,), tf.int32), 0)
        variables = model.trainable_weights + head.trainable_weights

        @tf.function
        def train_step(x, labels):
            with tf.GradientTape() as tape:
                loss, _ = head(model(x, training=True)["embedding_b"], labels, 0)
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss

        @tf.function(input_signature=[tf.TensorSpec([None, None, feat_dim], tf.float32)])
        def extract(x):
            return model(x, training=False)["embedding_a"]

        train_step(x, labels)  # trace
        start = time.perf_counter()
        for _ in range(args.repeats):
            train_step(x, labels).numpy()
        train_fps = args.repeats * args.batch * args.frames / (time.perf_counter() - start)
        utt = tf.constant(rng.normal(size=(1, int(args.extract_seconds * 100), feat_dim)), tf.float32)
        extract(utt).numpy()
        start = time.perf_counter()
        for _ in range(args.repeats):
            extract(utt).numpy()
        rtf = (time.perf_counter() - start) / args.repeats / args.extract_seconds
        results[name] = {"train_fps": train_fps, "rtf": rtf}
    print("RESULT " + json.dumps(results))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", default=DEFAULT_NETWORKS)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--extract-seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    print(" ".join(sys.argv), file=sys.stderr)
    if args.threads is not None:
        _measure(args)
        return
    sys.path.insert(0, str(REPO))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    rows = {}
    for threads, label in ((1, "1 thread"), (0, f"all threads ({os.cpu_count()})")):
        cmd = [sys.executable, __file__, f"--threads={threads}", f"--networks={args.networks}",
               f"--batch={args.batch}", f"--frames={args.frames}", f"--extract-seconds={args.extract_seconds}",
               f"--repeats={args.repeats}"]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        rows[label] = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    for label, results in rows.items():
        print(f"== {label}: batch {args.batch} x {args.frames} frames; extraction of {args.extract_seconds:g} s")
        base = results.get("tdnn")
        print(f"{'network':<12} {'train frames/s':>15} {'x TDNN':>8} {'extract RTF':>12} {'x TDNN':>8}")
        for name, r in results.items():
            ratio_fps = f"{r['train_fps'] / base['train_fps']:.2f}" if base else "-"
            ratio_rtf = f"{r['rtf'] / base['rtf']:.2f}" if base else "-"
            print(f"{name:<12} {r['train_fps']:>15.0f} {ratio_fps:>8} {r['rtf']:>12.4f} {ratio_rtf:>8}")


if __name__ == "__main__":
    main()
