#!/usr/bin/env python3
# Kaldi's utils/utt2spk_to_spk2utt.pl in Python (same name and output, so recipes work):
#   utt2spk_to_spk2utt.pl [<utt2spk>...] > spk2utt
# Speakers in order of first appearance, utterances in input order (as Kaldi's script).
# Python under a .pl name: see utils/filter_scp.pl.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
from tfspk.io.datadir import utt2spk_lines_to_spk2utt, run_line_converter  # noqa: E402

if __name__ == "__main__":
    run_line_converter(utt2spk_lines_to_spk2utt, "utt2spk_to_spk2utt.pl", sys.argv[1:])
