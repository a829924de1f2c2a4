#!/usr/bin/env python3
# Kaldi's utils/spk2utt_to_utt2spk.pl in Python (same name and output, so recipes work):
#   spk2utt_to_utt2spk.pl [<spk2utt>...] > utt2spk
# One "utt spk" line per utterance, in input order (as Kaldi's script).
# Python under a .pl name: see utils/filter_scp.pl.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
from tfspk.io.datadir import spk2utt_lines_to_utt2spk, run_line_converter  # noqa: E402

if __name__ == "__main__":
    run_line_converter(spk2utt_lines_to_utt2spk, "spk2utt_to_utt2spk.pl", sys.argv[1:])
