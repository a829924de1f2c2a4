"""tfspk-apply-cmvn-sliding: Kaldi apply-cmvn-sliding (sliding-window CMN, optional variance norm)."""
from tfspk import cli
from tfspk.features.cmvn import SlidingCmnOptions
from tfspk.features.commands import cmvn_sliding_table

USAGE = """tfspk-apply-cmvn-sliding [options] <feats-rspecifier> <feats-wspecifier>
 e.g.: tfspk-apply-cmvn-sliding --norm-vars=false --center=true --cmn-window=300 scp:feats.scp ark:-"""

DESCRIPTION = """Apply sliding-window cepstral mean (and optionally variance) normalization per utterance,
as Kaldi's apply-cmvn-sliding."""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    defaults = SlidingCmnOptions()
    parser.add_argument("--cmn-window", type=int, default=defaults.cmn_window,
                        help=f"window in frames for running average CMN computation (default: {defaults.cmn_window})")
    parser.add_argument("--min-cmn-window", type=int, default=defaults.min_cmn_window,
                        help="minimum CMN window used at start of decoding (adds latency only at start); "
                             f"only applicable if center == false (default: {defaults.min_cmn_window})")
    cli.add_bool(parser, "--center", defaults.center,
                 "if true, use a window centered on the current frame (to the extent possible, modulo "
                 "end effects); if false, the window is to the left")
    cli.add_bool(parser, "--norm-vars", defaults.norm_vars, "if true, normalize variance to one")
    args = parser.parse(argv, "feats_rspecifier", "feats_wspecifier")
    opts = SlidingCmnOptions(args.cmn_window, args.min_cmn_window, args.center, args.norm_vars)
    cmvn_sliding_table(args.feats_rspecifier, args.feats_wspecifier, opts)


def main():
    cli.run_tool(_main)
