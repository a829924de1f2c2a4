"""tfspk-ivector-subtract-global-mean: Kaldi ivector-subtract-global-mean."""
from tfspk import cli
from tfspk.backend import kaldi_objects, tables, vectors
from tfspk.errors import ToolError

USAGE = """tfspk-ivector-subtract-global-mean [options] [<mean-rxfilename>] <ivector-rspecifier> <ivector-wspecifier>
e.g.: tfspk-ivector-subtract-global-mean scp:ivectors.scp ark:-
      tfspk-ivector-subtract-global-mean mean.vec scp:ivectors.scp ark:-"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Copy vectors, subtracting the global mean (read from "
                                     "<mean-rxfilename>, or the mean of the input vectors).")
    cli.add_bool(parser, "--subtract-mean", True, "if false, just copy the input")
    parser.add_argument("args", nargs="+", metavar="ARG")
    args = parser.parse_args(argv)
    if len(args.args) not in (2, 3):
        parser.error(f"expected 2 or 3 arguments, got {len(args.args)}")
    *mean_file, rspec, wspec = args.args
    keys, matrix = tables.load_vectors(rspec)
    if mean_file:
        mean = kaldi_objects.read_vector(mean_file[0])
        if mean.shape[0] != matrix.shape[1]:
            raise ToolError(f"dimension mismatch: mean {mean_file[0]} has dimension {mean.shape[0]}, "
                            f"vectors in {rspec} have dimension {matrix.shape[1]}")
    else:
        mean = vectors.global_mean(matrix)
        cli.log(f"Read {len(keys)} iVectors.")
        cli.log(f"Norm of iVector mean was {float((mean ** 2).sum() ** 0.5):.6g}")
    if args.subtract_mean or mean_file:
        matrix = matrix - mean
    tables.write_vectors(wspec, keys, matrix)
    cli.log(f"Wrote {len(keys)} mean-subtracted iVectors")


def main():
    cli.run_tool(_main)
