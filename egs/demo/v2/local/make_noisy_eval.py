#!/usr/bin/env python3
"""Make a reverberant or babble-noise copy of a test set: the demo's second test condition.

  make_noisy_eval.py [options] <eval-data-dir> <wav-dir> <noisy-data-dir>

run.sh stage 8 makes it of the evaluation set (data/eval) and, with a dev split, of the dev set (data/dev):
the babble comes from the other speakers of the data dir given, so a dev copy never hears an evaluation or
training speaker.

The demo's evaluation speech is studio-clean, unlike the speech a verification system meets; this
condition tests robustness with rooms and interference the training never saw. As Kaldi's voxceleb
recipe augments each copy of an utterance in one way, each utterance ``x`` (same key, same speaker)
gets one of the two, with equal probability:

* reverberation, ``y = reverberate(x, h)``: ``h`` is one of --num-rirs simulated room impulse
  responses per room kind, drawn with --rir-seed (local/make_aug_set.py's rooms with a seed other than
  the training set's, so no training RIR recurs); as Kaldi's wav-reverberate (direct path aligned,
  output power = input power);
* babble, ``y = x + sum_b g_b s_b``: --num-babblers (drawn from the list) utterances of other speakers
  of <eval-data-dir>, each looped or cut to the length of ``x`` from a random start; ``g_b`` sets each one's SNR
  against ``x`` to a value drawn from --snrs (dB). Kaldi's babble settings (3-7 speakers, 13-20 dB); the
  training augmentation of conf/*_aug.yaml has no babble.

Every draw comes from (--seed, index of the utterance), so the set is the same on every machine. Writes
16-bit WAVs to <wav-dir> and <noisy-data-dir>/{wav.scp,utt2spk,spk2utt}, plus a copy of trials if
<eval-data-dir> has one, and <noisy-data-dir>/utt2noise, what each utterance got: ``<utt> reverb <room>``
or ``<utt> babble <utt> ...`` (the babble's utterances). The set is held in memory (the babble draws from
all of it): meant for the demo's 1,490 evaluation utterances.
"""
import os
import shutil
import sys

import numpy as np
import soundfile as sf

from tfspk import cli
from tfspk.data.augment import add_noise, parse_number_list, reverberate
from tfspk.errors import ToolError
from tfspk.io.audio import read_audio
from tfspk.io.table import read_dict, read_utt2spk, utt2spk_to_spk2utt, write_table

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_aug_set import simulate_rirs  # noqa: E402  (the rooms of the training set, another seed)

USAGE = "make_noisy_eval.py [options] <eval-data-dir> <wav-dir> <noisy-data-dir>"


def babble(keys, speakers, signals, target, length, count, rng):
    """``count`` utterances of speakers other than ``target``'s: their keys, and their signals each looped/cut
    to ``length`` samples."""
    others = [i for i, s in enumerate(speakers) if s != target]
    if len(others) < count:
        raise ToolError(f"only {len(others)} utterances of other speakers; --num-babblers needs {count}")
    chosen, out = [], []
    for index in rng.choice(others, size=count, replace=False):
        signal = signals[keys[index]]
        start = int(rng.integers(signal.size))
        chosen.append(keys[index])
        out.append(np.resize(np.roll(signal, -start), length))   # np.resize repeats the signal
    return chosen, out


def with_babble(x, others, snrs, rng):
    """``x`` plus each babble signal at a drawn SNR (dB) against ``x`` (each gain from the speech alone,
    not from speech plus earlier babble, as Kaldi's wav-reverberate scales its additive signals)."""
    y = np.asarray(x, dtype=np.float64).copy()
    for signal in others:
        y += add_noise(x, signal, float(rng.choice(snrs))) - x
    return y


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--snrs", default="13:15:17:20", help="babble SNRs in dB to draw from (default: 13:15:17:20)")
    parser.add_argument("--num-babblers", default="3:4:5:6:7",
                        help="numbers of babble speakers to draw from (default: 3:4:5:6:7)")
    parser.add_argument("--num-rirs", type=int, default=20, help="simulated RIRs per room kind (default: 20)")
    parser.add_argument("--rir-seed", type=int, default=4242, help="seed of the rooms (default: 4242)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the per-utterance draws (default: 1)")
    parser.add_argument("eval_dir")
    parser.add_argument("wav_dir")
    parser.add_argument("out_dir")
    args = parser.parse_args(argv)
    snrs = parse_number_list(args.snrs, "--snrs")
    counts = parse_number_list(args.num_babblers, "--num-babblers", kind=int)
    if args.num_rirs < 1 or min(counts) < 1:
        raise ToolError("--num-rirs and every --num-babblers value must be >= 1")
    wav_scp = read_dict(os.path.join(args.eval_dir, "wav.scp"))
    utt2spk = read_utt2spk(os.path.join(args.eval_dir, "utt2spk"))
    if sorted(wav_scp) != sorted(utt2spk):
        raise ToolError(f"{args.eval_dir}: wav.scp and utt2spk have different keys")
    keys = sorted(wav_scp)
    signals, rate = {}, None
    for key in keys:
        samples, this_rate = read_audio(wav_scp[key])
        if rate is not None and this_rate != rate:
            raise ToolError(f"{args.eval_dir}/wav.scp: '{key}' is at {this_rate} Hz, the others at {rate} Hz")
        signals[key], rate = samples, this_rate
    rir_dir = os.path.join(args.wav_dir, "rir_tmp")
    rooms = simulate_rirs(rate, rir_dir, args.num_rirs, args.rir_seed)
    rirs = [sf.read(path, dtype="float64")[0] for _, path, _ in rooms]
    shutil.rmtree(rir_dir)
    speakers = [utt2spk[k] for k in keys]
    os.makedirs(args.wav_dir, exist_ok=True)
    wav_out, utt2noise = {}, {}
    for index, key in enumerate(keys):
        rng = np.random.default_rng([args.seed, index])
        x = signals[key]
        if rng.random() < 0.5:
            room = int(rng.integers(len(rirs)))
            y = reverberate(x, rirs[room])
            utt2noise[key] = ["reverb", rooms[room][0]]
        else:
            sources, others = babble(keys, speakers, signals, utt2spk[key], x.size, int(rng.choice(counts)), rng)
            y = with_babble(x, others, snrs, rng)
            utt2noise[key] = ["babble"] + sources
        path = os.path.abspath(os.path.join(args.wav_dir, key + ".wav"))
        sf.write(path, np.clip(np.round(y), -32768, 32767).astype(np.int16), rate, subtype="PCM_16")
        wav_out[key] = path
        if (index + 1) % 500 == 0:
            cli.log(f"{index + 1} of {len(keys)} utterances")
    os.makedirs(args.out_dir, exist_ok=True)
    # wav.scp last: its presence marks a complete set
    write_table(os.path.join(args.out_dir, "utt2spk"), utt2spk)
    write_table(os.path.join(args.out_dir, "spk2utt"), utt2spk_to_spk2utt(utt2spk))
    write_table(os.path.join(args.out_dir, "utt2noise"), utt2noise)
    write_table(os.path.join(args.out_dir, "wav.scp"), wav_out)
    if os.path.isfile(os.path.join(args.eval_dir, "trials")):
        shutil.copyfile(os.path.join(args.eval_dir, "trials"), os.path.join(args.out_dir, "trials"))
    cli.log(f"wrote {args.out_dir}: {len(keys)} utterances, each reverberated ({2 * args.num_rirs} rooms) or with "
            f"{args.num_babblers} babble speakers at {args.snrs} dB")


if __name__ == "__main__":
    cli.run_tool(_main)
