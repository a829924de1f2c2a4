"""tfspk-combine-data: union of data directories (Kaldi utils/combine_data.sh)."""
from tfspk import cli
from tfspk.io import datadir

USAGE = "tfspk-combine-data [--extra-files 'file1 file2'] <dest-data-dir> <src-data-dir1> <src-data-dir2> ..."
DESCRIPTION = """Files present in every source are combined (sorted, keys unique); others are left
out with a message. Sources without segments get whole-recording segments when others have them."""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    parser.add_argument("--extra-files", default="", help="more utterance-keyed files to combine")
    parser.add_argument("dest")
    parser.add_argument("sources", nargs="+")
    args = parser.parse_args(argv)
    for message in datadir.combine_data(args.dest, args.sources, extra_files=args.extra_files.split()):
        cli.log(message)


def main():
    cli.run_tool(_main)
