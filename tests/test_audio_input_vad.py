"""data.source audio: VAD on the fly, segments and sliding CMN (tfspk.data.augment.AudioCropBatches)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from tfspk.data import audio_sampler, augment as aug, dsp, voiced as voiced_audio
from tfspk.errors import ToolError

RATE = 8000
SHIFT, WINDOW = 80, 200          # 10 ms / 25 ms at 8 kHz


def _extractor(snip_edges=True):
    from tfspk.features import FbankOptions, FeatureExtractor
    opts = FbankOptions()
    opts.frame.sample_frequency = RATE
    opts.frame.dither = 0.0
    opts.frame.snip_edges = snip_edges
    return FeatureExtractor(opts)


def _loop_voiced(vad, num_samples, shift):
    """Independent statement: the sample indices of the voiced frames' blocks, frame by frame."""
    positions = []
    for f, value in enumerate(vad):
        if value > 0.5:
            positions.extend(range(f * shift, min((f + 1) * shift, num_samples)))
    return np.array(positions, dtype=np.int64)


def _write_wavs(root, recordings):
    os.makedirs(root / "wav", exist_ok=True)
    paths = {}
    for key, samples in sorted(recordings.items()):
        paths[key] = str(root / "wav" / f"{key}.wav")
        sf.write(paths[key], np.asarray(samples, np.int16), RATE, subtype="PCM_16")
    return paths


def _write_vad(data, vads):
    from tfspk.io.ark import write_archive
    write_archive(f"ark,scp:{data}/vad.ark,{data}/vad.scp",
                  [(key, np.asarray(v, np.float32)) for key, v in sorted(vads.items())])


def _vad_dir(tmp_path, seconds=(3.0, 3.2, 2.9, 3.1), seed=0):
    """4 utterances of 2 speakers, random VAD with long runs; returns (data dir, samples, vads)."""
    rng = np.random.default_rng(seed)
    data = tmp_path / "data"
    data.mkdir()
    samples, vads = {}, {}
    for i, secs in enumerate(seconds):
        key = f"spk{i % 2}-u{i}"
        samples[key] = rng.integers(-8000, 8000, int(secs * RATE)).astype(np.int16)
        frames = (len(samples[key]) + SHIFT // 2) // SHIFT                     # snip-edges false count
        vads[key] = (np.sin(np.arange(frames) / (7 + i)) > -0.3).astype(np.float32)
    paths = _write_wavs(tmp_path, samples)
    (data / "wav.scp").write_text("".join(f"{k} {paths[k]}\n" for k in sorted(paths)))
    (data / "utt2spk").write_text("".join(f"{k} {k.split('-')[0]}\n" for k in sorted(paths)))
    _write_vad(data, vads)
    return data, samples, vads


# ---- voiced-sample selection -------------------------------------------------------------------

@pytest.mark.parametrize("case", ["random", "all", "none", "first_last", "extra_frame", "partial_tail"])
def test_voiced_positions_equal_a_loop_over_the_voiced_frames(case):
    rng = np.random.default_rng(1)
    num_samples, shift = 1234, 50                                   # 24 full blocks + 34 samples
    frames = (num_samples + shift // 2) // shift                    # 25
    vad = {"random": rng.integers(0, 2, frames), "all": np.ones(frames), "none": np.zeros(frames),
           "first_last": np.eye(1, frames, 0).ravel() + np.eye(1, frames, frames - 1).ravel(),
           "extra_frame": np.ones(frames + 1),                      # a frame past the audio: empty block
           "partial_tail": np.r_[np.zeros(frames - 2), 1, 1]}[case]
    expected = _loop_voiced(vad, num_samples, shift)
    runs = voiced_audio.voiced_runs(vad, num_samples, shift)
    assert runs[2] == expected.size
    np.testing.assert_array_equal(voiced_audio.voiced_positions(runs, shift, 0, expected.size), expected)
    for _ in range(20):                                             # any window of the voiced audio
        if expected.size == 0:
            break
        start = int(rng.integers(0, expected.size))
        length = int(rng.integers(0, expected.size - start + 1))
        np.testing.assert_array_equal(voiced_audio.voiced_positions(runs, shift, start, length),
                                      expected[start:start + length])
    with pytest.raises(ToolError, match="outside"):
        voiced_audio.voiced_positions(runs, shift, 0, expected.size + 1)


def test_vad_frame_range_accepts_both_snip_edges_counts_plus_minus_one():
    from tfspk.features import FrameOptions
    frame = FrameOptions(sample_frequency=RATE)
    n = 1000                                                        # snip: 1 + 800 // 80 = 11; no snip: 13
    assert voiced_audio.vad_frame_range(n, frame) == (10, 14)
    assert voiced_audio.vad_frame_range(100, frame) == (0, 2)                # shorter than a window: 0 and 1 frames


# ---- crops of voiced audio ---------------------------------------------------------------------

def test_crops_come_from_the_voiced_audio_and_features_follow(tmp_path):
    from tfspk.features import fbank
    data, samples, vads = _vad_dir(tmp_path)
    extractor = _extractor(snip_edges=False)
    batches = audio_sampler.AudioCropBatches(str(data), aug.Augmenter({}, RATE, seed=3), extractor, batch_size=3,
                                   min_frames=40, max_frames=60, vad="auto", cmn="none")
    assert batches.uses_vad and len(batches._keys) == 4
    voiced = {key: samples[key][_loop_voiced(vads[key], len(samples[key]), SHIFT)].astype(np.float32)
              for key in samples}
    for step in range(3):
        feats, labels = batches.batch(step)
        frames, crops = batches.plan(step)
        for row, label, crop in zip(feats, labels, crops):
            assert crop.start + crop.length <= len(voiced[crop.key])
            expected = voiced[crop.key][crop.start:crop.start + crop.length]
            np.testing.assert_array_equal(batches.read(crop.key, crop.start, crop.length), expected)
            assert label == int(crop.key[3])                        # spk<k>: sorted speakers
            needed = (frames - 1) * SHIFT + WINDOW
            np.testing.assert_allclose(row, fbank(expected[:needed], RATE, extractor.opts)[:frames],
                                       rtol=1e-5, atol=1e-4)
    # the same (seed, step) gives the same batch from a new object (resume); another seed does not
    again = audio_sampler.AudioCropBatches(str(data), aug.Augmenter({}, RATE, seed=3), extractor, batch_size=3,
                                 min_frames=40, max_frames=60, vad="true", cmn="none")
    np.testing.assert_array_equal(again.batch(2)[0], batches.batch(2)[0])
    other = audio_sampler.AudioCropBatches(str(data), aug.Augmenter({}, RATE, seed=4), extractor, batch_size=3,
                                 min_frames=40, max_frames=60, vad="true", cmn="none")
    assert other.plan(2) != batches.plan(2)
    # vad false ignores vad.scp: crops of the whole audio
    plain = audio_sampler.AudioCropBatches(str(data), aug.Augmenter({}, RATE, seed=3), extractor, batch_size=3,
                                 min_frames=40, max_frames=60, vad=False)
    assert not plain.uses_vad and plain._lengths == [len(samples[k]) for k in sorted(samples)]


def test_utterances_with_too_few_voiced_samples_are_skipped_and_counted(tmp_path):
    data, samples, vads = _vad_dir(tmp_path, seconds=(3.0, 3.2, 2.9, 3.1, 0.3))  # spk0-u4 is short
    vads["spk1-u1"][:] = 0
    vads["spk1-u1"][:30] = 1                                       # 0.3 s voiced of 3.2 s
    del vads["spk0-u2"]                                            # no VAD entry
    _write_vad(data, vads)
    batches = audio_sampler.AudioCropBatches(str(data), aug.Augmenter({}, RATE), _extractor(False), batch_size=2,
                                   min_frames=40, max_frames=60)
    assert sorted(batches._keys) == ["spk0-u0", "spk1-u3"]
    assert batches.notes == [f"audio input {data}: 2 of 5 utterances used (voiced audio from {data}/vad.scp); "
                             "skipped: 1 shorter than the shortest crop (40 frames), 1 with too few voiced "
                             "samples, 1 without an entry in vad.scp"]


def test_vad_errors_name_the_file_and_key(tmp_path):
    data, samples, vads = _vad_dir(tmp_path)
    make = lambda vad="auto": audio_sampler.AudioCropBatches(  # noqa: E731
        str(data), aug.Augmenter({}, RATE), _extractor(False), batch_size=2, min_frames=40, max_frames=60, vad=vad)
    frames = len(vads["spk1-u1"])
    for delta in (-1, 1):                                          # Kaldi's rounding: accepted
        _write_vad(data, {**vads, "spk1-u1": np.ones(frames + delta)})
        make()
    for delta in (-5, 2):
        _write_vad(data, {**vads, "spk1-u1": np.ones(frames + delta)})
        with pytest.raises(ToolError, match=rf"vad.scp: 'spk1-u1' has {frames + delta} VAD frames, but its audio "
                                            rf"\({len(samples['spk1-u1'])} samples\)"):
            make()
    _write_vad(data, {})
    os.remove(data / "vad.scp")
    with pytest.raises(ToolError, match=r"features.vad true: .*vad.scp not found"):
        make("true")
    with pytest.raises(ToolError, match="vad must be auto, true or false"):
        make("maybe")
    _write_vad(data, {k: np.zeros_like(v) for k, v in vads.items()})
    with pytest.raises(ToolError, match="no utterance is long enough for 60 frames of voiced audio"):
        make()


# ---- segments ----------------------------------------------------------------------------------

def _segments_dir(tmp_path):
    rng = np.random.default_rng(5)
    recordings = {f"rec{r}": rng.integers(-8000, 8000, 6 * RATE).astype(np.int16) for r in range(2)}
    paths = _write_wavs(tmp_path, recordings)
    data = tmp_path / "seg"
    data.mkdir()
    (data / "wav.scp").write_text("".join(f"{k} {paths[k]}\n" for k in sorted(paths)))
    segments = [("spk0-a", "rec0", 0.0, 2.5), ("spk0-b", "rec0", 2.5013, 5.2), ("spk1-a", "rec1", 0.7, -1),
                ("spk1-b", "rec1", 3.0, 6.3)]                       # ends 0.3 s past the recording: clipped
    (data / "segments").write_text("".join(f"{u} {r} {s} {e}\n" for u, r, s, e in segments))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u, *_ in segments))
    return data, recordings, segments


def test_segments_read_only_their_samples(tmp_path):
    data, recordings, segments = _segments_dir(tmp_path)
    batches = audio_sampler.AudioCropBatches(str(data), aug.Augmenter({}, RATE, seed=2), _extractor(), batch_size=2,
                                   min_frames=40, max_frames=60)
    pieces = {}
    for utt, rec, start, end in segments:     # extract-segments: int(t * rate), -1 / overshoot = the end
        last = len(recordings[rec]) if end == -1 else min(int(end * RATE), len(recordings[rec]))
        pieces[utt] = recordings[rec][int(start * RATE):last].astype(np.float32)
    assert batches._lengths == [len(pieces[u]) for u in sorted(pieces)]
    for step in range(3):
        for crop in batches.plan(step)[1]:
            np.testing.assert_array_equal(batches.read(crop.key, crop.start, crop.length),
                                          pieces[crop.key][crop.start:crop.start + crop.length])
    # with a VAD per segment, crops come from the segment's voiced samples
    vads = {u: (np.arange((len(p) + SHIFT // 2) // SHIFT) % 9 < 6).astype(np.float32) for u, p in pieces.items()}
    _write_vad(data, vads)
    voiced = audio_sampler.AudioCropBatches(str(data), aug.Augmenter({}, RATE, seed=2), _extractor(), batch_size=2,
                                  min_frames=40, max_frames=60)
    for crop in voiced.plan(1)[1]:
        selected = pieces[crop.key][_loop_voiced(vads[crop.key], len(pieces[crop.key]), SHIFT)]
        np.testing.assert_array_equal(voiced.read(crop.key, crop.start, crop.length),
                                      selected[crop.start:crop.start + crop.length])


def test_bad_segments_are_skipped_with_a_warning_as_extract_segments_does(tmp_path, capsys):
    """main: the audio input raised for a segment that extract-segments (and the feature tools) skip."""
    data, recordings, segments = _segments_dir(tmp_path)
    make = lambda: audio_sampler.AudioCropBatches(str(data), aug.Augmenter({}, RATE), _extractor(),  # noqa: E731
                                                  min_frames=40, max_frames=60)
    good = (data / "segments").read_text()
    for bad, why in (("spk1-b rec1 3.0 6.6", "ends more than 0.5 s after the recording"),
                     ("spk1-b rec1 6.5 7", "start is outside the recording")):
        (data / "segments").write_text(good.replace("spk1-b rec1 3.0 6.3", bad))
        batches = make()
        assert sorted(batches._keys) == ["spk0-a", "spk0-b", "spk1-a"]
        err = capsys.readouterr().err
        assert "skipping segment 'spk1-b' (as extract-segments does)" in err and why in err, err
    (data / "segments").write_text(good.replace("spk1-b rec1", "spk1-b rec9"))
    with pytest.raises(ToolError, match=r"segments:4: recording 'rec9' of segment 'spk1-b' is not in .*wav.scp"):
        make()


# ---- sliding CMN -------------------------------------------------------------------------------

def _loop_sliding_cmn(feats, window=300):
    """Independent statement of Kaldi's centred sliding window (apply-cmvn-sliding --center=true)."""
    num = feats.shape[0]
    out = np.empty_like(feats, dtype=np.float64)
    for t in range(num):
        start, end = t - window // 2, t - window // 2 + window
        if start < 0:
            end, start = end - start, 0
        if end > num:
            start, end = max(0, start - (end - num)), num
        out[t] = feats[t] - feats[start:end].astype(np.float64).mean(axis=0)
    return out


def test_sliding_cmn_equals_the_offline_tool_on_the_crop(tmp_path, tool):
    from tfspk.io.ark import read_rspecifier, write_archive
    data, _, _ = _vad_dir(tmp_path, seconds=(5.0, 5.2, 4.9, 5.1))
    make = lambda cmn: audio_sampler.AudioCropBatches(  # noqa: E731
        str(data), aug.Augmenter({}, RATE, seed=1), _extractor(False), batch_size=2, min_frames=330,
        max_frames=360, vad="false", cmn=cmn)
    raw, _ = make("none").batch(0)
    got, _ = make("sliding").batch(0)
    assert raw.shape[1] > 300                                      # longer than the window: not the crop mean
    write_archive(f"ark:{tmp_path}/crop.ark", [(f"c{i}", row) for i, row in enumerate(raw)])
    tool(f"tfspk-apply-cmvn-sliding --norm-vars=false --center=true --cmn-window=300 ark:{tmp_path}/crop.ark "
         f"ark:{tmp_path}/cmn.ark")
    offline = dict(read_rspecifier(f"ark:{tmp_path}/cmn.ark"))
    for i, row in enumerate(raw):
        np.testing.assert_array_equal(got[i], offline[f"c{i}"])
        np.testing.assert_allclose(got[i], _loop_sliding_cmn(row), atol=2e-4)
        assert np.abs(got[i] - (row - row.mean(axis=0))).max() > 1e-3
    with pytest.raises(ToolError, match="cmn must be one of crop, sliding, none"):
        make("global")


def test_audio_input_config_keys(tmp_path):
    from tfspk.train import config as config_mod
    from tfspk.train.inputs.audio import AudioInput
    data, _, _ = _vad_dir(tmp_path)
    conf = tmp_path / "fbank.conf"
    conf.write_text(f"--sample-frequency={RATE}\n--dither=0\n--num-mel-bins=20\n--snip-edges=false\n")
    base = ["data.source=audio", f"features.conf={conf}", "data.min_frames=40", "data.max_frames=60",
            "data.speakers_per_batch=2", "data.num_threads=1"]
    source = AudioInput(str(data), config_mod.build_config(None, base + ["features.vad=true", "features.cmn=sliding"]))
    assert source.batches.uses_vad and source.batches.cmn == "sliding"
    assert source.notes and "voiced audio from" in source.notes[0]
    assert not AudioInput(str(data), config_mod.build_config(None, base + ["features.vad=false"])).batches.uses_vad
    assert config_mod.build_config(None, []).features.vad == "auto"
    for key, value in (("features.vad", "yes please"), ("features.cmn", "global")):
        with pytest.raises(ToolError, match=key):
            config_mod.build_config(None, [f"{key}={value}"])


def test_short_utterances_serve_the_short_crops_only(tmp_path):
    """As the feats sampler: an utterance between the shortest and the longest crop is kept, and a
    step uses it only when its crop fits (checked on every crop of 200 steps)."""
    data, samples, vads = _vad_dir(tmp_path, seconds=(3.0, 0.55, 2.9, 3.1, 0.45))
    for short in ("spk1-u1", "spk0-u4"):       # fully voiced: 0.55 s and 0.45 s, between the crops
        vads[short][:] = 1                     # of 40 frames (0.415 s) and 60 frames (0.615 s)
    _write_vad(data, vads)
    batches = audio_sampler.AudioCropBatches(str(data), aug.Augmenter({}, RATE), _extractor(False), batch_size=2,
                                   min_frames=40, max_frames=60)
    assert len(batches._keys) == 5
    used = set()
    for step in range(200):
        frames, crops = batches.plan(step)
        for crop in crops:
            voiced = batches._lengths[batches._index[crop.key]]
            assert crop.start >= 0 and crop.start + crop.length <= voiced
            assert crop.length >= batches.samples_for(frames)
            used.add(crop.key)
    assert {"spk1-u1", "spk0-u4"} <= used          # the short ones serve some steps
    with pytest.raises(ToolError, match="no utterance is long enough for 400 frames"):
        audio_sampler.AudioCropBatches(str(data), aug.Augmenter({}, RATE), _extractor(False), batch_size=2,
                             min_frames=40, max_frames=400)
