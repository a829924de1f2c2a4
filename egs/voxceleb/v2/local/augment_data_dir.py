#!/usr/bin/env python3
"""Make an augmented copy of a data dir whose wav.scp pipes every utterance through
local/wav_reverberate.py (egs/voxceleb/v2 stage 1 with steps/data/{reverberate,augment}_data_dir.py).

Kinds and their settings (those of the Kaldi recipe):
  reverb  a simulated RIR from RIRS_NOISES/simulated_rirs/{smallroom,mediumroom}/rir_list (0.5 / 0.5)
  noise   MUSAN noise/ in the foreground, 1 s apart, SNR 15:10:5:0 dB
  music   one MUSAN music/ file in the background, SNR 15:10:8:5 dB
  babble  3 to 7 MUSAN speech/ files in the background, SNR 20:17:15:13 dB
Utterance ids get the suffix -<kind>; speakers stay the same. Each line carries its own seed, so the
augmented audio is the same every time it is read.
"""
import glob
import os
import shlex
import zlib
from pathlib import Path

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_open

USAGE = "augment_data_dir.py --kind reverb|noise|music|babble [--rirs-noises DIR] [--musan DIR] <data-in> <data-out>"
SETTINGS = {
    "noise": {"dir": "noise", "role": "--fg-noises", "snrs": "15:10:5:0", "num_bg": None},
    "music": {"dir": "music", "role": "--bg-noises", "snrs": "15:10:8:5", "num_bg": "1"},
    "babble": {"dir": "speech", "role": "--bg-noises", "snrs": "20:17:15:13", "num_bg": "3:4:5:6:7"},
}
RIR_SETS = ["smallroom", "mediumroom"]
TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wav_reverberate.py")


def read_rirs(rirs_noises):
    """Paths of the simulated RIRs per room set; rir_list lines end with a path relative to RIRS_NOISES' parent."""
    base = Path(rirs_noises).resolve().parent
    rirs = {}
    for name in RIR_SETS:
        rirs[name] = []
        rir_list = Path(rirs_noises) / "simulated_rirs" / name / "rir_list"
        if not rir_list.is_file():
            raise ToolError(f"missing {rir_list}: --rirs-noises must be the unpacked RIRS_NOISES directory "
                            "(https://www.openslr.org/28)")
        for number, line in enumerate(rir_list.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                path = base / line.split()[-1]
                if not path.is_file():
                    raise ToolError(f"{rir_list}:{number}: RIR file {path} does not exist")
                rirs[name].append(str(path))
        if not rirs[name]:
            raise ToolError(f"{rir_list} lists no RIR")
    return rirs


def write_signal_list(musan, kind, out_dir):
    files = sorted(glob.glob(os.path.join(musan, SETTINGS[kind]["dir"], "**", "*.wav"), recursive=True))
    if not files:
        raise ToolError(f"no *.wav under {os.path.join(musan, SETTINGS[kind]['dir'])}: --musan must be the "
                        "unpacked MUSAN directory (https://www.openslr.org/17) with noise/, music/, speech/")
    path = os.path.join(os.path.abspath(out_dir), f"{kind}_signals.list")
    with atomic_open(path, encoding="utf-8") as handle:
        handle.writelines(f + "\n" for f in files)
    return path


def pipe(source, options):
    """A wav.scp value that runs the augmentation on ``source`` (a file or a pipe ending in '|')."""
    tool = "python3 " + shlex.quote(TOOL) + " " + " ".join(options)
    source = source.strip()
    if source.endswith("|"):
        return f"{source[:-1].strip()} | {tool} - - |"
    return f"{tool} {shlex.quote(source)} - |"


def read_pairs(path):
    pairs = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split(None, 1)
        if len(fields) != 2:
            raise ToolError(f"{path}:{number}: expected '<utt> <value>'")
        pairs.append((fields[0], fields[1]))
    return pairs


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--kind", required=True, choices=["reverb", "noise", "music", "babble"])
    parser.add_argument("--rirs-noises", default="", help="unpacked RIRS_NOISES dir (reverb)")
    parser.add_argument("--musan", default="", help="unpacked MUSAN dir (noise, music, babble)")
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("data_in")
    parser.add_argument("data_out")
    args = parser.parse_args(argv)
    for name in ("wav.scp", "utt2spk"):
        if not os.path.isfile(os.path.join(args.data_in, name)):
            raise ToolError(f"missing {os.path.join(args.data_in, name)}")
    os.makedirs(args.data_out, exist_ok=True)
    if args.kind == "reverb":
        if not args.rirs_noises:
            raise ToolError("--kind reverb needs --rirs-noises <RIRS_NOISES dir>")
        rirs = read_rirs(args.rirs_noises)
    else:
        if not args.musan:
            raise ToolError(f"--kind {args.kind} needs --musan <MUSAN dir>")
        signal_list = write_signal_list(args.musan, args.kind, args.data_out)
    settings = SETTINGS.get(args.kind)
    suffix = "-" + args.kind
    wav_lines = []
    for utt, source in read_pairs(os.path.join(args.data_in, "wav.scp")):
        # A per-utterance seed that does not depend on the order of the lines.
        seed = (zlib.crc32(utt.encode()) + args.seed) % (2 ** 31)
        if args.kind == "reverb":
            room_set = rirs[RIR_SETS[seed % 2]]      # small or medium room with probability 0.5 each
            options = ["--rir", shlex.quote(room_set[(seed // 2) % len(room_set)]), "--seed", str(seed)]
        else:
            options = [settings["role"], shlex.quote(signal_list), "--snrs", settings["snrs"], "--seed", str(seed)]
            if settings["num_bg"]:
                options += ["--num-bg", settings["num_bg"]]
        wav_lines.append(f"{utt}{suffix} {pipe(source, options)}")
    utt2spk = [(utt + suffix, spk) for utt, spk in read_pairs(os.path.join(args.data_in, "utt2spk"))]
    spk2utt = {}
    for utt, spk in utt2spk:
        spk2utt.setdefault(spk, []).append(utt)
    with atomic_open(os.path.join(args.data_out, "wav.scp"), encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in sorted(wav_lines))
    with atomic_open(os.path.join(args.data_out, "utt2spk"), encoding="utf-8") as handle:
        handle.writelines(f"{u} {s}\n" for u, s in sorted(utt2spk))
    with atomic_open(os.path.join(args.data_out, "spk2utt"), encoding="utf-8") as handle:
        handle.writelines(f"{s} {' '.join(sorted(us))}\n" for s, us in sorted(spk2utt.items()))
    cli.log(f"{args.kind}: {len(wav_lines)} augmented utterances -> {args.data_out}")


if __name__ == "__main__":
    cli.run_tool(_main)
