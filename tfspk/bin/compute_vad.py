"""tfspk-compute-vad: Kaldi compute-vad (energy-based voice activity detection)."""
from tfspk import cli
from tfspk.features.commands import compute_vad_table
from tfspk.features.vad import VadOptions

USAGE = """tfspk-compute-vad [options] <feats-rspecifier> <vad-wspecifier>
 e.g.: tfspk-compute-vad --config=conf/vad.conf scp:feats.scp ark,scp:vad.ark,vad.scp"""

DESCRIPTION = """Energy-based voice activity detection, as Kaldi's compute-vad: one vector per utterance,
1.0 for voiced frames and 0.0 otherwise. Column 0 of the features must be the log energy
(MFCC with --use-energy=true)."""

# the fields of VadOptions as options, with Kaldi's help texts
_OPTIONS = (
    ("vad_energy_threshold", float, "constant term in energy threshold for VAD (also see --vad-energy-mean-scale)"),
    ("vad_energy_mean_scale", float, "if nonzero, the threshold also contains this times the mean log energy"),
    ("vad_frames_context", int, "number of frames of context on each side of the central frame, in a window "
                                "for which energy is monitored"),
    ("vad_proportion_threshold", float, "the proportion of frames in the window that must exceed the threshold"),
)


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    defaults = VadOptions()
    for name, kind, text in _OPTIONS:
        default = getattr(defaults, name)
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=default,
                            help=f"{text} (default: {default})")
    cli.add_bool(parser, "--omit-unvoiced-utts", False,
                 "if true, do not write utterances that have no voiced frames")
    args = parser.parse(argv, "feats_rspecifier", "vad_wspecifier")
    opts = VadOptions(**{name: getattr(args, name) for name, _, _ in _OPTIONS})
    compute_vad_table(args.feats_rspecifier, args.vad_wspecifier, opts, args.omit_unvoiced_utts)


def main():
    cli.run_tool(_main)
