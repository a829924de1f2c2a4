"""tfspk-validate-data-dir: check a Kaldi data directory (Kaldi utils/validate_data_dir.sh)."""
from tfspk import cli
from tfspk.io import datadir

USAGE = "tfspk-validate-data-dir [--no-feats] [--no-text] [--no-wav] [--no-spk-sort] <data-dir>"
DESCRIPTION = """The --no-xxx options mean that the script does not require xxx.scp to be present,
but it will check it if it is present. text is never required (speaker-verification data has
none). --no-spk-sort: utt2spk need not be sorted by speaker-id as well as by utterance-id.
e.g.: tfspk-validate-data-dir --no-feats data/train"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    cli.add_bool(parser, "--no-feats", False, "feats.scp need not exist")
    cli.add_bool(parser, "--no-wav", False, "wav.scp need not exist")
    cli.add_bool(parser, "--no-text", True, "accepted for Kaldi compatibility; text is never required")
    cli.add_bool(parser, "--no-spk-sort", False, "do not require utt2spk sorted by speaker too")
    args = parser.parse(argv, "data_dir")
    warnings = datadir.validate_data_dir(args.data_dir, no_feats=args.no_feats, no_wav=args.no_wav,
                                         no_text=args.no_text, no_spk_sort=args.no_spk_sort)
    for warning in warnings:
        cli.warn(warning)
    cli.log(f"Successfully validated data-directory {args.data_dir}")


def main():
    cli.run_tool(_main)
