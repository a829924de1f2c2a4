"""tfspk-ivector-plda-scoring: Kaldi ivector-plda-scoring (PLDA log-likelihood ratios of trials)."""
import numpy as np

from tfspk import cli
from tfspk.backend import plda, scoring, tables
from tfspk.errors import ToolError

USAGE = """tfspk-ivector-plda-scoring [options] <plda> <train-ivector-rspecifier> <test-ivector-rspecifier> <trials-rxfilename> <scores-wxfilename>
e.g.: tfspk-ivector-plda-scoring --num-utts=ark:exp/train/num_utts.ark plda ark:exp/train/spk_ivectors.ark \\
        ark:exp/test/ivectors.ark trials scores"""


def add_plda_config(parser):
    """Kaldi ``PldaConfig`` options."""
    cli.add_bool(parser, "--normalize-length", True, "do length normalization as part of PLDA (the inner product "
                 "with the model's inverse variance, which depends on the number of utterances, equals the dimension)")
    cli.add_bool(parser, "--simple-length-normalization", False, "normalize the length of the vectors to "
                 "sqrt(dimension) instead")


def transform_table(model, rspecifier, num_utts=None, warn=cli.warn):
    """Read a vector table and transform it into the PLDA space; returns (keys, vectors, counts)."""
    keys, matrix = tables.load_vectors(rspecifier)
    counts = np.ones(len(keys), dtype=np.int64)
    if num_utts is not None:
        present = [i for i, key in enumerate(keys) if key in num_utts]
        for key in (k for k in keys if k not in num_utts):
            warn(f"Number of utterances not given for speaker {key}")
        keys = [keys[i] for i in present]
        matrix = matrix[present]
        counts = np.array([num_utts[k] for k in keys], dtype=np.int64)
        if (counts < 1).any():
            bad = keys[int(np.flatnonzero(counts < 1)[0])]
            raise ToolError(f"number of utterances for '{bad}' must be at least 1")
    if matrix.shape[1] != model.dim:
        raise ToolError(f"dimension mismatch: vectors in {rspecifier} have dimension {matrix.shape[1]}, "
                        f"the PLDA model has dimension {model.dim}")
    return keys, matrix, counts


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
    model = plda.Plda.read(args.plda_rxfilename)
    num_utts = tables.read_int32_table(args.num_utts) if args.num_utts else None
    config = dict(normalize_length=args.normalize_length, simple_length_norm=args.simple_length_normalization)

    enroll_keys, enroll, counts = transform_table(model, args.train_ivector_rspecifier, num_utts)
    if not enroll_keys:
        raise ToolError("No training iVectors present.")
    enroll, enroll_factors = model.transform_vectors(enroll, counts, **config)
    cli.log(f"Read {len(enroll_keys)} training iVectors; average renormalization scale {enroll_factors.mean():.6g}")
    test_keys, test, _ = transform_table(model, args.test_ivector_rspecifier)
    test, test_factors = model.transform_vectors(test, 1, **config)
    cli.log(f"Read {len(test_keys)} test iVectors; average renormalization scale {test_factors.mean():.6g}")

    trials = tables.read_trials(args.trials_rxfilename)
    if not trials:
        raise ToolError(f"{args.trials_rxfilename}: no trials")
    kept, enroll_index, test_index, num_missing = scoring.resolve_trials(trials, enroll_keys, test_keys, cli.warn)
    if not len(kept):
        raise ToolError(f"none of the {len(trials)} trials could be scored: keys missing from the vectors "
                        f"(Processed 0 trials, {num_missing} had errors)")
    scores = model.log_likelihood_ratios(enroll, counts, test, enroll_index, test_index)
    tables.write_text(args.scores_wxfilename, tables.format_scores([trials[k] for k in kept], scores))
    cli.log(f"Mean score was {scores.mean():.6g}, standard deviation was {scores.std():.6g}")
    cli.log(f"Processed {len(kept)} trials, {num_missing} had errors.")


def main():
    cli.run_tool(_main)
