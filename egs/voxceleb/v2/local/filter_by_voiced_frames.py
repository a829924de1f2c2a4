#!/usr/bin/env python3
"""Keep the utterances with more than --min-len voiced frames, then the speakers with at least
--min-num-utts of them: stage 3's length filter (steps/prepare_feats_for_egs.sh, after Kaldi's
egs/voxceleb/v2 stage 5) for run.sh --aug online, which trains from audio and never dumps the voiced
features that stage 3 counts. The voiced frames of an utterance are the non-zero entries of its
vad.scp vector, the frames Kaldi's select-voiced-frames keeps. Utterances without a VAD entry are
dropped, as stage 3 drops them. <data-out> is <data-in> restricted to the kept utterances
(tfspk-subset-data-dir --utt-list).
"""
import os
import tempfile

import numpy as np

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.io import datadir
from tfspk.io.ark import read_rspecifier
from tfspk.io.table import read_table

USAGE = "filter_by_voiced_frames.py [--min-len N] [--min-num-utts M] <data-in> <data-out>"


def kept_utterances(utt2spk, voiced, min_len, min_num_utts):
    """Utterances of ``utt2spk`` (key, speaker pairs) with ``voiced[key] > min_len`` whose speaker
    keeps at least ``min_num_utts`` of them, in utt2spk order."""
    long_enough = [(utt, spk) for utt, spk in utt2spk if voiced.get(utt, 0) > min_len]
    per_speaker = {}
    for _, spk in long_enough:
        per_speaker[spk] = per_speaker.get(spk, 0) + 1
    return [utt for utt, spk in long_enough if per_speaker[spk] >= min_num_utts], long_enough


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--min-len", type=int, default=400, help="drop utterances with <= this many voiced frames")
    parser.add_argument("--min-num-utts", type=int, default=8, help="drop speakers with fewer utterances")
    parser.add_argument("data_in")
    parser.add_argument("data_out")
    args = parser.parse_args(argv)
    if args.min_len < 0 or args.min_num_utts < 0:
        raise ToolError(f"--min-len and --min-num-utts must be >= 0, got {args.min_len} and {args.min_num_utts}")
    for name in ("utt2spk", "vad.scp"):
        if not os.path.isfile(os.path.join(args.data_in, name)):
            raise ToolError(f"{os.path.join(args.data_in, name)} not found")
    utt2spk = read_table(os.path.join(args.data_in, "utt2spk"))
    voiced = {key: int(np.count_nonzero(vad))
              for key, vad in read_rspecifier(f"scp:{os.path.join(args.data_in, 'vad.scp')}")}
    kept, long_enough = kept_utterances(utt2spk, voiced, args.min_len, args.min_num_utts)
    speakers_in = {spk for _, spk in utt2spk}
    kept_set = set(kept)
    speakers_kept = {spk for utt, spk in utt2spk if utt in kept_set}
    cli.log(f"{len(utt2spk) - len(long_enough)} of {len(utt2spk)} utterances have <= {args.min_len} voiced "
            f"frames or no VAD (--min-len); {len(speakers_in) - len(speakers_kept)} of {len(speakers_in)} speakers "
            f"keep fewer than {args.min_num_utts} of them (--min-num-utts), dropping "
            f"{len(long_enough) - len(kept)} more utterances")
    if not kept:
        raise ToolError(f"no utterance of {args.data_in} is left; lower --min-len ({args.min_len}) "
                        f"or --min-num-utts ({args.min_num_utts})")
    with tempfile.NamedTemporaryFile("w", suffix=".list") as handle:
        handle.write("".join(f"{utt}\n" for utt in kept))
        handle.flush()
        for warning in datadir.subset_data_dir(args.data_in, args.data_out, utt_list=handle.name):
            cli.warn(warning)
    return 0


if __name__ == "__main__":
    cli.run_tool(_main)
