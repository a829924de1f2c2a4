#!/usr/bin/env python3
"""Input pipeline alone (no model): frames/s delivered in batches, with 1 and 2 workers.

(a) compressed 30-dim MFCC arks read through scp byte offsets (SpeakerBalancedSampler +
    iterate_batches, reader threads);
(b) the same features packed into TFRecord shards (tfspk.data.shards.shard_dataset, tf.data
    parallel map; float32 and float16 storage);
(c) 8 kHz audio -> random crop -> on-the-fly augmentation (speed 0.9/1.0/1.1, reverberation,
    noise / music / babble) -> 40-dim fbank -> SpecAugment, in worker processes
    (tfspk.data.augment; every crop a function of (seed, step, position)).
Targets (issue 10): (a), (b) >= 1.5M frames/s on 2 cores; (c) 2 workers >= 1.7x 1 worker.

The corpus is synthetic and made in a temporary directory; noise/music/RIR dirs are synthetic
too unless --aug-data points at a directory holding aug_noise, aug_music, aug_rirs (the demo's
local/make_aug_set.sh output). Each figure is the best of --repeat runs (the machine is shared).

    .venv/bin/python benchmarks/bench_input.py
    .venv/bin/python benchmarks/bench_input.py --only c --aug-data egs/demo/v2/data
"""
import argparse
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


def make_audio_corpus(directory, num_utts, seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    recordings = {f"spk{i % 10:02d}-utt{i:04d}": (0.3 * np.sin(2 * np.pi * (100 + 5 * i) * t) * (1 + np.sin(3 * t))
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
    """frames/s over ``count`` batches of an iterator of (feats, labels) (the first one not timed)."""
    first = next(batches)
    start = time.perf_counter()
    frames = 0
    for _ in range(count):
        feats, _ = next(batches)
        frames += int(np.prod(feats.shape[:2]))
    del first
    return frames / (time.perf_counter() - start)


def bench_scp(data_dir, workers, args):
    from tfspk.data import SpeakerBalancedSampler, iterate_batches
    sampler = SpeakerBalancedSampler(data_dir, num_speakers=args.batch, min_frames=200, max_frames=400,
                                     seed=1, num_valid_utts=0)
    with iterate_batches(sampler, num_threads=workers, prefetch=4 * workers) as batches:
        return measure(iter(batches), args.batches)


def bench_shards(shard_dir, workers, args):
    from tfspk.data.shards import shard_dataset
    dataset = shard_dataset(shard_dir, batch_size=args.batch, min_frames=200, max_frames=400, seed=1,
                            num_parallel_calls=workers, cycle_length=workers, shuffle_buffer=4 * args.batch)
    return measure(iter(dataset.as_numpy_iterator()), args.batches)


def audio_batches(audio_dir, aug_dir, batch_size):
    """tfspk.data.augment.AudioCropBatches with every augmentation on, 40-dim fbank at 8 kHz."""
    from tfspk.data.augment import AudioCropBatches, Augmenter
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
    parser.add_argument("--audio-batches", type=int, default=12, help="timed batches for (c)")
    parser.add_argument("--aug-data", default="", help="dir with aug_noise, aug_music, aug_rirs (default: synthetic)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        if "a" in args.only or "b" in args.only:
            make_feature_corpus(tmp, args.speakers, args.utts_per_speaker, args.frames)
        if "a" in args.only:
            for workers in (1, 2):
                results[f"(a) scp+ark, {workers} worker(s)"] = max(bench_scp(tmp, workers, args)
                                                                   for _ in range(args.repeat))
        if "b" in args.only:
            from tfspk.data.shards import make_shards
            for dtype in ("float32", "float16"):
                make_shards(tmp, f"{tmp}/shards_{dtype}", utts_per_shard=200, dtype=dtype)
                for workers in (1, 2):
                    results[f"(b) shards {dtype}, {workers} worker(s)"] = max(
                        bench_shards(f"{tmp}/shards_{dtype}", workers, args) for _ in range(args.repeat))
        if "c" in args.only:
            make_audio_corpus(f"{tmp}/audio", 40, 8.0)
            aug_dir = args.aug_data
            if not aug_dir:
                make_aug_dirs(f"{tmp}/aug")
                aug_dir = f"{tmp}/aug"
            batches = audio_batches(f"{tmp}/audio", aug_dir, args.audio_batch)
            for workers in (1, 2):
                results[f"(c) audio+aug+fbank, {workers} worker(s)"] = max(
                    bench_audio(batches, workers, args) for _ in range(args.repeat))
        for name, value in results.items():
            print(f"{name:40s} {value / 1e6:8.3f} M frames/s")
        one, two = (results.get(f"(c) audio+aug+fbank, {w} worker(s)") for w in (1, 2))
        if one and two:
            print(f"(c) scaling 1 -> 2 workers: {two / one:.2f}x (target >= 1.7x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
