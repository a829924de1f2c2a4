"""Spectrogram features (Kaldi compute-spectrogram-feats) against the loop-form restatement of
Kaldi's feature-window.cc / feature-spectrogram.cc in test_features, and the raw log energy
against kaldi-native-fbank's (the same frame processing, computed by Kaldi's C++ port)."""
import math

import kaldi_native_fbank as knf
import numpy as np
import pytest

from conftest import run, run_tool_here, synth_speech
from test_features import kaldi_frames, kaldi_process_frames
from test_features_tools import read_int16_scaled, write_wavs
from tfspk import features
from tfspk.errors import ToolError
from tfspk.io import ark

EPS = np.finfo(np.float32).eps


def loop_kaldi_spectrogram(samples, rate, shift_ms, length_ms, snip_edges, round_pow2, window_type="povey",
                           raw_energy=True, energy_floor=0.0):
    """ComputeSpectrogram restated frame by frame (float64)."""
    frames = kaldi_frames(samples.astype(np.float64), rate, shift_ms, length_ms, snip_edges)
    windowed, log_energy = kaldi_process_frames(frames, 0.97, window_type)
    size = frames.shape[1]
    fft_size = 1 << (size - 1).bit_length() if round_pow2 else size
    rows = []
    for index, frame in enumerate(windowed):
        padded = np.zeros(fft_size)
        padded[:size] = frame
        energy = log_energy[index] if raw_energy else math.log(max(float(padded @ padded), EPS))
        if energy_floor > 0:
            energy = max(energy, math.log(energy_floor))
        power = np.array([abs(sum(padded[n] * np.exp(-2j * math.pi * k * n / fft_size) for n in range(fft_size))) ** 2
                          for k in range(fft_size // 2 + 1)]) if fft_size <= 64 else \
            np.abs(np.fft.fft(padded)[:fft_size // 2 + 1]) ** 2
        row = np.log(np.maximum(power, EPS))
        row[0] = energy
        rows.append(row)
    return np.array(rows).reshape(len(rows), fft_size // 2 + 1)


def spectrogram_options(rate=16000, length=20.0, snip_edges=True, round_pow2=False, **extra):
    opts = features.SpectrogramOptions()
    opts.frame.sample_frequency = rate
    opts.frame.frame_length = length
    opts.frame.dither = 0.0
    opts.frame.snip_edges = snip_edges
    opts.frame.round_to_power_of_two = round_pow2
    for key, value in extra.items():
        setattr(opts.frame if hasattr(opts.frame, key) else opts, key, value)
    return opts


@pytest.mark.parametrize("snip_edges", [True, False])
@pytest.mark.parametrize("round_pow2", [False, True])
def test_spectrogram_equals_kaldi_loop(snip_edges, round_pow2):
    samples = synth_speech(0.83, 16000, seed=4).astype(np.float32)
    got = features.spectrogram(samples, 16000, spectrogram_options(snip_edges=snip_edges, round_pow2=round_pow2))
    expected = loop_kaldi_spectrogram(samples, 16000, 10, 20, snip_edges, round_pow2)
    assert got.dtype == np.float32
    assert got.shape == expected.shape == (expected.shape[0], 257 if round_pow2 else 161)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-4)


@pytest.mark.parametrize("window_type", ["hamming", "hanning", "rectangular", "sine", "blackman"])
def test_spectrogram_window_types(window_type):
    samples = synth_speech(0.4, 8000, seed=5).astype(np.float32)
    opts = spectrogram_options(rate=8000, length=25.0, window_type=window_type)
    expected = loop_kaldi_spectrogram(samples, 8000, 10, 25, True, False, window_type=window_type)
    np.testing.assert_allclose(features.spectrogram(samples, 8000, opts), expected, rtol=1e-5, atol=2e-4)


def test_energy_options_and_tiny_fft_by_direct_dft():
    """raw-energy false / energy-floor, with a 4 ms window so the loop uses a direct DFT sum."""
    rng = np.random.default_rng(0)
    samples = np.round(rng.standard_normal(400) * 3).astype(np.float32)
    samples[100:200] = 0.0                         # silent frames: the floor acts
    opts = spectrogram_options(rate=16000, length=4.0, raw_energy=False, energy_floor=50.0)
    opts.frame.frame_shift = 4.0
    expected = loop_kaldi_spectrogram(samples, 16000, 4, 4, True, False, raw_energy=False, energy_floor=50.0)
    got = features.spectrogram(samples, 16000, opts)
    assert got.shape == (6, 33)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-4)
    assert np.all(got[:, 0] >= math.log(50.0) - 1e-5)


def test_log_energy_column_equals_knf_raw_energy():
    """Column 0 is the raw log energy: knf's fbank with use_energy computes the same quantity."""
    samples = synth_speech(1.1, 16000, seed=6).astype(np.float32)
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.frame_length_ms = 20
    opts.frame_opts.round_to_power_of_two = False
    opts.frame_opts.snip_edges = False
    opts.use_energy = True
    opts.raw_energy = True
    extractor = knf.OnlineFbank(opts)
    extractor.accept_waveform(16000, samples)
    extractor.input_finished()
    knf_energy = np.array([extractor.get_frame(i)[0] for i in range(extractor.num_frames_ready)])
    got = features.spectrogram(samples, 16000, spectrogram_options(snip_edges=False))
    np.testing.assert_allclose(got[:, 0], knf_energy, rtol=1e-5, atol=1e-4)


def test_raw_fft_is_kaldi_packed_layout():
    samples = synth_speech(0.3, 16000, seed=7).astype(np.float32)
    opts = spectrogram_options(return_raw_fft=True)
    got = features.spectrogram(samples, 16000, opts)
    assert got.shape[1] == opts.dim == 320
    frames = kaldi_frames(samples.astype(np.float64), 16000, 10, 20, True)
    windowed, _ = kaldi_process_frames(frames, 0.97, "povey")
    spectrum = np.fft.fft(windowed[2])
    packed = [spectrum[0].real, spectrum[160].real]
    for k in range(1, 160):
        packed += [spectrum[k].real, spectrum[k].imag]
    np.testing.assert_allclose(got[2], packed, rtol=1e-4, atol=1e-2)


def test_short_audio_and_bad_options():
    short = np.ones(100, dtype=np.float32)
    assert features.spectrogram(short, 16000, spectrogram_options()).shape == (0, 161)
    assert features.spectrogram(short, 16000, spectrogram_options(snip_edges=False)).shape == (1, 161)
    with pytest.raises(ToolError, match="must be even"):
        features.FeatureExtractor(spectrogram_options(length=20.0625))
    with pytest.raises(ToolError, match="energy-floor"):
        features.FeatureExtractor(spectrogram_options(energy_floor=-1.0))


def test_compute_spectrogram_feats_tool(tmp_path):
    scp = write_wavs(tmp_path, [("a-1", 0.7, 1), ("b-1", 1.2, 2)], 16000)
    conf = tmp_path / "spec.conf"
    conf.write_text("--frame-length=20\n--round-to-power-of-two=false\n--dither=0\n--snip-edges=false\n")
    run_tool_here(["tfspk-compute-spectrogram-feats", f"--config={conf}", f"scp:{scp}",
                   f"ark,scp:{tmp_path}/s.ark,{tmp_path}/s.scp"])
    got = dict(ark.read_rspecifier(f"scp:{tmp_path}/s.scp"))
    samples, rate = read_int16_scaled(tmp_path / "b-1.wav")
    expected = loop_kaldi_spectrogram(samples, rate, 10, 20, False, False)
    np.testing.assert_allclose(got["b-1"], expected, rtol=1e-5, atol=2e-4)
    proc = run_tool_here(["tfspk-compute-spectrogram-feats", "--num-mel-bins=40", f"scp:{scp}", f"ark:{tmp_path}/x.ark"],
                         check=False)
    assert proc.returncode != 0 and "num-mel-bins" in proc.stderr


def test_make_spectrogram_step(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    scp = write_wavs(data, [("s1-a", 0.5, 1), ("s1-b", 0.9, 2), ("s2-a", 0.7, 3)], 16000)
    (data / "utt2spk").write_text("s1-a s1\ns1-b s1\ns2-a s2\n")
    (data / "spk2utt").write_text("s1 s1-a s1-b\ns2 s2-a\n")
    conf = tmp_path / "spectrogram.conf"
    conf.write_text("--frame-length=20\n--round-to-power-of-two=false\n--dither=0\n--snip-edges=false\n")
    assert scp.exists()
    run(["steps/make_spectrogram.sh", "--nj", "2", "--spectrogram-config", str(conf), str(data),
         str(tmp_path / "log"), str(tmp_path / "spec")])
    feats = dict(ark.read_rspecifier(f"scp:{data}/feats.scp"))
    assert sorted(feats) == ["s1-a", "s1-b", "s2-a"]
    assert all(m.shape[1] == 161 for m in feats.values())
    assert (data / "utt2num_frames").read_text().split() == ["s1-a", "50", "s1-b", "90", "s2-a", "70"]
