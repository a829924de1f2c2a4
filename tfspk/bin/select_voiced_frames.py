"""tfspk-select-voiced-frames: Kaldi select-voiced-frames."""
from tfspk import cli
from tfspk.features.commands import select_voiced_table

USAGE = """tfspk-select-voiced-frames [options] <feats-rspecifier> <vad-rspecifier> <feats-wspecifier>
 e.g.: tfspk-select-voiced-frames scp:feats.scp scp,s,cs:vad.scp ark:-"""

DESCRIPTION = """Keep the frames whose VAD value is 1 (as Kaldi's select-voiced-frames). Utterances with no
voiced frame are left out with a warning; a missing VAD entry or a different number of frames is
an error. tfspk additions: --compress, --compression-method and --write-num-frames as copy-feats."""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    cli.add_bool(parser, "--compress", False, "write Kaldi compressed matrices (as copy-feats --compress)")
    parser.add_argument("--compression-method", type=int, default=1,
                        help="as copy-feats: 1 automatic, 2 speech-feature, 3 two-byte, 5 one-byte (default: 1)")
    parser.add_argument("--write-num-frames", metavar="WSPECIFIER",
                        help="wspecifier to write the number of voiced frames per utterance")
    args = parser.parse(argv, "feats_rspecifier", "vad_rspecifier", "feats_wspecifier")
    select_voiced_table(args.feats_rspecifier, args.vad_rspecifier, args.feats_wspecifier,
                        compress=args.compress, compression_method=args.compression_method,
                        num_frames_wspec=args.write_num_frames)


def main():
    cli.run_tool(_main)
