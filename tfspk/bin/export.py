"""tfspk-export: a trained experiment dir -> SavedModel, TFLite and ONNX models that need nothing else."""
from tfspk import cli

USAGE = """tfspk-export [options] <exp-dir> <out-dir>
Writes <out-dir>/saved_model (signatures embed_wav: samples -> embedding, embed_feats: raw features +
VAD -> embedding), model.tflite, model.onnx (wav input), model_feats.onnx (feature input), export.json
(feature, VAD and CMN options, network, embedding layer, scoring back-end, calibration), features.yaml,
conf/ (the options as Kaldi config files) and backend/ (the recipe's training mean, LDA and PLDA, for the
--scoring back-end). The front end (features, post-processing, energy VAD, CMN) is the one tfspk-train
recorded in <exp-dir>/features.yaml; the graphs compute it (no dither) as steps/make_*.sh,
compute_vad_decision.sh and extract_xvectors.sh do (docs/export.md).
e.g.: tfspk-export exp/xvector_nnet exp/xvector_nnet/export"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--embedding-layer", choices=("a", "b"), default="a",
                        help="a: first segment layer's affine output (Kaldi's x-vector); b: last segment layer "
                             "(default: a)")
    parser.add_argument("--min-chunk-size", type=int, default=25,
                        help="shorter inputs are padded to this many frames by repeating edge frames (default: 25)")
    parser.add_argument("--scoring", choices=("cosine", "centred-cosine", "plda"), default=None,
                        help="how the export scores two embeddings, as the recipe's back-end stage: plda (mean, LDA, "
                             "length norm, PLDA), centred-cosine (cosine after the training mean), cosine (raw) "
                             "(default: plda if --backend-dir has a plda, centred-cosine if only mean.vec, else cosine)")
    parser.add_argument("--backend-dir", default=None,
                        help="directory with the recipe's mean.vec, transform.mat and plda (default: "
                             "<exp-dir>/xvectors_train when it has them)")
    parser.add_argument("--calibration", default=None,
                        help="the calibration model tfspk-calibrate wrote for scores of the same --scoring back-end "
                             "(llr = scale * score + offset), copied into the export")
    cli.add_bool(parser, "--tflite", True, "write model.tflite")
    cli.add_bool(parser, "--onnx", True, "write model.onnx and model_feats.onnx (needs tf2onnx)")
    args = parser.parse(argv, "exp_dir", "out_dir")
    import os
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    from tfspk.export.export import default_options, export
    options = default_options(args.exp_dir, embedding_layer=args.embedding_layer,
                              min_chunk_size=args.min_chunk_size, calibration=args.calibration,
                              tflite=args.tflite, onnx=args.onnx, scoring=args.scoring,
                              backend_dir=args.backend_dir)
    front_end = options.front_end
    cli.log(f"front end of {args.exp_dir}/features.yaml: {front_end.feature_type} ({front_end.dim} dims at "
            f"{front_end.sample_rate:g} Hz), CMN {front_end.cmn}, VAD {'on' if front_end.vad else 'off'}; "
            f"scoring: {options.scoring}" + (f" from {options.backend_dir}" if options.backend_dir else ""))
    export(args.exp_dir, args.out_dir, options)
    cli.log(f"exported {args.exp_dir} to {args.out_dir}")


def main():
    cli.run_tool(_main)
