#!/usr/bin/env python3
"""Speed of the recipes' networks on this CPU, and the ratio to the TDNN x-vector of the same recipe.

The systems are the experiment configs of the recipes, read as the trainer reads them (network name and
parameters from ``nnet:``, the feature dimension from ``features:`` and its Kaldi feature conf):

* VoxCeleb sizes (egs/voxceleb/v2/conf): ``tdnn`` ([Liu2019], 30-dim MFCC), ``ecapa_tdnn_c1024``
  ([Li2022AR], 80-dim fbank), ``ecapa_tdnn_c512`` (the same with C = 512 and MFA 1536, the other width of
  [Desplanques2020]), ``resnet34`` ([Wang2023], fbank), ``rescnn`` ([Zhou2020], 161-bin spectrogram);
* demo sizes (egs/demo/v2/conf, sized for 2 CPU cores): ``tdnn``, ``tdnn_fbank``, ``ecapa_tdnn``, ``resnet34``.

For each system: training frames/s (forward + backward + SGD update of a batch of ``--batch`` segments of
``--frames`` frames, under tf.function, softmax head of 1000 classes; frames/s = batch x frames / step
time) and the extraction real-time factor (inference-mode forward pass of one ``--extract-seconds``
utterance; RTF = compute time / audio duration at 100 frames/s). Ratios: frames/s divided by the TDNN's
of the same recipe (below 1 = slower), RTF divided by the TDNN's (above 1 = slower). Each figure is the
median of ``--repeats`` timed runs after one untimed (tracing) run. Run once with 1 intra-op thread and
once with all cores (``tf.config.threading`` must be set before TensorFlow initialises, so each setting
runs in its own process, one process per system). Wall-clock times: on a shared machine they include the other processes' load,
which the script prints (os.getloadavg) before and after each setting.

    nice -n 10 .venv/bin/python benchmarks/bench_networks.py [--systems=voxceleb:tdnn,demo:ecapa_tdnn]
        [--batch=8] [--frames=200] [--extract-seconds=10] [--repeats=3]

``--systems=list`` prints the available names. Keep runs short on the shared development machine.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
EGS = REPO / "egs"
#: benchmark name -> (recipe config, nnet.params overrides): the systems of the recipes.
SYSTEMS = {
    "voxceleb:tdnn": ("voxceleb/v2/conf/tdnn.yaml", {}),
    "voxceleb:ecapa_tdnn_c1024": ("voxceleb/v2/conf/ecapa_tdnn_c1024.yaml", {}),
    "voxceleb:ecapa_tdnn_c512": ("voxceleb/v2/conf/ecapa_tdnn_c1024.yaml", {"channels": 512, "mfa_channels": 1536}),
    "voxceleb:resnet34": ("voxceleb/v2/conf/resnet34.yaml", {}),
    "voxceleb:rescnn": ("voxceleb/v2/conf/rescnn.yaml", {}),
    "demo:tdnn": ("demo/v2/conf/tdnn.yaml", {}),
    "demo:tdnn_fbank": ("demo/v2/conf/tdnn_fbank.yaml", {}),
    "demo:ecapa_tdnn": ("demo/v2/conf/ecapa_tdnn.yaml", {}),
    "demo:resnet34": ("demo/v2/conf/resnet34.yaml", {}),
}
FEATURE_CONFS = {"mfcc": "mfcc.conf", "fbank": "fbank.conf", "spectrogram": "spectrogram.conf"}


def kaldi_options(path: Path) -> dict:
    """``--name=value`` lines of a Kaldi feature config (comments and blank lines skipped)."""
    options = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("--") and "=" in line:
            name, value = line[2:].split("=", 1)
            options[name] = value
    return options


def feature_dim(feat_type: str, conf: Path) -> int:
    """Feature dimension that Kaldi's compute-{mfcc,fbank,spectrogram}-feats give with ``conf``.

    MFCC: --num-ceps (default 13); fbank: --num-mel-bins (default 23); spectrogram: N / 2 + 1 bins with
    N = window length in samples, rounded up to a power of two unless --round-to-power-of-two=false.
    """
    options = kaldi_options(conf)
    if feat_type == "mfcc":
        return int(options.get("num-ceps", 13))
    if feat_type == "fbank":
        return int(options.get("num-mel-bins", 23))
    window = int(round(float(options.get("sample-frequency", 16000)) * float(options.get("frame-length", 25)) / 1000))
    if options.get("round-to-power-of-two", "true") != "false":
        window = 1 << (window - 1).bit_length()
    return window // 2 + 1


def system_spec(name: str):
    """(nnet section, feature type, feature dimension) of benchmark system ``name``."""
    path, overrides = SYSTEMS[name]
    config = yaml.safe_load((EGS / path).read_text())
    nnet = dict(config["nnet"])
    if overrides:
        nnet["params"] = dict(nnet.get("params") or {}, **overrides)
    feat_type = (config.get("features") or {}).get("type", "mfcc")
    conf = (EGS / path).parent / FEATURE_CONFS[feat_type]
    return nnet, feat_type, feature_dim(feat_type, conf)


def _median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _measure(args):
    """Child process: time the systems with ``args.threads`` intra-op threads; print one JSON line."""
    import numpy as np
    import tensorflow as tf
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    from tfspk.losses import build_loss
    from tfspk.nnet.ecapa_tdnn import count_parameters
    from tfspk.nnet.registry import network_from_config
    results = {}
    for name in args.systems.split(","):
        nnet, feat_type, feat_dim = system_spec(name)
        network = network_from_config(nnet)
        model, dim = network.build(feat_dim), network.embedding_dim()
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

        train_step(x, labels).numpy()  # trace
        step = _median_seconds(lambda: train_step(x, labels).numpy(), args.repeats)
        utt = tf.constant(rng.normal(size=(1, int(args.extract_seconds * 100), feat_dim)), tf.float32)
        extract(utt).numpy()
        seconds = _median_seconds(lambda: extract(utt).numpy(), args.repeats)
        results[name] = {"network": network.network_name, "features": f"{feat_type} {feat_dim}",
                         "params": count_parameters(model), "train_fps": args.batch * args.frames / step,
                         "rtf": seconds / args.extract_seconds}
        print(f"  {name}: {results[name]}", file=sys.stderr, flush=True)
    print("RESULT " + json.dumps(results))


def _run_child(cmd, env):
    """The RESULT dict of a measuring process, or None when it failed."""
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(f"{' '.join(cmd[1:3])}: exit status {proc.returncode}", file=sys.stderr)
        return None
    return json.loads(lines[0][7:])


def ratio_base(name: str, names) -> str | None:
    """The TDNN of ``name``'s recipe (``<recipe>:tdnn``) if it was measured."""
    base = name.split(":")[0] + ":tdnn"
    return base if base in names else None


def format_table(results: dict) -> list[str]:
    """Markdown rows: system, network, features, parameters, frames/s, ratio, RTF, ratio."""
    lines = ["| system | network | features | parameters | train frames/s | x TDNN | extract RTF | x TDNN |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        base = results.get(ratio_base(name, results))
        fps_ratio = f"{r['train_fps'] / base['train_fps']:.2f}" if base else "-"
        rtf_ratio = f"{r['rtf'] / base['rtf']:.2f}" if base else "-"
        lines.append(f"| {name} | {r['network']} | {r['features']} | {r['params']:,} | {r['train_fps']:,.0f} | "
                     f"{fps_ratio} | {r['rtf']:.4f} | {rtf_ratio} |")
    return lines


def load_average() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--extract-seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    print(" ".join(sys.argv), file=sys.stderr)
    if args.systems == "list":
        print("\n".join(SYSTEMS))
        return
    unknown = [name for name in args.systems.split(",") if name not in SYSTEMS]
    if unknown:
        sys.exit(f"{sys.argv[0]}: unknown system(s) {', '.join(unknown)}; valid: {', '.join(SYSTEMS)}")
    if args.threads is not None:
        _measure(args)
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    cores = os.cpu_count()
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + f", {cores} cores; {load_average()}")
    print(f"training: batch {args.batch} x {args.frames} frames, softmax head of 1000 classes, SGD; "
          f"extraction: one {args.extract_seconds:g} s utterance; median of {args.repeats} runs")
    for threads, label in ((1, "1 thread"), (0, f"all cores ({cores})")):
        before, results = load_average(), {}
        for name in args.systems.split(","):
            # One process per system: a fresh TensorFlow each time (no state or memory carried over
            # between networks; building many large graphs in one process crashed TensorFlow here).
            cmd = [sys.executable, __file__, f"--threads={threads}", f"--systems={name}", f"--batch={args.batch}",
                   f"--frames={args.frames}", f"--extract-seconds={args.extract_seconds}", f"--repeats={args.repeats}"]
            result = _run_child(cmd, env)
            if result is None:
                # TensorFlow 2.21's oneDNN kernels corrupted the heap for some small ResNet shapes here
                # (SIGSEGV / SIGABRT); measure those once more with the plain Eigen kernels, marked in the table.
                result = _run_child(cmd, dict(env, TF_ENABLE_ONEDNN_OPTS="0"))
                for values in (result or {}).values():
                    values["network"] += " (oneDNN off)"
            if result is None:
                print(f"{name}: the measuring process failed twice; left out", file=sys.stderr)
                continue
            results.update(result)
        print(f"\n== {label} ({before} before, {load_average()} after)")
        print("\n".join(format_table(results)), flush=True)

if __name__ == "__main__":
    main()
