"""tfspk-identify: rank enrolled speakers for each input (open-set: 'none' below the threshold)."""
from tfspk import cli
from tfspk.bin.embed import add_model_options, load_embedder

USAGE = """tfspk-identify [options] <export-or-exp-dir> <speakers-dir> <wav-rspecifier|wav-files...> <output>
<speakers-dir>: written by tfspk-enroll (spk_xvector.scp, num_utts.ark). One line per input in <output>
(- for stdout): '<key> <decision> <spk1> <score1> <llr1> <spk2> ...', the --top-n best speakers, llr '-'
without a calibration. <decision> is the best speaker, or 'none' when its score is below --threshold, or
(no --threshold, calibrated export) its LLR below the Bayes threshold log((1 - P) / P) at --target-prior;
with neither, the best speaker (closed set).
e.g.: tfspk-identify exp/xvector_nnet/export exp/speakers scp:data/test/wav.scp -"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    add_model_options(parser)
    cli.add_bool(parser, "--vectors", False, "the inputs are one embeddings rspecifier, not audio")
    parser.add_argument("--top-n", type=int, default=5, help="speakers listed per input (default: 5)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="open set: below this score the answer is 'none' (default: the Bayes threshold on the "
                             "calibrated LLR, or none: closed set)")
    parser.add_argument("--target-prior", type=float, default=None,
                        help="prior of the Bayes threshold (default: the prior the calibration was trained for)")
    parser.add_argument("model")
    parser.add_argument("speakers")
    parser.add_argument("args", nargs="+")
    args = parser.parse_args(argv)
    if len(args.args) < 2:
        parser.error("expected <wav-rspecifier|wav-files...> <output>")
    from tfspk.export.commands import identify
    from tfspk.export.embedder import bayes_threshold
    if args.target_prior is not None:
        bayes_threshold(args.target_prior)
    embedder = load_embedder(args)
    identify(embedder, args.speakers, args.args[:-1], args.args[-1], vectors=args.vectors, top_n=args.top_n,
             threshold=args.threshold, target_prior=args.target_prior)


def main():
    cli.run_tool(_main)
