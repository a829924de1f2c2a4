"""tfspk-ivector-copy-plda: Kaldi ivector-copy-plda (copy, optionally smoothing the within-class covariance)."""
from tfspk import cli
from tfspk.backend import commands

USAGE = """tfspk-ivector-copy-plda [options] <plda-in> <plda-out>
e.g.: tfspk-ivector-copy-plda --smoothing=0.1 plda plda.smooth0.1"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Copy a PLDA model, possibly adding --smoothing times the "
                                     "between-class covariance to the within-class covariance.")
    parser.add_argument("--smoothing", type=float, default=0.0,
                        help="factor used in smoothing within-class covariance (default: 0.0)")
    cli.add_binary(parser)
    args = parser.parse(argv, "plda_rxfilename", "plda_wxfilename")
    commands.copy_plda(args.plda_rxfilename, args.plda_wxfilename, args.smoothing, args.binary)


def main():
    cli.run_tool(_main)
