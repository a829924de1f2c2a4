"""tfspk-embed: speaker embeddings (or a pair's score) from an exported model, without the training code."""
from tfspk import cli

USAGE = """tfspk-embed [options] <export-or-exp-dir> <wav-rspecifier|wav-files...> <wspecifier>
   or: tfspk-embed [options] --compare <export-or-exp-dir> <a.wav> <b.wav>
The model is a tfspk-export dir, or an experiment dir (exported on the fly from its features.yaml).
--output-format=ark: <wspecifier> is Kaldi's (ark:f.ark, ark,scp:f.ark,f.scp, ark,t:-);
npy: a .npy file [N, D] with the keys in <file>.keys; text: 'key  [ v1 ... ]' lines (- for stdout).
With --compare: prints the score of the export's back-end (PLDA, centred or raw cosine), the LLR if the
export is calibrated (llr = a * score + b) and the Bayes decision at --target-prior (threshold
log((1 - P) / P); default P: the prior the calibration was trained for, tfspk-calibrate's 0.5 by default).
Audio at another sample rate than the model's is resampled (--allow-resample=false: an error).
e.g.: tfspk-embed exp/xvector_nnet/export scp:data/test/wav.scp ark,scp:xv.ark,xv.scp
      tfspk-embed --compare exp/xvector_nnet/export a.wav b.wav"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--output-format", choices=("ark", "npy", "text"), default="ark",
                        help="how embeddings are written (default: ark)")
    add_model_options(parser)
    cli.add_bool(parser, "--compare", False, "score two wav files instead of writing embeddings")
    parser.add_argument("--target-prior", type=float, default=None,
                        help="target prior of the Bayes decision with --compare (default: the prior the export's "
                             "calibration was trained for)")
    parser.add_argument("model")
    parser.add_argument("args", nargs="+")
    args = parser.parse_args(argv)
    from tfspk.export.commands import compare, embed_to_output, format_comparison, log_done
    from tfspk.export.embedder import bayes_threshold
    if args.compare:
        if len(args.args) != 2:
            parser.error("--compare takes exactly two wav files")
        if args.target_prior is not None:
            bayes_threshold(args.target_prior)
        embedder = load_embedder(args)
        print(format_comparison(compare(embedder, *args.args, target_prior=args.target_prior)))
        return
    if len(args.args) < 2:
        parser.error("expected <wav-rspecifier|wav-files...> <wspecifier>")
    embedder = load_embedder(args)
    log_done(embed_to_output(embedder, args.args[:-1], args.args[-1], args.output_format), args.args[-1])


def add_model_options(parser) -> None:
    """The options of every tool that runs an export (tfspk-embed, tfspk-enroll, tfspk-identify)."""
    parser.add_argument("--backend", choices=("auto", "saved_model", "tflite", "onnx"), default="auto",
                        help="runtime of the exported model; auto: the fastest the export has, onnx > tflite > "
                             "saved_model (default: auto)")
    parser.add_argument("--num-threads", type=int, default=0, help="threads of the runtime; 0: its default (default: 0)")
    cli.add_bool(parser, "--allow-resample", True, "resample audio at another rate than the model's (polyphase "
                 "filter); false: a rate mismatch is an error")


def load_embedder(args):
    """The Embedder of ``args.model`` with the options of :func:`add_model_options`; says which runtime runs."""
    from tfspk.export.embedder import Embedder
    embedder = Embedder(args.model, backend=args.backend, num_threads=args.num_threads or None,
                        allow_resample=args.allow_resample)
    cli.log(f"model {args.model}: {embedder.backend} runtime, {embedder.scoring} scoring"
            + (", calibrated" if embedder.calibration else ""))
    return embedder


def main():
    cli.run_tool(_main)
