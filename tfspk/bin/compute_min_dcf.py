"""tfspk-compute-min-dcf: Kaldi sid/compute_min_dcf.py (normalised minimum detection cost)."""
import sys

from tfspk import cli
from tfspk.metrics import commands

USAGE = """tfspk-compute-min-dcf [options] <scores-file> <trials-file>
e.g.: tfspk-compute-min-dcf --p-target 0.01 --c-miss 1 --c-fa 1 exp/scores/trials data/test/trials"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Compute the minimum of the normalised detection cost "
                                     "function and the threshold at which it occurs (scores '<utt1> <utt2> "
                                     "<score>', trials '<utt1> <utt2> target|nontarget').")
    parser.add_argument("--p-target", type=float, default=0.01,
                        help="prior probability of the target speaker in a trial (default: 0.01)")
    parser.add_argument("--c-miss", type=float, default=1.0, help="cost of a missed detection (default: 1)")
    parser.add_argument("--c-fa", type=float, default=1.0, help="cost of a spurious detection (default: 1)")
    args = parser.parse(argv, "scores_filename", "trials_filename")
    value, threshold = commands.compute_min_dcf(args.scores_filename, args.trials_filename,
                                                args.p_target, args.c_miss, args.c_fa)
    sys.stdout.write(f"{value:.4f}\n")
    sys.stderr.write(f"minDCF is {value:.4f} at threshold {threshold:.4f} (p-target={args.p_target:g}, "
                     f"c-miss={args.c_miss:g},c-fa={args.c_fa:g})\n")


def main():
    cli.run_tool(_main)
