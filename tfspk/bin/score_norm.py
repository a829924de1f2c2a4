"""tfspk-score-norm: adaptive symmetric score normalisation (AS-norm) of a scores file with a cohort."""
import numpy as np

from tfspk import cli
from tfspk.backend import plda, scoring, tables
from tfspk.backend.vectors import unit_length
from tfspk.bin.ivector_plda_scoring import add_plda_config, transform_table
from tfspk.errors import ToolError

USAGE = """tfspk-score-norm [options] <enroll-rspecifier> <test-rspecifier> <cohort-rspecifier> <scores-rxfilename> <scores-wxfilename>
e.g.: tfspk-score-norm --top-n=300 scp:xvectors_test/xvector.scp scp:xvectors_test/xvector.scp \\
        scp:xvectors_train/spk_xvector.scp exp/scores_cosine exp/scores_cosine_asnorm
      tfspk-score-norm --plda=plda --top-n=300 "$enroll" "$test" "$cohort" exp/scores exp/scores_asnorm"""


def _cosine_cohort_stats(vectors, cohort, top_n):
    vectors, cohort = unit_length(vectors), unit_length(cohort)
    return scoring.cohort_statistics(lambda a, b: vectors[a:b] @ cohort.T, len(vectors), top_n)


def _plda_cohort_stats(model, vectors, counts, cohort, top_n):
    return scoring.cohort_statistics(lambda a, b: model.score_matrix(vectors[a:b], counts[a:b], cohort),
                                     len(vectors), top_n)


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=(
        "AS-norm: s' = 0.5 [(s - mu_e) / sigma_e + (s - mu_t) / sigma_t], where mu and sigma are the mean and "
        "standard deviation (ddof 0) of the --top-n highest scores of the enrolment (test) vector against the "
        "cohort. Cohort scores are cosine similarities, or PLDA LLRs with --plda (vectors given to this tool as "
        "to tfspk-ivector-plda-scoring). The raw scores file is '<enroll> <test> <score>' as the scoring tools "
        "write it; trials whose vectors are missing are skipped with a warning."))
    parser.add_argument("--top-n", type=int, default=300,
                        help="cohort scores kept per vector; 0 keeps the whole cohort, i.e. S-norm (default: 300)")
    parser.add_argument("--plda", default="", help="score the cohort with this PLDA model instead of cosine")
    parser.add_argument("--num-utts", default="", help="with --plda: utterances per enrolment speaker "
                        "(e.g. ark:num_utts.ark)")
    add_plda_config(parser)
    for name in ("enroll_rspecifier", "test_rspecifier", "cohort_rspecifier", "scores_rxfilename",
                 "scores_wxfilename"):
        parser.add_argument(name)
    args = parser.parse_args(argv)
    if args.top_n < 0:
        raise ToolError(f"--top-n={args.top_n} must be >= 0")
    pairs, raw = tables.read_scores(args.scores_rxfilename)
    if args.plda:
        model = plda.Plda.read(args.plda)
        config = dict(normalize_length=args.normalize_length, simple_length_norm=args.simple_length_normalization)
        num_utts = tables.read_int32_table(args.num_utts) if args.num_utts else None
        enroll_keys, enroll, counts = transform_table(model, args.enroll_rspecifier, num_utts)
        enroll = model.transform_vectors(enroll, counts, **config)[0]
        test_keys, test, _ = transform_table(model, args.test_rspecifier)
        test = model.transform_vectors(test, 1, **config)[0]
        _, cohort, _ = transform_table(model, args.cohort_rspecifier)
        cohort = model.transform_vectors(cohort, 1, **config)[0]
    else:
        enroll_keys, enroll = tables.load_vectors(args.enroll_rspecifier)
        test_keys, test = tables.load_vectors(args.test_rspecifier)
        _, cohort = tables.load_vectors(args.cohort_rspecifier)
        scoring.check_same_dim(enroll, test, args.enroll_rspecifier, args.test_rspecifier)
        scoring.check_same_dim(enroll, cohort, args.enroll_rspecifier, args.cohort_rspecifier)
    kept, enroll_index, test_index, num_missing = scoring.resolve_trials(
        pairs, enroll_keys, test_keys, cli.warn, "enrolment vectors", "test vectors")
    if not len(kept):
        raise ToolError(f"none of the {len(pairs)} scored trials has both vectors: nothing to normalise")
    used_enroll, enroll_slot = np.unique(enroll_index, return_inverse=True)
    used_test, test_slot = np.unique(test_index, return_inverse=True)
    if args.plda:
        enroll_stats = _plda_cohort_stats(model, enroll[used_enroll], counts[used_enroll], cohort, args.top_n)
        test_stats = _plda_cohort_stats(model, test[used_test], np.ones(len(used_test), np.int64), cohort,
                                        args.top_n)
    else:
        enroll_stats = _cosine_cohort_stats(enroll[used_enroll], cohort, args.top_n)
        test_stats = _cosine_cohort_stats(test[used_test], cohort, args.top_n)
    normalized = scoring.adaptive_snorm(raw[kept], enroll_stats, test_stats, enroll_slot, test_slot)
    tables.write_text(args.scores_wxfilename, tables.format_scores([pairs[k] for k in kept], normalized))
    cli.log(f"Normalised {len(kept)} scores with a cohort of {len(cohort)} vectors (top {args.top_n or len(cohort)}), "
            f"{num_missing} trials skipped.")


def main():
    cli.run_tool(_main)
