"""tfspk-score-report: EER and minDCFs of one or more scores files, and a DET plot."""
import sys

from tfspk import cli
from tfspk.metrics import commands

USAGE = """tfspk-score-report [options] <trials> <scores-1> [<scores-2> ...]
e.g.: tfspk-score-report --names=plda,cosine --det-plot=exp/det.png data/test/trials exp/scores_plda exp/scores_cos
      tfspk-score-report --calibrated=true --names=raw,calibrated data/test/trials exp/scores exp/llrs"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Print EER, minDCF(0.01), minDCF(0.001) and minDCF08 "
                                     "(all minDCFs normalised) for each scores file ('<enroll> <test> <score>') "
                                     "against labelled trials, optionally drawing their DET curves into one PNG.")
    parser.add_argument("--names", default="", help="comma-separated system names (default: file names)")
    parser.add_argument("--det-plot", default="", help="write DET curves of all systems to this PNG file")
    parser.add_argument("--det-title", default="DET curve", help="title of the DET plot")
    cli.add_bool(parser, "--calibrated", False, "the scores are LLRs (e.g. from tfspk-apply-calibration): also "
                 "print Cllr, minCllr, actDCF(0.01), actDCF(0.001) and mark the actual operating point "
                 "(p_target 0.01) on the DET plot")
    parser.add_argument("trials")
    parser.add_argument("scores", nargs="+")
    args = parser.parse_args(argv)
    names = args.names.split(",") if args.names else []
    sys.stdout.write(commands.score_report(args.trials, args.scores, names, args.det_plot, args.det_title,
                                           args.calibrated))


def main():
    cli.run_tool(_main)
