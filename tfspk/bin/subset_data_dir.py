"""tfspk-subset-data-dir: a subset of a data directory (Kaldi utils/subset_data_dir.sh)."""
from tfspk import cli
from tfspk.errors import ToolError
from tfspk.io import datadir

USAGE = """tfspk-subset-data-dir [--speakers|--first|--last|--per-spk|--shortest] <srcdir> <num-utt> <destdir>
       tfspk-subset-data-dir --utt-list <utterance-list-file> <srcdir> <destdir>
       tfspk-subset-data-dir --spk-list <speaker-list-file> <srcdir> <destdir>"""
DESCRIPTION = """Without an option, <num-utt> utterances are picked evenly through utt2spk (as
utils/subset_scp.pl). --per-spk: up to <num-utt> utterances of every speaker. --shortest uses
utt2num_frames, else the rows of feats.scp, else utt2dur. --speakers: whole speakers in a seeded
random order until at least <num-utt> utterances."""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    parser.add_argument("--utt-list", help="file whose first fields are the utterances to keep")
    parser.add_argument("--spk-list", help="file whose first fields are the speakers to keep")
    for flag in ("--speakers", "--first", "--last", "--per-spk", "--shortest"):
        cli.add_bool(parser, flag, False, f"selection mode {flag}")
    parser.add_argument("args", nargs="*", metavar="<srcdir> [<num-utt>] <destdir>")
    args = parser.parse_args(argv)
    modes = [m for m in ("speakers", "first", "last", "per_spk", "shortest") if getattr(args, m)]
    if len(modes) > 1:
        raise ToolError(f"choose at most one of --speakers, --first, --last, --per-spk, --shortest (got {len(modes)})")
    lists = args.utt_list is not None or args.spk_list is not None
    if args.utt_list is not None and args.spk_list is not None:
        raise ToolError("choose one of --utt-list and --spk-list")
    if lists and (modes or len(args.args) != 2):
        parser.error("with --utt-list/--spk-list give <srcdir> <destdir> and no selection mode")
    if not lists and len(args.args) != 3:
        parser.error("expected <srcdir> <num-utt> <destdir>")
    if lists:
        src, dest = args.args
        warnings = datadir.subset_data_dir(src, dest, utt_list=args.utt_list, spk_list=args.spk_list)
    else:
        src, num, dest = args.args
        try:
            num = int(num)
        except ValueError:
            raise ToolError(f"<num-utt> must be an integer, got '{num}'") from None
        mode = modes[0].replace("_", "-") if modes else "even"
        warnings = datadir.subset_data_dir(src, dest, num_utt=num, mode=mode)
    for warning in warnings:
        cli.warn(warning)


def main():
    cli.run_tool(_main)
