#!/usr/bin/env python3
"""Data dirs of MUSAN and RIRS_NOISES for on-the-fly augmentation (tfspk.data.augment, docs/augmentation.md):

  <data>/musan_noise   MUSAN noise/**.wav   (augment: noise_dir, foreground noises)
  <data>/musan_music   MUSAN music/**.wav   (augment: music_dir)
  <data>/musan_speech  MUSAN speech/**.wav  (augment: babble_dir)
  <data>/rirs          RIRS_NOISES/simulated_rirs/{smallroom,mediumroom}/rir_list (augment: rir_dir;
                       both sets about equally large, so a uniform draw is Kaldi's 0.5 / 0.5)

Each gets wav.scp and utt2spk (one "speaker" per recording). Keys are the paths below the MUSAN or
RIRS_NOISES root with '/' replaced by '-'. Nothing is copied or decoded.
"""
import glob
import os
from pathlib import Path

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.io.table import write_table

USAGE = "make_aug_dirs.py [--musan DIR] [--rirs-noises DIR] <data-dir>"
MUSAN_SETS = {"musan_noise": "noise", "musan_music": "music", "musan_speech": "speech"}
RIR_SETS = ["smallroom", "mediumroom"]


def musan_entries(musan, subset):
    root = os.path.join(musan, subset)
    files = sorted(glob.glob(os.path.join(root, "**", "*.wav"), recursive=True))
    if not files:
        raise ToolError(f"no *.wav under {root}: --musan must be the unpacked MUSAN directory "
                        "(https://www.openslr.org/17) with noise/, music/, speech/")
    return [(os.path.relpath(f, musan)[:-4].replace("/", "-"), os.path.abspath(f)) for f in files]


def rir_entries(rirs_noises):
    """rir_list lines end with a path relative to RIRS_NOISES' parent directory."""
    base = Path(rirs_noises).resolve().parent
    entries = []
    for name in RIR_SETS:
        rir_list = Path(rirs_noises) / "simulated_rirs" / name / "rir_list"
        if not rir_list.is_file():
            raise ToolError(f"missing {rir_list}: --rirs-noises must be the unpacked RIRS_NOISES directory "
                            "(https://www.openslr.org/28)")
        count = 0
        for number, line in enumerate(rir_list.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            path = base / line.split()[-1]
            if not path.is_file():
                raise ToolError(f"{rir_list}:{number}: RIR file {path} does not exist")
            key = str(path.resolve().relative_to(Path(rirs_noises).resolve()))[:-4].replace("/", "-")
            entries.append((key, str(path)))
            count += 1
        if not count:
            raise ToolError(f"{rir_list} lists no RIR")
    return entries


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--musan", default="", help="unpacked MUSAN dir")
    parser.add_argument("--rirs-noises", default="", help="unpacked RIRS_NOISES dir")
    parser.add_argument("data_dir")
    args = parser.parse_args(argv)
    if not args.musan and not args.rirs_noises:
        parser.error("give --musan and/or --rirs-noises")
    made = {}
    if args.musan:
        for name, subset in MUSAN_SETS.items():
            made[name] = musan_entries(args.musan, subset)
    if args.rirs_noises:
        made["rirs"] = rir_entries(args.rirs_noises)
    for name, entries in made.items():          # all checked before anything is written
        out = os.path.join(args.data_dir, name)
        os.makedirs(out, exist_ok=True)
        write_table(os.path.join(out, "wav.scp"), entries)
        write_table(os.path.join(out, "utt2spk"), [(key, key) for key, _ in entries])
        write_table(os.path.join(out, "spk2utt"), [(key, key) for key, _ in entries])
        cli.log(f"{out}: {len(entries)} recordings")
    return 0


if __name__ == "__main__":
    cli.run_tool(_main)
