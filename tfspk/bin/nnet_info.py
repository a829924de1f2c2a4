"""tfspk-nnet-info: per-layer shapes and parameters of a network (Kaldi nnet3-info)."""
from tfspk import cli

USAGE = """tfspk-nnet-info [options] <exp-dir|config.yaml>
Prints the network, feature dimension, minimum frames, embedding dimension, total parameters, then one
line per layer: name, type, output shape (None: batch and frame axes), parameters.
A training config (no feat_dim key) needs --feat-dim.
e.g.: tfspk-nnet-info exp/xvector_nnet
      tfspk-nnet-info --feat-dim=80 conf/ecapa_tdnn_c1024.yaml"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--feat-dim", type=int, default=None,
                        help="feature dimension (default: the feat_dim key of the experiment's config.yaml)")
    parser.add_argument("source", metavar="exp-dir|config.yaml")
    args = parser.parse_args(argv)
    from tfspk.nnet.info import info_from_path
    print(info_from_path(args.source, args.feat_dim).format())


def main():
    cli.run_tool(_main)
