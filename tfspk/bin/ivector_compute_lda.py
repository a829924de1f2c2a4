"""tfspk-ivector-compute-lda: Kaldi ivector-compute-lda."""
from tfspk import cli
from tfspk.backend import commands

USAGE = """tfspk-ivector-compute-lda [options] <ivector-rspecifier> <utt2spk-rspecifier> <lda-matrix-out>
e.g.: tfspk-ivector-compute-lda --dim=200 "ark:tfspk-ivector-subtract-global-mean scp:xvector.scp ark:- |" \\
        ark:data/train/utt2spk transform.mat"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Compute an affine LDA transform [L | -L mean] from "
                                     "utterance vectors and utt2spk (within-class covariance made unit).")
    parser.add_argument("--dim", type=int, default=100, help="dimension kept by the LDA transform (default: 100)")
    parser.add_argument("--total-covariance-factor", type=float, default=0.0,
                        help="0: make the within-class covariance unit; 1: the total covariance; "
                             "between: an interpolation (default: 0.0)")
    parser.add_argument("--covariance-floor", type=float, default=1e-6,
                        help="floor the eigenvalues of the interpolated covariance to this times the "
                             "largest one (default: 1e-06)")
    cli.add_binary(parser, what="the matrix")
    args = parser.parse(argv, "ivector_rspecifier", "utt2spk_rspecifier", "lda_wxfilename")
    commands.compute_lda(args.ivector_rspecifier, args.utt2spk_rspecifier, args.lda_wxfilename, args.dim,
                         args.total_covariance_factor, args.covariance_floor, args.binary)


def main():
    cli.run_tool(_main)
