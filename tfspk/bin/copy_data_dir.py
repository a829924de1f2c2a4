"""tfspk-copy-data-dir: copy a data directory, optionally renaming ids (Kaldi utils/copy_data_dir.sh)."""
import os

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.io import datadir

USAGE = "tfspk-copy-data-dir [options] <srcdir> <destdir>"
DESCRIPTION = """Copies the data directory, changing utterance ids to <utt-prefix>utt<utt-suffix> and
speaker ids to <spk-prefix>spk<spk-suffix> in every file (recording ids are kept). Then validates
the copy unless --validate=false (--validate-opts is passed to the validator, e.g. "--no-wav")."""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    for name in ("--utt-prefix", "--utt-suffix", "--spk-prefix", "--spk-suffix"):
        parser.add_argument(name, default="", help=f"{name[2:].replace('-', ' ')} to add")
    parser.add_argument("--validate-opts", default="", help="options for the validation, e.g. '--no-feats'")
    cli.add_bool(parser, "--validate", True, "validate the copy")
    args = parser.parse(argv, "srcdir", "destdir")
    datadir.copy_data_dir(args.srcdir, args.destdir, utt_prefix=args.utt_prefix, utt_suffix=args.utt_suffix,
                          spk_prefix=args.spk_prefix, spk_suffix=args.spk_suffix)
    if args.validate:
        opts = args.validate_opts.split()
        unknown = [o for o in opts if o not in ("--no-feats", "--no-wav", "--no-text", "--no-spk-sort")]
        if unknown:
            raise ToolError(f"unknown --validate-opts {unknown} (expected --no-feats, --no-wav, --no-text, --no-spk-sort)")
        # as Kaldi's copy_data_dir.sh: files the source lacks are not required in the copy
        no_feats = "--no-feats" in opts or not os.path.isfile(os.path.join(args.srcdir, "feats.scp"))
        no_wav = "--no-wav" in opts or not os.path.isfile(os.path.join(args.srcdir, "wav.scp"))
        for warning in datadir.validate_data_dir(args.destdir, no_feats=no_feats, no_wav=no_wav,
                                                 no_spk_sort="--no-spk-sort" in opts):
            cli.warn(warning)
    cli.log(f"copied data from {args.srcdir} to {args.destdir}")


def main():
    cli.run_tool(_main)
