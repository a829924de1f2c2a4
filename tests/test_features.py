"""tfspk.features against independent statements of Kaldi's algorithms.

* MFCC/fbank: equal to direct kaldi-native-fbank calls made here (dither 0), and close to a
  float64 numpy restatement of Kaldi's feature-window / mel-computations / feature-mfcc code
  (so the knf semantics we rely on, e.g. snip-edges=false frame counts and edge reflection,
  are checked too).
* VAD, sliding CMN, voiced-frame selection: equal to loop-form restatements of Kaldi's
  ``ComputeVadEnergy``, ``SlidingWindowCmnInternal`` and ``select-voiced-frames``.
"""
import math

import kaldi_native_fbank as knf
import numpy as np
import pytest

from conftest import synth_speech
from tfspk import features
from tfspk.errors import ToolError
from tfspk.features import options as feature_options

RECIPE_16K = dict(sample_frequency=16000, low_freq=20, high_freq=7600, num_mel_bins=30, num_ceps=30)
RECIPE_8K = dict(sample_frequency=8000, low_freq=20, high_freq=3700, num_mel_bins=30, num_ceps=30)


def make_mfcc_options(sample_frequency, low_freq, high_freq, num_mel_bins, num_ceps, snip_edges, **extra):
    opts = features.MfccOptions()
    opts.frame.sample_frequency = sample_frequency
    opts.frame.dither = 0.0
    opts.frame.snip_edges = snip_edges
    opts.mel.low_freq, opts.mel.high_freq, opts.mel.num_mel_bins = low_freq, high_freq, num_mel_bins
    opts.num_ceps = num_ceps
    for key, value in extra.items():
        target = opts.frame if hasattr(opts.frame, key) else opts
        setattr(target, key, value)
    return opts


def direct_knf_mfcc(samples, rate, low, high, bins, ceps, snip_edges):
    """kaldi-native-fbank called directly, Kaldi defaults spelled out here."""
    opts = knf.MfccOptions()
    opts.frame_opts.samp_freq = rate
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = snip_edges
    opts.frame_opts.frame_length_ms = 25
    opts.frame_opts.frame_shift_ms = 10
    opts.frame_opts.preemph_coeff = 0.97
    opts.frame_opts.window_type = "povey"
    opts.mel_opts.num_bins = bins
    opts.mel_opts.low_freq = low
    opts.mel_opts.high_freq = high
    opts.num_ceps = ceps
    opts.use_energy = True
    opts.raw_energy = True
    opts.cepstral_lifter = 22
    extractor = knf.OnlineMfcc(opts)
    extractor.accept_waveform(rate, samples.astype(np.float32))
    extractor.input_finished()
    return np.stack([np.array(extractor.get_frame(i)) for i in range(extractor.num_frames_ready)])


# ------------------------------------------------------------------------------------------
# float64 restatement of Kaldi's feature code
def kaldi_window(name, length, blackman_coeff=0.42):
    a = 2 * math.pi / (length - 1)
    i = np.arange(length)
    return {"hanning": 0.5 - 0.5 * np.cos(a * i),
            "sine": np.sin(0.5 * a * i),
            "hamming": 0.54 - 0.46 * np.cos(a * i),
            "povey": (0.5 - 0.5 * np.cos(a * i)) ** 0.85,
            "rectangular": np.ones(length),
            "blackman": blackman_coeff - 0.5 * np.cos(a * i) + (0.5 - blackman_coeff) * np.cos(2 * a * i),
            }[name]


def kaldi_frames(samples, rate, shift_ms, length_ms, snip_edges):
    """Frame extraction (Kaldi feature-window.cc: NumFrames, FirstSampleOfFrame, ExtractWindow)."""
    shift = int(rate * 0.001 * shift_ms)
    length = int(rate * 0.001 * length_ms)
    n = len(samples)
    if snip_edges:
        count = 0 if n < length else 1 + (n - length) // shift
    else:
        count = (n + shift // 2) // shift
    frames = np.zeros((count, length))
    for f in range(count):
        first = f * shift if snip_edges else f * shift + shift // 2 - length // 2
        for j in range(length):
            s = first + j
            while s < 0 or s >= n:           # reflect at both edges
                s = -s - 1 if s < 0 else 2 * n - 1 - s
            frames[f, j] = samples[s]
    return frames


def mel_scale(freq):
    return 1127.0 * np.log(1.0 + freq / 700.0)


def kaldi_mel_banks(num_bins, fft_size, rate, low, high):
    nyquist = rate / 2
    high = high if high > 0 else nyquist + high
    mel_low, mel_high = mel_scale(low), mel_scale(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    banks = np.zeros((num_bins, fft_size // 2 + 1))
    for b in range(num_bins):
        left, center, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
        for i in range(fft_size // 2):            # Kaldi leaves the Nyquist bin out
            mel = mel_scale(rate / fft_size * i)
            if left < mel < right:
                banks[b, i] = (mel - left) / (center - left) if mel <= center else (right - mel) / (right - center)
    return banks


def kaldi_process_frames(frames, preemph, window_type, remove_dc=True):
    """Returns (windowed frames, raw log energy) as ProcessWindow does."""
    frames = frames.copy()
    if remove_dc:
        frames -= frames.mean(axis=1, keepdims=True)
    raw_log_energy = np.log(np.maximum((frames ** 2).sum(axis=1), np.finfo(np.float32).eps))
    emphasised = frames.copy()
    emphasised[:, 1:] -= preemph * frames[:, :-1]
    emphasised[:, 0] -= preemph * frames[:, 0]
    return emphasised * kaldi_window(window_type, frames.shape[1]), raw_log_energy


def numpy_kaldi_mfcc(samples, rate, low, high, bins, ceps, snip_edges, lifter=22.0, window_type="povey",
                     use_energy=True, raw_energy=True, energy_floor=0.0):
    frames = kaldi_frames(samples.astype(np.float64), rate, 10, 25, snip_edges)
    windowed, log_energy = kaldi_process_frames(frames, 0.97, window_type)
    if not raw_energy:        # energy of the preemphasised, windowed frame
        log_energy = np.log(np.maximum((windowed ** 2).sum(axis=1), np.finfo(np.float32).eps))
    if energy_floor > 0:
        log_energy = np.maximum(log_energy, math.log(energy_floor))
    fft_size = 1 << (frames.shape[1] - 1).bit_length()
    power = np.abs(np.fft.rfft(windowed, n=fft_size, axis=1)) ** 2
    mel_energies = power @ kaldi_mel_banks(bins, fft_size, rate, low, high).T
    log_mel = np.log(np.maximum(mel_energies, np.finfo(np.float32).eps))
    n = np.arange(bins)
    dct = np.array([np.full(bins, math.sqrt(1.0 / bins)) if k == 0 else
                    math.sqrt(2.0 / bins) * np.cos(math.pi / bins * (n + 0.5) * k) for k in range(ceps)])
    cepstra = log_mel @ dct.T
    if lifter:
        cepstra *= 1.0 + 0.5 * lifter * np.sin(math.pi * np.arange(ceps) / lifter)
    if use_energy:
        cepstra[:, 0] = log_energy
    return cepstra


def numpy_kaldi_fbank(samples, rate, low, high, bins, snip_edges):
    frames = kaldi_frames(samples.astype(np.float64), rate, 10, 25, snip_edges)
    windowed, _ = kaldi_process_frames(frames, 0.97, "povey")
    fft_size = 1 << (frames.shape[1] - 1).bit_length()
    power = np.abs(np.fft.rfft(windowed, n=fft_size, axis=1)) ** 2
    return np.log(np.maximum(power @ kaldi_mel_banks(bins, fft_size, rate, low, high).T,
                             np.finfo(np.float32).eps))


@pytest.mark.parametrize("config", [RECIPE_16K, RECIPE_8K], ids=["16k", "8k"])
@pytest.mark.parametrize("snip_edges", [True, False])
def test_mfcc_equals_direct_knf_and_kaldi_formula(config, snip_edges):
    rate = config["sample_frequency"]
    samples = synth_speech(0.73, rate=rate, seed=3).astype(np.float32)
    ours = features.mfcc(samples, rate, make_mfcc_options(snip_edges=snip_edges, **config), name="u")
    direct = direct_knf_mfcc(samples, rate, config["low_freq"], config["high_freq"],
                             config["num_mel_bins"], config["num_ceps"], snip_edges)
    np.testing.assert_array_equal(ours, direct)
    assert ours.dtype == np.float32
    shift, length = rate // 100, rate // 40
    expected_frames = (len(samples) + shift // 2) // shift if not snip_edges else 1 + (len(samples) - length) // shift
    assert ours.shape == (expected_frames, 30)
    reference = numpy_kaldi_mfcc(samples, rate, config["low_freq"], config["high_freq"],
                                 config["num_mel_bins"], config["num_ceps"], snip_edges)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("window_type", ["hamming", "hanning", "rectangular", "sine", "blackman"])
def test_mfcc_window_types_follow_kaldi_formula(window_type):
    samples = synth_speech(0.3, rate=8000, seed=5).astype(np.float32)
    opts = make_mfcc_options(snip_edges=True, window_type=window_type, **RECIPE_8K)
    reference = numpy_kaldi_mfcc(samples, 8000, 20, 3700, 30, 30, True, window_type=window_type)
    np.testing.assert_allclose(features.mfcc(samples, 8000, opts), reference, rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("energy", [dict(use_energy=False), dict(raw_energy=False), dict(energy_floor=1.0),
                                    dict(cepstral_lifter=0.0)])
def test_mfcc_energy_and_lifter_options_follow_kaldi_formula(energy):
    samples = synth_speech(0.4, rate=8000, seed=9).astype(np.float32)
    samples[:1200] = 0.0        # digital silence: the energy floor matters there
    opts = make_mfcc_options(snip_edges=True, **RECIPE_8K, **energy)
    reference_options = dict(energy)
    if "cepstral_lifter" in reference_options:
        reference_options["lifter"] = reference_options.pop("cepstral_lifter")
    reference = numpy_kaldi_mfcc(samples, 8000, 20, 3700, 30, 30, True, **reference_options)
    np.testing.assert_allclose(features.mfcc(samples, 8000, opts), reference, rtol=1e-4, atol=2e-3)
    if "energy_floor" in energy:
        assert features.mfcc(samples, 8000, opts)[0, 0] == 0.0    # log(1.0) on a silent frame


def test_fbank_80_dim_equals_knf_and_kaldi_formula():
    samples = synth_speech(0.5, rate=16000, seed=7).astype(np.float32)
    opts = features.FbankOptions()
    opts.frame.dither = 0.0
    opts.mel.num_mel_bins = 80
    ours = features.fbank(samples, 16000, opts)
    direct_opts = knf.FbankOptions()
    direct_opts.frame_opts.dither = 0.0
    direct_opts.mel_opts.num_bins = 80
    extractor = knf.OnlineFbank(direct_opts)
    extractor.accept_waveform(16000, samples)
    extractor.input_finished()
    direct = np.stack([np.array(extractor.get_frame(i)) for i in range(extractor.num_frames_ready)])
    np.testing.assert_array_equal(ours, direct)
    np.testing.assert_allclose(ours, numpy_kaldi_fbank(samples, 16000, 20, 0, 80, True), rtol=1e-4, atol=2e-3)


def test_short_audio_frame_counts():
    opts = make_mfcc_options(snip_edges=False, **RECIPE_8K)
    for count, frames in [(39, 0), (40, 1), (100, 1), (120, 2)]:
        samples = synth_speech(1, rate=8000)[:count].astype(np.float32)
        out = features.mfcc(samples, 8000, opts)
        assert out.shape == (frames, 30), count
        if frames:
            np.testing.assert_allclose(out, numpy_kaldi_mfcc(samples, 8000, 20, 3700, 30, 30, False),
                                       rtol=1e-4, atol=2e-3)
    opts.frame.snip_edges = True
    assert features.mfcc(np.ones(199, np.float32), 8000, opts).shape == (0, 30)
    assert features.num_frames(199, opts.frame) == 0 and features.num_frames(200, opts.frame) == 1


def test_dither_is_reproducible_per_utterance():
    samples = synth_speech(0.3, rate=16000).astype(np.float32)
    opts = features.MfccOptions()             # Kaldi default dither 1.0
    first = features.mfcc(samples, 16000, opts, name="utt1")
    np.testing.assert_array_equal(first, features.mfcc(samples, 16000, opts, name="utt1"))
    assert not np.array_equal(first, features.mfcc(samples, 16000, opts, name="utt2"))
    opts.frame.dither = 0.0
    undithered = features.mfcc(samples, 16000, opts, name="utt1")
    assert 0 < np.abs(first - undithered).max() < 1.0


@pytest.mark.parametrize("change, message", [
    (dict(high_freq=9000), "Nyquist"),
    (dict(low_freq=8000), "Nyquist"),
    (dict(num_ceps=40), "--num-ceps"),
    (dict(num_mel_bins=2), "at least 3"),
    (dict(num_mel_bins=300, num_ceps=13), "too large"),
    (dict(window_type="kaiser"), "window type"),
    (dict(frame_shift=0.01), "less than one sample"),
    (dict(dither=-1.0), "--dither"),
])
def test_bad_options_are_tool_errors(change, message):
    config = dict(RECIPE_16K)
    config.update({k: v for k, v in change.items() if k in config})
    extra = {k: v for k, v in change.items() if k not in config}
    opts = make_mfcc_options(snip_edges=True, **config)
    for key, value in extra.items():
        setattr(opts.frame, key, value)
    with pytest.raises(ToolError, match=message):
        features.FeatureExtractor(opts)


def test_high_freq_negative_is_offset_from_nyquist():
    samples = synth_speech(0.3, rate=8000, seed=2).astype(np.float32)
    negative = make_mfcc_options(snip_edges=True, **dict(RECIPE_8K, high_freq=-300))
    np.testing.assert_array_equal(features.mfcc(samples, 8000, negative),
                                  features.mfcc(samples, 8000, make_mfcc_options(snip_edges=True, **RECIPE_8K)))


def test_rate_mismatch_and_empty_audio_name_the_utterance():
    opts = make_mfcc_options(snip_edges=False, **RECIPE_16K)
    with pytest.raises(ToolError, match="utterance 'spk1-a'.*8000 Hz.*16000"):
        features.mfcc(np.ones(800, np.float32), 8000, opts, name="spk1-a")
    with pytest.raises(ToolError, match="utterance 'spk1-b': empty audio"):
        features.mfcc(np.zeros(0, np.float32), 16000, opts, name="spk1-b")


# ------------------------------------------------------------------------------------------
# VAD
def loop_vad(log_energy, threshold, mean_scale, proportion, context):
    """Kaldi ComputeVadEnergy in loop form (float32 as BaseFloat)."""
    T = len(log_energy)
    total = np.float32(np.sum(log_energy, dtype=np.float64))
    thr = np.float32(np.float32(threshold) + np.float32(np.float32(mean_scale) * total) / np.float32(T))
    out = np.zeros(T, dtype=np.float32)
    for t in range(T):
        num = den = 0
        for t2 in range(t - context, t + context + 1):
            if 0 <= t2 < T:
                den += 1
                num += log_energy[t2] > thr
        out[t] = 1.0 if num >= den * np.float32(proportion) else 0.0
    return out


VAD_CASES = {
    "speech": lambda rng: np.where(rng.random(157) < 0.6, 14.0, 3.0) + rng.standard_normal(157),
    "single_frame": lambda rng: np.array([9.0]),
    "shorter_than_context": lambda rng: rng.standard_normal(3) * 4 + 8,
    "all_silent": lambda rng: np.full(40, -15.9),
    "constant_loud": lambda rng: np.full(25, 20.0),
}


@pytest.mark.parametrize("case", sorted(VAD_CASES))
@pytest.mark.parametrize("params", [(5.5, 0.5, 0.12, 2), (5.0, 0.5, 0.6, 0), (2.0, 0.0, 0.5, 5)])
def test_vad_matches_kaldi_loop(case, params):
    rng = np.random.default_rng(1)
    energy = VAD_CASES[case](rng).astype(np.float32)
    feats = np.column_stack([energy, rng.standard_normal((len(energy), 4))]).astype(np.float32)
    got = features.compute_vad(feats, *params)
    np.testing.assert_array_equal(got, loop_vad(energy, *params))
    assert got.dtype == np.float32 and got.shape == (len(energy),)


def test_vad_expected_values_on_a_tiny_example():
    # energies 0,10,0,10,10 -> mean 6, threshold 1 + 0.5*6 = 4; above = [0,1,0,1,1]
    feats = np.array([[0.0], [10.0], [0.0], [10.0], [10.0]], dtype=np.float32)
    np.testing.assert_array_equal(features.compute_vad(feats, 1.0, 0.5, 0.6, 0), [0, 1, 0, 1, 1])
    # context 1, windows {0,1},{0,1,2},{1,2,3},{2,3,4},{3,4}: counts 1/2,1/3,2/3,2/3,2/2 vs 0.5
    np.testing.assert_array_equal(features.compute_vad(feats, 1.0, 0.5, 0.5, 1), [1, 0, 1, 1, 1])


def test_vad_bad_options_and_empty_input():
    feats = np.ones((5, 3), np.float32)
    with pytest.raises(ToolError, match="proportion"):
        features.compute_vad(feats, 5.0, 0.5, 1.0, 0)
    with pytest.raises(ToolError, match="context"):
        features.compute_vad(feats, 5.0, 0.5, 0.5, -1)
    assert features.compute_vad(np.zeros((0, 3), np.float32)).shape == (0,)


# ------------------------------------------------------------------------------------------
# sliding CMN
def loop_sliding_cmvn(feats, window, center, norm_vars, min_window):
    """Kaldi SlidingWindowCmnInternal in loop form with running sums (double)."""
    x = feats.astype(np.float64)
    T, D = x.shape
    out = np.zeros_like(x)
    last_start = last_end = -1
    cur_sum = np.zeros(D)
    cur_sumsq = np.zeros(D)
    for t in range(T):
        if center:
            start = t - window // 2
            end = start + window
        else:
            start = t - window
            end = t + 1
        if start < 0:
            end -= start
            start = 0
        if not center and end > t:
            end = max(t + 1, min_window)
        if end > T:
            start -= end - T
            end = T
            start = max(start, 0)
        if last_start == -1:
            cur_sum = x[start:end].sum(axis=0)
            cur_sumsq = (x[start:end] ** 2).sum(axis=0)
        else:
            if start > last_start:
                assert start == last_start + 1
                cur_sum -= x[last_start]
                cur_sumsq -= x[last_start] ** 2
            if end > last_end:
                assert end == last_end + 1
                cur_sum += x[last_end]
                cur_sumsq += x[last_end] ** 2
        n = end - start
        last_start, last_end = start, end
        out[t] = x[t] - cur_sum / n
        if norm_vars:
            if n == 1:
                out[t] = 0.0
            else:
                variance = np.maximum(cur_sumsq / n - cur_sum ** 2 / n ** 2, 1e-10)
                out[t] *= variance ** -0.5
    return out.astype(np.float32)


CMN_LENGTHS = [1, 2, 7, 150, 299, 300, 301, 777]


@pytest.mark.parametrize("length", CMN_LENGTHS)
@pytest.mark.parametrize("center, norm_vars, window, min_window", [
    (True, False, 300, 100), (False, False, 300, 100), (True, True, 300, 100), (False, True, 600, 100),
    (True, False, 7, 3), (False, False, 7, 3)])
def test_sliding_cmvn_matches_kaldi_loop(length, center, norm_vars, window, min_window):
    rng = np.random.default_rng(length)
    feats = (rng.standard_normal((length, 5)) * 3 + np.arange(5) * 10).astype(np.float32)
    got = features.apply_cmvn_sliding(feats, cmn_window=window, center=center, norm_vars=norm_vars,
                                      min_cmn_window=min_window)
    expected = loop_sliding_cmvn(feats, window, center, norm_vars, min_window)
    assert got.dtype == np.float32 and got.shape == feats.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-5)


def test_sliding_cmn_recipe_setting_by_hand():
    # T shorter than the window: every row minus the utterance mean
    feats = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_allclose(features.apply_cmvn_sliding(feats, 300, center=True),
                               feats - feats.mean(axis=0), atol=1e-6)
    # window 2 centred: t=0 -> [0,2), t=1 -> [0,2), t=2 -> [1,3), t=3 -> [2,4)
    column = np.array([[1.0], [3.0], [7.0], [15.0]], dtype=np.float32)
    np.testing.assert_allclose(features.apply_cmvn_sliding(column, 2, center=True, min_cmn_window=2)[:, 0],
                               [1 - 2, 3 - 2, 7 - 5, 15 - 11])
    assert features.apply_cmvn_sliding(np.zeros((0, 3), np.float32), 300, True).shape == (0, 3)
    with pytest.raises(ToolError, match="--cmn-window"):
        features.apply_cmvn_sliding(feats, 0, True)


# ------------------------------------------------------------------------------------------
# voiced frames
def test_select_voiced_frames():
    feats = np.arange(10, dtype=np.float32).reshape(5, 2)
    vad = np.array([1, 0, 1, 1, 0], dtype=np.float32)
    expected = np.array([feats[i] for i in range(5) if vad[i] != 0.0])
    np.testing.assert_array_equal(features.select_voiced_frames(feats, vad), expected)
    assert features.select_voiced_frames(feats, np.zeros(5, np.float32)).shape == (0, 2)
    with pytest.raises(ToolError, match="utterance 'u1'.*5 for the features and 4"):
        features.select_voiced_frames(feats, vad[:4], name="u1")


def test_options_from_a_parsed_command_line():
    from tfspk import cli
    parser = cli.KaldiArgumentParser("x")
    feature_options.add_feature_options(parser, "mfcc")
    args = parser.parse_args(["--num-ceps=20", "--snip-edges=false", "--high-freq=-400", "--window-type=hamming"])
    opts = feature_options.options_from_args(args, "mfcc")
    assert (opts.num_ceps, opts.frame.snip_edges, opts.mel.high_freq, opts.frame.window_type) == (20, False, -400.0, "hamming")
    assert opts.frame.dither == 1.0 and opts.use_energy and opts.cepstral_lifter == 22.0


def test_dither_noise_statistics_and_table_wrap():
    extractor = features.FeatureExtractor(features.MfccOptions())   # dither 1.0
    from tfspk.features.mfcc import DITHER_TABLE_SIZE
    noise = extractor._dithered(np.zeros(DITHER_TABLE_SIZE + 5000, np.float32), "utt")
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 1.0) < 0.01
    np.testing.assert_array_equal(noise[DITHER_TABLE_SIZE:], noise[:5000])   # cyclic table
    other = extractor._dithered(np.zeros(5000, np.float32), "other-utt")
    assert abs(np.corrcoef(noise[:5000], other)[0, 1]) < 0.1
