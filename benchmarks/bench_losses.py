#!/usr/bin/env python3
"""Step time of every tfspk loss relative to plain softmax on this CPU.

One step = forward + backward + SGD update of the head (and, with --segment-layers, of the
x-vector segment-level layers 3000 -> 512 -> 512 in front of it), under tf.function.
N = 64 embeddings of 512 dims, C = 1000 and 5994 classes by default. Target: <= 1.3x softmax.

    .venv/bin/python benchmarks/bench_losses.py [--classes 1000,5994] [--segment-layers]
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfspk.losses import LOSSES, build_aux, build_loss  # noqa: E402

BATCH, DIM, POOLED = 64, 512, 3000


def make_step(head, segment_layers, auxes, lr=1e-3):
    variables = list(head.trainable_variables) + [v for a in auxes for v in a.trainable_variables]
    if segment_layers:
        variables += segment_layers

    @tf.function
    def step_fn(inputs, labels, step):
        with tf.GradientTape() as tape:
            emb = inputs
            if segment_layers:
                emb = tf.matmul(tf.nn.relu(tf.matmul(emb, segment_layers[0])), segment_layers[1])
            loss, _ = head(emb, labels, step)
            for aux in auxes:
                loss += aux(emb, labels, head)
        grads = tape.gradient(loss, variables)
        for var, grad in zip(variables, grads):
            var.assign_sub(lr * grad)
        return loss
    return step_fn


def time_steps(step_fns, inputs, labels, rounds, seed=0):
    """Per-step times of every step function: ``rounds`` rounds, each timing one step of every
    loss in a shuffled order, so load changes on a shared machine hit all losses alike.
    Returns name -> sorted array of step times (seconds)."""
    step = tf.constant(10**6, tf.int64)
    for step_fn in step_fns.values():
        for _ in range(3):
            step_fn(inputs, labels, step).numpy()
    rng = np.random.default_rng(seed)
    names = list(step_fns)
    times = {name: [] for name in names}
    for _ in range(rounds):
        for index in rng.permutation(len(names)):
            name = names[index]
            start = time.perf_counter()
            step_fns[name](inputs, labels, step).numpy()
            times[name].append(time.perf_counter() - start)
    return {name: np.sort(values) for name, values in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="1000,5994")
    parser.add_argument("--losses", default=",".join(sorted(LOSSES)))
    parser.add_argument("--aux", default="", help="comma list of auxiliary losses added to every head")
    parser.add_argument("--segment-layers", action="store_true", help="include the 3000->512->512 segment layers")
    parser.add_argument("--rounds", type=int, default=40, help="timed steps per loss (interleaved)")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads (default 1: stable ratios on a shared machine; 0: TensorFlow's default)")
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")  # one tf.function per loss: the retracing warning is expected
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    rng = np.random.default_rng(0)
    names = [n for n in args.losses.split(",") if n]
    if "softmax" in names:
        names.remove("softmax")
    names.insert(0, "softmax")
    classes_list = [int(c) for c in args.classes.split(",")]
    results = {}
    for classes in classes_list:
        in_dim = POOLED if args.segment_layers else DIM
        inputs = tf.constant(rng.standard_normal((BATCH, in_dim)).astype(np.float32))
        labels = tf.constant(rng.integers(0, classes, BATCH).astype(np.int32))
        step_fns = {}
        for name in names:
            segment = None
            if args.segment_layers:
                segment = [tf.Variable(rng.standard_normal((POOLED, DIM)).astype(np.float32) * 0.02),
                           tf.Variable(rng.standard_normal((DIM, DIM)).astype(np.float32) * 0.04)]
            head = build_loss(name, classes, DIM, {})
            auxes = [build_aux(a) for a in args.aux.split(",") if a]
            step_fns[name] = make_step(head, segment, auxes)
        for name, seconds in time_steps(step_fns, inputs, labels, args.rounds).items():
            results[name, classes] = seconds
    what = "head + segment layers 3000-512-512" if args.segment_layers else "head only"
    print(f"step time (fwd + bwd + SGD), N={BATCH}, D={DIM}, {what}{', aux ' + args.aux if args.aux else ''}, "
          f"intra-op threads={args.threads or 'default'}, {args.rounds} interleaved steps per loss")
    print("ms = fastest step (least disturbed by other load), x = ratio to softmax of the fastest and of the median")
    header = f"{'loss':<20}" + "".join(f"{'C=' + str(c) + ' ms':>13}{'x(min)':>8}{'x(med)':>8}" for c in classes_list)
    print(header)
    print("-" * len(header))
    for name in names:
        row = f"{name:<20}"
        for c in classes_list:
            times, base = results[name, c], results["softmax", c]
            row += f"{times[0] * 1e3:>13.2f}{times[0] / base[0]:>8.2f}{np.median(times) / np.median(base):>8.2f}"
        print(row)


if __name__ == "__main__":
    main()
