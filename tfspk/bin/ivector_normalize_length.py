"""tfspk-ivector-normalize-length: Kaldi ivector-normalize-length."""
from tfspk import cli
from tfspk.backend import tables, vectors

USAGE = """tfspk-ivector-normalize-length [options] <ivector-rspecifier> <ivector-wspecifier>
e.g.: tfspk-ivector-normalize-length ark:ivectors.ark ark:normalized_ivectors.ark"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Normalize the length of vectors to sqrt(dimension) "
                                     "(or to 1 with --scaleup=false).")
    cli.add_bool(parser, "--normalize", True, "set to false to disable normalization")
    cli.add_bool(parser, "--scaleup", True, "if true, the normalized vector is scaled up by sqrt(dim)")
    parser.add_argument("ivector_rspecifier")
    parser.add_argument("ivector_wspecifier")
    args = parser.parse_args(argv)
    keys, matrix = tables.load_vectors(args.ivector_rspecifier)
    normalized, ratios = vectors.normalize_length(matrix, scaleup=args.scaleup, normalize=args.normalize)
    for key in (k for k, r in zip(keys, ratios) if r == 0.0):
        cli.warn(f"Zero iVector for key {key}")
    tables.write_vectors(args.ivector_wspecifier, keys, normalized)
    cli.log(f"Processed {len(keys)} iVectors.")
    cli.log(f"Average ratio of iVector to expected length was {ratios.mean():.6g}, "
            f"standard deviation was {ratios.std():.6g}")


def main():
    cli.run_tool(_main)
