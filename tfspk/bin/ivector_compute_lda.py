"""tfspk-ivector-compute-lda: Kaldi ivector-compute-lda."""
from tfspk import cli
from tfspk.backend import kaldi_objects, lda, tables
from tfspk.errors import ToolError

USAGE = """tfspk-ivector-compute-lda [options] <ivector-rspecifier> <utt2spk-rspecifier> <lda-matrix-out>
e.g.: tfspk-ivector-compute-lda --dim=200 "ark:tfspk-ivector-subtract-global-mean scp:xvector.scp ark:- |" \\
        ark:data/train/utt2spk transform.mat"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Compute an affine LDA transform [L | -L mean] from "
                                     "utterance vectors and utt2spk (within-class covariance made unit).")
    parser.add_argument("--dim", type=int, default=100, help="dimension kept by the LDA transform (default: 100)")
    parser.add_argument("--total-covariance-factor", type=float, default=0.0,
                        help="0: make the within-class covariance unit; 1: the total covariance; "
                             "between: an interpolation (default: 0.0)")
    parser.add_argument("--covariance-floor", type=float, default=1e-6,
                        help="floor the eigenvalues of the interpolated covariance to this times the "
                             "largest one (default: 1e-06)")
    cli.add_bool(parser, "--binary", True, "write the matrix in binary mode")
    parser.add_argument("ivector_rspecifier")
    parser.add_argument("utt2spk_rspecifier")
    parser.add_argument("lda_wxfilename")
    args = parser.parse_args(argv)
    utt2spk = tables.read_utt2spk(args.utt2spk_rspecifier)
    keys, matrix = tables.load_vectors(args.ivector_rspecifier)
    kept = [i for i, key in enumerate(keys) if key in utt2spk]
    for key in (k for k in keys if k not in utt2spk):
        cli.warn(f"utt2spk has no entry for utterance {key}, skipping it.")
    cli.log(f"Read {len(kept)} utterances, {len(keys) - len(kept)} with errors.")
    if not kept:
        raise ToolError(f"Did not read any utterances: no key of {args.ivector_rspecifier} is in "
                        f"{args.utt2spk_rspecifier}")
    result = lda.compute_lda(matrix[kept], [utt2spk[keys[i]] for i in kept], args.dim,
                             args.total_covariance_factor, args.covariance_floor)
    cli.log(f"Stats have {result.num_speakers} speakers, {result.num_utterances} utterances.")
    if result.num_floored:
        cli.warn(f"Floored {result.num_floored} eigenvalues of covariance")
    kaldi_objects.write_matrix(args.lda_wxfilename, result.transform, binary=args.binary)
    cli.log(f"Wrote LDA transform to {args.lda_wxfilename}")


def main():
    cli.run_tool(_main)
