"""tfspk-cosine-scoring: cosine similarity of trials (dot products of length-normalised vectors)."""
from tfspk import cli
from tfspk.backend import commands
from tfspk.bin.ivector_compute_dot_products import make_parser

USAGE = """tfspk-cosine-scoring [options] <trials-in> <enroll-rspecifier> <test-rspecifier> <scores-out>
e.g.: tfspk-cosine-scoring data/test/trials scp:exp/xvectors_test/xvector.scp scp:exp/xvectors_test/xvector.scp scores"""


def _main(argv):
    args = make_parser(USAGE, "Cosine similarity cos(u, v) = <u, v> / (|u| |v|) of the trials, same arguments "
                       "and output as ivector-compute-dot-products.").parse_args(argv)
    commands.similarity_scoring(args.trials_rxfilename, args.ivector1_rspecifier, args.ivector2_rspecifier,
                                args.scores_wxfilename, "cosine")


def main():
    cli.run_tool(_main)
