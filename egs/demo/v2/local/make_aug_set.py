#!/usr/bin/env python3
"""Build the demo's augmentation set: noise and music recordings from unpacked Debian packages and
simulated room impulse responses, as Kaldi data dirs (see local/make_aug_set.sh for the packages
and their licences, docs/augmentation.md for how they are used).

  make_aug_set.py [options] <package-dir> <wav-dir> <data-dir>

writes <wav-dir>/{noise,music,rirs}/*.wav (16-bit PCM noise/music, float RIRs, all at --rate) and
<data-dir>/aug_noise, aug_music, aug_rirs with wav.scp, utt2spk, spk2utt, utt2dur.

Recordings are mixed to mono and resampled with a polyphase filter (scipy.signal.resample_poly);
music tracks are cut into --music-piece seconds pieces (more, shorter recordings to draw from).
RIRs: pyroomacoustics' image-source method in shoebox rooms drawn like RIRS_NOISES' simulated
rooms [Ko2017]: "small" rooms 1-10 m wide/long and "medium" rooms 10-30 m, height 2-5 m, RT60
uniform in [0.2, 0.8] s (wall absorption by Sabine's formula), source and microphone at random
positions at least 0.5 m from the walls and from each other. Everything is seeded (--seed).
"""
import argparse
import fnmatch
import math
import os
import sys
from fractions import Fraction

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

# (package, subset, glob of the recordings inside the package, globs to leave out)
SOURCES = [
    ("bucklespring-data", "noise", "usr/share/buckle/wav/*.wav", []),
    ("oxygen-sounds", "noise", "usr/share/sounds/*.ogg", []),
    # the audio-channel-* files of the freedesktop theme are spoken words: not noise
    ("sound-theme-freedesktop", "noise", "usr/share/sounds/freedesktop/stereo/*.oga",
     ["audio-channel-*"]),
    ("asc-music", "music", "usr/share/games/asc/music/*.mp3", []),
]
PACKAGES = sorted({package for package, _, _, _ in SOURCES})


def fail(message):
    sys.stderr.write(f"{os.path.basename(sys.argv[0])}: {message}\n")
    sys.exit(1)


def to_rate(path, rate):
    """Mono float64 samples of ``path`` in [-1, 1] at ``rate``."""
    try:
        samples, source_rate = sf.read(path, dtype="float64", always_2d=True)
    except Exception as err:  # soundfile raises several types
        fail(f"cannot read {path}: {err}")
    mono = samples.mean(axis=1)
    ratio = Fraction(rate, source_rate)
    if ratio != 1:
        mono = resample_poly(mono, ratio.numerator, ratio.denominator)
    return mono


def write_pcm(path, samples, rate):
    sf.write(path, np.clip(samples, -1.0, 32767 / 32768), rate, subtype="PCM_16")


def write_data_dir(data_dir, entries):
    """``entries``: sorted list of (key, wav path, seconds)."""
    os.makedirs(data_dir, exist_ok=True)
    tables = {"wav.scp": [f"{k} {p}" for k, p, _ in entries], "utt2spk": [f"{k} {k}" for k, _, _ in entries],
              "spk2utt": [f"{k} {k}" for k, _, _ in entries], "utt2dur": [f"{k} {d:.3f}" for k, _, d in entries]}
    for name, lines in tables.items():
        with open(os.path.join(data_dir, name), "w", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))


def recordings(package_dir, rate, wav_dir, music_piece):
    subsets = {"noise": [], "music": []}
    for package, subset, pattern, excluded in SOURCES:
        root = os.path.join(package_dir, package)
        if not os.path.isdir(root):
            fail(f"package {package} is not unpacked in {package_dir} (expected {root})")
        folder, glob = os.path.split(pattern)
        found = sorted(name for name in os.listdir(os.path.join(root, folder)) if fnmatch.fnmatch(name, glob)
                       and not any(fnmatch.fnmatch(name, x) for x in excluded)) \
            if os.path.isdir(os.path.join(root, folder)) else []
        if not found:
            fail(f"no {pattern} in {root}: has the package changed?")
        os.makedirs(os.path.join(wav_dir, subset), exist_ok=True)
        for name in found:
            samples = to_rate(os.path.join(root, folder, name), rate)
            if samples.size < rate // 10 or not np.any(samples):
                continue  # shorter than 0.1 s or silent: nothing to mix
            stem = f"{package}-{os.path.splitext(name)[0]}".replace(" ", "_")
            pieces = [samples]
            if subset == "music":
                step = int(music_piece * rate)
                pieces = [samples[i:i + step] for i in range(0, samples.size, step) if samples.size - i >= step // 2]
            for number, piece in enumerate(pieces):
                key = stem if len(pieces) == 1 else f"{stem}-{number:03d}"
                path = os.path.abspath(os.path.join(wav_dir, subset, key + ".wav"))
                write_pcm(path, piece, rate)
                subsets[subset].append((key, path, piece.size / rate))
    return subsets


def simulate_rirs(rate, wav_dir, num_per_kind, seed):
    import pyroomacoustics as pra
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(wav_dir, "rirs"), exist_ok=True)
    entries = []
    for kind, (low, high) in (("small", (1.0, 10.0)), ("medium", (10.0, 30.0))):
        for number in range(num_per_kind):
            dims = np.array([rng.uniform(max(low, 2.0), high), rng.uniform(max(low, 2.0), high), rng.uniform(2.0, 5.0)])
            rt60 = rng.uniform(0.2, 0.8)
            try:
                absorption, max_order = pra.inverse_sabine(rt60, dims)
            except ValueError:          # RT60 impossible for this room: take the closest possible
                absorption, max_order = 0.99, 2
            # the image-source order bounds the cost; beyond ~17 reflections the tail is diffuse
            room = pra.ShoeBox(dims, fs=rate, materials=pra.Material(absorption), max_order=min(max_order, 17))
            inside = lambda: np.array([rng.uniform(0.5, d - 0.5) for d in dims])  # noqa: E731
            source, mic = inside(), inside()
            while np.linalg.norm(source - mic) < 0.5:
                mic = inside()
            room.add_source(source)
            room.add_microphone(mic)
            room.compute_rir()
            rir = np.asarray(room.rir[0][0], dtype=np.float64)[: int(1.5 * rate)]
            rir /= np.sqrt(np.sum(rir ** 2))
            key = f"{kind}room-{number:03d}"
            path = os.path.abspath(os.path.join(wav_dir, "rirs", key + ".wav"))
            sf.write(path, (rir / np.max(np.abs(rir)) * 0.9).astype(np.float32), rate, subtype="FLOAT")
            entries.append((key, path, rir.size / rate))
    return entries


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=8000)
    parser.add_argument("--num-rirs", type=int, default=20, help="simulated RIRs per room kind (small, medium)")
    parser.add_argument("--music-piece", type=float, default=30.0, help="seconds per music piece")
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("package_dir")
    parser.add_argument("wav_dir")
    parser.add_argument("data_dir")
    args = parser.parse_args()
    subsets = recordings(args.package_dir, args.rate, args.wav_dir, args.music_piece)
    subsets["rirs"] = simulate_rirs(args.rate, args.wav_dir, args.num_rirs, args.seed)
    for subset, entries in subsets.items():
        entries.sort()
        write_data_dir(os.path.join(args.data_dir, f"aug_{subset}"), entries)
        print(f"{os.path.basename(sys.argv[0])}: {args.data_dir}/aug_{subset}: {len(entries)} recordings, "
              f"{sum(d for _, _, d in entries):.1f} s")


if __name__ == "__main__":
    main()
