#!/usr/bin/env python3
"""Training throughput: tfspk-train's real input pipeline vs in-memory tensors, and every loss vs softmax.

1. frames/s of the trainer's step fed by the real pipeline (speaker-balanced sampler reading
   compressed Kaldi archives through scp offsets, reader threads, tf.data) versus a bare
   tf.function step (same network, a plain softmax layer, SGD) on one in-memory tensor.
   Target: ratio >= 0.9 (the pipeline hides behind the network).
2. The trainer's full step (network + head + L2 + SGD) with every registered loss, relative to
   softmax, and the head-only step (timed by benchmarks/bench_losses.py's functions). Target: <= 1.3x.

Timings are the best of several interleaved blocks (the machine is shared).

    .venv/bin/python benchmarks/bench_train.py                 # [Liu2019] widths (512/1500/512)
    .venv/bin/python benchmarks/bench_train.py --frame-dim 128 --pooling-dim 384 --embedding-dim 128
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfspk import losses as tfloss  # noqa: E402
from tfspk import nnet  # noqa: E402
from tfspk.io.ark import ArchiveWriter  # noqa: E402
from tfspk.io.table import write_table  # noqa: E402
from tfspk.train import config as config_mod  # noqa: E402
from tfspk.train import inputs  # noqa: E402
from tfspk.train.trainer import Trainer  # noqa: E402


def make_corpus(directory, speakers, utts_per_speaker, frames, dim, seed=0):
    """Compressed 30-dim 'MFCC' archives (as steps/prepare_feats_for_egs.sh writes them)."""
    rng = np.random.default_rng(seed)
    utt2spk, utt2num_frames = [], []
    with ArchiveWriter(f"ark,scp:{directory}/feats.ark,{directory}/feats.scp", compress=True) as writer:
        for s in range(speakers):
            centre = rng.normal(0, 2, dim)
            for u in range(utts_per_speaker):
                length = int(rng.integers(frames, 2 * frames))
                key = f"spk{s:04d}-{u:03d}"
                writer.write(key, (centre + rng.normal(0, 1, (length, dim))).astype(np.float32))
                utt2spk.append((key, f"spk{s:04d}"))
                utt2num_frames.append((key, str(length)))
    write_table(f"{directory}/utt2spk", utt2spk)
    write_table(f"{directory}/utt2num_frames", utt2num_frames)


def base_overrides(args, loss="softmax"):
    return [f"nnet.params.frame_dim={args.frame_dim}", f"nnet.params.pooling_dim={args.pooling_dim}",
            f"nnet.params.embedding_dim={args.embedding_dim}", f"data.speakers_per_batch={args.speakers}",
            f"data.min_frames={args.min_frames}", f"data.max_frames={args.max_frames}", "valid.num_utts=0",
            f"loss.name={loss}", "strategy=one", f"data.num_threads={args.threads}"]


def resolved_config(args, loss):
    from tfspk.train import components
    return components.resolve(config_mod.build_config(None, base_overrides(args, loss)))


def best_block(step, blocks, steps):
    """Best seconds per step and frames per step over ``blocks`` blocks of ``steps`` steps."""
    best = float("inf")
    frames = 0.0
    for _ in range(blocks):
        start = time.perf_counter()
        total = 0.0
        for _ in range(steps):
            total += step()
        best = min(best, (time.perf_counter() - start) / steps)
        frames = total / steps
    return best, frames


def pipeline_vs_memory(args, data_dir):
    config = resolved_config(args, "softmax")
    sampler = inputs.make_sampler(data_dir, config)
    trainer = Trainer(config, sampler.feat_dim, sampler.num_classes)
    batches = trainer.batches(sampler, 0)
    for _ in range(args.warmup):
        trainer.train_step(next(batches))

    def pipeline_step():
        return trainer.train_step(next(batches))["frames"]

    # Bare step: same network, softmax dense layer, SGD, one fixed in-memory batch of the mean length.
    network = nnet.get_network(config.nnet.name, config.nnet.params)
    model = network.build(sampler.feat_dim)
    import keras
    dense = keras.layers.Dense(sampler.num_classes)
    length = (args.min_frames + args.max_frames) // 2
    feats = tf.constant(np.random.default_rng(1).normal(size=(args.speakers, length, sampler.feat_dim)),
                        tf.float32)
    labels = tf.constant(np.arange(args.speakers) % sampler.num_classes, tf.int32)
    dense.build((None, network.embedding_dim()))
    variables = model.trainable_variables + dense.trainable_variables
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    optimizer.build(variables)

    @tf.function
    def bare(x, y):
        with tf.GradientTape() as tape:
            logits = dense(model(x, training=True)["embedding_b"])
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    for _ in range(args.warmup):
        bare(feats, labels).numpy()

    def memory_step():
        bare(feats, labels).numpy()
        return float(args.speakers * length)

    def trainer_memory_step():
        return trainer.train_step((feats, labels))["frames"]

    for _ in range(args.warmup):
        trainer_memory_step()
    rates = {"pipeline": 0.0, "memory": 0.0, "trainer_memory": 0.0}
    for _ in range(args.blocks):  # interleaved, so load changes hit all alike
        for name, fn in (("pipeline", pipeline_step), ("memory", memory_step),
                         ("trainer_memory", trainer_memory_step)):
            seconds, frames = best_block(fn, 1, args.steps)
            rates[name] = max(rates[name], frames / seconds)
    return rates


def loss_step_times(args, names):
    rng = np.random.default_rng(2)
    length = (args.min_frames + args.max_frames) // 2
    feats = tf.constant(rng.normal(size=(args.speakers, length, 30)), tf.float32)
    labels = tf.constant(rng.integers(0, args.classes, args.speakers), tf.int32)
    steps = {}
    for name in names:
        trainer = Trainer(resolved_config(args, name), 30, args.classes)
        for _ in range(args.warmup):
            trainer.train_step((feats, labels))
        steps[name] = lambda t=trainer: t.train_step((feats, labels))["frames"]
    best = {name: float("inf") for name in names}
    for _ in range(args.blocks):
        for name, fn in steps.items():
            seconds, _ = best_block(fn, 1, args.steps)
            best[name] = min(best[name], seconds)
    return best


def head_step_times(args, names):
    """Head-only step (loss forward/backward + update, no network) with the losses engineer's
    interleaved timing from benchmarks/bench_losses.py: the loss's own cost, free of the network's
    much larger and load-dependent time."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_losses.py")
    spec = importlib.util.spec_from_file_location("bench_losses", path)
    bench_losses = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_losses)
    rng = np.random.default_rng(3)
    inputs_ = tf.constant(rng.standard_normal((args.speakers, args.embedding_dim)).astype(np.float32))
    labels = tf.constant(rng.integers(0, args.classes, args.speakers).astype(np.int32))
    step_fns = {name: bench_losses.make_step(tfloss.build_loss(name, args.classes, args.embedding_dim, {}), None, [])
                for name in names}
    times = bench_losses.time_steps(step_fns, inputs_, labels, rounds=60)  # name -> sorted step times
    return {name: float(np.median(values)) for name, values in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame-dim", type=int, default=512)
    parser.add_argument("--pooling-dim", type=int, default=1500)
    parser.add_argument("--embedding-dim", type=int, default=512)
    parser.add_argument("--speakers", type=int, default=64, help="speakers (segments) per batch")
    parser.add_argument("--min-frames", type=int, default=200)
    parser.add_argument("--max-frames", type=int, default=400)
    parser.add_argument("--classes", type=int, default=1000, help="classes for the loss table")
    parser.add_argument("--losses", default=",".join(sorted(tfloss.LOSSES)))
    parser.add_argument("--steps", type=int, default=4, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks (the best one counts)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="feature reader threads")
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")

    with tempfile.TemporaryDirectory(prefix="bench_train.") as data_dir:
        make_corpus(data_dir, speakers=max(args.speakers + 16, 80), utts_per_speaker=4,
                    frames=args.max_frames + 10, dim=30)
        rates = pipeline_vs_memory(args, data_dir)
    print(f"x-vector widths {args.frame_dim}/{args.pooling_dim}/{args.embedding_dim}, batch {args.speakers} "
          f"segments of {args.min_frames}-{args.max_frames} frames, 30-dim features, "
          f"{os.cpu_count()} CPU core(s)")
    print(f"{'input':<34}{'frames/s':>12}")
    print("-" * 46)
    print(f"{'real pipeline (compressed arks)':<34}{rates['pipeline']:>12.0f}")
    print(f"{'in-memory tensor, bare step':<34}{rates['memory']:>12.0f}")
    print(f"{'in-memory tensor, trainer step':<34}{rates['trainer_memory']:>12.0f}  (for diagnosis)")
    ratio = rates["pipeline"] / rates["memory"]
    print(f"{'ratio (target >= 0.9)':<34}{ratio:>12.2f}  {'OK' if ratio >= 0.9 else 'BELOW TARGET'}")
    print()

    names = [n for n in args.losses.split(",") if n]
    names = ["softmax"] + [n for n in names if n != "softmax"]
    times = loss_step_times(args, names)
    print(f"trainer step per loss (network + head + L2 + SGD), C={args.classes}")
    print(f"{'loss':<22}{'ms/step':>10}{'x softmax':>11}")
    print("-" * 43)
    for name in names:
        relative = times[name] / times["softmax"]
        print(f"{name:<22}{times[name] * 1e3:>10.1f}{relative:>11.2f}  {'OK' if relative <= 1.3 else 'ABOVE 1.3x'}")
    print("(the head is a tiny part of this step: differences are mostly machine-load noise; see below)")
    print()
    heads = head_step_times(args, names)
    print(f"head-only step per loss (benchmarks/bench_losses.py timing, median), N={args.speakers}, "
          f"D={args.embedding_dim}, C={args.classes}")
    print(f"{'loss':<22}{'ms/step':>10}{'x softmax':>11}")
    print("-" * 43)
    for name in names:
        relative = heads[name] / heads["softmax"]
        print(f"{name:<22}{heads[name] * 1e3:>10.3f}{relative:>11.2f}  {'OK' if relative <= 1.3 else 'ABOVE 1.3x'}")


if __name__ == "__main__":
    main()
