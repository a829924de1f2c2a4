#!/usr/bin/env python3
# Kaldi's utils/utt2spk_to_spk2utt.pl in Python (same name and output, so recipes work):
#   utt2spk_to_spk2utt.pl [<utt2spk>...] > spk2utt
# Speakers in order of first appearance, utterances in input order (as Kaldi's script).
# Python under a .pl name: see utils/filter_scp.pl.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
from tfspk.errors import ToolError  # noqa: E402
from tfspk.io.datadir import utt2spk_lines_to_spk2utt  # noqa: E402


def lines(paths):
    if not paths:
        yield from open(sys.stdin.fileno(), encoding="utf-8", errors="surrogateescape", closefd=False)
    for path in paths:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            yield from handle


if __name__ == "__main__":
    try:
        with open(sys.stdout.fileno(), "w", encoding="utf-8", errors="surrogateescape", closefd=False) as out:
            out.writelines(utt2spk_lines_to_spk2utt(lines(sys.argv[1:])))
    except OSError as err:
        sys.exit(f"utt2spk_to_spk2utt.pl: cannot read {err.filename}: {err.strerror}")
    except ToolError as err:
        sys.exit(f"utt2spk_to_spk2utt.pl: {err}")
