"""tfspk-extract: x-vectors from a trained experiment dir (Kaldi nnet3-xvector-compute semantics)."""
from tfspk import cli

USAGE = """tfspk-extract [options] <exp-dir> <feats-rspecifier> <vad-rspecifier|none> <xvector-wspecifier> [<feats-rspecifier> <vad-rspecifier|none> <xvector-wspecifier> ...]
Raw features go through the CMN of the network's front end (<exp-dir>/features.yaml: sliding over its window,
centred, no variance normalisation; --apply-cmn/--cmn-window override it) and voiced-frame selection with the
VAD, as for training; then chunks of --chunk-size frames (-1: whole utterance) are
embedded and averaged weighted by their length (chunks shorter than --min-chunk-size are padded by
repeating edge frames; --pad-input=false leaves them unpadded and stops with an error naming an
utterance shorter than the network's minimum number of frames).
More triples of <feats-rspecifier> <vad-rspecifier|none> <xvector-wspecifier> extract more tables with the
same network, each into its own output exactly as a run of its own would (one start of TensorFlow, not one each).
e.g.: tfspk-extract exp/xvector_nnet scp:data/test/feats.scp scp:data/test/vad.scp \\
        ark,scp:exp/xvectors_test/xvector.1.ark,exp/xvectors_test/xvector.1.scp"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--chunk-size", type=int, default=-1,
                        help="frames per chunk; -1 means the whole utterance (default: -1)")
    parser.add_argument("--min-chunk-size", type=int, default=25,
                        help="chunks shorter than this are padded to it (default: 25)")
    cli.add_bool(parser, "--pad-input", True, "pad chunks shorter than --min-chunk-size by repeating their edge "
                 "frames (Kaldi nnet3-xvector-compute); false: an utterance below the network's minimum frames "
                 "is an error")
    parser.add_argument("--embedding-layer", choices=("a", "b"), default="a",
                        help="a: affine output of the first segment layer (Kaldi's x-vector); "
                             "b: output of the last segment layer (the loss input) (default: a)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="chunks of equal length run through the network together (default: 32)")
    parser.add_argument("--cmn-window", type=int, default=None,
                        help="sliding CMN window in frames (default: the front end's, <exp-dir>/features.yaml; 300 "
                             "without one)")
    cli.add_bool(parser, "--apply-cmn", None, "apply sliding CMN (centred, no variance normalisation) first; default: "
                 "as <exp-dir>/features.yaml says (true without one)")
    cli.add_bool(parser, "--allow-unfinished", False,
                 "use the model of a training that did not finish (no <exp-dir>/final/DONE), with a warning")
    parser.add_argument("--num-threads", type=int, default=2,
                        help="threads reading and preparing features ahead of the network (default: 2)")
    parser.add_argument("--use-gpu", choices=("no", "yes", "optional", "wait", "false", "true"), default="no",
                        help="Kaldi-style: no hides GPUs from TensorFlow; yes/optional/wait use one if present "
                             "(default: no)")
    for name in ("exp_dir", "feats_rspecifier", "vad_rspecifier", "xvector_wspecifier"):
        parser.add_argument(name)
    parser.add_argument("more_tables", nargs="*", help="further tables to extract, three arguments each: "
                        "<feats-rspecifier> <vad-rspecifier|none> <xvector-wspecifier>")
    args = parser.parse(argv)
    if len(args.more_tables) % 3:
        parser.error(f"further tables take three arguments each (<feats-rspecifier> <vad-rspecifier|none> "
                     f"<xvector-wspecifier>); got {len(args.more_tables)}: {' '.join(args.more_tables)}")
    tables = [(args.feats_rspecifier, args.vad_rspecifier, args.xvector_wspecifier)]
    tables += [tuple(args.more_tables[i:i + 3]) for i in range(0, len(args.more_tables), 3)]
    if args.use_gpu in ("no", "false"):
        import os
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    from tfspk.extract import extract_to_archive, load_extractor
    from tfspk.extract.run import recorded_cmn
    apply_cmn, cmn_window = recorded_cmn(args.exp_dir, args.apply_cmn, args.cmn_window)
    extractor = load_extractor(args.exp_dir, allow_unfinished=args.allow_unfinished,
                               embedding_layer=args.embedding_layer, chunk_size=args.chunk_size,
                               min_chunk_size=args.min_chunk_size, batch_size=args.batch_size,
                               pad_input=args.pad_input)
    for feats_rspecifier, vad_rspecifier, xvector_wspecifier in tables:
        extractor.num_done = extractor.num_skipped = 0   # the counts of extract_to_archive are per table
        extract_to_archive(extractor, feats_rspecifier, None if vad_rspecifier == "none" else vad_rspecifier,
                           xvector_wspecifier, apply_cmn=apply_cmn, cmn_window=cmn_window,
                           num_threads=max(1, args.num_threads))


def main():
    cli.run_tool(_main)
