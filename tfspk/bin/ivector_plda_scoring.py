"""tfspk-ivector-plda-scoring: Kaldi ivector-plda-scoring (PLDA log-likelihood ratios of trials)."""
from tfspk import cli
from tfspk.backend import commands

USAGE = """tfspk-ivector-plda-scoring [options] <plda> <train-ivector-rspecifier> <test-ivector-rspecifier> <trials-rxfilename> <scores-wxfilename>
e.g.: tfspk-ivector-plda-scoring --num-utts=ark:exp/train/num_utts.ark plda ark:exp/train/spk_ivectors.ark \\
        ark:exp/test/ivectors.ark trials scores"""


def add_plda_config(parser):
    """Kaldi ``PldaConfig`` options."""
    cli.add_bool(parser, "--normalize-length", True, "do length normalization as part of PLDA (the inner product "
                 "with the model's inverse variance, which depends on the number of utterances, equals the dimension)")
    cli.add_bool(parser, "--simple-length-normalization", False, "normalize the length of the vectors to "
                 "sqrt(dimension) instead")


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Compute PLDA log-likelihood ratios of trials "
                                     "'<key1> <key2>' (a third target/nontarget field is ignored); output "
                                     "'<key1> <key2> <score>'. Trials with a missing key are skipped with a warning.")
    add_plda_config(parser)
    parser.add_argument("--num-utts", default="", help="table of the number of utterances per enrolment "
                        "speaker, e.g. ark:num_utts.ark (default: 1 each)")
    for name in ("plda_rxfilename", "train_ivector_rspecifier", "test_ivector_rspecifier",
                 "trials_rxfilename", "scores_wxfilename"):
        parser.add_argument(name)
    args = parser.parse_args(argv)
    commands.plda_scoring(args.plda_rxfilename, args.train_ivector_rspecifier, args.test_ivector_rspecifier,
                          args.trials_rxfilename, args.scores_wxfilename, args.normalize_length,
                          args.simple_length_normalization, args.num_utts)


def main():
    cli.run_tool(_main)
