#!/usr/bin/env python3
"""Build the demo corpus data dir from unpacked Debian packages and a speaker map.

Reads local/speakers.txt (package, speaker, language, path regex), finds every matching file under
<corpus-dir>/<package>/, decodes it (raw GSM 6.10, Drascula's raw 8-bit PCM, or anything libsndfile
reads: ogg/vorbis, opus, wav), mixes it to mono, resamples it to --sample-rate with a polyphase filter
(scipy.signal.resample_poly) and writes a 16-bit PCM WAV file. The output is a Kaldi data dir:
wav.scp, utt2spk, spk2utt, utt2lang, spk2lang, utt2dur. Files with identical bytes are kept once.
"""
import hashlib
import math
import multiprocessing
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_open

USAGE = "make_demo_data.py [options] <speaker-map> <corpus-dir> <wav-dir> <data-dir>"

SPEAKER_ID = re.compile(r"[a-z0-9_]+")
LANGUAGE_ID = re.compile(r"[a-z]{2,3}")

# Drascula's .ALS speech files (ScummVM engines/drascula/sound.cpp, playFile): 8-bit unsigned mono PCM
# at 11025 Hz; playback starts after a 32-byte header and stops 32 bytes before the end of the file.
DRASCULA_RATE = 11025
DRASCULA_SKIP_HEAD = 32
DRASCULA_SKIP_TAIL = 32
GSM_RATE = 8000


@dataclass(frozen=True)
class MapEntry:
    package: str
    speaker: str
    language: str
    pattern: "re.Pattern"
    where: str  # "file:line" for messages


@dataclass(frozen=True)
class Recording:
    utt: str
    speaker: str
    language: str
    source: str


def read_speaker_map(path):
    """Parse the speaker map: ``package speaker language regex`` per line, ``#`` comments."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ToolError(f"cannot read speaker map '{path}': {err.strerror}") from None
    entries = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if not text:
            continue
        where = f"{path}:{number}"
        fields = text.split()
        if len(fields) != 4:
            raise ToolError(f"{where}: expected 4 fields 'package speaker language regex', got {len(fields)}")
        package, speaker, language, regex = fields
        if not SPEAKER_ID.fullmatch(speaker):
            raise ToolError(f"{where}: speaker id '{speaker}' must match [a-z0-9_]+")
        if not LANGUAGE_ID.fullmatch(language):
            raise ToolError(f"{where}: language '{language}' must be a 2-3 letter lower-case code")
        try:
            pattern = re.compile(regex)
        except re.error as err:
            raise ToolError(f"{where}: bad regular expression '{regex}': {err}") from None
        entries.append(MapEntry(package, speaker, language, pattern, where))
    if not entries:
        raise ToolError(f"speaker map '{path}' has no entries")
    return entries


def utterance_id(speaker, relative_path, language=None):
    """``<speaker>-[<language>_]<parent dir>_<file stem>``, odd characters as ``_``.

    The speaker prefix keeps utt2spk and spk2utt in the same (C locale) order, as Kaldi requires;
    the language tells apart a speaker's recordings that come from two packages.
    """
    parts = os.path.splitext(relative_path)[0].split("/")[-2:]
    if language:
        parts.insert(0, language)
    stem = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(parts)).strip("_")
    return f"{speaker}-{stem}"


def find_recordings(entries, corpus_dir, packages=None):
    """Match every file of the selected packages against the map; return sorted Recordings."""
    selected = [e for e in entries if packages is None or e.package in packages]
    if packages is not None:
        unknown = sorted(set(packages) - {e.package for e in entries})
        if unknown:
            raise ToolError(f"package(s) {', '.join(unknown)} not in the speaker map; "
                            f"known: {', '.join(sorted({e.package for e in entries}))}")
    by_package = {}
    for entry in selected:
        by_package.setdefault(entry.package, []).append(entry)
    recordings, seen_utts, seen_digests = [], {}, {}
    duplicates = 0
    for package in sorted(by_package):
        root = Path(corpus_dir) / package
        if not root.is_dir():
            raise ToolError(f"package '{package}' is not unpacked: no directory {root} "
                            "(run.sh stage 0 fetches it with apt-get download + dpkg -x, "
                            "or point --corpus-dir to an unpacked copy)")
        matched = 0
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root).as_posix()
            hits = [e for e in by_package[package] if e.pattern.fullmatch(relative)]
            if not hits:
                continue
            if len(hits) > 1:
                raise ToolError(f"{package}/{relative} is matched by two speaker map lines: "
                                f"{hits[0].where} and {hits[1].where}")
            entry = hits[0]
            digest = hashlib.md5(path.read_bytes()).hexdigest()
            if digest in seen_digests:
                duplicates += 1
                continue
            seen_digests[digest] = relative
            utt = utterance_id(entry.speaker, relative,
                               entry.language if _speaker_in_several_packages(entries, entry.speaker) else None)
            if utt in seen_utts:
                raise ToolError(f"two files give the utterance id '{utt}': {seen_utts[utt]} and {path}")
            seen_utts[utt] = path
            recordings.append(Recording(utt, entry.speaker, entry.language, str(path)))
            matched += 1
        if matched == 0:
            raise ToolError(f"no file under {root} matches the speaker map lines for '{package}' "
                            f"({', '.join(e.where for e in by_package[package])})")
    if duplicates:
        cli.log(f"skipped {duplicates} files whose bytes duplicate another file")
    return sorted(recordings, key=lambda r: r.utt)


def _speaker_in_several_packages(entries, speaker):
    return len({e.package for e in entries if e.speaker == speaker}) > 1


def decode(path):
    """Return (mono float64 samples scaled like int16, sample rate) for one source file."""
    import soundfile as sf
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".gsm":
            samples, rate = sf.read(path, format="RAW", subtype="GSM610", samplerate=GSM_RATE, channels=1,
                                    dtype="float64")
        elif suffix == ".als":
            raw = np.fromfile(path, dtype=np.uint8)
            body = raw[DRASCULA_SKIP_HEAD:max(DRASCULA_SKIP_HEAD, raw.size - DRASCULA_SKIP_TAIL)]
            samples, rate = (body.astype(np.float64) - 128.0) / 128.0, DRASCULA_RATE
        else:
            samples, rate = sf.read(path, dtype="float64", always_2d=True)
            samples = samples.mean(axis=1)
    except (RuntimeError, sf.LibsndfileError, ValueError) as err:
        raise ToolError(f"cannot decode {path}: {err}") from None
    return samples * 32768.0, int(rate)


def resample(samples, rate, target_rate):
    """Polyphase resampling (scipy.signal.resample_poly, Kaiser window) to ``target_rate``."""
    from scipy.signal import resample_poly
    if rate == target_rate:
        return samples
    divisor = math.gcd(rate, target_rate)
    return resample_poly(samples, target_rate // divisor, rate // divisor)


def convert(job):
    """Decode, resample and write one recording; return (utt, wav path, seconds) or (utt, None, reason)."""
    import soundfile as sf
    recording, wav_path, target_rate, min_seconds = job
    try:
        samples, rate = decode(recording.source)
    except ToolError as err:
        return recording.utt, None, str(err)
    audio = np.clip(np.round(resample(samples, rate, target_rate)), -32768, 32767).astype(np.int16)
    seconds = audio.size / target_rate
    if seconds < min_seconds:
        return recording.utt, None, f"only {seconds:.2f} s"
    os.makedirs(os.path.dirname(wav_path), exist_ok=True)
    tmp = wav_path + ".tmp.wav"
    sf.write(tmp, audio, target_rate, subtype="PCM_16")
    os.replace(tmp, wav_path)
    return recording.utt, wav_path, seconds


def select_subset(recordings, max_per_speaker, seed):
    """Keep at most ``max_per_speaker`` recordings per speaker, drawn with a seeded generator."""
    if max_per_speaker <= 0:
        return recordings
    rng = np.random.default_rng(seed)
    by_speaker = {}
    for rec in recordings:
        by_speaker.setdefault(rec.speaker, []).append(rec)
    kept = []
    for speaker in sorted(by_speaker):
        items = by_speaker[speaker]
        if len(items) > max_per_speaker:
            chosen = rng.choice(len(items), size=max_per_speaker, replace=False)
            items = [items[i] for i in sorted(chosen)]
        kept.extend(items)
    return sorted(kept, key=lambda r: r.utt)


def write_data_dir(data_dir, rows):
    """rows: (utt, speaker, language, wav, seconds), sorted by utt."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    spk2utt, spk2lang = {}, {}
    for utt, speaker, language, _, _ in rows:
        spk2utt.setdefault(speaker, []).append(utt)
        spk2lang.setdefault(speaker, set()).add(language)
    files = {
        "wav.scp": [f"{utt} {wav}" for utt, _, _, wav, _ in rows],
        "utt2spk": [f"{utt} {spk}" for utt, spk, _, _, _ in rows],
        "utt2lang": [f"{utt} {lang}" for utt, _, lang, _, _ in rows],
        "utt2dur": [f"{utt} {seconds:.3f}" for utt, _, _, _, seconds in rows],
        "spk2utt": [f"{spk} {' '.join(utts)}" for spk, utts in sorted(spk2utt.items())],
        "spk2lang": [f"{spk} {','.join(sorted(langs))}" for spk, langs in sorted(spk2lang.items())],
    }
    # spk2utt last: its presence marks the directory complete (the other files are atomic too).
    for name in ["wav.scp", "utt2lang", "utt2dur", "spk2lang", "utt2spk", "spk2utt"]:
        with atomic_open(data_dir / name, encoding="utf-8") as handle:
            handle.write("\n".join(files[name]) + "\n")


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--packages", default="", help="space/comma separated packages to use (default: all in the map)")
    parser.add_argument("--sample-rate", type=int, default=8000, help="output sample rate (default: 8000)")
    parser.add_argument("--max-utts-per-speaker", type=int, default=0,
                        help="keep at most this many recordings per speaker, seeded draw; 0 = all (default: 0)")
    parser.add_argument("--min-seconds", type=float, default=0.3,
                        help="drop recordings shorter than this after conversion (default: 0.3)")
    parser.add_argument("--seed", type=int, default=777, help="seed of the subset draw (default: 777)")
    parser.add_argument("--nj", type=int, default=2, help="parallel conversion processes (default: 2)")
    parser.add_argument("speaker_map")
    parser.add_argument("corpus_dir")
    parser.add_argument("wav_dir")
    parser.add_argument("data_dir")
    args = parser.parse_args(argv)
    if args.sample_rate <= 0 or args.nj <= 0:
        raise ToolError("--sample-rate and --nj must be positive")
    if not os.path.isdir(args.corpus_dir):
        raise ToolError(f"corpus dir '{args.corpus_dir}' does not exist (run.sh stage 0 makes it)")

    entries = read_speaker_map(args.speaker_map)
    packages = [p for p in re.split(r"[\s,]+", args.packages) if p] or None
    recordings = select_subset(find_recordings(entries, args.corpus_dir, packages),
                               args.max_utts_per_speaker, args.seed)
    cli.log(f"{len(recordings)} recordings of {len({r.speaker for r in recordings})} speakers; "
            f"converting to {args.sample_rate} Hz 16-bit WAV in {args.wav_dir}")
    jobs = [(r, os.path.join(os.path.abspath(args.wav_dir), r.speaker, r.utt + ".wav"), args.sample_rate,
             args.min_seconds) for r in recordings]
    by_utt = {r.utt: r for r in recordings}
    rows, dropped = [], []
    with multiprocessing.get_context("fork").Pool(args.nj) as pool:
        for utt, wav, info in pool.imap(convert, jobs, chunksize=16):
            if wav is None:
                dropped.append(f"{utt} ({info})")
            else:
                rec = by_utt[utt]
                rows.append((utt, rec.speaker, rec.language, wav, info))
    if dropped:
        cli.warn(f"dropped {len(dropped)} recordings, e.g. {'; '.join(dropped[:3])}")
    if not rows:
        raise ToolError("no recording survived the conversion")
    write_data_dir(args.data_dir, rows)
    hours = sum(r[4] for r in rows) / 3600
    cli.log(f"wrote {args.data_dir}: {len(rows)} utterances, {len({r[1] for r in rows})} speakers, {hours:.2f} h")


if __name__ == "__main__":
    cli.run_tool(_main)
