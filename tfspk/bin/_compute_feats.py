"""Command line shared by tfspk-compute-mfcc-feats, -fbank-feats, -spectrogram-feats and -speechbrain-fbank-feats."""
from tfspk import cli
from tfspk.features import options as feature_options
from tfspk.features.mfcc import FeatureExtractor
from tfspk.features.commands import compute_features_table

ADDITIONS = """

tfspk additions (so steps/make_{kind}.sh needs one process per job):
  --segments FILE            the wav.scp keys are recordings; cut each segment as extract-segments does
  --compress, --compression-method, --write-num-frames   as copy-feats does
  --dither-seed N            dithering is reproducible: noise seeded by N and the utterance key"""
DESCRIPTION = """Compute {kind} features for each utterance of a wav.scp, as Kaldi's compute-{kind}-feats
(mfcc/fbank numbers from kaldi-native-fbank, spectrograms from a numpy restatement of Kaldi's code;
audio is fed on the int16 scale as Kaldi reads it).""" + ADDITIONS


def run(argv, kind, usage, description=DESCRIPTION):
    parser = cli.KaldiArgumentParser(usage, description=description.format(kind=kind))
    feature_options.add_feature_options(parser, kind)
    cli.add_bool(parser, "--subtract-mean", False, "subtract mean of each feature file (CMS)")
    parser.add_argument("--min-duration", type=float, default=0.0,
                        help="minimum duration of segments to process, in seconds (default: 0)")
    parser.add_argument("--write-utt2dur", metavar="WSPECIFIER",
                        help="wspecifier to write the duration of each utterance in seconds, e.g. ark,t:utt2dur")
    parser.add_argument("--write-num-frames", "--write-utt2num-frames", metavar="WSPECIFIER", dest="write_num_frames",
                        help="wspecifier to write the number of frames of each utterance, e.g. ark,t:utt2num_frames")
    cli.add_bool(parser, "--compress", False, "write Kaldi compressed matrices (as copy-feats --compress)")
    parser.add_argument("--compression-method", type=int, default=1,
                        help="as copy-feats: 1 automatic, 2 speech-feature, 3 two-byte, 5 one-byte (default: 1)")
    parser.add_argument("--segments", metavar="FILE",
                        help="segments file 'utt recording start end' (wav.scp keys are recordings)")
    parser.add_argument("--min-segment-length", type=float, default=0.1,
                        help="with --segments: leave out segments shorter than this, in seconds (default: 0.1)")
    parser.add_argument("--dither-seed", type=int, default=0, help="seed of the dithering noise (default: 0)")
    cli.add_bool(parser, "--allow-downsample", False, "if true, allow the input waveform to have a higher frequency "
                 "than --sample-frequency, and resample it (polyphase filter)")
    cli.add_bool(parser, "--allow-upsample", False, "if true, allow the input waveform to have a lower frequency "
                 "than --sample-frequency, and resample it (polyphase filter)")
    args = parser.parse(argv, "wav_rspecifier", "feats_wspecifier")
    extractor = FeatureExtractor(feature_options.options_from_args(args, kind), args.dither_seed)
    compute_features_table(extractor, args.wav_rspecifier, args.feats_wspecifier,
                           segments=args.segments, min_segment_length=args.min_segment_length,
                           subtract_mean=args.subtract_mean, min_duration=args.min_duration,
                           compress=args.compress, compression_method=args.compression_method,
                           num_frames_wspec=args.write_num_frames, utt2dur_wspec=args.write_utt2dur,
                           verbose=args.verbose, allow_downsample=args.allow_downsample,
                           allow_upsample=args.allow_upsample)


def entry_points(kind, usage, description=DESCRIPTION):
    """``(_main, main)`` of ``tfspk-compute-<kind>-feats`` (the tool modules differ only in kind, usage and,
    for a feature type Kaldi lacks, the description)."""
    def _main(argv):
        run(argv, kind, usage, description)

    def main():
        cli.run_tool(_main)
    return _main, main
