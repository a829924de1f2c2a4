"""tfspk-transform-vec: Kaldi transform-vec (linear [L] or affine [L | b] transform of each vector)."""
from tfspk import cli
from tfspk.backend import commands

USAGE = """tfspk-transform-vec [options] <transform-rxfilename> <vec-rspecifier> <vec-wspecifier>
e.g.: tfspk-transform-vec transform.mat ark:xvectors.ark ark:-"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Apply a linear (R x D) or affine (R x (D+1)) "
                                     "transform to every vector.")
    args = parser.parse(argv, "transform_rxfilename", "vec_rspecifier", "vec_wspecifier")
    commands.transform_vec(args.transform_rxfilename, args.vec_rspecifier, args.vec_wspecifier)


def main():
    cli.run_tool(_main)
