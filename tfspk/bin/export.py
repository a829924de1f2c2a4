"""tfspk-export: a trained experiment dir -> SavedModel, TFLite and ONNX models that need nothing else."""
from tfspk import cli

USAGE = """tfspk-export [options] <exp-dir> <out-dir>
Writes <out-dir>/saved_model (signatures embed_wav: samples -> embedding, embed_feats: raw features +
VAD -> embedding), model.tflite, model.onnx (wav input), model_feats.onnx (feature input), export.json
(feature, VAD and CMN options, network, embedding layer, calibration), features.yaml and conf/ (the
options as Kaldi config files). The front end (features, post-processing, energy VAD, CMN) is the one
tfspk-train recorded in <exp-dir>/features.yaml; the graphs compute it (no dither) as steps/make_*.sh,
compute_vad_decision.sh and extract_xvectors.sh do (docs/export.md).
e.g.: tfspk-export exp/xvector_nnet exp/xvector_nnet/export"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--embedding-layer", choices=("a", "b"), default="a",
                        help="a: first segment layer's affine output (Kaldi's x-vector); b: last segment layer "
                             "(default: a)")
    parser.add_argument("--min-chunk-size", type=int, default=25,
                        help="shorter inputs are padded to this many frames by repeating edge frames (default: 25)")
    parser.add_argument("--calibration", default=None,
                        help="linear calibration file 'a b' (llr = a * score + b), copied into the export")
    cli.add_bool(parser, "--tflite", True, "write model.tflite")
    cli.add_bool(parser, "--onnx", True, "write model.onnx and model_feats.onnx (needs tf2onnx)")
    parser.add_argument("exp_dir")
    parser.add_argument("out_dir")
    args = parser.parse_args(argv)
    import os
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    from tfspk.export.export import default_options, export
    options = default_options(args.exp_dir, embedding_layer=args.embedding_layer,
                              min_chunk_size=args.min_chunk_size, calibration=args.calibration,
                              tflite=args.tflite, onnx=args.onnx)
    front_end = options.front_end
    cli.log(f"front end of {args.exp_dir}/features.yaml: {front_end.feature_type} ({front_end.dim} dims at "
            f"{front_end.sample_rate:g} Hz), CMN {front_end.cmn}, VAD {'on' if front_end.vad else 'off'}")
    export(args.exp_dir, args.out_dir, options)
    cli.log(f"exported {args.exp_dir} to {args.out_dir}")


def main():
    cli.run_tool(_main)
