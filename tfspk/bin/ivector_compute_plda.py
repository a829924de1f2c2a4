"""tfspk-ivector-compute-plda: Kaldi ivector-compute-plda (two-covariance PLDA by EM)."""
from tfspk import cli
from tfspk.backend import commands

USAGE = """tfspk-ivector-compute-plda [options] <spk2utt-rspecifier> <ivector-rspecifier> <plda-out>
e.g.: tfspk-ivector-compute-plda ark:data/train/spk2utt ark,s,cs:ivectors.ark plda"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Train a PLDA model (Kaldi's two-covariance EM) from "
                                     "vectors grouped by speaker with spk2utt.")
    parser.add_argument("--num-em-iters", type=int, default=10,
                        help="number of iterations of E-M used for PLDA estimation (default: 10)")
    cli.add_binary(parser)
    args = parser.parse(argv, "spk2utt_rspecifier", "ivector_rspecifier", "plda_wxfilename")
    commands.compute_plda(args.spk2utt_rspecifier, args.ivector_rspecifier, args.plda_wxfilename,
                          args.num_em_iters, args.binary)


def main():
    cli.run_tool(_main)
