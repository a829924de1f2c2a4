"""tfspk-export: a trained experiment dir -> SavedModel, TFLite and ONNX models that need nothing else."""
from tfspk import cli

USAGE = """tfspk-export [options] <exp-dir> <out-dir>
Writes <out-dir>/saved_model (signatures embed_wav: samples -> embedding, embed_feats: raw features +
VAD -> embedding), model.tflite, model.onnx (wav input), model_feats.onnx (feature input), export.json
(feature, VAD and CMN options, network, embedding layer, scoring back-end, calibration), conf/ (the
config files) and backend/ (the recipe's training mean, LDA and PLDA, for the --scoring back-end).
The graphs compute the features (no dither), the energy VAD, sliding CMN and voiced-frame selection
as steps/make_mfcc.sh, compute_vad_decision.sh and extract_xvectors.sh do (docs/export.md).
e.g.: tfspk-export --data-dir=data/train exp/xvector_nnet exp/xvector_nnet/export"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--data-dir", default=None,
                        help="data dir whose conf/ holds the configs used for the training features, searched after "
                             "<exp-dir>/conf/ (steps/make_*.sh copy the config there)")
    parser.add_argument("--feature-config", default=None,
                        help="config of the network's features (default: conf/{mfcc,fbank,spectrogram}.conf of "
                             "<exp-dir>, then of --data-dir)")
    parser.add_argument("--feature-type", choices=("mfcc", "fbank", "spectrogram"), default=None,
                        help="kind of features (default: the stem of the --feature-config file name)")
    parser.add_argument("--vad-mfcc-config", default=None,
                        help="MFCC config of the features the VAD is computed on (default: the feature config for "
                             "MFCC networks, else conf/mfcc.conf)")
    parser.add_argument("--vad-config", default=None,
                        help="compute-vad config (default: conf/vad.conf); 'none' keeps every frame")
    parser.add_argument("--embedding-layer", choices=("a", "b"), default="a",
                        help="a: first segment layer's affine output (Kaldi's x-vector); b: last segment layer "
                             "(default: a)")
    cli.add_bool(parser, "--apply-cmn", True, "apply sliding CMN (centred, no variance normalisation)")
    parser.add_argument("--cmn-window", type=int, default=300, help="sliding CMN window in frames (default: 300)")
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
    parser.add_argument("exp_dir")
    parser.add_argument("out_dir")
    args = parser.parse_args(argv)
    import os
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    from tfspk.export.export import default_options, export
    options = default_options(args.exp_dir, data_dir=args.data_dir, feature_config=args.feature_config,
                              feature_type=args.feature_type, vad_mfcc_config=args.vad_mfcc_config,
                              vad_config=args.vad_config, embedding_layer=args.embedding_layer,
                              apply_cmn=args.apply_cmn, cmn_window=args.cmn_window,
                              min_chunk_size=args.min_chunk_size, calibration=args.calibration,
                              tflite=args.tflite, onnx=args.onnx, scoring=args.scoring,
                              backend_dir=args.backend_dir)
    cli.log(f"features: {options.feature_type} from {options.feature_config}; VAD: "
            + (f"{options.vad_config} on {options.vad_feature_config or options.feature_config}"
               if options.vad_config else "none") + f"; scoring: {options.scoring}"
            + (f" from {options.backend_dir}" if options.backend_dir else ""))
    export(args.exp_dir, args.out_dir, options)
    cli.log(f"exported {args.exp_dir} to {args.out_dir}")


def main():
    cli.run_tool(_main)
