#!/usr/bin/env python3
"""Input pipeline alone (no model): frames/s delivered in batches, with 1 and 2 workers.

(a) compressed 30-dim MFCC arks read through scp byte offsets (SpeakerBalancedSampler +
    iterate_batches: a batch's segments decoded together; reader threads, or forked reader
    processes as tfspk-train's data.readers=processes);
(b) the same features packed into TFRecord shards (tfspk.data.shards.shard_dataset, tf.data
    parallel map; float32 and float16 storage);
(c) 8 kHz audio -> random crop -> on-the-fly augmentation (speed 0.9/1.0/1.1, reverberation,
    noise / music / babble) -> 40-dim fbank -> SpecAugment, in worker processes
    (tfspk.data.augment; every crop a function of (seed, step, position)).
Targets: (a), (b) >= 1.5M frames/s on 2 cores; (c) 2 workers >= 1.7x 1 worker.

The corpus is synthetic and made in a temporary directory; noise/music/RIR dirs are synthetic
too unless --aug-data points at a directory holding aug_noise, aug_music, aug_rirs (the demo's
local/make_aug_set.sh output). Each figure is the best of --repeat runs (the machine is shared),
printed with the 1-minute load average at the end of its best run.

    .venv/bin/python benchmarks/bench_input.py
    .venv/bin/python benchmarks/bench_input.py --only c --aug-data egs/demo/v2/data
"""
import argparse
import functools
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from tfspk.io.ark import ArchiveWriter  # noqa: E402
from tfspk.io.table import write_table  # noqa: E402

RATE = 8000


def make_feature_corpus(directory, speakers, utts_per_speaker, frames, dim=30, seed=0):
    """Compressed 'MFCC' archives as steps/prepare_feats_for_egs.sh writes them."""
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


def write_wav_dir(directory, recordings, subtype="PCM_16"):
    os.makedirs(f"{directory}/wav", exist_ok=True)
    scp = []
    for key, samples in recordings.items():
        path = f"{directory}/wav/{key}.wav"
        sf.write(path, samples, RATE, subtype=subtype)
        scp.append((key, path))
    write_table(f"{directory}/wav.scp", scp)
    write_table(f"{directory}/utt2spk", [(k, k.split("-")[0]) for k, _ in scp])


def make_audio_corpus(directory, num_utts, seconds, seed=0, num_speakers=10):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    recordings = {f"spk{i % num_speakers:03d}-utt{i:04d}": (0.3 * np.sin(2 * np.pi * (100 + 5 * i) * t) * (1 + np.sin(3 * t))
                                  + rng.normal(0, 0.01, t.size)) / 2 for i in range(num_utts)}
    write_wav_dir(directory, recordings)


def make_aug_dirs(directory, seed=0):
    rng = np.random.default_rng(seed)
    write_wav_dir(f"{directory}/aug_noise", {f"n{i}": rng.normal(0, 0.1, int(rng.uniform(0.3, 3) * RATE))
                                             for i in range(30)})
    write_wav_dir(f"{directory}/aug_music", {f"m{i}": np.sin(np.arange(30 * RATE) * (0.05 + 0.01 * i)) * 0.2
                                             for i in range(5)})
    rirs = {}
    for i in range(20):
        h = rng.normal(0, 1, int(0.5 * RATE)) * np.exp(-np.arange(int(0.5 * RATE)) / (0.05 * RATE))
        h[:40] = 0
        h[40] = 3.0
        rirs[f"r{i}"] = (h / np.max(np.abs(h)) * 0.9).astype(np.float32)
    write_wav_dir(f"{directory}/aug_rirs", rirs, subtype="FLOAT")


def measure(batches, count):
    """(frames/s, frames per CPU-second of this process, load average after) over ``count`` batches of
    an iterator of (feats, labels); the first batch is not timed. The CPU figure counts the threads of
    this process (reader threads, tf.data), not worker processes: on a loaded machine it says what
    the code costs when the wall-clock figure only says what share of the cores it got."""
    first = next(batches)
    start, cpu = time.perf_counter(), time.process_time()
    frames = 0
    for _ in range(count):
        feats, _ = next(batches)
        frames += int(np.prod(feats.shape[:2]))
    del first
    return (frames / (time.perf_counter() - start), frames / max(time.process_time() - cpu, 1e-9),
            os.getloadavg()[0])


def bench_scp(data_dir, workers, args, processes=False):
    from tfspk.data import SpeakerBalancedSampler, iterate_batches
    sampler = SpeakerBalancedSampler(data_dir, num_speakers=args.batch, min_frames=200, max_frames=400,
                                     seed=1, num_valid_utts=0)
    with iterate_batches(sampler, num_threads=workers, prefetch=4 * workers, processes=processes) as batches:
        return measure(iter(batches), args.batches)


def bench_shards(shard_dir, workers, args):
    from tfspk.data.shards import shard_dataset
    dataset = shard_dataset(shard_dir, batch_size=args.batch, min_frames=200, max_frames=400, seed=1,
                            num_parallel_calls=workers, cycle_length=workers, shuffle_buffer=4 * args.batch)
    return measure(iter(dataset.as_numpy_iterator()), args.batches)


def audio_batches(audio_dir, aug_dir, batch_size):
    """tfspk.data.audio_sampler.AudioCropBatches with every augmentation on, 40-dim fbank at 8 kHz."""
    from tfspk.data.audio_sampler import AudioCropBatches
    from tfspk.data.augment import Augmenter
    from tfspk.features import FbankOptions, FeatureExtractor
    opts = FbankOptions()
    opts.frame.sample_frequency = RATE
    opts.frame.dither = 0.0
    opts.mel.num_mel_bins = 40
    opts.mel.high_freq = 3700
    params = dict(noise_dir=f"{aug_dir}/aug_noise", music_dir=f"{aug_dir}/aug_music",
                  babble_dir=f"{aug_dir}/aug_noise", rir_dir=f"{aug_dir}/aug_rirs", reverb_prob=0.5,
                  noise_prob=0.25, music_prob=0.25, babble_prob=0.25, speed_factors="1.0,0.9,1.1",
                  spec_augment=True)
    return AudioCropBatches(audio_dir, Augmenter(params, RATE, seed=1), FeatureExtractor(opts),
                            batch_size=batch_size, min_frames=200, max_frames=400)


def bench_audio(batches, workers, args):
    iterator = batches.iterate(num_workers=workers)
    try:
        return measure(iterator, args.audio_batches)
    finally:
        iterator.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="abc", help="which benchmarks: any of a, b, c (default: abc)")
    parser.add_argument("--speakers", type=int, default=200)
    parser.add_argument("--utts-per-speaker", type=int, default=8)
    parser.add_argument("--frames", type=int, default=500, help="utterance length from N to 2N frames")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=100, help="timed batches for (a), (b)")
    parser.add_argument("--audio-batch", type=int, default=16)
    parser.add_argument("--audio-batches", type=int, default=60, help="timed batches for (c)")
    parser.add_argument("--aug-data", default="", help="dir with aug_noise, aug_music, aug_rirs (default: synthetic)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}   # name -> measuring function; rounds interleave them so load changes hit all alike
        if "a" in args.only or "b" in args.only:
            make_feature_corpus(tmp, args.speakers, args.utts_per_speaker, args.frames)
        if "a" in args.only:
            for processes in (False, True):
                for workers in (1, 2):
                    kind = "process(es)" if processes else "thread(s)"
                    runs[f"(a) scp+ark, {workers} {kind}"] = functools.partial(bench_scp, tmp, workers, args, processes)
        if "b" in args.only:
            from tfspk.data.shards import make_shards
            for dtype in ("float32", "float16"):
                make_shards(tmp, f"{tmp}/shards_{dtype}", utts_per_shard=200, dtype=dtype)
                for workers in (1, 2):
                    runs[f"(b) shards {dtype}, {workers} worker(s)"] = functools.partial(
                        bench_shards, f"{tmp}/shards_{dtype}", workers, args)
        if "c" in args.only:
            make_audio_corpus(f"{tmp}/audio", 40, 8.0)
            aug_dir = args.aug_data
            if not aug_dir:
                make_aug_dirs(f"{tmp}/aug")
                aug_dir = f"{tmp}/aug"
            batches = audio_batches(f"{tmp}/audio", aug_dir, args.audio_batch)
            for workers in (1, 2):
                runs[f"(c) audio+aug+fbank, {workers} worker(s)"] = functools.partial(bench_audio, batches, workers, args)
        results = {}
        for _ in range(args.repeat):
            for name, run in runs.items():
                results[name] = max(results.get(name, (0.0, 0.0, 0.0)), run())
        print(f"{'input pipeline alone':40s} {'M frames/s':>10s} {'M fr/CPU-s':>10s}  load   "
              "(targets: (a), (b) >= 1.5M frames/s; (c) 2 workers >= 1.7x 1 worker)")
        for name, (value, per_cpu, load) in results.items():
            in_workers = "process" in name or name.startswith("(c)") and "1 worker" not in name
            cpu = "-" if in_workers else f"{per_cpu / 1e6:.3f}"
            print(f"{name:40s} {value / 1e6:10.3f} {cpu:>10s}  {load:.1f}")
        one, two = (results.get(f"(c) audio+aug+fbank, {w} worker(s)") for w in (1, 2))
        if one and two:
            print(f"(c) scaling 1 -> 2 workers: {two[0] / one[0]:.2f}x (target >= 1.7x)")
        print("(M fr/CPU-s: frames per CPU-second of the benchmark's own process, its threads included; "
              "'-' where worker processes do the work)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
