"""tfspk-embed: speaker embeddings (or a pair's score) from an exported model, without the training code."""
from tfspk import cli

USAGE = """tfspk-embed [options] <export-or-exp-dir> <wav-rspecifier|wav-files...> <wspecifier>
   or: tfspk-embed [options] --compare <export-or-exp-dir> <a.wav> <b.wav>
The model is a tfspk-export dir, or an experiment dir (exported on the fly from its features.yaml).
--output-format=ark: <wspecifier> is Kaldi's (ark:f.ark, ark,scp:f.ark,f.scp, ark,t:-);
npy: a .npy file [N, D] with the keys in <file>.keys; text: 'key  [ v1 ... ]' lines (- for stdout).
With --compare: prints the cosine score, the LLR if the export is calibrated (llr = a * score + b) and the
Bayes decision at --target-prior (threshold log((1 - P) / P)).
e.g.: tfspk-embed exp/xvector_nnet/export scp:data/test/wav.scp ark,scp:xv.ark,xv.scp
      tfspk-embed --compare exp/xvector_nnet/export a.wav b.wav"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--output-format", choices=("ark", "npy", "text"), default="ark",
                        help="how embeddings are written (default: ark)")
    parser.add_argument("--backend", choices=("saved_model", "tflite", "onnx"), default="saved_model",
                        help="runtime of the exported model (default: saved_model)")
    parser.add_argument("--num-threads", type=int, default=0, help="threads of the runtime; 0: its default (default: 0)")
    cli.add_bool(parser, "--compare", False, "score two wav files instead of writing embeddings")
    parser.add_argument("--target-prior", type=float, default=0.01,
                        help="target prior of the Bayes decision with --compare (default: 0.01)")
    parser.add_argument("model")
    parser.add_argument("args", nargs="+")
    args = parser.parse_args(argv)
    from tfspk.export.commands import compare, embed_to_output, format_comparison, log_done
    from tfspk.export.embedder import Embedder, bayes_threshold
    if args.compare:
        if len(args.args) != 2:
            parser.error("--compare takes exactly two wav files")
        bayes_threshold(args.target_prior)
        embedder = Embedder(args.model, backend=args.backend, num_threads=args.num_threads or None)
        print(format_comparison(compare(embedder, *args.args, target_prior=args.target_prior), args.target_prior))
        return
    if len(args.args) < 2:
        parser.error("expected <wav-rspecifier|wav-files...> <wspecifier>")
    embedder = Embedder(args.model, backend=args.backend, num_threads=args.num_threads or None)
    log_done(embed_to_output(embedder, args.args[:-1], args.args[-1], args.output_format), args.args[-1])


def main():
    cli.run_tool(_main)
