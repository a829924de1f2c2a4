"""tfspk-score-norm: adaptive symmetric score normalisation (AS-norm) of a scores file with a cohort."""
from tfspk import cli
from tfspk.backend import commands
from tfspk.bin.ivector_plda_scoring import add_plda_config

USAGE = """tfspk-score-norm [options] <enroll-rspecifier> <test-rspecifier> <cohort-rspecifier> <scores-rxfilename> <scores-wxfilename>
e.g.: tfspk-score-norm --top-n=300 scp:xvectors_test/xvector.scp scp:xvectors_test/xvector.scp \\
        scp:xvectors_train/spk_xvector.scp exp/scores_cosine exp/scores_cosine_asnorm
      tfspk-score-norm --plda=plda --top-n=300 "$enroll" "$test" "$cohort" exp/scores exp/scores_asnorm"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=(
        "AS-norm: s' = 0.5 [(s - mu_e) / sigma_e + (s - mu_t) / sigma_t], where mu and sigma are the mean and "
        "standard deviation (ddof 0) of the --top-n highest scores of the enrolment (test) vector against the "
        "cohort. Cohort scores are cosine similarities, or PLDA LLRs with --plda (give the vectors as to "
        "tfspk-ivector-plda-scoring). The raw scores file is '<enroll> <test> <score>' as the scoring tools "
        "write it; trials whose vectors are missing are skipped with a warning."))
    parser.add_argument("--top-n", type=int, default=300,
                        help="cohort scores kept per vector; 0 keeps the whole cohort, i.e. S-norm (default: 300)")
    parser.add_argument("--plda", default="", help="score the cohort with this PLDA model instead of cosine")
    parser.add_argument("--num-utts", default="", help="with --plda: utterances per enrolment speaker "
                        "(e.g. ark:num_utts.ark)")
    add_plda_config(parser)
    args = parser.parse(argv, "enroll_rspecifier", "test_rspecifier", "cohort_rspecifier", "scores_rxfilename",
                        "scores_wxfilename")
    commands.score_norm(args.enroll_rspecifier, args.test_rspecifier, args.cohort_rspecifier,
                        args.scores_rxfilename, args.scores_wxfilename, args.top_n, args.plda, args.num_utts,
                        args.normalize_length, args.simple_length_normalization)


def main():
    cli.run_tool(_main)
