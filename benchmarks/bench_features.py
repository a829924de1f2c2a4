#!/usr/bin/env python3
"""MFCC + energy VAD throughput of tfspk, next to bare kaldi-native-fbank on the same audio.

Prints, in seconds of audio per second (x real time), for one synthetic corpus:
  1. bare knf       : kaldi-native-fbank MFCC on samples already in memory (the floor);
  2. library path   : tfspk.io.audio.read_audio + tfspk.features (MFCC, VAD) in this process;
  3. full steps     : steps/make_mfcc.sh (compressed ark/scp, utt2num_frames, utt2dur) +
                      steps/compute_vad_decision.sh with run.pl, as a recipe runs them;
  4. fixed overhead : the same two steps on a 2-utterance data dir (script, validation, split,
                      job-runner and interpreter start-up costs that do not grow with the corpus).
Both wall-clock and CPU time (this process + children) are shown, each the best of --repeat runs;
on a shared machine the CPU time is the per-core figure. Targets: full steps within 1.3x of bare
knf, >= 300x real time per core.

  .venv/bin/python benchmarks/bench_features.py [--minutes 30] [--rate 16000] [--nj 1] [--repeat 3]
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
CONFIGS = {
    16000: "--sample-frequency=16000\n--frame-length=25\n--low-freq=20\n--high-freq=7600\n"
           "--num-mel-bins=30\n--num-ceps=30\n--snip-edges=false\n",
    8000: "--sample-frequency=8000\n--frame-length=25\n--low-freq=20\n--high-freq=3700\n"
          "--num-mel-bins=30\n--num-ceps=30\n--snip-edges=false\n",
}
VAD_CONF = "--vad-energy-threshold=5.5\n--vad-energy-mean-scale=0.5\n--vad-proportion-threshold=0.12\n" \
           "--vad-frames-context=2\n"


def speech_like(seconds, rate, rng):
    """Harmonic bursts with pauses plus a little noise, int16."""
    t = np.arange(int(seconds * rate)) / rate
    voiced = np.sin(2 * np.pi * 1.3 * t + rng.uniform(0, 6)) > -0.2
    f0 = rng.uniform(90, 220)
    signal = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
    signal = signal * voiced + 0.01 * rng.standard_normal(t.size)
    return (signal / np.abs(signal).max() * 12000).astype(np.int16)


def make_data_dir(root, name, durations, rate, rng):
    data = root / "data" / name
    wavs = root / "wav" / name
    data.mkdir(parents=True)
    wavs.mkdir(parents=True)
    wav_scp, utt2spk = [], []
    for i, seconds in enumerate(durations):
        spk = f"spk{i % 20:02d}"
        utt = f"{spk}-utt{i:05d}"
        sf.write(str(wavs / f"{utt}.wav"), speech_like(seconds, rate, rng), rate, subtype="PCM_16")
        wav_scp.append((utt, f"{wavs}/{utt}.wav"))
        utt2spk.append((utt, spk))
    wav_scp.sort()
    utt2spk.sort()
    (data / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in wav_scp))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utt2spk))
    spk2utt = {}
    for utt, spk in utt2spk:
        spk2utt.setdefault(spk, []).append(utt)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    return data, [p for _, p in wav_scp]


class Clock:
    """Wall and CPU seconds (this process and its waited-for children) of a block."""

    def __enter__(self):
        self.wall = time.perf_counter()
        self.cpu = self._cpu()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = self._cpu() - self.cpu

    @staticmethod
    def _cpu():
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bare_knf(paths, rate):
    import kaldi_native_fbank as knf
    audio = [sf.read(p, dtype="int16")[0].astype(np.float32) for p in paths]
    opts = knf.MfccOptions()
    opts.frame_opts.samp_freq = rate
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = False
    opts.mel_opts.num_bins, opts.num_ceps = 30, 30
    opts.mel_opts.low_freq, opts.mel_opts.high_freq = 20, (7600 if rate == 16000 else 3700)
    with Clock() as clock:
        for samples in audio:
            extractor = knf.OnlineMfcc(opts)
            extractor.accept_waveform(rate, samples)
            extractor.input_finished()
            frames = [extractor.get_frame(i) for i in range(extractor.num_frames_ready)]
            del frames
    return clock


def library_path(paths, rate):
    from tfspk import features
    from tfspk.io.audio import read_audio
    opts = features.MfccOptions()
    opts.frame.sample_frequency = rate
    opts.frame.snip_edges = False
    opts.mel.num_mel_bins, opts.num_ceps = 30, 30
    opts.mel.low_freq, opts.mel.high_freq = 20, (7600 if rate == 16000 else 3700)
    extractor = features.FeatureExtractor(opts)
    with Clock() as clock:
        for path in paths:
            samples, sample_rate = read_audio(path)
            feats = extractor(samples, sample_rate, Path(path).stem)
            features.compute_vad(feats, 5.5, 0.5, 0.12, 2)
    return clock


def full_steps(root, name, nj):
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), str(REPO / "utils"),
                                                 str(REPO / "steps"), os.environ.get("PATH", "")]))
    command = (f"make_mfcc.sh --nj {nj} --mfcc-config conf/mfcc.conf data/{name} exp/make_mfcc mfcc && "
               f"compute_vad_decision.sh --nj {nj} --vad-config conf/vad.conf data/{name} exp/make_vad mfcc")
    with Clock() as clock:
        proc = subprocess.run(command, shell=True, cwd=root, env=env, capture_output=True, text=True,
                              executable="/bin/bash")
    if proc.returncode != 0:
        sys.exit(f"steps failed:\n{proc.stdout}\n{proc.stderr}")
    return clock


def report(label, clock, audio_seconds, reference=None):
    line = (f"{label:<34} wall {clock.wall:7.2f} s {audio_seconds / clock.wall:7.0f}x RT | "
            f"cpu {clock.cpu:7.2f} s {audio_seconds / clock.cpu:7.0f}x RT per core")
    if reference is not None:
        line += f" | {clock.cpu / reference.cpu:4.2f}x bare knf cpu"
    print(line, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="total audio (default: 30)")
    parser.add_argument("--rate", type=int, choices=sorted(CONFIGS), default=16000)
    parser.add_argument("--utt-seconds", type=float, default=8.0, help="mean utterance length (default: 8)")
    parser.add_argument("--nj", type=int, default=1, help="jobs for the steps (default: 1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is shown (default: 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    root = Path(tempfile.mkdtemp(prefix="bench_features."))
    try:
        (root / "conf").mkdir()
        (root / "conf" / "mfcc.conf").write_text(CONFIGS[args.rate])
        (root / "conf" / "vad.conf").write_text(VAD_CONF)
        durations = []
        while sum(durations) < args.minutes * 60:
            durations.append(float(np.clip(rng.gamma(4.0, args.utt_seconds / 4.0), 1.0, 30.0)))
        _, paths = make_data_dir(root, "train", durations, args.rate, rng)
        make_data_dir(root, "tiny", [2.0, 3.0], args.rate, rng)
        audio = sum(durations)
        print(f"corpus: {len(durations)} utterances, {audio / 60:.1f} min at {args.rate} Hz; "
              f"steps with --nj {args.nj}; {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        print("throughput in seconds of audio per second (x RT); best of "
              f"{args.repeat} run(s); targets: steps <= 1.3x bare knf CPU, >= 300x RT per core", flush=True)
        def best(measure, *measure_args):
            clocks = [measure(*measure_args) for _ in range(args.repeat)]
            result = Clock()
            result.wall, result.cpu = min(c.wall for c in clocks), min(c.cpu for c in clocks)
            return result

        knf_clock = best(bare_knf, paths, args.rate)
        report("1. bare kaldi-native-fbank", knf_clock, audio)
        report("2. tfspk library (read+MFCC+VAD)", best(library_path, paths, args.rate), audio, knf_clock)
        full = best(full_steps, root, "train", args.nj)
        report("3. make_mfcc.sh + compute_vad", full, audio, knf_clock)
        fixed = best(full_steps, root, "tiny", args.nj)
        report("4. same steps, 2 utterances", fixed, 5.0)
        marginal = Clock()
        marginal.wall, marginal.cpu = full.wall - fixed.wall, full.cpu - fixed.cpu
        report("3 minus 4 (per-audio cost)", marginal, audio - 5.0, knf_clock)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
