#!/usr/bin/env python3
# Kaldi's utils/spk2utt_to_utt2spk.pl in Python (same name and output, so recipes work):
#   spk2utt_to_utt2spk.pl [<spk2utt>...] > utt2spk
# One "utt spk" line per utterance, in input order (as Kaldi's script).
# Python under a .pl name: see utils/filter_scp.pl.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
from tfspk.errors import ToolError  # noqa: E402
from tfspk.io.datadir import spk2utt_lines_to_utt2spk  # noqa: E402


def lines(paths):
    if not paths:
        yield from open(sys.stdin.fileno(), encoding="utf-8", errors="surrogateescape", closefd=False)
    for path in paths:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            yield from handle


if __name__ == "__main__":
    try:
        with open(sys.stdout.fileno(), "w", encoding="utf-8", errors="surrogateescape", closefd=False) as out:
            out.writelines(spk2utt_lines_to_utt2spk(lines(sys.argv[1:])))
    except OSError as err:
        sys.exit(f"spk2utt_to_utt2spk.pl: cannot read {err.filename}: {err.strerror}")
    except ToolError as err:
        sys.exit(f"spk2utt_to_utt2spk.pl: {err}")
