"""tfspk-score-report: EER and minDCFs of one or more scores files, and a DET plot."""
import os
import sys

from tfspk import cli
from tfspk.backend import tables
from tfspk.errors import ToolError
from tfspk.metrics import detection, scorefiles

USAGE = """tfspk-score-report [options] <trials> <scores-1> [<scores-2> ...]
e.g.: tfspk-score-report --names=plda,cosine --det-plot=exp/det.png data/test/trials exp/scores_plda exp/scores_cos"""

COLUMNS = ("EER(%)", "minDCF(0.01)", "minDCF(0.001)", "minDCF08")


def format_report(rows) -> str:
    """A fixed-width table, one row per system: ``(name, Summary)``."""
    width = max(8, *(len(name) for name, _ in rows))
    lines = [f"{'system':<{width}}  {'#target':>8}  {'#nontarget':>10}  " + "  ".join(f"{c:>13}" for c in COLUMNS)]
    for name, summary in rows:
        values = [100 * summary.eer] + [summary.min_dcfs[c][0] for c in COLUMNS[1:]]
        lines.append(f"{name:<{width}}  {summary.num_targets:>8}  {summary.num_nontargets:>10}  "
                     + "  ".join(f"{v:>13.4f}" for v in values))
    lines.append("EER: Kaldi compute-eer. minDCF: normalised as in Kaldi sid/compute_min_dcf.py; minDCF(p) has "
                 "c_miss = c_fa = 1; minDCF08 (SRE08) has p = 0.01, c_miss = 10, c_fa = 1 (unnormalised = "
                 "normalised x 0.1).")
    return "\n".join(lines) + "\n"


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Print EER, minDCF(0.01), minDCF(0.001) and minDCF08 "
                                     "for each scores file ('<enroll> <test> <score>') against labelled "
                                     "trials, optionally drawing their DET curves into one PNG.")
    parser.add_argument("--names", default="", help="comma-separated system names (default: file names)")
    parser.add_argument("--det-plot", default="", help="write DET curves of all systems to this PNG file")
    parser.add_argument("--det-title", default="DET curve", help="title of the DET plot")
    parser.add_argument("trials")
    parser.add_argument("scores", nargs="+")
    args = parser.parse_args(argv)
    names = args.names.split(",") if args.names else [os.path.basename(s) for s in args.scores]
    if len(names) != len(args.scores):
        raise ToolError(f"--names gives {len(names)} names for {len(args.scores)} scores files")
    labels = tables.read_labelled_trials(args.trials)
    rows, curves = [], []
    for name, path in zip(names, args.scores):
        scores, is_target = scorefiles.match_scores_to_trials(path, labels, cli.warn)
        rows.append((name, detection.summarize(scores, is_target)))
        if args.det_plot:
            curves.append((name, detection.SortedScores.from_arrays(scores, is_target)))
    sys.stdout.write(format_report(rows))
    if args.det_plot:
        from tfspk.metrics.det_plot import plot_det
        plot_det(curves, args.det_plot, args.det_title)
        cli.log(f"Wrote DET curves to {args.det_plot}")


def main():
    cli.run_tool(_main)
