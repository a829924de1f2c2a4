#!/usr/bin/env python3
"""Split a data dir by speaker into disjoint training and evaluation data dirs.

The evaluation speakers are listed in a file (one id per line, ``#`` comments); every other speaker of
the data dir goes to training. Evaluation speakers absent from the data dir (e.g. when only some
packages were prepared) are skipped with a log line. Per-utterance files (wav.scp, utt2spk, utt2lang,
utt2dur and, when present, feats.scp, vad.scp, utt2num_frames) and per-speaker files (spk2utt,
spk2lang) are filtered into both outputs.
"""
import os
from pathlib import Path

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_open

USAGE = "split_speakers.py <data-dir> <eval-speaker-list> <train-dir-out> <eval-dir-out>"
PER_UTT = ["wav.scp", "utt2spk", "utt2lang", "utt2dur", "feats.scp", "vad.scp", "utt2num_frames"]
PER_SPK = ["spk2lang", "spk2utt"]


def read_list(path):
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ToolError(f"cannot read speaker list {path}: {err.strerror}") from None
    speakers = [line.split("#", 1)[0].strip() for line in lines]
    return {s for s in speakers if s}


def read_keyed_lines(path):
    lines = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            raise ToolError(f"{path}:{number}: empty line")
        lines.append((line.split(None, 1)[0], line))
    return lines


def write_subset(src, dst, utt2spk, speakers):
    os.makedirs(dst, exist_ok=True)
    # spk2utt last: a complete directory has it.
    for name in PER_UTT + PER_SPK:
        path = os.path.join(src, name)
        if not os.path.isfile(path):
            continue
        if name in PER_SPK:
            keep = [line for key, line in read_keyed_lines(path) if key in speakers]
        else:
            keep = [line for key, line in read_keyed_lines(path) if utt2spk.get(key) in speakers]
        with atomic_open(os.path.join(dst, name), encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in keep))


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    for name in ("data_dir", "eval_list", "train_dir", "eval_dir"):
        parser.add_argument(name)
    args = parser.parse_args(argv)
    utt2spk_path = os.path.join(args.data_dir, "utt2spk")
    if not os.path.isfile(utt2spk_path):
        raise ToolError(f"missing {utt2spk_path} (run.sh stage 0 makes it)")
    utt2spk = dict((key, line.split()[1]) for key, line in read_keyed_lines(utt2spk_path))
    present = set(utt2spk.values())
    listed = read_list(args.eval_list)
    absent = sorted(listed - present)
    if absent:
        cli.log(f"{len(absent)} evaluation speakers of {args.eval_list} are not in {args.data_dir} "
                f"(e.g. {absent[0]}); skipped")
    eval_speakers = listed & present
    train_speakers = present - eval_speakers
    if len(eval_speakers) < 2 or len(train_speakers) < 2:
        raise ToolError(f"the split of {args.data_dir} by {args.eval_list} leaves {len(train_speakers)} training "
                        f"and {len(eval_speakers)} evaluation speakers; each side needs at least 2")
    write_subset(args.data_dir, args.train_dir, utt2spk, train_speakers)
    write_subset(args.data_dir, args.eval_dir, utt2spk, eval_speakers)
    cli.log(f"{len(train_speakers)} training speakers -> {args.train_dir}, "
            f"{len(eval_speakers)} evaluation speakers -> {args.eval_dir}")


if __name__ == "__main__":
    cli.run_tool(_main)
