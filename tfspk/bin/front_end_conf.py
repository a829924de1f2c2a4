"""tfspk-front-end-conf: an experiment's front end (features.yaml) as Kaldi config files for the steps/ scripts."""
from tfspk import cli

USAGE = """tfspk-front-end-conf [options] <exp-dir> <conf-dir>
Writes the front end recorded in <exp-dir>/features.yaml (by tfspk-train or tfspk-import-model) as Kaldi
config files: <conf-dir>/features.conf (the feature options as at inference, --dither=0; for
steps/make_<type>.sh --<type>-config) and, when the front end applies the energy VAD, vad_mfcc.conf (the
MFCCs whose log energy it thresholds; steps/make_mfcc.sh --mfcc-config) and vad.conf
(steps/compute_vad_decision.sh --vad-config). Prints the feature type (the <type> of steps/make_<type>.sh)
on stdout. steps/make_front_end_feats.sh runs it.
e.g.: tfspk-front-end-conf exp/wespeaker_resnet34 data/eval_wespeaker_resnet34/conf"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("exp_dir")
    parser.add_argument("conf_dir")
    args = parser.parse_args(argv)
    from tfspk.features.frontend import read_front_end, write_config_files
    front_end = read_front_end(args.exp_dir)
    written = write_config_files(front_end, args.conf_dir)
    cli.log(f"front end of {args.exp_dir}: {front_end.feature_type} ({front_end.dim} dims at "
            f"{front_end.sample_rate:g} Hz), VAD {'on' if front_end.vad else 'off'}; wrote {', '.join(written)}")
    print(front_end.feature_type, flush=True)


def main():
    cli.run_tool(_main)
