"""Speed-perturbed copies of a Kaldi data dir (Kaldi's utils/data/perturb_data_dir_speed.sh), audio written out.

Each utterance of ``<srcdir>/wav.scp`` is played ``factor`` times faster with
:func:`tfspk.data.dsp.speed_perturb` (the resampling of ``sox speed``: tempo and pitch change; [Ko2015]) and
written as 16-bit PCM WAV at the source's rate. As in Kaldi, utterance and speaker ids get the prefix
``sp<factor>-`` (so each factor's speakers are new classes, as ``perturb_data_dir_speed_3way.sh`` trains them),
``utt2uniq`` maps each new utterance to its source (or to the source's own ``utt2uniq`` value), durations are
those of the new audio, and the labels of the source (``text``, ``utt2lang``, ``spk2gender``, ``spk2lang``, any
other ``utt2*`` / ``spk2*`` table) are carried with the new ids. Tables describing the unperturbed audio
(``feats.scp``, ``vad.scp``, ``cmvn.scp``, ``utt2num_frames``, VTLN warps, ``frame_shift``) are not carried:
features are computed again on the copy.

Differences from Kaldi: Kaldi writes a ``sox ... speed <factor> |`` pipe into wav.scp (every feature pass
resamples again); here the audio is computed once, one utterance at a time, into files. Data dirs with a
``segments`` file are refused (Kaldi scales the segment times and perturbs whole recordings; the demo and
voxceleb recipes have none). Factor 1 is refused: ``perturb_data_dir_speed_3way.sh`` keeps the source dir as
it is for it.

The output dir appears complete only at the end: its tables are written into a temporary dir next to it that
is renamed into place (an existing destination is removed first, after the input has been checked).
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np

from tfspk.data.dsp import speed_perturb, speed_ratio
from tfspk.errors import ToolError
from tfspk.io import audio
from tfspk.io.table import read_table, utt2spk_to_spk2utt, write_table

MIN_FACTOR, MAX_FACTOR = 0.5, 2.0
# Tables keyed by utterance or speaker that describe the unperturbed audio or its features: not carried.
NOT_CARRIED = ("feats.scp", "vad.scp", "cmvn.scp", "utt2num_frames", "utt2warp", "spk2warp", "frame_shift")
# Tables written from the new audio or ids, whatever the source has.
REMADE = ("wav.scp", "utt2spk", "spk2utt", "utt2uniq", "utt2dur", "reco2dur")


def parse_factor(text) -> float:
    """The speed factor of a command line: a finite number in [MIN_FACTOR, MAX_FACTOR], not 1."""
    try:
        factor = float(text)
    except (TypeError, ValueError):
        raise ToolError(f"speed factor must be a number, got '{text}'") from None
    if not math.isfinite(factor) or not MIN_FACTOR <= factor <= MAX_FACTOR:
        raise ToolError(f"speed factor must be in [{MIN_FACTOR:g}, {MAX_FACTOR:g}], got '{text}'")
    if speed_ratio(factor)[0] == speed_ratio(factor)[1]:
        raise ToolError(f"speed factor {text} leaves the audio as it is: use the source dir itself (Kaldi's "
                        "perturb_data_dir_speed_3way.sh keeps it as it is) or utils/copy_data_dir.sh for a copy")
    return factor


def prefix_of(factor: float) -> str:
    """Kaldi's id prefix ``sp<factor>-``, the factor written in its shortest form (0.90 -> ``sp0.9-``)."""
    return f"sp{factor:g}-"


@dataclass
class Summary:
    utterances: int
    speakers: int
    seconds_in: float
    seconds_out: float
    clipped: int            # output samples clipped to the int16 range
    carried: list           # side tables carried with the new ids
    dropped: list           # tables of the source not carried


def _side_tables(src):
    """Names of the source's tables keyed by utterance (``utt2*``, ``text``) and by speaker (``spk2*``) to carry."""
    utt_tables, spk_tables, dropped = [], [], []
    for name in sorted(os.listdir(src)):
        if not os.path.isfile(os.path.join(src, name)) or name in REMADE:
            continue
        if name in NOT_CARRIED:
            dropped.append(name)
        elif name.startswith("utt2") or name == "text":
            utt_tables.append(name)
        elif name.startswith("spk2"):
            spk_tables.append(name)
        elif name == "reco2file_and_channel":
            utt_tables.append(name)   # without segments, recordings are utterances
        else:
            dropped.append(name)
    return utt_tables, spk_tables, dropped


def _check_keys(path, keys, known, what):
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise ToolError(f"{path}: {len(unknown)} {what} ids not in utt2spk (first: '{unknown[0]}'); "
                        "run utils/fix_data_dir.sh on the source")


def _is_inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def perturb_data_dir_speed(src, dest, factor: float, wav_dir=None, log=None, progress=None) -> Summary:
    """Write the ``factor``-times-faster copy of data dir ``src`` into ``dest`` (see the module docstring);
    its audio into ``wav_dir`` (default ``<dest>/wav``, as Kaldi's make_mfcc.sh keeps its archives in
    ``<data-dir>/data``), named ``sp<factor>-<utt>.wav``; wav.scp holds absolute paths.

    ``log(message)`` receives notes; ``progress(done, total)`` is called after each utterance.
    """
    src, dest = os.fspath(src), os.fspath(dest)
    log = log or (lambda message: None)
    if not os.path.isdir(src):
        raise ToolError(f"no such directory {src}")
    if os.path.realpath(src) == os.path.realpath(dest):
        raise ToolError(f"source and destination are the same directory: {src}")
    if _is_inside(src, dest):
        raise ToolError(f"the destination {dest} contains the source {src}")
    if os.path.exists(os.path.join(src, "segments")):
        raise ToolError(f"{os.path.join(src, 'segments')}: data dirs with segments are not supported (perturb the "
                        "whole recordings: a data dir without segments, e.g. made with extract-segments)")
    wav_scp = os.path.join(src, "wav.scp")
    for name in ("wav.scp", "utt2spk"):
        if not os.path.isfile(os.path.join(src, name)):
            raise ToolError(f"no such file {os.path.join(src, name)}")
    prefix = prefix_of(factor)

    entries = audio.read_wav_scp(wav_scp)
    if not entries:
        raise ToolError(f"{wav_scp} is empty: no utterances to perturb")
    utt2spk = dict(read_table(os.path.join(src, "utt2spk")))
    for number, (utt, spk) in enumerate(utt2spk.items(), 1):
        if len(spk.split()) != 1:
            raise ToolError(f"{os.path.join(src, 'utt2spk')}:{number}: expected 'utt spk', got '{utt} {spk}'")
    wav_keys = [key for key, _ in entries]
    missing = [k for k in wav_keys if k not in utt2spk]
    extra = sorted(set(utt2spk) - set(wav_keys))
    if missing or extra:
        first = f"'{missing[0]}' is in wav.scp only" if missing else f"'{extra[0]}' is in utt2spk only"
        raise ToolError(f"in {src}, wav.scp and utt2spk have different utterances ({len(missing)} only in wav.scp, "
                        f"{len(extra)} only in utt2spk; {first}); run utils/fix_data_dir.sh {src}")
    for key in wav_keys:
        if "/" in key:
            raise ToolError(f"{wav_scp}: utterance id '{key}' contains '/': it cannot name its wav file")

    utt_tables, spk_tables, dropped = _side_tables(src)
    speakers = set(utt2spk.values())
    tables = {}
    for name in utt_tables + spk_tables:
        path = os.path.join(src, name)
        rows = read_table(path, allow_empty_value=(name == "text"))
        _check_keys(path, [k for k, _ in rows], utt2spk if name in utt_tables else speakers,
                    "utterance" if name in utt_tables else "speaker")
        tables[name] = rows
    uniq_path = os.path.join(src, "utt2uniq")
    if os.path.isfile(uniq_path):
        uniq = read_table(uniq_path)
        _check_keys(uniq_path, [k for k, _ in uniq], utt2spk, "utterance")
        uniq = dict(uniq)
        if len(uniq) != len(utt2spk):
            raise ToolError(f"{uniq_path}: has {len(uniq)} utterances, utt2spk {len(utt2spk)}; run "
                            f"utils/fix_data_dir.sh {src}")
    else:
        uniq = {utt: utt for utt in utt2spk}

    # The input is sound: build the copy in a temporary dir next to dest, then put it in place.
    dest_abs = os.path.abspath(dest)
    final_wav_dir = os.path.abspath(wav_dir) if wav_dir else os.path.join(dest_abs, "wav")
    wav_inside = _is_inside(final_wav_dir, dest_abs)
    parent = os.path.dirname(dest_abs)
    os.makedirs(parent, exist_ok=True)
    if os.path.lexists(dest_abs):
        if not os.path.isdir(dest_abs) or os.path.islink(dest_abs):
            raise ToolError(f"{dest}: exists and is not a directory")
        log(f"removing the existing {dest}")
        shutil.rmtree(dest_abs)
    tmp = tempfile.mkdtemp(prefix=f".tmp.{os.path.basename(dest_abs)}.", dir=parent)
    try:
        write_wav_dir = (os.path.join(tmp, os.path.relpath(final_wav_dir, dest_abs)) if wav_inside
                         else final_wav_dir)
        os.makedirs(write_wav_dir, exist_ok=True)
        summary = _write_audio(entries, prefix, factor, write_wav_dir, final_wav_dir, tmp, progress)
        if os.path.isfile(os.path.join(src, "reco2dur")):   # without segments, recordings are the utterances
            shutil.copyfile(os.path.join(tmp, "utt2dur"), os.path.join(tmp, "reco2dur"))
        new_utt2spk = {prefix + utt: prefix + spk for utt, spk in utt2spk.items()}
        write_table(os.path.join(tmp, "utt2spk"), new_utt2spk)
        write_table(os.path.join(tmp, "utt2uniq"), {prefix + utt: value for utt, value in uniq.items()})
        for name, rows in tables.items():
            if name == "reco2file_and_channel":   # "<reco> <file> <channel>": the file is a recording too
                rows = [(k, prefix + v) for k, v in rows]
            write_table(os.path.join(tmp, name), [(prefix + k, v) for k, v in rows])
        # spk2utt last among the tables (a dir with spk2utt is a finished one)
        write_table(os.path.join(tmp, "spk2utt"), utt2spk_to_spk2utt(new_utt2spk))
        os.chmod(tmp, 0o777 & ~_umask())
        os.rename(tmp, dest_abs)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary.speakers = len(speakers)
    summary.carried = sorted(tables)
    summary.dropped = dropped
    return summary


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current


def _write_audio(entries, prefix, factor, write_wav_dir, final_wav_dir, tmp, progress):
    """Perturb each utterance (one in memory at a time) into ``write_wav_dir``; wav.scp and utt2dur (the new
    lengths) into ``tmp``."""
    import soundfile as sf
    wav_rows, dur_rows = [], []
    seconds_in = seconds_out = 0.0
    clipped = 0
    for done, (utt, value) in enumerate(entries, 1):
        samples, rate = audio.read_named(value, utt)
        out = speed_perturb(samples, factor)
        rounded = np.rint(out)
        over = np.abs(rounded) > 32767
        if over.any():
            clipped += int(over.sum())
            rounded = np.clip(rounded, -32768, 32767)
        name = f"{prefix}{utt}.wav"
        try:
            sf.write(os.path.join(write_wav_dir, name), rounded.astype(np.int16), rate, subtype="PCM_16",
                     format="WAV")
        except (OSError, RuntimeError, sf.LibsndfileError) as err:
            raise ToolError(f"cannot write {os.path.join(write_wav_dir, name)} (utterance '{utt}'): {err}") from None
        wav_rows.append((prefix + utt, os.path.join(final_wav_dir, name)))
        dur_rows.append((prefix + utt, f"{len(out) / rate:g}"))
        seconds_in += len(samples) / rate
        seconds_out += len(out) / rate
        if progress:
            progress(done, len(entries))
    write_table(os.path.join(tmp, "wav.scp"), wav_rows)
    write_table(os.path.join(tmp, "utt2dur"), dur_rows)
    return Summary(len(entries), 0, seconds_in, seconds_out, clipped, [], [])
