"""The feature command-line tools (tfspk-compute-mfcc-feats, -compute-vad, ...): Kaldi I/O, the
numbers against independent statements (direct kaldi-native-fbank calls, loop-form Kaldi
algorithms from test_features), and bad input."""
import numpy as np
import pytest
import soundfile as sf

from conftest import run, run_tool_here, synth_speech
from test_features import direct_knf_mfcc, loop_sliding_cmvn, loop_vad
from tfspk.io import ark

MFCC_16K = "--sample-frequency=16000\n--frame-length=25\n--low-freq=20\n--high-freq=7600\n" \
           "--num-mel-bins=30\n--num-ceps=30\n--snip-edges=false\n--dither=0\n"
MFCC_8K = "# telephone band\n--sample-frequency=8000\n--frame-length=25 # ms\n--low-freq=20\n" \
          "--high-freq=3700\n--num-mel-bins=30\n--num-ceps=30\n--snip-edges=false\n--dither=0\n"
VAD_CONF = "--vad-energy-threshold=5.5\n--vad-energy-mean-scale=0.5\n--vad-proportion-threshold=0.12\n" \
           "--vad-frames-context=2\n"


def write_wavs(directory, specs, rate):
    """specs: [(key, seconds, seed)] -> wav.scp path (keys sorted)."""
    lines = []
    for key, seconds, seed in sorted(specs):
        path = directory / f"{key}.wav"
        sf.write(str(path), synth_speech(seconds, rate, seed), rate, subtype="PCM_16")
        lines.append(f"{key} {path}\n")
    scp = directory / "wav.scp"
    scp.write_text("".join(lines))
    return scp


def read_int16_scaled(path):
    samples, rate = sf.read(str(path), dtype="int16")
    return samples.astype(np.float32), rate


@pytest.fixture
def corpus(tmp_path):
    specs = [("spkA-u1", 1.3, 1), ("spkA-u2", 0.6, 2), ("spkB-u1", 2.1, 3)]
    scp = write_wavs(tmp_path, specs, 16000)
    conf = tmp_path / "mfcc.conf"
    conf.write_text(MFCC_16K)
    return tmp_path, scp, conf


def test_compute_mfcc_feats_equals_direct_knf(corpus):
    tmp, scp, conf = corpus
    out = run(["tfspk-compute-mfcc-feats", f"--config={conf}", "--write-num-frames=ark,t:" + str(tmp / "u2nf"),
               "--write-utt2dur=ark,t:" + str(tmp / "u2d"), f"scp:{scp}",
               f"ark,scp:{tmp}/raw.ark,{tmp}/raw.scp"])
    assert "Done 3 out of 3 utterances" in out.stderr
    feats = dict(ark.read_rspecifier(f"scp:{tmp}/raw.scp"))
    assert sorted(feats) == ["spkA-u1", "spkA-u2", "spkB-u1"]
    lengths, durations = {}, {}
    for key in feats:
        samples, rate = read_int16_scaled(tmp / f"{key}.wav")
        expected = direct_knf_mfcc(samples, rate, 20, 7600, 30, 30, snip_edges=False)
        np.testing.assert_array_equal(feats[key], expected)
        lengths[key], durations[key] = len(expected), len(samples) / rate
    lines = [line.split() for line in (tmp / "u2nf").read_text().splitlines()]
    assert {k: int(v) for k, v in lines} == lengths
    for key, value in (line.split() for line in (tmp / "u2d").read_text().splitlines()):
        assert float(value) == pytest.approx(durations[key], abs=1e-6)


def test_compute_mfcc_feats_8k_and_command_line_overrides_config(tmp_path):
    scp = write_wavs(tmp_path, [("u1", 0.8, 4)], 8000)
    conf = tmp_path / "mfcc.conf"
    conf.write_text(MFCC_8K)
    run(["tfspk-compute-mfcc-feats", f"--config={conf}", "--snip-edges=true", f"scp:{scp}", f"ark:{tmp_path}/o.ark"])
    (key, feats), = ark.read_rspecifier(f"ark:{tmp_path}/o.ark")
    samples, rate = read_int16_scaled(tmp_path / "u1.wav")
    np.testing.assert_array_equal(feats, direct_knf_mfcc(samples, rate, 20, 3700, 30, 30, snip_edges=True))


def test_compute_mfcc_feats_segments_and_compression(corpus):
    tmp, scp, conf = corpus
    segments = tmp / "segments"
    segments.write_text("spkA-u1-0000 spkA-u1 0.10 0.95\nspkA-u1-0001 spkA-u1 0.50 -1\n"
                        "spkB-u1-0000 spkB-u1 0.00 0.05\nspkB-u1-0001 spkB-u1 1.00 2.30\n")
    out = run(["tfspk-compute-mfcc-feats", f"--config={conf}", f"--segments={segments}", "--compress=true",
               f"scp:{scp}", f"ark,scp:{tmp}/seg.ark,{tmp}/seg.scp"])
    assert "skipping segment 'spkB-u1-0000'" in out.stderr and "too short" in out.stderr
    feats = dict(ark.read_rspecifier(f"scp:{tmp}/seg.scp"))
    assert sorted(feats) == ["spkA-u1-0000", "spkA-u1-0001", "spkB-u1-0001"]
    assert open(tmp / "seg.ark", "rb").read().split(b" ", 1)[1].startswith(b"\0BCM ")
    # extract-segments: sample indices int(seconds * rate) (C++ truncation), -1 = to the end;
    # 2.30 s is past the 2.1 s recording end by less than 0.5 s: clipped to the end
    cuts = {"spkA-u1-0000": ("spkA-u1", int(0.10 * 16000), int(0.95 * 16000)),
            "spkA-u1-0001": ("spkA-u1", int(0.50 * 16000), None), "spkB-u1-0001": ("spkB-u1", 16000, None)}
    for key, (reco, first, last) in cuts.items():
        samples, rate = read_int16_scaled(tmp / f"{reco}.wav")
        expected = direct_knf_mfcc(samples[first:last], rate, 20, 7600, 30, 30, snip_edges=False)
        assert feats[key].shape == expected.shape
        # compressed storage: error bounded by the per-column quantisation step
        step = (expected.max(axis=0) - expected.min(axis=0)) / 63
        assert np.all(np.abs(feats[key] - expected) <= step + 1e-3)


def test_compute_fbank_feats_80_dim(corpus):
    tmp, scp, _ = corpus
    run(["tfspk-compute-fbank-feats", "--num-mel-bins=80", "--dither=0", f"scp:{scp}", f"ark:{tmp}/fb.ark"])
    feats = dict(ark.read_rspecifier(f"ark:{tmp}/fb.ark"))
    import kaldi_native_fbank as knf
    samples, rate = read_int16_scaled(tmp / "spkA-u2.wav")
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 80
    extractor = knf.OnlineFbank(opts)
    extractor.accept_waveform(rate, samples)
    extractor.input_finished()
    expected = np.stack([np.array(extractor.get_frame(i)) for i in range(extractor.num_frames_ready)])
    np.testing.assert_array_equal(feats["spkA-u2"], expected)
    assert expected.shape[1] == 80


@pytest.mark.parametrize("problem", ["missing", "corrupt", "empty", "rate"])
def test_compute_mfcc_feats_bad_audio_names_the_utterance(corpus, problem):
    tmp, scp, conf = corpus
    bad = tmp / "bad.wav"
    if problem == "corrupt":
        bad.write_bytes(b"RIFF....WAVEfmt this is not audio")
    elif problem == "empty":
        sf.write(str(bad), np.zeros(0, np.int16), 16000, subtype="PCM_16")
    elif problem == "rate":
        sf.write(str(bad), synth_speech(0.5, 8000), 8000, subtype="PCM_16")
    scp.write_text(scp.read_text() + f"spkC-bad {bad}\n")
    failed = run_tool_here(["tfspk-compute-mfcc-feats", f"--config={conf}", f"scp:{scp}",
                            f"ark,scp:{tmp}/o.ark,{tmp}/o.scp"], check=False)
    assert failed.returncode == 1, failed.stderr
    message = failed.stderr.strip().splitlines()[-1]
    assert message.startswith("ERROR") and "spkC-bad" in message
    expected = {"missing": "not found", "corrupt": "not a readable audio file", "empty": "empty",
                "rate": "8000 Hz but --sample-frequency is 16000"}[problem]
    assert expected in message
    assert "Traceback" not in failed.stderr
    assert not (tmp / "o.ark").exists() and not (tmp / "o.scp").exists()


def test_compute_mfcc_feats_permissive_rspecifier_skips_bad_audio(corpus):
    tmp, scp, conf = corpus
    scp.write_text(scp.read_text() + f"spkC-bad {tmp}/nothing.wav\n")
    stderr = run_tool_here(["tfspk-compute-mfcc-feats", f"--config={conf}", f"scp,p:{scp}",
                            f"ark,scp:{tmp}/o.ark,{tmp}/o.scp"]).stderr
    assert "WARNING" in stderr and "spkC-bad" in stderr
    assert [line.split()[0] for line in (tmp / "o.scp").read_text().splitlines()] == ["spkA-u1", "spkA-u2", "spkB-u1"]


@pytest.mark.parametrize("config, message", [
    (None, "cannot read config file"),
    ("--num-ceps=30\n--no-such-option=3\n", ":2: unknown option '--no-such-option'"),
    ("--high-freq=9000\n", "Nyquist"),
    ("--window-type=gauss\n", "window type"),
    ("--num-ceps=abc\n", "invalid int value"),
])
def test_compute_mfcc_feats_bad_config(corpus, config, message):
    tmp, scp, _ = corpus
    conf = tmp / "bad.conf"
    if config is not None:
        conf.write_text(config)
    failed = run_tool_here(["tfspk-compute-mfcc-feats", f"--config={conf}", f"scp:{scp}", f"ark:{tmp}/o.ark"],
                           check=False)
    assert failed.returncode == 1
    assert message in failed.stderr and "Traceback" not in failed.stderr
    assert not (tmp / "o.ark").exists()


def test_compute_mfcc_feats_too_short_utterance_is_left_out(tmp_path):
    scp = write_wavs(tmp_path, [("long", 0.5, 1)], 16000)
    sf.write(str(tmp_path / "tiny.wav"), synth_speech(1, 16000)[:100], 16000, subtype="PCM_16")
    scp.write_text(scp.read_text() + f"tiny {tmp_path}/tiny.wav\n")
    stderr = run_tool_here(["tfspk-compute-mfcc-feats", "--dither=0", f"scp:{scp}", f"ark,t:{tmp_path}/o.txt"]).stderr
    assert "tiny" in stderr and "too short" in stderr
    assert [k for k, _ in ark.read_rspecifier(f"ark:{tmp_path}/o.txt")] == ["long"]


# ------------------------------------------------------------------------------------------
@pytest.fixture
def feature_archive(tmp_path):
    """Features with a loud and a quiet part, an all-silent utterance, and a single frame."""
    rng = np.random.default_rng(0)
    utts = {
        "u1": np.column_stack([np.where(rng.random(230) < 0.5, 15.0, 4.0), rng.standard_normal((230, 3))]),
        "u2_silent": np.column_stack([np.full(40, -20.0), rng.standard_normal((40, 3))]),
        "u3_single": rng.standard_normal((1, 4)) + 10,
        "u4": rng.standard_normal((300, 4)) * 5 + 8,
    }
    utts = {k: v.astype(np.float32) for k, v in utts.items()}
    ark.write_archive(f"ark,scp:{tmp_path}/feats.ark,{tmp_path}/feats.scp", sorted(utts.items()))
    (tmp_path / "vad.conf").write_text(VAD_CONF)
    return tmp_path, utts


def test_compute_vad_tool_matches_kaldi_loop(feature_archive):
    tmp, utts = feature_archive
    stderr = run_tool_here(["tfspk-compute-vad", f"--config={tmp}/vad.conf", f"scp:{tmp}/feats.scp",
                            f"ark,scp:{tmp}/vad.ark,{tmp}/vad.scp"]).stderr
    vads = dict(ark.read_rspecifier(f"scp:{tmp}/vad.scp"))
    assert sorted(vads) == sorted(utts)
    for key, feats in utts.items():
        np.testing.assert_array_equal(vads[key], loop_vad(feats[:, 0], 5.5, 0.5, 0.12, 2))
    assert vads["u2_silent"].sum() == 0 and "u2_silent" in stderr
    run_tool_here(["tfspk-compute-vad", "--omit-unvoiced-utts", f"scp:{tmp}/feats.scp", f"ark:{tmp}/vad2.ark"])
    assert "u2_silent" not in dict(ark.read_rspecifier(f"ark:{tmp}/vad2.ark"))


def test_apply_cmvn_sliding_and_select_voiced_frames_pipeline(feature_archive):
    tmp, utts = feature_archive
    run(["tfspk-compute-vad", f"--config={tmp}/vad.conf", f"scp:{tmp}/feats.scp", f"ark,scp:{tmp}/vad.ark,{tmp}/vad.scp"])
    out = run(f"tfspk-apply-cmvn-sliding --norm-vars=false --center=true --cmn-window=300 scp:{tmp}/feats.scp ark:- | "
              f"tfspk-select-voiced-frames --write-num-frames=ark,t:{tmp}/u2nf ark:- scp,s,cs:{tmp}/vad.scp "
              f"ark,scp:{tmp}/out.ark,{tmp}/out.scp")
    got = dict(ark.read_rspecifier(f"scp:{tmp}/out.scp"))
    assert "u2_silent" not in got and "no features were judged as voiced" in out.stderr
    for key, feats in utts.items():
        vad = loop_vad(feats[:, 0], 5.5, 0.5, 0.12, 2)
        normalised = loop_sliding_cmvn(feats, 300, True, False, 100)
        expected = [normalised[t] for t in range(len(vad)) if vad[t] == 1.0]
        if not expected:
            assert key not in got
            continue
        np.testing.assert_allclose(got[key], np.array(expected), rtol=1e-5, atol=2e-5)
    frames = dict(line.split() for line in (tmp / "u2nf").read_text().splitlines())
    assert {k: int(v) for k, v in frames.items()} == {k: len(v) for k, v in got.items()}


def test_apply_cmvn_sliding_kaldi_defaults(feature_archive):
    tmp, utts = feature_archive
    run_tool_here(["tfspk-apply-cmvn-sliding", "--norm-vars=true", f"scp:{tmp}/feats.scp", f"ark:{tmp}/cmvn.ark"])
    got = dict(ark.read_rspecifier(f"ark:{tmp}/cmvn.ark"))
    for key, feats in utts.items():   # Kaldi defaults: window 600, not centred, min window 100
        np.testing.assert_allclose(got[key], loop_sliding_cmvn(feats, 600, False, True, 100), rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("vad_spec", ["scp:{tmp}/vad.scp", "ark,s,cs:{tmp}/vad.ark", "ark:{tmp}/vad.ark"])
def test_select_voiced_frames_vad_rspecifiers(feature_archive, vad_spec):
    tmp, utts = feature_archive
    vads = {k: (v[:, 0] > 9).astype(np.float32) for k, v in utts.items()}
    ark.write_archive(f"ark,scp:{tmp}/vad.ark,{tmp}/vad.scp", sorted(vads.items()))
    run_tool_here(["tfspk-select-voiced-frames", f"ark:{tmp}/feats.ark", vad_spec.format(tmp=tmp), f"ark:{tmp}/o.ark"])
    got = dict(ark.read_rspecifier(f"ark:{tmp}/o.ark"))
    expected = {k: v[vads[k] == 1.0] for k, v in utts.items() if vads[k].any()}
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


def test_select_voiced_frames_errors(feature_archive):
    tmp, utts = feature_archive
    short = {"u1": np.ones(229, np.float32), "u2_silent": np.zeros(40, np.float32)}
    ark.write_archive(f"ark:{tmp}/bad_vad.ark", sorted(short.items()))
    failed = run_tool_here(["tfspk-select-voiced-frames", f"scp:{tmp}/feats.scp", f"ark:{tmp}/bad_vad.ark",
                            f"ark:{tmp}/o.ark"], check=False)
    assert failed.returncode == 1 and "utterance 'u1'" in failed.stderr
    assert "230 for the features and 229" in failed.stderr
    ark.write_archive(f"ark:{tmp}/part_vad.ark", [("u1", np.ones(230, np.float32)), ("u3_single", np.ones(1, np.float32))])
    for spec in ("ark", "ark,s,cs"):
        failed = run_tool_here(["tfspk-select-voiced-frames", f"scp:{tmp}/feats.scp", f"{spec}:{tmp}/part_vad.ark",
                                f"ark:{tmp}/o.ark"], check=False)
        assert failed.returncode == 1 and "no VAD entry for utterance 'u2_silent'" in failed.stderr
    assert not (tmp / "o.ark").exists()


def test_copy_feats_feat_to_len_feat_to_dim(feature_archive):
    tmp, utts = feature_archive
    run_tool_here(["tfspk-copy-feats", "--compress=true", f"--write-num-frames=ark,t:{tmp}/n", f"scp:{tmp}/feats.scp",
                   f"ark,scp:{tmp}/c.ark,{tmp}/c.scp"])
    copied = dict(ark.read_rspecifier(f"scp:{tmp}/c.scp"))
    for key, feats in utts.items():
        assert copied[key].shape == feats.shape
        np.testing.assert_allclose(copied[key], feats, atol=(feats.max() - feats.min()) / 60 + 1e-3)
    assert (tmp / "n").read_text() == "".join(f"{k} {len(v)}\n" for k, v in sorted(utts.items()))
    lengths = run(["tfspk-feat-to-len", f"scp:{tmp}/feats.scp", "ark,t:-"]).stdout
    assert lengths == "".join(f"{k} {len(v)}\n" for k, v in sorted(utts.items()))
    assert run(["tfspk-feat-to-dim", f"scp:{tmp}/c.scp", "-"]).stdout == "4\n"
    first_location = (tmp / "feats.scp").read_text().split()[1]
    assert run(["tfspk-feat-to-len", first_location]).stdout == "230\n"
    run_tool_here(["tfspk-feat-to-dim", f"ark:{tmp}/feats.ark", f"ark:{tmp}/dims.ark"])
    assert (tmp / "dims.ark").read_bytes().startswith(b"u1 \0B\x04\x04\x00\x00\x00")

def test_copy_feats_and_feat_to_len_usage_errors(feature_archive):
    tmp, _ = feature_archive
    failed = run_tool_here(["tfspk-copy-feats", "--compression-method=7", f"scp:{tmp}/feats.scp", f"ark:{tmp}/x.ark"],
                           check=False)
    assert failed.returncode == 1 and "--compression-method=7" in failed.stderr
    failed = run_tool_here(["tfspk-feat-to-len", f"scp:{tmp}/feats.scp"], check=False)
    assert failed.returncode == 1 and "ark,t:-" in failed.stderr
    failed = run_tool_here(["tfspk-compute-vad", "--vad-proportion-threshold=1.5", f"scp:{tmp}/feats.scp", "ark:-"],
                           check=False)
    assert failed.returncode == 1 and "--vad-proportion-threshold" in failed.stderr


def test_writing_to_dev_null_keeps_the_device(feature_archive, tmp_path):
    import os
    import stat
    tmp, _ = feature_archive
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    run(f"cat {fifo} > {tmp_path}/received & tfspk-copy-feats scp:{tmp}/feats.scp ark:{fifo}; wait")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert len(dict(ark.read_rspecifier(f"ark:{tmp_path}/received"))) == 4


def test_compute_mfcc_feats_subtract_mean_and_min_duration(corpus):
    tmp, scp, conf = corpus
    stderr = run_tool_here(["tfspk-compute-mfcc-feats", f"--config={conf}", "--subtract-mean", "--min-duration=1.0",
                            f"scp:{scp}", f"ark:{tmp}/o.ark"]).stderr
    assert "spkA-u2" in stderr and "--min-duration=1" in stderr   # the 0.6 s utterance
    feats = dict(ark.read_rspecifier(f"ark:{tmp}/o.ark"))
    assert sorted(feats) == ["spkA-u1", "spkB-u1"]
    samples, rate = read_int16_scaled(tmp / "spkB-u1.wav")
    direct = direct_knf_mfcc(samples, rate, 20, 7600, 30, 30, snip_edges=False)
    np.testing.assert_allclose(feats["spkB-u1"], direct - direct.mean(axis=0), atol=1e-4)


def test_compute_tools_need_some_output(tmp_path):
    (tmp_path / "wav.scp").write_text("")
    failed = run_tool_here(["tfspk-compute-mfcc-feats", f"scp:{tmp_path}/wav.scp", f"ark:{tmp_path}/o.ark"],
                           check=False)
    assert failed.returncode == 1 and "no utterance was processed (empty input)" in failed.stderr
    assert not (tmp_path / "o.ark").exists()
    failed = run_tool_here(["tfspk-compute-mfcc-feats", f"ark:{tmp_path}/wav.ark", f"ark:{tmp_path}/o.ark"],
                           check=False)
    assert failed.returncode == 1 and "scp:wav.scp" in failed.stderr
