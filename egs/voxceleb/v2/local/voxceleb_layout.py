"""Shared helpers of the VoxCeleb data preparation scripts: walk the corpus layout, write data dirs.

VoxCeleb stores one utterance per file as <speaker id>/<YouTube video id>/<5-digit index>.<ext>
under a root directory (wav/ for VoxCeleb1, aac/ for VoxCeleb2). Kaldi's utterance id is
<speaker>-<video>-<index>, so utterances sort under their speaker (egs/voxceleb/v2 make_voxceleb*.pl).
"""
import os
import re
from pathlib import Path

from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_open

SPEAKER_DIR = re.compile(r"id\d{5}")


def utt_id(speaker, video, stem):
    return f"{speaker}-{video}-{stem}"


def find_audio_root(root, candidates, what):
    """First of ``root/<candidate>`` that is a directory, else a ToolError describing the layout."""
    root = Path(root)
    if not root.is_dir():
        raise ToolError(f"{what} directory {root} does not exist")
    for candidate in candidates:
        if (root / candidate).is_dir():
            return root / candidate
    tried = ", ".join(str(root / c) for c in candidates)
    raise ToolError(f"{what}: no audio directory found (tried {tried}); expected the official layout "
                    f"<root>/{candidates[0]}/idXXXXX/<video>/NNNNN.<ext>")


def list_utterances(audio_root, extension, what):
    """Walk audio_root/idXXXXX/<video>/*.<extension>; return sorted (utt, speaker, path).

    Anything else at the speaker level (files, directories not named idNNNNN) is a layout error,
    because it usually means the archive was unpacked one level too high or too low.
    """
    audio_root = Path(audio_root)
    entries = sorted(os.scandir(audio_root), key=lambda e: e.name)
    speakers = [e for e in entries if e.is_dir() and SPEAKER_DIR.fullmatch(e.name)]
    strays = [e.name for e in entries if not (e.is_dir() and SPEAKER_DIR.fullmatch(e.name))
              and not e.name.startswith(".")]
    if strays or not speakers:
        example = f"found '{strays[0]}'" if strays else "found no idNNNNN directory"
        raise ToolError(f"{what}: {audio_root} should contain only speaker directories idNNNNN/<video>/"
                        f"NNNNN.{extension}; {example}")
    rows = []
    for speaker in speakers:
        for video in sorted(os.scandir(speaker.path), key=lambda e: e.name):
            if not video.is_dir():
                raise ToolError(f"{what}: {video.path} is a file; expected <speaker>/<video>/NNNNN.{extension}")
            files = sorted(f for f in os.listdir(video.path) if f.endswith("." + extension))
            for name in files:
                stem = name[: -len(extension) - 1]
                rows.append((utt_id(speaker.name, video.name, stem), speaker.name,
                             os.path.join(os.path.abspath(video.path), name)))
    if not rows:
        raise ToolError(f"{what}: no *.{extension} file under {audio_root}/idNNNNN/<video>/")
    return rows


def write_data_dir(data_dir, rows, wav_value):
    """rows: sorted (utt, speaker, path); wav_value(path) -> the wav.scp value. Writes wav.scp,
    utt2spk and spk2utt (last, so a complete directory has it)."""
    os.makedirs(data_dir, exist_ok=True)
    spk2utt = {}
    for utt, speaker, _ in rows:
        spk2utt.setdefault(speaker, []).append(utt)
    with atomic_open(os.path.join(data_dir, "wav.scp"), encoding="utf-8") as handle:
        handle.writelines(f"{utt} {wav_value(path)}\n" for utt, _, path in rows)
    with atomic_open(os.path.join(data_dir, "utt2spk"), encoding="utf-8") as handle:
        handle.writelines(f"{utt} {speaker}\n" for utt, speaker, _ in rows)
    with atomic_open(os.path.join(data_dir, "spk2utt"), encoding="utf-8") as handle:
        handle.writelines(f"{spk} {' '.join(utts)}\n" for spk, utts in sorted(spk2utt.items()))
