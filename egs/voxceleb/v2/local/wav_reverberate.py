#!/usr/bin/env python3
"""Augment one utterance: reverberation and/or additive noise, music or babble (numpy).

Stands in for Kaldi's wav-reverberate in the augmentation pipes that local/augment_data_dir.py writes
into wav.scp (Kaldi's steps/data/{reverberate,augment}_data_dir.py do the same with wav-reverberate).
Behaviour kept from wav-reverberate:
* reverberation: y = x * h (full convolution), shifted by the index of the RIR's peak (--shift-output)
  and cut to the input length;
* additive signals are scaled to the requested SNR against the power of the (early-reverberated)
  speech: noise_scale = sqrt(P_speech / P_noise / 10^(snr/10)); P_speech is the mean square of the
  input, or of x * h_early with h_early = h up to 50 ms after its peak when reverberating;
* the output is rescaled to the input's power (--normalize-output=true) and written as 16-bit PCM.
What is added is drawn here from --seed, once the input length is known (Kaldi's scripts draw it in
advance from utt2dur): foreground noises follow each other with --fg-interval seconds of gap, each at
an SNR drawn from --snrs; background: --num-bg signals drawn from the list (count drawn from the
colon-separated choices), each looped or cut to the utterance, each at a drawn SNR.
Input and output: a WAV file name or "-" (stdin/stdout), so it can sit at the end of a wav.scp pipe.
"""
import argparse
import io
import sys

import numpy as np
import soundfile as sf

EARLY_REVERB_SECONDS = 0.05


def fail(message):
    sys.stderr.write(f"ERROR (wav_reverberate.py) {message}\n")
    sys.exit(1)


def read_wav(name):
    """Mono float64 samples (int16 scale) and rate from a file name or '-' (stdin)."""
    try:
        source = io.BytesIO(sys.stdin.buffer.read()) if name == "-" else name
        samples, rate = sf.read(source, dtype="float64", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as err:
        fail(f"cannot read audio '{name}': {err}")
    if samples.shape[0] == 0:
        fail(f"audio '{name}' is empty")
    return samples[:, 0] * 32768.0, rate


def choices(text, kind=float):
    return [kind(v) for v in str(text).replace(",", ":").split(":") if v != ""]


def mean_power(x):
    return float(np.mean(x * x)) if x.size else 0.0


def reverberate(x, rir, rate):
    """Kaldi wav-reverberate: convolve, shift by the RIR peak, cut to len(x); also the early part power."""
    from scipy.signal import fftconvolve
    peak = int(np.argmax(np.abs(rir)))
    y = fftconvolve(x, rir)[peak:peak + x.size]
    early = rir[:peak + 1 + int(EARLY_REVERB_SECONDS * rate)]
    early_power = mean_power(fftconvolve(x, early)[peak:peak + x.size])
    return y, early_power


def fit_length(signal, length):
    """Loop (or cut) ``signal`` to exactly ``length`` samples (background signals)."""
    reps = int(np.ceil(length / signal.size))
    return np.tile(signal, reps)[:length]


def scaled(noise, speech_power, snr_db):
    noise_power = mean_power(noise)
    if noise_power <= 0:
        return np.zeros_like(noise)
    return noise * np.sqrt(speech_power / noise_power / 10 ** (snr_db / 10))


def load_list(path):
    try:
        with open(path, encoding="utf-8") as handle:
            items = [line.split()[-1] for line in handle if line.strip()]
    except OSError as err:
        fail(f"cannot read signal list '{path}': {err.strerror}")
    if not items:
        fail(f"signal list '{path}' is empty")
    return items


def load_signal(path, rate):
    samples, signal_rate = read_wav(path)
    if signal_rate != rate:
        fail(f"{path} has {signal_rate} Hz, the utterance {rate} Hz")
    return samples


def add_foreground(y, rate, speech_power, noise_files, snrs, interval, rng):
    """Noises one after another from t=0, --fg-interval seconds apart (Kaldi --fg-interval)."""
    t = 0
    while t < y.size:
        noise = load_signal(noise_files[rng.integers(len(noise_files))], rate)
        piece = scaled(noise, speech_power, snrs[rng.integers(len(snrs))])[: y.size - t]
        y[t:t + piece.size] += piece
        t += piece.size + int(interval * rate)
    return y


def add_background(y, rate, speech_power, files, snrs, counts, rng):
    for _ in range(int(counts[rng.integers(len(counts))])):
        signal = load_signal(files[rng.integers(len(files))], rate)
        start = int(rng.integers(signal.size))   # a random phase of the looped signal
        y += scaled(fit_length(np.roll(signal, -start), y.size), speech_power, snrs[rng.integers(len(snrs))])
    return y


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rir", default="", help="room impulse response WAV (reverberation)")
    parser.add_argument("--fg-noises", default="", help="list file of foreground noise WAVs")
    parser.add_argument("--bg-noises", default="", help="list file of background WAVs (music, babble)")
    parser.add_argument("--snrs", default="15:10:5:0", help="SNR choices in dB, colon separated")
    parser.add_argument("--num-bg", default="1", help="choices of the number of background signals")
    parser.add_argument("--fg-interval", type=float, default=1.0, help="seconds between foreground noises")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws (one per utterance)")
    parser.add_argument("input")
    parser.add_argument("output")
    args = parser.parse_args()

    x, rate = read_wav(args.input)
    rng = np.random.default_rng(args.seed)
    input_power = mean_power(x)
    y, speech_power = x.copy(), input_power
    if args.rir:
        y, speech_power = reverberate(x, load_signal(args.rir, rate), rate)
    snrs = choices(args.snrs)
    if args.fg_noises:
        y = add_foreground(y, rate, speech_power, load_list(args.fg_noises), snrs, args.fg_interval, rng)
    if args.bg_noises:
        y = add_background(y, rate, speech_power, load_list(args.bg_noises), snrs, choices(args.num_bg, int), rng)
    output_power = mean_power(y)
    if output_power > 0:
        y *= np.sqrt(input_power / output_power)
    audio = np.clip(np.round(y), -32768, 32767).astype(np.int16)
    buffer = io.BytesIO()   # a WAV header needs the length, so build the file before writing to a pipe
    sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    try:
        if args.output == "-":
            sys.stdout.buffer.write(buffer.getvalue())
            sys.stdout.buffer.flush()
        else:
            with open(args.output, "wb") as handle:
                handle.write(buffer.getvalue())
    except BrokenPipeError:
        sys.exit(141)


if __name__ == "__main__":
    main()
