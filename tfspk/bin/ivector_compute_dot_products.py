"""tfspk-ivector-compute-dot-products: Kaldi ivector-compute-dot-products."""
from tfspk import cli
from tfspk.backend import scoring, tables
from tfspk.errors import ToolError

USAGE = """tfspk-ivector-compute-dot-products [options] <trials-in> <ivector1-rspecifier> <ivector2-rspecifier> <scores-out>
e.g.: tfspk-ivector-compute-dot-products trials ark:train_ivectors.ark ark:test_ivectors.ark trials.scored"""


def score_trials(args, score_function, description):
    """Shared driver of the dot-product and cosine tools."""
    trials = tables.read_trials(args.trials_rxfilename)
    if not trials:
        raise ToolError(f"{args.trials_rxfilename}: no trials")
    keys1, vectors1 = tables.load_vectors(args.ivector1_rspecifier)
    keys2, vectors2 = tables.load_vectors(args.ivector2_rspecifier)
    scoring.check_same_dim(vectors1, vectors2, args.ivector1_rspecifier, args.ivector2_rspecifier)
    kept, index1, index2, num_missing = scoring.resolve_trials(
        trials, keys1, keys2, cli.warn, "1st table of ivectors", "2nd table of ivectors")
    if not len(kept):
        raise ToolError(f"none of the {len(trials)} trials could be scored: keys missing from the vectors")
    scores = score_function(vectors1, vectors2, index1, index2)
    tables.write_text(args.scores_wxfilename, tables.format_scores([trials[k] for k in kept], scores))
    cli.log(f"Mean {description} was {scores.mean():.6g}, standard deviation was {scores.std():.6g}")
    cli.log(f"Processed {len(kept)} trials {num_missing} had errors.")


def make_parser(usage, description):
    parser = cli.KaldiArgumentParser(usage, description=description)
    for name in ("trials_rxfilename", "ivector1_rspecifier", "ivector2_rspecifier", "scores_wxfilename"):
        parser.add_argument(name)
    return parser


def _main(argv):
    args = make_parser(USAGE, "Dot products of the vector pairs in the trials ('<key1> <key2>' lines; a third "
                       "field is ignored); output '<key1> <key2> <dot-product>'.").parse_args(argv)
    score_trials(args, scoring.pair_dots, "dot-product")


def main():
    cli.run_tool(_main)
