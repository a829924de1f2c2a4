#!/usr/bin/env python3
"""Training throughput: the trainer's step fed by each input source vs in-memory tensors, and every loss vs softmax.

1. frames/s of tfspk-train's full step (network + head + L2 + optimizer, one Trainer) fed by the real
   input of each ``data.source``: ``feats`` (speaker-balanced sampler reading compressed 30-dim Kaldi
   archives through scp offsets, reader threads, tf.data), ``shards`` (float16 TFRecord shards, tf.data
   parallel map) and ``audio`` (8 kHz audio, augmentation with speed 0.9/1.0/1.1, reverberation,
   noise/music/babble, 40-dim fbank, SpecAugment, in worker processes), versus the same step on one
   in-memory batch of the mean crop length. Target: ratio >= 0.9 (the input hides behind
   the network). On a CPU-only machine the input competes with the step for the same cores.
2. The trainer's full step with every registered loss, relative to softmax, and the head-only step
   (timed by benchmarks/bench_losses.py's functions). Target: <= 1.3x.

Timings are the best of several interleaved blocks (the machine is shared); the load average is
printed with each figure.

    .venv/bin/python benchmarks/bench_train.py                 # [Liu2019] widths (512/1500/512)
    .venv/bin/python benchmarks/bench_train.py --only inputs --frame-dim 128 --pooling-dim 384 --embedding-dim 128
    .venv/bin/python benchmarks/bench_train.py --only inputs --net ecapa_tdnn --embedding-dim 128   # the demo's
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfspk import losses as tfloss  # noqa: E402
from tfspk.io.ark import ArchiveWriter  # noqa: E402
from tfspk.io.table import write_table  # noqa: E402
from tfspk.train import config as config_mod  # noqa: E402
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
    if getattr(args, "net", "tdnn") == "ecapa_tdnn":  # the demo's ECAPA-TDNN (egs/demo/v2/conf/ecapa_tdnn.yaml)
        net = ["nnet.name=ecapa_tdnn", f"nnet.params.channels={args.channels}",
               f"nnet.params.embedding_dim={args.embedding_dim}", "nnet.params.se_channels=64",
               f"nnet.params.mfa_channels={3 * args.channels}", "nnet.params.attention_channels=64"]
    else:
        net = [f"nnet.params.frame_dim={args.frame_dim}", f"nnet.params.pooling_dim={args.pooling_dim}",
               f"nnet.params.embedding_dim={args.embedding_dim}"]
    return net + [f"data.speakers_per_batch={args.speakers}", f"data.min_frames={args.min_frames}",
                  f"data.max_frames={args.max_frames}", "valid.num_utts=0", f"loss.name={loss}", "strategy=one",
                  f"data.num_threads={args.threads}"]


def resolved_config(args, loss, extra=()):
    from tfspk.train import components
    return components.resolve(config_mod.build_config(None, base_overrides(args, loss) + list(extra)))


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


def timed_block(step, steps):
    """(frames/s, frames per CPU-second of this process) of ``steps`` steps."""
    start, cpu = time.perf_counter(), time.process_time()
    frames = sum(step() for _ in range(steps))
    return frames / (time.perf_counter() - start), frames / max(time.process_time() - cpu, 1e-9)


def source_overrides(args, source, work):
    """Config overrides of one input source (data.source feats / shards / audio) over ``work``'s corpora."""
    if source == "feats":
        return ["data.source=feats", f"data.readers={args.readers}"]
    if source == "shards":
        return ["data.source=shards", f"data.shards={work}/shards"]
    augment = (f"augment={{noise_dir: {work}/aug/aug_noise, music_dir: {work}/aug/aug_music, "
               f"babble_dir: {work}/aug/aug_noise, rir_dir: {work}/aug/aug_rirs, reverb_prob: 0.5, noise_prob: 0.25, "
               f"music_prob: 0.25, babble_prob: 0.25, speed_factors: '1.0,0.9,1.1', spec_augment: true}}")
    return ["data.source=audio", "data.feature_type=fbank", f"data.feature_config={work}/fbank.conf", augment]


def make_source_corpora(args, work, sources):
    """Compressed 30-dim arks (feats), their float16 shards (shards), 8 kHz audio + noise/music/RIR
    dirs and a 40-dim fbank config (audio), all synthetic (benchmarks/bench_input.py's makers)."""
    if "feats" in sources or "shards" in sources:
        make_corpus(f"{work}/feats", speakers=max(args.speakers + 16, 80), utts_per_speaker=4,
                    frames=args.max_frames + 10, dim=30)
    if "shards" in sources:
        from tfspk.data.shards import make_shards
        make_shards(f"{work}/feats", f"{work}/shards", utts_per_shard=40, dtype="float16")
    if "audio" in sources:
        bench_input = _bench_input()
        speakers = max(args.speakers, 10)
        seconds = (args.max_frames * 1.15 + 10) / 100 + 1
        bench_input.make_audio_corpus(f"{work}/audio", 2 * speakers, seconds, num_speakers=speakers)
        bench_input.make_aug_dirs(f"{work}/aug")
        with open(f"{work}/fbank.conf", "w") as handle:
            handle.write("--sample-frequency=8000\n--dither=0\n--num-mel-bins=40\n--high-freq=3700\n")


def _bench_input():
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_input.py")
    spec = importlib.util.spec_from_file_location("bench_input", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def inputs_vs_memory(args, work, sources, nices):
    """frames/s of the full trainer step (network + head + L2 + optimizer) fed by each source's real
    pipeline and by one fixed in-memory batch of the mean crop length, on the same Trainer; blocks
    interleaved (pipeline, memory, next source, ...) so load changes hit all alike; best block counts.
    Each source runs once per data.worker_nice value of ``nices``: keys (source, nice)."""
    from tfspk.train.inputs import make_input
    steps = {}
    for source, nice in ((s, n) for s in sources for n in nices):
        config = resolved_config(args, "softmax", source_overrides(args, source, work) + [f"data.worker_nice={nice}"])
        data_dir = f"{work}/audio" if source == "audio" else f"{work}/feats"
        source_input = make_input(data_dir, config)
        trainer = Trainer(config, source_input.feat_dim, source_input.num_classes)
        batches = trainer.batches(source_input, 0)
        length = (args.min_frames + args.max_frames) // 2
        rng = np.random.default_rng(1)
        feats = tf.constant(rng.normal(size=(args.speakers, length, source_input.feat_dim)), tf.float32)
        labels = tf.constant(np.arange(args.speakers) % source_input.num_classes, tf.int32)

        def pipeline_step(trainer=trainer, batches=batches):
            return trainer.train_step(next(batches))["frames"]

        def memory_step(trainer=trainer, feats=feats, labels=labels):
            return trainer.train_step((feats, labels))["frames"]
        for _ in range(args.warmup):
            pipeline_step()
            memory_step()
        steps[source, nice] = (pipeline_step, memory_step, source_input)
    rates = {key: {"pipeline": 0.0, "memory": 0.0, "pipeline_cpu": 0.0, "memory_cpu": 0.0, "load": []}
             for key in steps}
    for block in range(args.blocks):
        for key, (pipeline_step, memory_step, _) in steps.items():
            order = (("pipeline", pipeline_step), ("memory", memory_step))
            for name, fn in order if block % 2 == 0 else order[::-1]:   # alternate who goes first
                wall, cpu = timed_block(fn, args.steps)
                rates[key][name] = max(rates[key][name], wall)
                rates[key][name + "_cpu"] = max(rates[key][name + "_cpu"], cpu)
            rates[key]["load"].append(os.getloadavg()[0])
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
    parser.add_argument("--only", default="inputs,losses", help="parts: inputs (trainer step per input source "
                        "vs in-memory), losses (every loss vs softmax); default both")
    parser.add_argument("--sources", default="feats,shards,audio", help="input sources for the inputs part")
    parser.add_argument("--net", default="tdnn", choices=["tdnn", "ecapa_tdnn"])
    parser.add_argument("--frame-dim", type=int, default=512)
    parser.add_argument("--pooling-dim", type=int, default=1500)
    parser.add_argument("--embedding-dim", type=int, default=512)
    parser.add_argument("--channels", type=int, default=128, help="ecapa_tdnn: C")
    parser.add_argument("--speakers", type=int, default=64, help="speakers (segments) per batch")
    parser.add_argument("--min-frames", type=int, default=200)
    parser.add_argument("--max-frames", type=int, default=400)
    parser.add_argument("--classes", type=int, default=1000, help="classes for the loss table")
    parser.add_argument("--losses", default=",".join(sorted(tfloss.LOSSES)))
    parser.add_argument("--steps", type=int, default=4, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks (the best one counts)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--readers", default="threads", choices=["threads", "processes"],
                        help="data.readers of the feats source")
    parser.add_argument("--worker-nice", default="0,19", help="data.worker_nice values to compare, "
                        "comma-separated (default: 0,19: the trainer's default and CPU training's setting)")
    parser.add_argument("--threads", type=int, default=2, help="data.num_threads: feature reader threads (feats), "
                        "worker processes (audio)")
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")
    parts = set(args.only.split(","))
    if args.net == "ecapa_tdnn":
        net = f"ECAPA-TDNN C={args.channels}, embedding {args.embedding_dim}"
    else:
        net = f"x-vector TDNN widths {args.frame_dim}/{args.pooling_dim}/{args.embedding_dim}"
    print(f"{net}, batch {args.speakers} segments of {args.min_frames}-{args.max_frames} frames, "
          f"{os.cpu_count()} CPU core(s), load average {os.getloadavg()[0]:.1f}")

    if "inputs" in parts:
        sources = [s for s in args.sources.split(",") if s]
        nices = [int(n) for n in args.worker_nice.split(",") if n]
        with tempfile.TemporaryDirectory(prefix="bench_train.") as work:
            make_source_corpora(args, work, sources)
            rates = inputs_vs_memory(args, work, sources, nices)
        print("full trainer step (network + softmax head + L2 + optimizer) fed by each input source vs the same "
              "step on one in-memory batch, side by side")
        what = {"feats": f"feats: compressed 30-dim arks via scp, {args.readers}",
                "shards": "shards: TFRecord float16, tf.data",
                "audio": "audio: 8 kHz + augmentation + 40-dim fbank"}
        print(f"{'input':<46}{'nice':>5}{'frames/s':>10}{'in-memory':>11}{'ratio':>7}{'CPU ratio':>10}  load")
        print("-" * 101)
        for (source, nice), r in rates.items():
            ratio = r["pipeline"] / r["memory"]
            cpu_ratio = r["pipeline_cpu"] / r["memory_cpu"]
            loads = "-".join(f"{x:.1f}" for x in (min(r["load"]), max(r["load"])))
            cpu = "-" if source == "audio" and args.threads > 1 else f"{cpu_ratio:.2f}"
            print(f"{what[source]:<46}{nice:>5}{r['pipeline']:>10.0f}{r['memory']:>11.0f}{ratio:>7.2f}{cpu:>10}  "
                  f"{loads}  {'OK' if ratio >= 0.9 else 'BELOW TARGET 0.9'}")
        print("(ratio: wall-clock frames/s, best block of each, target >= 0.9; CPU ratio: frames per CPU-second of "
              "this process, input threads and tf.data included: what the input costs on top of the step when "
              "the wall clock only shows the share of a loaded machine; '-' for audio worker processes; nice: "
              "data.worker_nice, no effect on shards (tf.data's own threads))")
        print()
    if "losses" not in parts:
        return

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
