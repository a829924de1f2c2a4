#!/usr/bin/env python3
"""Write a Kaldi trials file on the utterances of a data dir: every target pair plus a seeded sample
of non-target pairs, part of them between two speakers of the same language.

Output lines: ``<enroll-utt> <test-utt> target|nontarget``, sorted. Each unordered pair appears once.
Non-target count = round(--nontarget-ratio * number of targets) (capped by the pairs available); a
fraction --same-language-fraction of them is drawn among pairs whose speakers share a language (as many
as exist), the rest among all pairs of different speakers.
"""
import os
from itertools import combinations

import numpy as np

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_open
from tfspk.io.table import read_utt2spk, read_utt2word

USAGE = "make_trials.py [options] <data-dir> <trials-out>"


def target_pairs(utts_by_speaker):
    return [pair for speaker in sorted(utts_by_speaker) for pair in combinations(utts_by_speaker[speaker], 2)]


def sample_nontargets(utt2spk, utt2lang, count, same_language_fraction, rng):
    """Draw ``count`` distinct unordered pairs of utterances of different speakers."""
    utts = sorted(utt2spk)
    speakers = np.array([utt2spk[u] for u in utts])
    languages = np.array([utt2lang[u] for u in utts])
    n = len(utts)
    different = speakers[:, None] != speakers[None, :]
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    all_pairs = np.argwhere(different & upper)
    same_language = np.argwhere(different & upper & (languages[:, None] == languages[None, :]))
    count = min(count, len(all_pairs))
    want_same = min(int(round(count * same_language_fraction)), len(same_language))
    # Pairs as integer codes a * n + b so that "not drawn yet" is a vectorised set difference.
    same_codes = same_language[:, 0] * n + same_language[:, 1]
    chosen = rng.choice(same_codes, size=want_same, replace=False) if want_same else np.zeros(0, dtype=int)
    all_codes = all_pairs[:, 0] * n + all_pairs[:, 1]
    remaining = np.setdiff1d(all_codes, chosen, assume_unique=True)
    extra = rng.choice(remaining, size=count - want_same, replace=False)
    codes = np.sort(np.concatenate([chosen, extra]))
    return [(utts[c // n], utts[c % n]) for c in codes], want_same


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--nontarget-ratio", type=float, default=3.0,
                        help="non-target trials per target trial (default: 3)")
    parser.add_argument("--same-language-fraction", type=float, default=0.5,
                        help="share of non-targets between same-language speakers (default: 0.5)")
    parser.add_argument("--seed", type=int, default=777, help="seed of the non-target draw (default: 777)")
    parser.add_argument("data_dir")
    parser.add_argument("trials")
    args = parser.parse_args(argv)
    if args.nontarget_ratio <= 0 or not 0 <= args.same_language_fraction <= 1:
        raise ToolError("--nontarget-ratio must be > 0 and --same-language-fraction in [0, 1]")
    for name in ("utt2spk", "utt2lang"):
        if not os.path.isfile(os.path.join(args.data_dir, name)):
            raise ToolError(f"missing {os.path.join(args.data_dir, name)} (local/make_demo_data.py writes it)")
    # Kaldi's table rules (sorted unique keys, one word per value): errors name file and line
    utt2spk = read_utt2spk(os.path.join(args.data_dir, "utt2spk"))
    utt2lang = read_utt2word(os.path.join(args.data_dir, "utt2lang"), "lang", "language")
    missing = sorted(set(utt2spk) - set(utt2lang))
    if missing:
        raise ToolError(f"{args.data_dir}/utt2lang has no line for utterance '{missing[0]}' "
                        f"({len(missing)} missing)")
    utts_by_speaker = {}
    for utt in sorted(utt2spk):
        utts_by_speaker.setdefault(utt2spk[utt], []).append(utt)
    if len(utts_by_speaker) < 2:
        raise ToolError(f"{args.data_dir} has {len(utts_by_speaker)} speaker(s); trials need at least 2")
    targets = target_pairs(utts_by_speaker)
    if not targets:
        raise ToolError(f"{args.data_dir}: no speaker has two utterances, so there is no target trial")
    rng = np.random.default_rng(args.seed)
    nontargets, same_language = sample_nontargets(
        utt2spk, utt2lang, int(round(args.nontarget_ratio * len(targets))), args.same_language_fraction, rng)
    lines = sorted([f"{a} {b} target" for a, b in targets] + [f"{a} {b} nontarget" for a, b in nontargets])
    with atomic_open(args.trials, encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    cli.log(f"wrote {args.trials}: {len(targets)} target and {len(nontargets)} non-target trials "
            f"({same_language} of them same-language) over {len(utts_by_speaker)} speakers")


if __name__ == "__main__":
    cli.run_tool(_main)
