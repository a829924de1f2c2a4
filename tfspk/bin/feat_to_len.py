"""tfspk-feat-to-len: Kaldi feat-to-len."""
from tfspk import cli
from tfspk.features.commands import feat_to_len

USAGE = """tfspk-feat-to-len [options] <in-rspecifier> <out-wspecifier>
   or: tfspk-feat-to-len [options] <in-rxfilename>
 e.g.: tfspk-feat-to-len scp:feats.scp ark,t:utt2num_frames"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Number of frames of each feature matrix, as Kaldi's feat-to-len.")
    parser.add_argument("source", metavar="in-rspecifier|in-rxfilename")
    parser.add_argument("wspecifier", nargs="?", metavar="out-wspecifier")
    args = parser.parse_args(argv)
    feat_to_len(args.source, args.wspecifier)


def main():
    cli.run_tool(_main)
