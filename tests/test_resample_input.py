"""Audio at 16 kHz and 44.1 kHz into an 8 kHz feature config: the feature tools (Kaldi's
--allow-downsample/--allow-upsample) and the training audio input resample it where they read it.

The reference is the same speech resampled offline by scipy's FFT resampler (``scipy.signal.resample``,
an ideal low-pass: independent of the polyphase filter of tfspk.io.resample). Tolerance of the
features (log mel energies, 23 bins, 8 kHz): |difference| <= 0.02 in every bin but the top two, whose
bands (3.3-4 kHz) lie in the transition band of the polyphase filter, where the two resamplers differ by
design (there |difference| <= 1.0), in every frame but the first and last two (FFT resampling is
circular: it wraps the end of a file onto its start). Embeddings of a network on those features:
cosine >= 0.99.
"""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from conftest import run, run_tool_here, synth_speech
from tfspk.errors import ToolError

TARGET = 8000
BINS = 23
TOL, TOL_TOP = 0.02, 1.0
EDGE = 2


def _offline(samples, rate):
    """The reference: scipy's FFT resampling to 8 kHz, the length polyphase resampling gives."""
    from scipy.signal import resample
    return resample(np.asarray(samples, np.float64), -(-len(samples) * TARGET // rate))


def _check_features(got, expected):
    assert got.shape == expected.shape
    diff = np.abs(got - expected)[EDGE:-EDGE]
    assert diff[:, :BINS - 2].max() <= TOL, diff[:, :BINS - 2].max()
    assert diff.max() <= TOL_TOP, diff.max()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Recordings at 16 and 44.1 kHz (int16 files, as corpora come), the offline 8 kHz copies (float
    files: no requantisation), their wav.scp files and an 8 kHz fbank config."""
    root = tmp_path_factory.mktemp("resample")
    out = {"conf": root / "fbank.conf"}
    out["conf"].write_text(f"--sample-frequency={TARGET}\n--dither=0\n--num-mel-bins={BINS}\n")
    for rate in (16000, 44100):
        native, offline = [], []
        for s in range(4):
            for u in range(2):
                utt = f"spk{s}-u{u}"
                samples = synth_speech(1.3, rate, seed=10 * s + u, f0=100 + 25 * s)
                (root / str(rate)).mkdir(exist_ok=True)
                (root / f"{rate}-8k").mkdir(exist_ok=True)
                sf.write(str(root / str(rate) / f"{utt}.wav"), samples, rate, subtype="PCM_16")
                sf.write(str(root / f"{rate}-8k" / f"{utt}.wav"), _offline(samples, rate) / 32768.0, TARGET,
                         subtype="FLOAT")
                native.append(f"{utt} {root / str(rate) / utt}.wav\n")
                offline.append(f"{utt} {root / f'{rate}-8k' / utt}.wav\n")
        for name, lines in ((str(rate), native), (f"{rate}-8k", offline)):
            data = root / f"data-{name}"
            data.mkdir()
            (data / "wav.scp").write_text("".join(lines))
            (data / "utt2spk").write_text("".join(f"{line.split()[0]} {line.split('-')[0]}\n" for line in lines))
            out[name] = data
    return out


def _features(tool_args, data, tmp_path, name):
    from tfspk.io.ark import read_rspecifier
    run(["tfspk-compute-fbank-feats"] + tool_args + [f"scp:{data}/wav.scp", f"ark:{tmp_path}/{name}.ark"])
    return dict(read_rspecifier(f"ark:{tmp_path}/{name}.ark"))


@pytest.mark.parametrize("rate", [16000, 44100])
def test_feature_tool_allow_downsample_matches_offline_resampling(corpus, tmp_path, rate):
    conf = f"--config={corpus['conf']}"
    got = _features([conf, "--allow-downsample=true"], corpus[str(rate)], tmp_path, "native")
    expected = _features([conf], corpus[f"{rate}-8k"], tmp_path, "offline")
    assert sorted(got) == sorted(expected)
    for utt in got:
        _check_features(got[utt], expected[utt])
    # Kaldi's default: a rate above --sample-frequency is an error naming the utterance and the option
    proc = run_tool_here(["tfspk-compute-fbank-feats", conf, f"scp:{corpus[str(rate)]}/wav.scp",
                          f"ark:{tmp_path}/no.ark"], check=False)
    assert proc.returncode == 1 and f"{rate} Hz but --sample-frequency is 8000" in proc.stderr
    assert "--allow-downsample=true" in proc.stderr
    assert not (tmp_path / "no.ark").exists()


def test_feature_tool_allow_upsample_is_its_own_option(corpus, tmp_path):
    conf = tmp_path / "fbank16.conf"
    conf.write_text(f"--sample-frequency=16000\n--dither=0\n--num-mel-bins={BINS}\n")
    data = corpus["16000-8k"]
    proc = run_tool_here(["tfspk-compute-fbank-feats", f"--config={conf}", "--allow-downsample=true",
                          f"scp:{data}/wav.scp", f"ark:{tmp_path}/up.ark"], check=False)
    assert proc.returncode == 1 and "--allow-upsample=true" in proc.stderr
    got = _features([f"--config={conf}", "--allow-upsample=true"], data, tmp_path, "up")
    assert len(got) == 8 and all(m.shape[1] == BINS for m in got.values())


def _audio_input(data, conf, *extra):
    from tfspk.train import config as config_mod
    from tfspk.train.inputs.audio import AudioInput
    config = config_mod.build_config(None, [
        "data.source=audio", f"features.conf={conf}", "data.speakers_per_batch=4", "data.min_frames=40",
        "data.max_frames=60", "features.cmn=none", "valid.num_utts=0", "data.num_threads=1",
        "nnet.params.frame_dim=16", "nnet.params.pooling_dim=24", "nnet.params.embedding_dim=8"] + list(extra))
    return AudioInput(str(data), config), config


@pytest.mark.parametrize("rate", [16000, 44100])
def test_training_audio_input_resamples_to_the_feature_rate(corpus, rate):
    from tfspk.io.resample import resample
    from tfspk.train import components
    native, config = _audio_input(corpus[str(rate)], corpus["conf"])
    offline, _ = _audio_input(corpus[f"{rate}-8k"], corpus["conf"])
    assert any(f"resampling 8 of 8 utterances from {rate} Hz to the features' 8000 Hz" in n for n in native.notes)
    assert not any("resampling" in n for n in offline.notes)
    model = components.build_network(components.resolve(config), native.feat_dim)
    for step in range(3):
        assert native.batches.plan(step)[0] == offline.batches.plan(step)[0]
        got, labels = native.batch(step)
        expected, expected_labels = offline.batch(step)
        np.testing.assert_array_equal(labels, expected_labels)
        for crop_got, crop_expected in zip(got, expected):
            _check_features(crop_got, crop_expected)
        a = model(got, training=False)["embedding_a"].numpy().astype(np.float64)
        b = model(expected, training=False)["embedding_a"].numpy().astype(np.float64)
        cosine = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cosine.min() >= 0.99, cosine
    # a crop read from the part of the file equals the crop of the whole file resampled
    whole = {line.split()[0]: line.split()[1] for line in open(f"{corpus[str(rate)]}/wav.scp")}
    for crop in native.batches.plan(5)[1]:
        samples, _ = sf.read(whole[crop.key], dtype="int16")
        expected = resample(samples.astype(np.float64), rate, TARGET)[crop.start:crop.start + crop.length]
        np.testing.assert_allclose(native.batches.read(crop.key, crop.start, crop.length), expected, atol=1e-3)


def test_training_audio_input_keeps_the_strict_error_when_asked(corpus):
    with pytest.raises(ToolError, match=r"has rate 16000 Hz, expected 8000 Hz .*data.allow_resample false"):
        _audio_input(corpus["16000"], corpus["conf"], "data.allow_resample=false")
