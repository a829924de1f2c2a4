"""tfspk-ivector-subtract-global-mean: Kaldi ivector-subtract-global-mean."""
from tfspk import cli
from tfspk.backend import commands

USAGE = """tfspk-ivector-subtract-global-mean [options] [<mean-rxfilename>] <ivector-rspecifier> <ivector-wspecifier>
e.g.: tfspk-ivector-subtract-global-mean scp:ivectors.scp ark:-
      tfspk-ivector-subtract-global-mean mean.vec scp:ivectors.scp ark:-"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Copy vectors, subtracting the global mean (read from "
                                     "<mean-rxfilename>, or the mean of the input vectors).")
    cli.add_bool(parser, "--subtract-mean", True, "if false, just copy the input (2-argument form)")
    parser.add_argument("args", nargs="+", metavar="ARG")
    args = parser.parse_args(argv)
    if len(args.args) not in (2, 3):
        parser.error(f"expected 2 or 3 arguments, got {len(args.args)}")
    mean = args.args[0] if len(args.args) == 3 else None
    commands.subtract_global_mean(mean, *args.args[-2:], subtract_mean=args.subtract_mean)


def main():
    cli.run_tool(_main)
