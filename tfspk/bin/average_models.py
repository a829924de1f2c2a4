"""tfspk-average-models: average several x-vector weights files into one (checkpoint averaging)."""
from tfspk import cli
from tfspk.errors import ToolError

USAGE = """tfspk-average-models [options] <weights-out> <weights-in-1> [<weights-in-2> ...]
   or: tfspk-average-models [options] --exp-dir=<exp> --last=N
 e.g.: tfspk-average-models exp/xv/final/model.weights.h5 exp/xv/final/epoch-{8,9,10}.weights.h5
       tfspk-average-models --exp-dir=exp/xv --last=3   (writes <exp>/final/model.weights.h5)"""


def _main(argv):
    import os
    from tfspk.train.average import average_weight_files, epoch_weight_files
    parser = cli.KaldiArgumentParser(USAGE, description="Element-wise mean of Keras .weights.h5 files of one "
                                     "network (batch-norm statistics included), as [Wang2023] averages the "
                                     "last epochs' models.")
    parser.add_argument("--exp-dir", default="", help="experiment dir: average its final/epoch-<n>.weights.h5")
    parser.add_argument("--last", type=int, default=0, help="with --exp-dir: average the last N epochs")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args(argv)
    if args.exp_dir:
        if args.files or args.last < 1:
            parser.error("--exp-dir needs --last=N (N >= 1) and no file arguments")
        available = epoch_weight_files(os.path.join(args.exp_dir, "final"))
        if len(available) < args.last:
            raise ToolError(f"{args.exp_dir}/final has {len(available)} epoch weight files, --last={args.last} "
                            "needs more (train with schedule.average_last=N to keep them)")
        average_weight_files(available[-args.last:], os.path.join(args.exp_dir, "final", "model.weights.h5"))
        return
    if len(args.files) < 2:
        parser.error("need an output and at least one input weights file")
    average_weight_files(args.files[1:], args.files[0])


def main():
    cli.run_tool(_main)
