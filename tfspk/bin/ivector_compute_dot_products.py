"""tfspk-ivector-compute-dot-products: Kaldi ivector-compute-dot-products."""
from tfspk import cli
from tfspk.backend import commands

USAGE = """tfspk-ivector-compute-dot-products [options] <trials-in> <ivector1-rspecifier> <ivector2-rspecifier> <scores-out>
e.g.: tfspk-ivector-compute-dot-products trials ark:train_ivectors.ark ark:test_ivectors.ark trials.scored"""


def make_parser(usage, description):
    parser = cli.KaldiArgumentParser(usage, description=description)
    for name in ("trials_rxfilename", "ivector1_rspecifier", "ivector2_rspecifier", "scores_wxfilename"):
        parser.add_argument(name)
    return parser


def _main(argv):
    args = make_parser(USAGE, "Dot products of the vector pairs in the trials ('<key1> <key2>' lines; a third "
                       "field is ignored); output '<key1> <key2> <dot-product>'.").parse_args(argv)
    commands.similarity_scoring(args.trials_rxfilename, args.ivector1_rspecifier, args.ivector2_rspecifier,
                                args.scores_wxfilename, "dot-product")


def main():
    cli.run_tool(_main)
