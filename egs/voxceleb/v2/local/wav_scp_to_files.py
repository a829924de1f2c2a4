#!/usr/bin/env python3
"""Copy a data dir, decoding its ``cmd |`` wav.scp entries (VoxCeleb2's ffmpeg pipes) into audio files.

On-the-fly training (``data.source: audio``, run.sh --aug online) reads random crops of files with
seeks; it cannot seek in a pipe. Every pipe entry ``<key> cmd |`` is run once (tfspk.io.audio.read_audio:
bash, a failing command is an error naming the key) and written as 16-bit ``<audio-dir>/<key>.<format>``
(FLAC by default: lossless, about half of WAV); file entries are kept as they are. The output dir gets
the new wav.scp and copies of utt2spk, spk2utt, vad.scp, segments, utt2dur and spk2gender (not
feats.scp: it is an audio dir). Files already converted (readable, non-empty) are not decoded again,
so an interrupted run continues; each file is written under a temporary name and renamed, and wav.scp
is written last (atomically).
"""
import os
import shutil
import sys

import numpy as np

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_open
from tfspk.io.table import read_table

USAGE = "wav_scp_to_files.py [--nj N] [--format flac|wav] <data-in> <audio-dir> <data-out>"
COPIED = ("utt2spk", "spk2utt", "vad.scp", "segments", "utt2dur", "spk2gender")


def _target(audio_dir, key, fmt):
    return os.path.join(audio_dir, key.replace("/", "_") + "." + fmt)


def _usable(path):
    import soundfile as sf
    try:
        return os.path.getsize(path) > 0 and sf.info(path).frames > 0
    except Exception:  # unreadable (e.g. a file cut by a crash): convert again
        return False


def convert(job):
    """Decode one pipe entry into ``target``; returns (key, target, converted?)."""
    import soundfile as sf
    from tfspk.io.audio import read_audio
    key, value, target, fmt = job
    if _usable(target):
        return key, target, False
    try:
        samples, rate = read_audio(value)
    except ToolError as err:
        raise ToolError(f"wav.scp entry '{key}': {err}") from None
    pcm = np.clip(np.rint(samples), -32768, 32767).astype(np.int16)
    temporary = f"{target}.tmp{os.getpid()}"
    try:
        sf.write(temporary, pcm, rate, format=fmt.upper(), subtype="PCM_16")
        os.replace(temporary, target)
    except (OSError, RuntimeError) as err:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise ToolError(f"cannot write {target} for '{key}': {err}") from None
    return key, target, True


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--nj", type=int, default=4, help="parallel decoding processes (default: 4)")
    parser.add_argument("--format", default="flac", choices=["flac", "wav"], help="output format (default: flac)")
    parser.add_argument("data_in")
    parser.add_argument("audio_dir")
    parser.add_argument("data_out")
    args = parser.parse_args(argv)
    if args.nj < 1:
        raise ToolError(f"--nj must be >= 1, got {args.nj}")
    scp = os.path.join(args.data_in, "wav.scp")
    if not os.path.isfile(scp):
        raise ToolError(f"{scp} not found")
    if os.path.abspath(args.data_in) == os.path.abspath(args.data_out):
        raise ToolError("<data-in> and <data-out> must differ")
    entries = read_table(scp)
    jobs = [(key, value, _target(os.path.abspath(args.audio_dir), key, args.format), args.format)
            for key, value in entries if value.rstrip().endswith("|")]
    os.makedirs(args.audio_dir, exist_ok=True)
    new = {}
    converted = 0
    if args.nj == 1 or len(jobs) <= 1:
        results = map(convert, jobs)
        pool = None
    else:
        import multiprocessing
        pool = multiprocessing.get_context("fork").Pool(args.nj)
        results = pool.imap_unordered(convert, jobs, chunksize=16)
    try:
        for key, target, done in results:
            new[key] = target
            converted += done
    finally:
        if pool is not None:
            pool.terminate()
    os.makedirs(args.data_out, exist_ok=True)
    for name in COPIED:
        source = os.path.join(args.data_in, name)
        if os.path.isfile(source):
            shutil.copyfile(source, os.path.join(args.data_out, name))
    with atomic_open(os.path.join(args.data_out, "wav.scp")) as handle:
        for key, value in entries:
            handle.write(f"{key} {new.get(key, value)}\n")
    cli.log(f"{args.data_out}: {len(entries)} entries, {len(jobs)} from commands ({converted} decoded now, "
            f"{len(jobs) - converted} already in {args.audio_dir}), {len(entries) - len(jobs)} files kept")
    return 0


if __name__ == "__main__":
    cli.run_tool(_main)
