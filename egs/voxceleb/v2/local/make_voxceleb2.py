#!/usr/bin/env python3
"""Kaldi data dir for VoxCeleb2 dev (or test) (egs/voxceleb/v2 local/make_voxceleb2.pl).

Layout: <root>/<subset>/aac/idXXXXX/<video>/NNNNN.m4a (as unpacked from the official zips) or
<root>/aac/...; a copy already converted to WAV (<root>/<subset>/wav/.../NNNNN.wav) is used as is.
m4a files are decoded on the fly: wav.scp holds the pipe
  <utt> ffmpeg -v 8 -i <file>.m4a -f wav -acodec pcm_s16le - |
so ffmpeg must be on PATH when features are computed (Debian: apt-get install ffmpeg).
"""
import os
import shlex
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from voxceleb_layout import find_audio_root, list_utterances, write_data_dir  # noqa: E402

from tfspk import cli  # noqa: E402
from tfspk.errors import ToolError  # noqa: E402

USAGE = "make_voxceleb2.py <voxceleb2-root> <dev|test> <data-dir>"


def ffmpeg_pipe(path):
    return f"ffmpeg -v 8 -i {shlex.quote(path)} -f wav -acodec pcm_s16le - |"


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("root")
    parser.add_argument("subset", choices=["dev", "test"])
    parser.add_argument("data_dir")
    args = parser.parse_args(argv)
    audio_root = find_audio_root(args.root, [f"{args.subset}/aac", "aac", f"{args.subset}/wav", "wav"],
                                 f"VoxCeleb2 {args.subset}")
    is_wav = audio_root.name == "wav"
    rows = list_utterances(audio_root, "wav" if is_wav else "m4a", f"VoxCeleb2 {args.subset}")
    if not is_wav and shutil.which("ffmpeg") is None:
        cli.warn("ffmpeg is not on PATH; it decodes the m4a files when features are computed "
                 "(Debian: apt-get install ffmpeg)")
    write_data_dir(args.data_dir, rows, (lambda p: p) if is_wav else ffmpeg_pipe)
    cli.log(f"VoxCeleb2 {args.subset}: {len(rows)} utterances of {len({r[1] for r in rows})} speakers "
            f"from {audio_root} -> {args.data_dir}")


if __name__ == "__main__":
    cli.run_tool(_main)
