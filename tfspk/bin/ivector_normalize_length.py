"""tfspk-ivector-normalize-length: Kaldi ivector-normalize-length."""
from tfspk import cli
from tfspk.backend import commands

USAGE = """tfspk-ivector-normalize-length [options] <ivector-rspecifier> <ivector-wspecifier>
e.g.: tfspk-ivector-normalize-length ark:ivectors.ark ark:normalized_ivectors.ark"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Normalize the length of vectors to sqrt(dimension) "
                                     "(or to 1 with --scaleup=false).")
    cli.add_bool(parser, "--normalize", True, "set to false to disable normalization")
    cli.add_bool(parser, "--scaleup", True, "if true, the normalized vector is scaled up by sqrt(dim)")
    args = parser.parse(argv, "ivector_rspecifier", "ivector_wspecifier")
    commands.normalize_length(args.ivector_rspecifier, args.ivector_wspecifier, args.normalize, args.scaleup)


def main():
    cli.run_tool(_main)
