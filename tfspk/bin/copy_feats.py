"""tfspk-copy-feats: Kaldi copy-feats (float or compressed matrices)."""
from tfspk import cli
from tfspk.features.commands import copy_feats_table

USAGE = """tfspk-copy-feats [options] <feature-rspecifier> <feature-wspecifier>
 e.g.: tfspk-copy-feats --compress=true ark:- ark,scp:foo.ark,foo.scp"""

DESCRIPTION = """Copy feature matrices, optionally compressing them with Kaldi's compressed-matrix format
(byte-identical to Kaldi's copy-feats --compress)."""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    cli.add_bool(parser, "--compress", False, "if true, write output in compressed form")
    parser.add_argument("--compression-method", type=int, default=1,
                        help="1 automatic, 2 speech-feature, 3 two-byte automatic, 5 one-byte automatic "
                             "(Kaldi's codes; 4, 6, 7 are not supported) (default: 1)")
    parser.add_argument("--write-num-frames", metavar="WSPECIFIER",
                        help="wspecifier to write the number of frames of each utterance, e.g. ark,t:utt2num_frames")
    args = parser.parse(argv, "feats_rspecifier", "feats_wspecifier")
    copy_feats_table(args.feats_rspecifier, args.feats_wspecifier, compress=args.compress,
                     compression_method=args.compression_method, num_frames_wspec=args.write_num_frames)


def main():
    cli.run_tool(_main)
