"""tfspk.data.augment: primitives against independent numpy statements, the Augmenter's
reproducibility, and bad noise/RIR directories."""
import math
import os
import sys

import numpy as np
import pytest
import soundfile as sf

from tfspk.data import audio_sampler, augment as aug, dsp
from tfspk.errors import ToolError

RATE = 8000


def _snr_db(clean, mixed):
    clean = clean.astype(np.float64)
    noise = mixed.astype(np.float64) - clean
    return 10 * math.log10(np.mean(clean ** 2) / np.mean(noise ** 2))


def _write_dir(path, recordings, rate=RATE, subtype="PCM_16"):
    os.makedirs(path / "wav", exist_ok=True)
    lines = []
    for key, samples in sorted(recordings.items()):
        wav = path / "wav" / f"{key}.wav"
        sf.write(wav, np.asarray(samples) / 32768.0, rate, subtype=subtype)
        lines.append(f"{key} {wav}\n")
    (path / "wav.scp").write_text("".join(lines))
    return str(path)


@pytest.fixture()
def dirs(tmp_path):
    rng = np.random.default_rng(0)
    noise = _write_dir(tmp_path / "noise", {f"n{i}": rng.normal(0, 3000, RATE // 2 + 100 * i) for i in range(3)})
    music = _write_dir(tmp_path / "music", {f"m{i}": rng.normal(0, 2000, 3 * RATE) for i in range(2)})
    babble = _write_dir(tmp_path / "babble", {f"s{i}": rng.normal(0, 1000, 2 * RATE) for i in range(8)})
    rirs = {}
    for i in range(3):
        h = np.zeros(400)
        h[20 + 5 * i] = 20000.0
        h[60:] += rng.normal(0, 500, 340) * np.exp(-np.arange(340) / 80)
        rirs[f"r{i}"] = h
    rir = _write_dir(tmp_path / "rir", rirs, subtype="FLOAT")
    return {"noise_dir": noise, "music_dir": music, "babble_dir": babble, "rir_dir": rir}


# ---- primitives ----------------------------------------------------------------------------

@pytest.mark.parametrize("snr", [-5.0, 0.0, 5.0, 13.0, 20.0])
def test_add_noise_realises_the_snr_on_the_whole_crop(snr):
    rng = np.random.default_rng(1)
    speech = rng.normal(0, 1000, 4000) * np.linspace(0.1, 2, 4000)   # non-stationary power
    noise = rng.normal(0, 7, 4000)
    mixed = dsp.add_noise(speech, noise, snr)
    assert abs(_snr_db(speech, mixed) - snr) < 0.5
    # exactly: the scaled noise has P_s / 10^(snr/10)
    np.testing.assert_allclose(np.mean((mixed - speech.astype(np.float32)) ** 2.0),
                               np.mean(speech ** 2) / 10 ** (snr / 10), rtol=1e-3)


def test_add_noise_with_offset_scales_against_the_whole_crop_and_adds_only_there():
    rng = np.random.default_rng(2)
    speech = rng.normal(0, 100, 1000).astype(np.float32)
    noise = rng.normal(0, 1, 300)
    mixed = dsp.add_noise(speech, noise, 10.0, offset=800)        # only 200 samples fit
    np.testing.assert_array_equal(mixed[:800], speech[:800])
    added = mixed[800:].astype(np.float64) - speech[800:]
    gain = math.sqrt(np.mean(speech.astype(np.float64) ** 2) / (np.mean(noise[:200] ** 2) * 10.0))
    np.testing.assert_allclose(added, gain * noise[:200], rtol=1e-3, atol=1e-3)


def test_add_noise_silent_noise_leaves_speech():
    speech = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(dsp.add_noise(speech, np.zeros(10), 5.0), speech)


@pytest.mark.parametrize("normalize", [False, True])
def test_reverberate_is_numpy_convolution_aligned_at_the_direct_path(normalize):
    rng = np.random.default_rng(3)
    speech = rng.normal(0, 1000, 3000)
    rir = rng.normal(0, 0.01, 500) * np.exp(-np.arange(500) / 100)
    rir[37] = -2.0                                    # the direct path: largest magnitude, negative
    out = dsp.reverberate(speech, rir, normalize_output=normalize)
    h = rir / np.sqrt(np.sum(rir ** 2))
    expected = np.convolve(speech, h)[37:37 + 3000]
    if normalize:
        expected *= np.sqrt(np.mean(speech ** 2) / np.mean(expected ** 2))
    assert out.shape == speech.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-2)


def test_reverberate_with_a_pure_delay_returns_the_input():
    speech = np.random.default_rng(4).normal(0, 1, 100)
    rir = np.zeros(50)
    rir[17] = 0.3                                    # delay 17 samples, any gain
    np.testing.assert_allclose(dsp.reverberate(speech, rir), speech, rtol=1e-5, atol=1e-5)
    assert dsp.direct_path_index(rir) == 17


@pytest.mark.parametrize("factor, ratio", [(0.9, (10, 9)), (1.1, (10, 11)), (1.0, (1, 1))])
def test_speed_perturb_changes_the_length_by_the_factor(factor, ratio):
    n = 16001
    samples = np.sin(2 * np.pi * 300 * np.arange(n) / RATE) * 1000
    out = dsp.speed_perturb(samples, factor)
    assert dsp.speed_ratio(factor) == ratio
    assert len(out) == math.ceil(n * ratio[0] / ratio[1])
    assert abs(len(out) - n / factor) <= 1
    if factor != 1.0:
        # sox speed: the 300 Hz tone comes out at 300 * factor Hz
        spectrum = np.abs(np.fft.rfft(out[1000:-1000] * np.hanning(len(out) - 2000)))
        peak = np.argmax(spectrum) * RATE / (len(out) - 2000)
        assert abs(peak - 300 * factor) < 3
    else:
        np.testing.assert_array_equal(out, samples.astype(np.float32))


def test_expand_labels_makes_a_class_set_per_factor():
    labels = np.array([0, 3, 4])
    assert aug.expand_labels(3, 0, 5) == 3
    assert aug.expand_labels(3, 2, 5) == 13
    np.testing.assert_array_equal(aug.expand_labels(labels, np.array([0, 1, 2]), 5), [0, 8, 14])
    # all (label, index) pairs map to distinct classes in [0, 3C)
    grid = [aug.expand_labels(c, k, 5) for c in range(5) for k in range(3)]
    assert sorted(grid) == list(range(15))
    with pytest.raises(ToolError, match="out of range"):
        aug.expand_labels(5, 0, 5)


@pytest.mark.parametrize("text", ["", "1.0,abc", "1.0,0.9,0.9", "0.1", "1.0,-1", "nan"])
def test_invalid_speed_factor_lists(text):
    with pytest.raises(ToolError, match="speed_factors"):
        aug.parse_speed_factors(text)
    with pytest.raises(ToolError, match="speed_factors"):
        aug.Augmenter({"speed_factors": text}, RATE)


def test_speed_factor_list_forms():
    assert aug.parse_speed_factors("1.0,0.9,1.1") == [1.0, 0.9, 1.1]
    assert aug.parse_speed_factors("1:0.9:1.1") == [1.0, 0.9, 1.1]


@pytest.mark.parametrize("shape", [(200, 30), (5, 3), (1, 40)])
def test_spec_augment_masks_stay_within_bounds(shape):
    feats = np.random.default_rng(5).normal(size=shape).astype(np.float32) + 10
    for trial in range(50):
        rng_a, rng_b = np.random.default_rng(trial), np.random.default_rng(trial)
        time_masks, freq_masks = dsp.spec_augment_masks(*shape, rng_a, 2, 10, 2, 8)
        out = dsp.spec_augment(feats, rng_b, 2, 10, 2, 8)
        assert len(time_masks) == 2 and len(freq_masks) == 2
        expected = feats.copy()
        for start, width in time_masks:
            assert 0 <= width <= min(10, shape[0]) and 0 <= start and start + width <= shape[0]
            expected[start:start + width] = 0
        for start, width in freq_masks:
            assert 0 <= width <= min(8, shape[1]) and 0 <= start and start + width <= shape[1]
            expected[:, start:start + width] = 0
        np.testing.assert_array_equal(out, expected)
    widths = [dsp.spec_augment_masks(200, 30, np.random.default_rng(s), 1, 10, 1, 8)[0][0][1] for s in range(300)]
    assert min(widths) == 0 and max(widths) == 10      # the whole range is used


# ---- the Augmenter ----------------------------------------------------------------------------

def _params(dirs, **extra):
    values = dict(dirs, reverb_prob=0.5, noise_prob=0.3, music_prob=0.3, babble_prob=0.3,
                  speed_factors="1.0,0.9,1.1", spec_augment=True)
    values.update(extra)
    return values


def test_same_seed_step_position_same_output_after_a_fresh_start(dirs):
    speech = np.random.default_rng(6).normal(0, 1000, 2 * RATE).astype(np.float32)
    first = aug.Augmenter(_params(dirs), RATE, seed=11)
    batch = [first(speech, 7, position) for position in range(12)]
    # a "resumed" run: a new Augmenter (empty cache), steps visited in another order
    second = aug.Augmenter(_params(dirs), RATE, seed=11)
    second(speech, 3, 0)
    again = [second(speech, 7, position) for position in reversed(range(12))][::-1]
    for (a, ia), (b, ib) in zip(batch, again):
        assert ia == ib
        np.testing.assert_array_equal(a, b)
    feats = np.ones((100, 30), np.float32)
    np.testing.assert_array_equal(first.spec_augment(feats, 7, 3), second.spec_augment(feats, 7, 3))
    # other seeds/steps/positions differ
    assert not np.array_equal(batch[0][0], aug.Augmenter(_params(dirs), RATE, seed=12)(speech, 7, 0)[0]) \
        or not np.array_equal(batch[1][0], aug.Augmenter(_params(dirs), RATE, seed=12)(speech, 7, 1)[0])
    kinds = {first.plan(7, p).kind for p in range(200)}
    assert kinds == {None, "noise", "music", "babble"}
    assert {first.plan(7, p).speed_index for p in range(200)} == {0, 1, 2}


def test_plan_probabilities(dirs):
    augmenter = aug.Augmenter(_params(dirs, reverb_prob=0.25, noise_prob=0.2, music_prob=0.3, babble_prob=0.1), RATE)
    plans = [augmenter.plan(1, p) for p in range(4000)]
    share = lambda f: np.mean([f(p) for p in plans])  # noqa: E731
    assert abs(share(lambda p: p.rir is not None) - 0.25) < 0.03
    assert abs(share(lambda p: p.kind == "noise") - 0.2) < 0.03
    assert abs(share(lambda p: p.kind == "music") - 0.3) < 0.03
    assert abs(share(lambda p: p.kind is None) - 0.4) < 0.03
    babble = [p for p in plans if p.kind == "babble"]
    assert {len(p.noises) for p in babble} == {3, 4, 5, 6, 7}
    assert all(snr in (13, 15, 17, 20) for p in babble for _, snr, _ in p.noises)


def test_music_mix_realises_the_drawn_snr(dirs):
    augmenter = aug.Augmenter(_params(dirs, reverb_prob=0, noise_prob=0, music_prob=1, babble_prob=0,
                                      speed_factors="1"), RATE)
    speech = np.random.default_rng(7).normal(0, 1000, 4 * RATE).astype(np.float32)  # longer than music: looped
    uncached = aug.Augmenter(_params(dirs, reverb_prob=0, noise_prob=0, music_prob=1, babble_prob=0,
                                     speed_factors="1", cache_mb=0), RATE)   # partial reads, looping
    for position in range(5):
        plan = augmenter.plan(0, position)
        (key, snr, u_offset), = plan.noises
        mixed = augmenter.apply(speech, plan)
        assert abs(_snr_db(speech, mixed) - snr) < 0.5
        np.testing.assert_array_equal(mixed, uncached.apply(speech, plan))
        # the added noise is the recording looped from the drawn offset
        music = sf.read(os.path.join(dirs["music_dir"], "wav", f"{key}.wav"), dtype="float32")[0] * 32768
        looped = np.tile(music, 3)[int(u_offset * len(music)):][:len(speech)]
        power = lambda x: np.mean(x.astype(np.float64) ** 2)  # noqa: E731
        gain = np.sqrt(power(speech) / (power(looped) * 10 ** (snr / 10)))
        np.testing.assert_allclose(mixed - speech, gain * looped, rtol=1e-3, atol=0.05)


def test_apply_reverb_equals_the_primitive_and_speed_changes_length(dirs):
    augmenter = aug.Augmenter(_params(dirs, reverb_prob=1, noise_prob=0, music_prob=0, babble_prob=0), RATE)
    speech = np.random.default_rng(8).normal(0, 1000, RATE).astype(np.float32)
    plan = augmenter.plan(2, 3)
    out = augmenter.apply(speech, plan)
    rir = sf.read(os.path.join(dirs["rir_dir"], "wav", f"{plan.rir}.wav"))[0]
    np.testing.assert_allclose(out, dsp.reverberate(dsp.speed_perturb(speech, plan.speed), rir), rtol=1e-5, atol=1e-2)
    assert abs(len(out) - RATE / plan.speed) <= 1
    assert augmenter.source_length(1000, plan) >= 1000 * plan.speed


def test_foreground_noises_follow_the_interval(dirs, tmp_path):
    rng = np.random.default_rng(9)       # noises without zero samples, so every added sample shows
    noise_dir = _write_dir(tmp_path / "nz", {f"z{i}": rng.choice([-1, 1], RATE // 2 + 100 * i) * rng.uniform(
        500, 3000, RATE // 2 + 100 * i) for i in range(3)})
    dirs = dict(dirs, noise_dir=noise_dir)
    augmenter = aug.Augmenter(_params(dirs, reverb_prob=0, noise_prob=1, music_prob=0, babble_prob=0,
                                      speed_factors="1", noise_interval=0.25), RATE)
    speech = np.full(3 * RATE, 1000.0, np.float32)
    out = augmenter.apply(speech, augmenter.plan(0, 0))
    touched = out != speech
    assert touched[0]                                    # the first noise starts at the crop start
    # gaps of exactly 0.25 s between noises (noise files are 0.5-0.7 s long)
    edges = np.flatnonzero(np.diff(touched.astype(int)))
    gaps = [(b - a) for a, b in zip(edges[0::2], edges[1::2])]
    assert gaps and all(g == RATE // 4 for g in gaps)


# ---- bad noise / RIR directories ----------------------------------------------------------------

def test_missing_dir(tmp_path, dirs):
    with pytest.raises(ToolError, match=f"noise recording dir '{tmp_path}/nope' does not exist"):
        aug.Augmenter(_params(dirs, noise_dir=str(tmp_path / "nope")), RATE)


def test_dir_without_or_with_empty_wav_scp(tmp_path, dirs):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ToolError, match="has no wav.scp"):
        aug.Augmenter(_params(dirs, rir_dir=str(tmp_path / "empty")), RATE)
    (tmp_path / "empty" / "wav.scp").write_text("")
    with pytest.raises(ToolError, match=r"empty/wav.scp is empty"):
        aug.Augmenter(_params(dirs, rir_dir=str(tmp_path / "empty")), RATE)


def test_other_sample_rate_is_resampled_or_names_the_file(tmp_path, dirs):
    from tfspk.io.resample import resample
    music = np.random.default_rng(3).normal(0, 3000, 16000).round()
    bad = _write_dir(tmp_path / "music16k", {"m16": music}, rate=16000)
    with pytest.raises(ToolError, match=r"m16.wav.*sample rate 16000 Hz, expected 8000 Hz \(resampling is off"):
        aug.Augmenter(_params(dirs, music_dir=bad), RATE, allow_resample=False)
    source = aug.Augmenter(_params(dirs, music_dir=bad), RATE).sources["music"]
    expected = resample(music, 16000, RATE)
    assert source.length("m16") == len(expected) == 8000
    np.testing.assert_allclose(source.read("m16", 1000, 3000), expected[1000:3000], atol=1e-2)
    np.testing.assert_allclose(source.looped("m16", 7000, 2000), np.tile(expected, 2)[7000:9000], atol=1e-2)


def test_unreadable_missing_and_empty_files_are_named(tmp_path, dirs):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "junk.wav").write_bytes(b"this is not audio at all" * 10)
    (d / "empty.wav").write_bytes(b"")
    for name, message in [("junk.wav", "not a readable audio file"), ("empty.wav", "file is empty"),
                          ("gone.wav", "file not found")]:
        (d / "wav.scp").write_text(f"k1 {d / name}\n")
        with pytest.raises(ToolError, match=f"{name}.*{message}"):
            aug.Augmenter(_params(dirs, babble_dir=str(d)), RATE)


def test_pipe_entry_of_another_rate_fails_when_read(tmp_path, dirs):
    source = _write_dir(tmp_path / "src16", {"p": np.ones(1600)}, rate=16000)
    d = tmp_path / "piped"
    d.mkdir()
    (d / "wav.scp").write_text(f"p cat {source}/wav/p.wav |\n")
    augmenter = aug.Augmenter(_params(dirs, reverb_prob=1, rir_dir=str(d)), RATE, allow_resample=False)
    with pytest.raises(ToolError, match=r"RIR 'p'.*sample rate 16000 Hz, expected 8000 Hz"):
        augmenter.apply(np.ones(100, np.float32), aug.AugmentPlan(0, 1.0, "p", None, [], 0))


@pytest.mark.parametrize("values, message", [
    ({"noise_prob": 0.6, "music_prob": 0.6, "noise_dir": "x", "music_dir": "y"}, "> 1"),
    ({"reverb_prob": 0.5}, "needs rir_dir"),
    ({"reverb_prob": 1.5, "rir_dir": "x"}, r"in \[0, 1\]"),
    ({"music_snrs": "5:x"}, "music_snrs"),
    ({"babble_speakers": "0:3"}, "babble_speakers"),
    ({"bogus": 1}, "unknown parameter"),
])
def test_bad_parameters(values, message):
    with pytest.raises(ToolError, match=message):
        aug.Augmenter(values, RATE)


# ---- the demo's augmentation set ----------------------------------------------------------------

def test_demo_aug_set_from_unpacked_packages(tmp_path, sh, repo):
    pytest.importorskip("pyroomacoustics")
    packages = tmp_path / "downloads"
    rng = np.random.default_rng(0)
    layout = {"bucklespring-data/usr/share/buckle/wav/01-0.wav": (44100, 0.4),
              "oxygen-sounds/usr/share/sounds/Oxygen-Sys-Warning.ogg": (48000, 1.0),
              "sound-theme-freedesktop/usr/share/sounds/freedesktop/stereo/bell.oga": (48000, 0.8),
              "sound-theme-freedesktop/usr/share/sounds/freedesktop/stereo/audio-channel-front-left.oga": (48000, 0.8),
              "asc-music/usr/share/games/asc/music/frontiers.flac": (22050, 70.0)}
    for name, (rate, seconds) in layout.items():
        path = packages / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = {"wav": "WAV", "ogg": "OGG", "oga": "OGG", "flac": "FLAC"}[name.rsplit(".", 1)[1]]
        sf.write(path, rng.normal(0, 0.1, (int(rate * seconds), 2)), rate, format=fmt)
    # the helper reads the package's real file type (mp3 upstream); point its glob at flac here
    script = (repo / "egs/demo/v2/local/make_aug_set.py").read_text().replace("music/*.mp3", "music/*.flac")
    (tmp_path / "make_aug_set.py").write_text(script)
    sh([sys.executable, str(tmp_path / "make_aug_set.py"), "--num-rirs", "3", str(packages),
        str(tmp_path / "wav"), str(tmp_path / "data")])
    data = tmp_path / "data"
    noise_keys = [line.split()[0] for line in (data / "aug_noise" / "wav.scp").read_text().splitlines()]
    assert len(noise_keys) == 3 and not any("audio-channel" in key for key in noise_keys)
    music = (data / "aug_music" / "wav.scp").read_text().splitlines()
    assert len(music) == 2                                   # 70 s in 30 s pieces (the last 10 s dropped)
    assert len((data / "aug_rirs" / "wav.scp").read_text().splitlines()) == 6
    for line in music + (data / "aug_rirs" / "wav.scp").read_text().splitlines():
        assert sf.info(line.split()[1]).samplerate == RATE
    augmenter = aug.Augmenter(dict(noise_dir=str(data / "aug_noise"), music_dir=str(data / "aug_music"),
                                   rir_dir=str(data / "aug_rirs"), reverb_prob=1, noise_prob=0.5, music_prob=0.5),
                              RATE)
    out, _ = augmenter(rng.normal(0, 1000, RATE).astype(np.float32), 0, 0)
    assert out.shape == (RATE,) and np.all(np.isfinite(out))


# ---- augmented feature batches from audio -------------------------------------------------------

def _audio_data_dir(path, rng, num_speakers=3, utts=2, seconds=2.0):
    from tfspk.io.table import write_table
    recordings = {f"spk{s}-u{u}": rng.normal(0, 3000, int(seconds * RATE)) for s in range(num_speakers)
                  for u in range(utts)}
    _write_dir(path, recordings)
    write_table(path / "utt2spk", [(key, key.split("-")[0]) for key in sorted(recordings)])
    return str(path)


def _fbank_extractor():
    from tfspk.features import FbankOptions, FeatureExtractor
    opts = FbankOptions()
    opts.frame.sample_frequency = RATE
    opts.frame.dither = 0.0
    return FeatureExtractor(opts)


def test_audio_workers_stay_at_most_prefetch_batches_ahead(tmp_path, dirs):
    """iterate() with worker processes computes at most ``prefetch`` batches beyond the ones taken
    (multiprocessing's imap ran ahead without bound, holding results in memory and the cores)."""
    import time
    data = _audio_data_dir(tmp_path / "audio", np.random.default_rng(10))
    batches = audio_sampler.AudioCropBatches(data, aug.Augmenter(_params(dirs), RATE, seed=5), _fbank_extractor(),
                                   batch_size=3, min_frames=20, max_frames=30)
    marks = tmp_path / "marks"
    marks.mkdir()
    compute = batches.batch

    def marked(step):           # runs in the forked workers: one file per batch computed
        (marks / str(step)).touch()
        return compute(step)
    batches.batch = marked
    iterator = batches.iterate(0, None, num_workers=2, prefetch=3)
    taken = [next(iterator) for _ in range(2)]
    time.sleep(2.0)              # ample time for free-running workers to compute many more
    done = sorted(int(p.name) for p in marks.iterdir())
    iterator.close()
    assert len(taken) == 2 and done[:2] == [0, 1] and len(done) <= 2 + 3
    np.testing.assert_array_equal(taken[1][0], compute(1)[0])


def test_audio_crop_batches_resume_gives_the_same_batches(tmp_path, dirs):
    data = _audio_data_dir(tmp_path / "audio", np.random.default_rng(10))
    make = lambda: audio_sampler.AudioCropBatches(  # noqa: E731
        data, aug.Augmenter(_params(dirs), RATE, seed=5), _fbank_extractor(), batch_size=3,
        min_frames=20, max_frames=60)
    batches = make()
    assert batches.num_classes == 9                     # 3 speakers x 3 speed factors
    run = list(batches.iterate(0, 4, num_workers=1))
    resumed = list(make().iterate(2, 2, num_workers=2))  # a new process pool, started at step 2
    for (fa, la), (fb, lb) in zip(run[2:], resumed):
        np.testing.assert_array_equal(fa, fb)
        np.testing.assert_array_equal(la, lb)
    lengths = set()
    for step, (feats, labels) in enumerate(run):
        assert feats.dtype == np.float32 and labels.dtype == np.int32
        assert feats.shape[0] == 3 and 20 <= feats.shape[1] <= 60 and feats.shape[2] == 23
        lengths.add(feats.shape[1])
        assert sorted((labels % 3).tolist()) == [0, 1, 2]   # label % C is the speaker: 3 distinct ones
        assert np.all((0 <= labels) & (labels < 9))
        for position, label in enumerate(labels):
            plan = batches.augmenter.plan(step, position)
            assert label // 3 == plan.speed_index       # the label expansion follows the speed drawn
    assert len(lengths) > 1


def test_audio_crop_batches_without_augmentation_are_fbank_of_the_planned_file_crop(tmp_path):
    from tfspk.features import fbank
    data = _audio_data_dir(tmp_path / "audio", np.random.default_rng(11), num_speakers=2, utts=2)
    batches = audio_sampler.AudioCropBatches(data, aug.Augmenter({}, RATE), _fbank_extractor(), batch_size=3,
                                   min_frames=30, max_frames=50)
    for step in range(3):
        feats, labels = batches.batch(step)
        frames, crops = batches.plan(step)
        assert feats.shape == (3, frames, 23)
        paths = dict(line.split() for line in open(os.path.join(data, "wav.scp")))
        for row, label, (key, start, length, planned_label, plan) in zip(feats, labels, crops):
            assert plan.speed == 1.0 and plan.rir is None and plan.kind is None and label == planned_label
            path = paths[key]
            assert label == int(os.path.basename(path)[3])          # spk<label>-u<n>.wav
            whole = sf.read(path, dtype="float32")[0] * 32768
            needed = (frames - 1) * 80 + 200                        # 10 ms shift, 25 ms window at 8 kHz
            assert length >= needed and start + length <= len(whole)
            expected = fbank(whole[start:start + needed], RATE, _fbank_extractor().opts)
            np.testing.assert_allclose(row, expected[:frames], rtol=1e-5, atol=1e-4)


def test_audio_crop_batches_bad_input(tmp_path, dirs):
    rng = np.random.default_rng(12)
    data = _audio_data_dir(tmp_path / "audio", rng, seconds=0.2)
    with pytest.raises(ToolError, match="no utterance is long enough for 60 frames"):
        audio_sampler.AudioCropBatches(data, aug.Augmenter({}, RATE), _fbank_extractor(), min_frames=20, max_frames=60)
    other = _write_dir(tmp_path / "a16", {"spk0-u0": np.ones(16000)}, rate=16000)
    (tmp_path / "a16" / "utt2spk").write_text("spk0-u0 spk0\n")
    with pytest.raises(ToolError, match="spk0-u0.wav has rate 16000 Hz, expected 8000 Hz .*resampling is off"):
        audio_sampler.AudioCropBatches(other, aug.Augmenter({}, RATE), _fbank_extractor(), allow_resample=False)


# ---- VoxCeleb: MUSAN and RIRS_NOISES as augmentation data dirs -----------------------------------

def test_voxceleb_musan_and_rirs_noises_dirs_feed_the_augmenter(tmp_path, sh, repo):
    musan = tmp_path / "musan"
    rng = np.random.default_rng(13)
    for subset in ("noise/free-sound", "music/jamendo", "speech/librivox"):
        for i in range(2):
            path = musan / subset / f"{subset.split('/')[0]}-{i:04d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, rng.normal(0, 0.1, 16000), 16000, subtype="PCM_16")
    rirs = tmp_path / "RIRS_NOISES"
    for room in ("smallroom", "mediumroom"):
        (rirs / "simulated_rirs" / room / "Room001").mkdir(parents=True)
        h = np.zeros(400, np.float32)
        h[30] = 1.0
        sf.write(rirs / "simulated_rirs" / room / "Room001" / "Room001-00001.wav", h, 16000, subtype="FLOAT")
        (rirs / "simulated_rirs" / room / "rir_list").write_text(
            f"--rir-id 1 --room-id 1 RIRS_NOISES/simulated_rirs/{room}/Room001/Room001-00001.wav\n")
    script = str(repo / "egs/voxceleb/v2/local/make_aug_dirs.py")
    sh([sys.executable, script, "--musan", str(musan), "--rirs-noises", str(rirs), str(tmp_path / "data")])
    data = tmp_path / "data"
    assert (data / "rirs" / "wav.scp").read_text().splitlines()[0].startswith(
        "simulated_rirs-mediumroom-Room001-Room001-00001 ")
    assert len((data / "musan_speech" / "wav.scp").read_text().splitlines()) == 2
    augmenter = aug.Augmenter(dict(noise_dir=str(data / "musan_noise"), music_dir=str(data / "musan_music"),
                                   babble_dir=str(data / "musan_speech"), rir_dir=str(data / "rirs"),
                                   reverb_prob=0.5, noise_prob=0.3, music_prob=0.3, babble_prob=0.3), 16000)
    out, _ = augmenter(rng.normal(0, 1000, 8000).astype(np.float32), 0, 0)
    assert out.shape == (8000,)
    bad = sh([sys.executable, script, "--musan", str(tmp_path / "nothing"), str(tmp_path / "data2")], check=False)
    assert bad.returncode == 1 and "no *.wav under" in bad.stderr and not (tmp_path / "data2").exists()
