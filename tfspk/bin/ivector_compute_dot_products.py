"""tfspk-ivector-compute-dot-products: Kaldi ivector-compute-dot-products."""
from tfspk import cli
from tfspk.backend import commands

USAGE = """tfspk-ivector-compute-dot-products [options] <trials-in> <ivector1-rspecifier> <ivector2-rspecifier> <scores-out>
e.g.: tfspk-ivector-compute-dot-products trials ark:train_ivectors.ark ark:test_ivectors.ark trials.scored"""


def similarity_tool(usage, description, measure):
    """The ``_main(argv)`` of a tool scoring the trials by ``measure`` of their two vectors (the arguments
    and output of ivector-compute-dot-products; tfspk.backend.commands.similarity_scoring)."""
    def _main(argv):
        args = cli.KaldiArgumentParser(usage, description=description).parse(
            argv, "trials_rxfilename", "ivector1_rspecifier", "ivector2_rspecifier", "scores_wxfilename")
        commands.similarity_scoring(args.trials_rxfilename, args.ivector1_rspecifier, args.ivector2_rspecifier,
                                    args.scores_wxfilename, measure)
    return _main


_main = similarity_tool(USAGE, "Dot products of the vector pairs in the trials ('<key1> <key2>' lines; a third "
                        "field is ignored); output '<key1> <key2> <dot-product>'.", "dot-product")


def main():
    cli.run_tool(_main)
