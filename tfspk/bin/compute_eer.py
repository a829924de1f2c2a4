"""tfspk-compute-eer: Kaldi compute-eer."""
import sys

from tfspk import cli
from tfspk.metrics import commands

USAGE = """tfspk-compute-eer [options] <scores-in>
Input lines: '<score> target|nontarget'. The EER (percent) is printed to the standard output.
e.g.: tfspk-compute-eer -"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Compute the equal error rate with Kaldi's algorithm.")
    args = parser.parse(argv, "scores_rxfilename")
    eer, _ = commands.compute_eer(args.scores_rxfilename)
    # Kaldi: std::cout.precision(4); std::cout << (100.0 * eer);  -- no newline
    sys.stdout.write(f"{100.0 * eer:.4g}")
    sys.stdout.flush()


def main():
    cli.run_tool(_main)
