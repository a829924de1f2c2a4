#!/usr/bin/env python3
"""Kaldi data dirs and trial lists for VoxCeleb1 (egs/voxceleb/v2 local/make_voxceleb1_v2.pl).

Layout: <root>/wav/idXXXXX/<video>/NNNNN.wav (the dev and test zips unpacked into one wav/), or Kaldi's
<root>/dev/wav/... + <root>/test/wav/.... Trial lists are looked for in --trials-dir (default: <root>):
  VoxCeleb1-O  veri_test2.txt      (cleaned; veri_test.txt, the original, when the cleaned one is absent)
  VoxCeleb1-E  list_test_all2.txt  (cleaned; list_test_all.txt)
  VoxCeleb1-H  list_test_hard2.txt (cleaned; list_test_hard.txt)
Output under <data-dir>:
  voxceleb1        every utterance, with trials_E and trials_H when those lists exist
  voxceleb1_test   the speakers of the VoxCeleb1-O list, with trials_O
  voxceleb1_train  every other speaker (the VoxCeleb1 dev ids)
Trials are Kaldi's "<enroll-utt> <test-utt> target|nontarget", in the order of the official list.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from voxceleb_layout import find_audio_root, list_utterances, write_data_dir  # noqa: E402

from tfspk import cli  # noqa: E402
from tfspk.errors import ToolError  # noqa: E402
from tfspk.io.atomic import atomic_open  # noqa: E402

USAGE = "make_voxceleb1.py [--trials-dir DIR] <voxceleb1-root> <data-dir>"
TRIAL_LISTS = {"O": ["veri_test2.txt", "veri_test.txt"],
               "E": ["list_test_all2.txt", "list_test_all.txt"],
               "H": ["list_test_hard2.txt", "list_test_hard.txt"]}


def audio_roots(root):
    if os.path.isdir(os.path.join(root, "dev", "wav")) or os.path.isdir(os.path.join(root, "test", "wav")):
        return [d for d in (os.path.join(root, "dev", "wav"), os.path.join(root, "test", "wav")) if os.path.isdir(d)]
    return [str(find_audio_root(root, ["wav"], "VoxCeleb1"))]


def path_to_utt(relative, where):
    """'id10270/x6uYqmx31kE/00001.wav' -> 'id10270-x6uYqmx31kE-00001'."""
    parts = relative.split("/")
    if len(parts) != 3 or not parts[2].endswith(".wav"):
        raise ToolError(f"{where}: expected idXXXXX/<video>/NNNNN.wav, got '{relative}'")
    return f"{parts[0]}-{parts[1]}-{parts[2][:-4]}"


def read_trial_list(path, known_utts):
    """Official list lines '<1|0> <enroll path> <test path>' -> [(enroll, test, target|nontarget)]."""
    trials, missing = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            where = f"{path}:{number}"
            fields = line.split()
            if len(fields) != 3 or fields[0] not in ("0", "1"):
                raise ToolError(f"{where}: expected '<1|0> idXXXXX/<video>/NNNNN.wav idXXXXX/<video>/NNNNN.wav', "
                                f"got '{line.strip()}'")
            enroll, test = path_to_utt(fields[1], where), path_to_utt(fields[2], where)
            for utt in (enroll, test):
                if utt not in known_utts:
                    missing.append((where, utt))
            trials.append((enroll, test, "target" if fields[0] == "1" else "nontarget"))
    if not trials:
        raise ToolError(f"{path} is empty")
    if missing:
        raise ToolError(f"{missing[0][0]}: utterance {missing[0][1]} is not in the corpus "
                        f"({len(missing)} trial sides missing in all); is the VoxCeleb1 copy complete?")
    return trials


def write_trials(path, trials):
    with atomic_open(path, encoding="utf-8") as handle:
        handle.writelines(f"{a} {b} {label}\n" for a, b, label in trials)


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--trials-dir", default="", help="directory of the official trial lists (default: <root>)")
    parser.add_argument("root")
    parser.add_argument("data_dir")
    args = parser.parse_args(argv)
    trials_dir = args.trials_dir or args.root

    rows = []
    for audio_root in audio_roots(args.root):
        rows.extend(list_utterances(audio_root, "wav", "VoxCeleb1"))
    rows.sort()
    utts = {utt for utt, _, _ in rows}
    if len(utts) != len(rows):
        raise ToolError(f"VoxCeleb1 under {args.root}: the same utterance appears in dev and test")

    found = {}
    for name, candidates in TRIAL_LISTS.items():
        for candidate in candidates:
            if os.path.isfile(os.path.join(trials_dir, candidate)):
                found[name] = os.path.join(trials_dir, candidate)
                break
    if "O" not in found:
        raise ToolError(f"no VoxCeleb1-O trial list in {trials_dir} (expected veri_test2.txt or veri_test.txt "
                        "from the VoxCeleb website); it defines the test speakers, so it is required")
    trials = {name: read_trial_list(path, utts) for name, path in found.items()}
    test_speakers = {utt.split("-", 1)[0] for a, b, _ in trials["O"] for utt in (a, b)}

    out = args.data_dir
    write_data_dir(os.path.join(out, "voxceleb1"), rows, lambda p: p)
    write_data_dir(os.path.join(out, "voxceleb1_test"), [r for r in rows if r[1] in test_speakers], lambda p: p)
    train_rows = [r for r in rows if r[1] not in test_speakers]
    if not train_rows:
        raise ToolError(f"every VoxCeleb1 speaker under {args.root} is in the VoxCeleb1-O list; no dev speakers")
    write_data_dir(os.path.join(out, "voxceleb1_train"), train_rows, lambda p: p)
    write_trials(os.path.join(out, "voxceleb1_test", "trials_O"), trials["O"])
    for name in ("E", "H"):
        if name in trials:
            write_trials(os.path.join(out, "voxceleb1", f"trials_{name}"), trials[name])
    cli.log(f"VoxCeleb1: {len(rows)} utterances, {len({r[1] for r in rows})} speakers "
            f"({len(test_speakers)} in VoxCeleb1-O); trial lists: "
            + ", ".join(f"{n} ({os.path.basename(p)}, {len(trials[n])} trials)" for n, p in found.items()))


if __name__ == "__main__":
    cli.run_tool(_main)
