"""tfspk-calibrate: train a logistic-regression calibration (score -> LLR) on labelled trials [Brummer2006]."""
from tfspk import cli
from tfspk.backend import calibration

USAGE = """tfspk-calibrate [options] <labelled-trials> <scores-rxfilename> <model-wxfilename>
e.g.: tfspk-calibrate --target-prior=0.01 data/cal/trials exp/scores_cal/plda_scores exp/calibration/plda.cal
      tfspk-calibrate --durations=data/cal/utt2dur --vectors=scp:xvectors_cal/xvector.scp trials scores model
Apply the model with tfspk-apply-calibration."""


def add_quality_options(parser):
    parser.add_argument("--durations", default="",
                        help="utt2dur or utt2num_frames of the trials' keys: adds the quality measure "
                             "min(log d_enroll, log d_test)")
    parser.add_argument("--vectors", default="",
                        help="rspecifier of the trials' embeddings: adds the quality measure "
                             "min(|x_enroll|, |x_test|)")


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=(
        "Fit llr = scale * score + offset (+ sum_k w_k q_k with quality measures) by minimising the "
        "prior-weighted cross-entropy [Brummer2006] over the scored trials ('<enroll> <test> <score>') "
        "labelled by <labelled-trials> ('<enroll> <test> target|nontarget'). The model is a small text file "
        "(docs/backend.md)."))
    parser.add_argument("--target-prior", type=float, default=0.5,
                        help="effective target prior the training objective weighs targets with (default: 0.5)")
    parser.add_argument("--max-iters", type=int, default=100, help="maximum Newton iterations (default: 100)")
    parser.add_argument("--min-trials-per-class", type=int, default=calibration.MIN_TRIALS_PER_CLASS,
                        help="refuse to train on fewer target or fewer non-target scores than this "
                             f"(default: {calibration.MIN_TRIALS_PER_CLASS})")
    add_quality_options(parser)
    args = parser.parse(argv, "trials_rxfilename", "scores_rxfilename", "model_wxfilename")
    calibration.calibrate(args.trials_rxfilename, args.scores_rxfilename, args.model_wxfilename,
                          args.target_prior, args.durations, args.vectors, args.max_iters,
                          args.min_trials_per_class)


def main():
    cli.run_tool(_main)
