"""tfspk-split-data: split a data directory into N parts (Kaldi utils/split_data.sh)."""
from tfspk import cli
from tfspk.errors import ToolError
from tfspk.io import datadir

USAGE = "tfspk-split-data [--per-utt] <data-dir> <num-to-split>"
DESCRIPTION = """Writes <data-dir>/split<N>/{1..N} (with --per-utt: <data-dir>/split<N>utt/{1..N}).
It does not split again if the output is newer than the input. By default it splits per speaker
(each speaker is in only one split dir); --per-utt ignores speakers."""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    cli.add_bool(parser, "--per-utt", False, "split by utterance, ignoring speakers")
    args = parser.parse(argv, "data_dir", "num_to_split")
    try:
        num = int(args.num_to_split)
    except ValueError:
        raise ToolError(f"Invalid num-split argument {args.num_to_split}") from None
    target, warnings = datadir.split_data(args.data_dir, num, per_utt=args.per_utt)
    for warning in warnings:
        cli.warn(warning)
    cli.log(f"split {args.data_dir} into {target}/{{1..{num}}}")


def main():
    cli.run_tool(_main)
