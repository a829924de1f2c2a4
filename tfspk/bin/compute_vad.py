"""tfspk-compute-vad: Kaldi compute-vad (energy-based voice activity detection)."""
from tfspk import cli
from tfspk.features.commands import compute_vad_table
from tfspk.features.vad import VadOptions

USAGE = """tfspk-compute-vad [options] <feats-rspecifier> <vad-wspecifier>
 e.g.: tfspk-compute-vad --config=conf/vad.conf scp:feats.scp ark,scp:vad.ark,vad.scp"""

DESCRIPTION = """Energy-based voice activity detection, as Kaldi's compute-vad: one vector per utterance,
1.0 for voiced frames and 0.0 otherwise. Column 0 of the features must be the log energy
(MFCC with --use-energy=true)."""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    defaults = VadOptions()
    parser.add_argument("--vad-energy-threshold", type=float, default=defaults.vad_energy_threshold,
                        help="constant term in energy threshold for VAD (also see --vad-energy-mean-scale) "
                             f"(default: {defaults.vad_energy_threshold})")
    parser.add_argument("--vad-energy-mean-scale", type=float, default=defaults.vad_energy_mean_scale,
                        help="if nonzero, the threshold also contains this times the mean log energy "
                             f"(default: {defaults.vad_energy_mean_scale})")
    parser.add_argument("--vad-frames-context", type=int, default=defaults.vad_frames_context,
                        help="number of frames of context on each side of the central frame, in a window "
                             f"for which energy is monitored (default: {defaults.vad_frames_context})")
    parser.add_argument("--vad-proportion-threshold", type=float, default=defaults.vad_proportion_threshold,
                        help="the proportion of frames in the window that must exceed the threshold "
                             f"(default: {defaults.vad_proportion_threshold})")
    cli.add_bool(parser, "--omit-unvoiced-utts", False,
                 "if true, do not write utterances that have no voiced frames")
    parser.add_argument("feats_rspecifier")
    parser.add_argument("vad_wspecifier")
    args = parser.parse_args(argv)
    opts = VadOptions(args.vad_energy_threshold, args.vad_energy_mean_scale, args.vad_frames_context,
                      args.vad_proportion_threshold)
    compute_vad_table(args.feats_rspecifier, args.vad_wspecifier, opts, args.omit_unvoiced_utts)


def main():
    cli.run_tool(_main)
