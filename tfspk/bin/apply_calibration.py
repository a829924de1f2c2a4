"""tfspk-apply-calibration: map the scores of a scores file to LLRs with a tfspk-calibrate model."""
from tfspk import cli
from tfspk.backend import calibration
from tfspk.bin.calibrate import add_quality_options

USAGE = """tfspk-apply-calibration [options] <model-rxfilename> <scores-rxfilename> <scores-wxfilename>
e.g.: tfspk-apply-calibration exp/calibration/plda.cal exp/scores/plda_scores exp/scores/plda_llrs"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=(
        "Write 'enroll test llr' for every line of the scores file, llr = scale * score + offset "
        "(+ quality terms: give the same quality options as to tfspk-calibrate)."))
    add_quality_options(parser)
    args = parser.parse(argv, "model_rxfilename", "scores_rxfilename", "scores_wxfilename")
    calibration.apply_calibration(args.model_rxfilename, args.scores_rxfilename, args.scores_wxfilename,
                                  args.durations, args.vectors)


def main():
    cli.run_tool(_main)
