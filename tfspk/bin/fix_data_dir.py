"""tfspk-fix-data-dir: sort and filter a data directory to consistent keys (Kaldi utils/fix_data_dir.sh)."""
from tfspk import cli
from tfspk.io import datadir

USAGE = "tfspk-fix-data-dir [--utt-extra-files 'f1 f2'] [--spk-extra-files 'f1 f2'] <data-dir>"
DESCRIPTION = """Makes the files of a data directory sorted (LC_ALL=C), unique and consistent: keeps
the utterances present in utt2spk and every per-utterance file (feats.scp, vad.scp, utt2num_frames,
utt2dur, segments, wav.scp, ...), filters per-speaker and per-recording files, rebuilds spk2utt.
The original files are kept in <data-dir>/.backup.
e.g.: tfspk-fix-data-dir data/train"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    parser.add_argument("--utt-extra-files", default="", help="more files keyed by utterance (space separated)")
    parser.add_argument("--spk-extra-files", default="", help="more files keyed by speaker (space separated)")
    args = parser.parse(argv, "data_dir")
    report = datadir.fix_data_dir(args.data_dir, utt_extra_files=args.utt_extra_files.split(),
                                  spk_extra_files=args.spk_extra_files.split())
    for message in report.messages:
        cli.log(message)


def main():
    cli.run_tool(_main)
