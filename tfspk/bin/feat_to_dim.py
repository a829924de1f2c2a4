"""tfspk-feat-to-dim: Kaldi feat-to-dim."""
from tfspk import cli
from tfspk.features.commands import feat_to_dim

USAGE = """tfspk-feat-to-dim [options] <feat-rspecifier> <dim-wspecifier>
   or: tfspk-feat-to-dim [options] <feat-rxfilename> -
 e.g.: tfspk-feat-to-dim scp:feats.scp -      (prints the dimension of the first matrix)"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Feature dimension, as Kaldi's feat-to-dim.")
    parser.add_argument("source", metavar="feat-rspecifier|feat-rxfilename")
    parser.add_argument("wspecifier", metavar="dim-wspecifier")
    args = parser.parse_args(argv)
    feat_to_dim(args.source, args.wspecifier)


def main():
    cli.run_tool(_main)
