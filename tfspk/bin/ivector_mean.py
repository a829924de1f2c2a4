"""tfspk-ivector-mean: Kaldi ivector-mean (global mean vector, or per-speaker means)."""
from tfspk import cli
from tfspk.backend import commands

USAGE = """tfspk-ivector-mean [options] <ivector-rspecifier> <mean-wxfilename>
   or: tfspk-ivector-mean [options] <spk2utt-rspecifier> <ivector-rspecifier> <ivector-wspecifier> [<num-utt-wspecifier>]
e.g.: tfspk-ivector-mean scp:exp/xvectors_train/xvector.scp exp/xvectors_train/mean.vec
      tfspk-ivector-mean ark:data/spk2utt scp:xvector.scp ark,scp:spk_xvector.ark,spk_xvector.scp ark,t:num_utts.ark"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Average vectors: all of them (2 arguments) or per speaker.")
    cli.add_bool(parser, "--binary", False, "write the mean vector in binary (2-argument form; Kaldi's default is text)")
    parser.add_argument("args", nargs="+", metavar="ARG")
    args = parser.parse_args(argv)
    if len(args.args) == 2:
        commands.ivector_mean(*args.args, binary=args.binary)
    elif len(args.args) in (3, 4):
        commands.ivector_speaker_mean(*args.args)
    else:
        parser.error(f"expected 2, 3 or 4 arguments, got {len(args.args)}")


def main():
    cli.run_tool(_main)
