#!/usr/bin/env python3
"""Choose a seeded set of training speakers to hold out as the dev set (the speakers every tuning
decision is made on; the evaluation speakers are scored once per final system).

Reads ``<data-dir>/utt2spk`` (Kaldi's table rules, :func:`tfspk.io.table.read_utt2spk`: errors name file and
line); speakers with fewer than ``--min-utts`` utterances cannot give target
trials and are never chosen. The choice is a seeded permutation of the sorted eligible speakers
(``numpy.random.default_rng(seed)``), so the same seed and data dir always give the same list, and
a larger ``--num-speakers`` extends a smaller one's list. Writes one speaker id per line, sorted.
"""
import os

import numpy as np

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_open
from tfspk.io.table import read_utt2spk

USAGE = "choose_dev_speakers.py [--num-speakers N] [--seed S] [--min-utts M] <data-dir> <speaker-list-out>"


def choose(speaker_counts, num_speakers, seed, min_utts):
    """The first ``num_speakers`` of a seeded permutation of the sorted speakers with >= min_utts utterances."""
    eligible = sorted(s for s, n in speaker_counts.items() if n >= min_utts)
    order = np.random.default_rng(seed).permutation(len(eligible))
    return sorted(eligible[i] for i in order[:num_speakers])


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--num-speakers", type=int, default=10, help="speakers to hold out (default: 10)")
    parser.add_argument("--seed", type=int, default=777, help="seed of the choice (default: 777)")
    parser.add_argument("--min-utts", type=int, default=5,
                        help="only speakers with at least this many utterances (default: 5)")
    parser.add_argument("data_dir")
    parser.add_argument("speaker_list")
    args = parser.parse_args(argv)
    if args.num_speakers < 2:
        raise ToolError(f"--num-speakers must be at least 2 (a dev set needs non-target trials), got {args.num_speakers}")
    if args.min_utts < 2:
        raise ToolError(f"--min-utts must be at least 2 (target trials need two utterances), got {args.min_utts}")
    if args.seed < 0:
        raise ToolError(f"--seed must be >= 0, got {args.seed}")
    utt2spk_path = os.path.join(args.data_dir, "utt2spk")
    utt2spk = read_utt2spk(utt2spk_path)
    counts = {}
    for spk in utt2spk.values():
        counts[spk] = counts.get(spk, 0) + 1
    eligible = sum(n >= args.min_utts for n in counts.values())
    # Training needs speakers too: keep at least as many as are held out.
    if eligible < args.num_speakers or len(counts) - args.num_speakers < args.num_speakers:
        raise ToolError(f"{utt2spk_path}: {len(counts)} speakers, {eligible} with >= {args.min_utts} utterances; "
                        f"cannot hold out {args.num_speakers} and keep as many for training")
    chosen = choose(counts, args.num_speakers, args.seed, args.min_utts)
    with atomic_open(args.speaker_list, encoding="utf-8") as handle:
        handle.write("".join(s + "\n" for s in chosen))
    cli.log(f"{len(chosen)} of {len(counts)} speakers of {args.data_dir} held out as dev -> {args.speaker_list}")


if __name__ == "__main__":
    cli.run_tool(_main)
