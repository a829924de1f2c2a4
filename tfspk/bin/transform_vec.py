"""tfspk-transform-vec: Kaldi transform-vec (linear [L] or affine [L | b] transform of each vector)."""
from tfspk import cli
from tfspk.backend import commands

USAGE = """tfspk-transform-vec [options] <transform-rxfilename> <vec-rspecifier> <vec-wspecifier>
e.g.: tfspk-transform-vec transform.mat ark:xvectors.ark ark:-"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Apply a linear (R x D) or affine (R x (D+1)) "
                                     "transform to every vector.")
    parser.add_argument("transform_rxfilename")
    parser.add_argument("vec_rspecifier")
    parser.add_argument("vec_wspecifier")
    args = parser.parse_args(argv)
    commands.transform_vec(args.transform_rxfilename, args.vec_rspecifier, args.vec_wspecifier)


def main():
    cli.run_tool(_main)
