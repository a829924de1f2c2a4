"""steps/make_mfcc.sh -> steps/compute_vad_decision.sh -> steps/prepare_feats_for_egs.sh end to end on
synthetic wavs, checked against independent statements (direct knf, loop-form Kaldi algorithms);
failures leave no half outputs and a re-run completes; Kaldi-binary paths skip without Kaldi."""
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import run, synth_speech
from test_features import direct_knf_mfcc, loop_sliding_cmvn, loop_vad
from tfspk.io import ark

RATE = 8000
MFCC_CONF = "--sample-frequency=8000\n--frame-length=25\n--low-freq=20\n--high-freq=3700\n" \
            "--num-mel-bins=30\n--num-ceps=30\n--snip-edges=false\n--dither=0\n"
VAD_CONF = "--vad-energy-threshold=5.5\n--vad-energy-mean-scale=0.5\n--vad-proportion-threshold=0.12\n" \
           "--vad-frames-context=2\n"
# speaker -> utterance durations (s): spk3 has too few utterances for --min-num-utts 3
SPEAKERS = {"spk1": [1.0, 2.2, 2.6, 3.0], "spk2": [0.9, 2.4, 2.8], "spk3": [2.5, 2.9], "spk4": [2.0, 2.3, 2.7]}
NO_KALDI = shutil.which("compute-mfcc-feats") is None


def compressed_tolerance(reference):
    """Kaldi's 1-byte column compression: error within one quantisation step of the column range."""
    return (reference.max(axis=0) - reference.min(axis=0)) / 63 + 1e-3


def make_corpus(root):
    (root / "conf").mkdir()
    (root / "conf" / "mfcc.conf").write_text(MFCC_CONF)
    (root / "conf" / "vad.conf").write_text(VAD_CONF)
    data = root / "data" / "train"
    (root / "wav").mkdir()
    data.mkdir(parents=True)
    wav_lines, utt2spk = [], []
    for s, (spk, durations) in enumerate(sorted(SPEAKERS.items())):
        for i, seconds in enumerate(durations):
            utt = f"{spk}-u{i}"
            path = root / "wav" / f"{utt}.wav"
            sf.write(str(path), synth_speech(seconds, RATE, seed=10 * s + i, f0=100 + 30 * s), RATE, subtype="PCM_16")
            wav_lines.append(f"{utt} {path}\n")
            utt2spk.append(f"{utt} {spk}\n")
    (data / "wav.scp").write_text("".join(wav_lines))
    (data / "utt2spk").write_text("".join(utt2spk))
    (data / "spk2utt").write_text("".join(
        f"{spk} {' '.join(f'{spk}-u{i}' for i in range(len(d)))}\n" for spk, d in sorted(SPEAKERS.items())))
    return data


def samples_of(root, utt):
    samples, rate = sf.read(str(root / "wav" / f"{utt}.wav"), dtype="int16")
    return samples.astype(np.float32), rate


def read_table(path):
    return dict(line.split(None, 1) for line in path.read_text().splitlines())


@pytest.fixture
def corpus(tmp_path):
    return tmp_path, make_corpus(tmp_path)


def test_mfcc_vad_and_egs_features_end_to_end(corpus):
    root, data = corpus
    out = run("make_mfcc.sh --nj 2 --mfcc-config conf/mfcc.conf data/train exp/make_mfcc mfcc", cwd=root)
    assert "Succeeded creating MFCC features for train" in out.stdout
    assert sorted(p.name for p in (root / "exp" / "make_mfcc").glob("*.log")) == \
        ["make_mfcc_train.1.log", "make_mfcc_train.2.log"]
    feats = dict(ark.read_rspecifier(f"scp:{data}/feats.scp"))
    utts = sorted(read_table(data / "utt2spk"))
    assert list(feats) == utts                               # sorted, complete
    num_frames = {k: int(v) for k, v in read_table(data / "utt2num_frames").items()}
    for utt in utts:
        samples, rate = samples_of(root, utt)
        expected = direct_knf_mfcc(samples, rate, 20, 3700, 30, 30, snip_edges=False)
        assert feats[utt].shape == expected.shape == (num_frames[utt], 30)
        assert np.all(np.abs(feats[utt] - expected) <= compressed_tolerance(expected))
        assert float(read_table(data / "utt2dur")[utt]) == pytest.approx(len(samples) / rate, abs=1e-5)
    assert (data / "frame_shift").read_text() == "0.010\n"
    assert (data / "conf" / "mfcc.conf").read_text() == MFCC_CONF

    run("compute_vad_decision.sh --nj 2 --vad-config conf/vad.conf data/train exp/make_vad mfcc", cwd=root)
    assert (root / "exp" / "make_vad" / "vad_train.2.log").exists()
    vads = dict(ark.read_rspecifier(f"scp:{data}/vad.scp"))
    assert list(vads) == utts
    for utt in utts:
        np.testing.assert_array_equal(vads[utt], loop_vad(feats[utt][:, 0], 5.5, 0.5, 0.12, 2))

    min_len, min_num_utts = 120, 3
    out = run(f"prepare_feats_for_egs.sh --nj 2 --min-len {min_len} --min-num-utts {min_num_utts} "
              "data/train data/train_no_sil exp/train_no_sil", cwd=root)
    egs_dir = root / "data" / "train_no_sil"
    voiced = {}
    for utt in utts:
        normalised = loop_sliding_cmvn(feats[utt], 300, True, False, 100)
        voiced[utt] = np.array([normalised[t] for t in range(len(normalised)) if vads[utt][t] == 1.0])
    long_utts = [u for u in utts if len(voiced[u]) > min_len]
    per_speaker = {}
    for utt in long_utts:
        per_speaker.setdefault(utt.split("-")[0], []).append(utt)
    kept = sorted(u for spk, us in per_speaker.items() if len(us) >= min_num_utts for u in us)
    assert 0 < len(kept) < len(long_utts) < len(utts)        # both filters have work to do here
    assert f"dropped {len(utts) - len(long_utts)} of {len(utts)} utterances with <= {min_len}" in out.stdout
    assert f"kept {len(kept)} of {len(utts)} utterances" in out.stdout
    egs = dict(ark.read_rspecifier(f"scp:{egs_dir}/feats.scp"))
    assert list(egs) == kept
    assert sorted(read_table(egs_dir / "utt2spk")) == kept
    assert {k: int(v) for k, v in read_table(egs_dir / "utt2num_frames").items()} == {u: len(voiced[u]) for u in kept}
    for utt in kept:
        assert np.all(np.abs(egs[utt] - voiced[utt]) <= compressed_tolerance(voiced[utt]))
    assert not list((root / "data").glob(".train_no_sil.tmp*"))
    run("validate_data_dir.sh --no-text --no-wav data/train_no_sil", cwd=root)

    # --use-kaldi true runs Kaldi's binaries with Kaldi's command lines. Here they are the tfspk tools
    # under Kaldi's names (they accept those command lines), so every output must be identical: this
    # checks the wiring; test_kaldi_binaries_give_the_same_numbers checks Kaldi itself.
    stand_in = root / "kaldi_bin"
    stand_in.mkdir()
    for name in ("compute-mfcc-feats", "copy-feats", "compute-vad", "apply-cmvn-sliding", "select-voiced-frames"):
        (stand_in / name).symlink_to(shutil.which(f"tfspk-{name}"))
    tables = [(data / name).read_text() for name in ("utt2num_frames", "utt2dur")]
    tables.append((egs_dir / "utt2num_frames").read_text())
    run("make_mfcc.sh --nj 2 --use-kaldi true --mfcc-config conf/mfcc.conf data/train exp/make_mfcc_k mfcc_k && "
        "compute_vad_decision.sh --nj 2 --use-kaldi true --vad-config conf/vad.conf data/train exp/make_vad_k mfcc_k && "
        f"prepare_feats_for_egs.sh --nj 2 --use-kaldi true --min-len {min_len} --min-num-utts {min_num_utts} "
        "data/train data/train_no_sil exp/train_no_sil_k", cwd=root, env={"PATH": f"{stand_in}:{os.environ['PATH']}"})
    log = (root / "exp/make_mfcc_k/make_mfcc_train.1.log").read_text()
    assert "compute-mfcc-feats --write-utt2dur=" in log and "| copy-feats --compress=true" in log
    for ours, rspec in [(feats, f"scp:{data}/feats.scp"), (vads, f"scp:{data}/vad.scp"), (egs, f"scp:{egs_dir}/feats.scp")]:
        kaldis = dict(ark.read_rspecifier(rspec))
        assert list(kaldis) == list(ours)
        for utt in ours:
            np.testing.assert_array_equal(kaldis[utt], ours[utt])
    assert tables[:2] == [(data / name).read_text() for name in ("utt2num_frames", "utt2dur")]
    assert tables[2] == (egs_dir / "utt2num_frames").read_text()


def test_failed_job_leaves_no_output_and_rerun_completes(corpus):
    root, data = corpus
    bad = root / "wav" / "spk4-u1.wav"
    good_bytes = bad.read_bytes()
    bad.write_bytes(b"not a wav file")
    out = run("make_mfcc.sh --nj 2 --mfcc-config conf/mfcc.conf data/train exp/make_mfcc mfcc", cwd=root, check=False)
    assert out.returncode != 0
    assert not (data / "feats.scp").exists() and not (data / "utt2num_frames").exists()
    assert not (root / "mfcc" / "raw_mfcc_train.2.ark").exists()   # spk4 is in job 2
    assert "spk4-u1" in (root / "exp" / "make_mfcc" / "make_mfcc_train.2.log").read_text()
    bad.write_bytes(good_bytes)
    run("make_mfcc.sh --nj 2 --mfcc-config conf/mfcc.conf data/train exp/make_mfcc mfcc", cwd=root)
    assert len((data / "feats.scp").read_text().splitlines()) == 12

    # prepare_feats_for_egs: a missing VAD entry fails the job; the output dir is not created
    run("compute_vad_decision.sh --nj 2 --vad-config conf/vad.conf data/train exp/make_vad mfcc", cwd=root)
    vad_lines = (data / "vad.scp").read_text().splitlines()
    (data / "vad.scp").write_text("\n".join(vad_lines[1:]) + "\n")
    out = run("prepare_feats_for_egs.sh --nj 2 data/train data/train_no_sil exp/train_no_sil", cwd=root, check=False)
    assert out.returncode != 0 and not (root / "data" / "train_no_sil").exists()
    assert "no VAD entry for utterance 'spk1-u0'" in (root / "exp/train_no_sil/log/create_xvector_feats_train.1.log").read_text()


def test_make_mfcc_with_segments(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mfcc.conf").write_text(MFCC_CONF)
    data = tmp_path / "data" / "seg"
    data.mkdir(parents=True)
    recordings = {"recA": 3.0, "recB": 2.0}
    for seed, (reco, seconds) in enumerate(sorted(recordings.items())):
        sf.write(str(tmp_path / f"{reco}.wav"), synth_speech(seconds, RATE, seed), RATE, subtype="PCM_16")
    (data / "wav.scp").write_text("".join(f"{r} {tmp_path}/{r}.wav\n" for r in sorted(recordings)))
    segments = {"spkA-recA-0": ("recA", 0.0, 1.2), "spkA-recA-1": ("recA", 1.5, 3.0), "spkB-recB-0": ("recB", 0.25, 1.75)}
    (data / "segments").write_text("".join(f"{u} {r} {s} {e}\n" for u, (r, s, e) in sorted(segments.items())))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(segments)))
    (data / "spk2utt").write_text("spkA spkA-recA-0 spkA-recA-1\nspkB spkB-recB-0\n")
    out = run("make_mfcc.sh --nj 2 --compress false --mfcc-config conf/mfcc.conf data/seg", cwd=tmp_path)
    assert "segments file exists" in out.stdout
    feats = dict(ark.read_rspecifier(f"scp:{data}/feats.scp"))
    assert (data / "log" / "make_mfcc_seg.1.log").exists() and (data / "data" / "raw_mfcc_seg.1.ark").exists()
    for utt, (reco, start, end) in segments.items():
        samples, rate = sf.read(str(tmp_path / f"{reco}.wav"), dtype="int16")
        cut = samples[int(start * rate):int(end * rate)].astype(np.float32)   # extract-segments truncates
        np.testing.assert_array_equal(feats[utt], direct_knf_mfcc(cut, rate, 20, 3700, 30, 30, snip_edges=False))


def test_make_fbank(corpus):
    root, data = corpus
    (root / "conf" / "fbank.conf").write_text("--sample-frequency=8000\n--num-mel-bins=40\n--dither=0\n")
    run("make_fbank.sh --nj 1 --compress false data/train exp/make_fbank fbank", cwd=root)
    feats = dict(ark.read_rspecifier(f"scp:{data}/feats.scp"))
    assert len(feats) == 12 and (root / "exp" / "make_fbank" / "make_fbank_train.1.log").exists()
    assert all(m.shape[1] == 40 for m in feats.values())


def test_make_fbank_allow_upsample_resamples_audio_below_the_config_rate(corpus):
    """Kaldi's --allow-upsample (frame option of compute-fbank-feats): the 8 kHz corpus with a 16 kHz config
    fails by default (the job log names the option) and is resampled with --allow-upsample true."""
    root, data = corpus
    (root / "conf" / "fbank16.conf").write_text("--sample-frequency=16000\n--num-mel-bins=40\n--dither=0\n")
    failed = run("make_fbank.sh --nj 1 --fbank-config conf/fbank16.conf data/train exp/make_fb16 fb16", cwd=root,
                 check=False)
    assert failed.returncode == 1
    log = (root / "exp" / "make_fb16" / "make_fbank_train.1.log").read_text()
    assert "8000 Hz but --sample-frequency is 16000 Hz" in log and "--allow-upsample=true" in log
    run("make_fbank.sh --nj 1 --allow-upsample true --fbank-config conf/fbank16.conf data/train exp/make_fb16 fb16",
        cwd=root)
    feats = dict(ark.read_rspecifier(f"scp:{data}/feats.scp"))
    durations = dict(line.split() for line in (data / "utt2dur").read_text().splitlines())
    assert len(feats) == 12 and all(m.shape[1] == 40 for m in feats.values())
    for utt, matrix in feats.items():      # 10 ms frames of the resampled audio: the duration is the audio's
        assert abs(matrix.shape[0] - float(durations[utt]) * 100) <= 3, (utt, matrix.shape, durations[utt])
    assert "resampling audio from 8000 Hz to 16000 Hz" in \
        (root / "exp" / "make_fb16" / "make_fbank_train.1.log").read_text()


@pytest.mark.parametrize("command, message", [
    ("make_mfcc.sh", "Usage: "),
    ("make_mfcc.sh a b c d", "Usage: "),
    ("make_mfcc.sh --mfcc-config conf/nope.conf data/train", "no such file conf/nope.conf"),
    ("make_mfcc.sh --mfcc-config conf/mfcc.conf data/missing", "no such file data/missing/wav.scp"),
    ("make_mfcc.sh --no-such-option 1 data/train", "invalid option --no-such-option"),
    ("make_mfcc.sh --nj 0 data/train", "--nj must be a positive integer"),
    ("make_mfcc.sh --allow-downsample yes data/train", "expected \"true\" or \"false\": --allow-downsample 'yes'"),
    ("compute_vad_decision.sh data/train", "no such file data/train/feats.scp"),
    ("compute_vad_decision.sh", "Usage: "),
    ("prepare_feats_for_egs.sh data/train out", "Usage: "),
    ("prepare_feats_for_egs.sh data/train out exp", "no such file data/train/feats.scp"),
    ("prepare_feats_for_egs.sh --min-len x data/train out exp", "non-negative integers"),
])
def test_step_usage_errors(corpus, command, message):
    root, _ = corpus
    out = run(command, cwd=root, check=False)
    assert out.returncode == 1
    assert message in out.stdout + out.stderr


@pytest.mark.skipif(not NO_KALDI, reason="Kaldi is on PATH")
@pytest.mark.parametrize("command, binary", [
    ("make_mfcc.sh --use-kaldi true --mfcc-config conf/mfcc.conf data/train", "compute-mfcc-feats"),
    ("make_fbank.sh --use-kaldi true --fbank-config conf/mfcc.conf data/train", "compute-fbank-feats"),
    ("compute_vad_decision.sh --use-kaldi true --vad-config conf/vad.conf data/train", "compute-vad"),
])
def test_use_kaldi_without_kaldi_is_a_clear_error(corpus, command, binary):
    root, data = corpus
    if "vad" in command:
        (data / "feats.scp").write_text("")
    out = run(command, cwd=root, check=False)
    assert out.returncode == 1 and f"Kaldi's {binary} is not on PATH" in out.stderr


@pytest.mark.skipif(NO_KALDI or shutil.which("compute-vad") is None or shutil.which("apply-cmvn-sliding") is None,
                    reason="Kaldi binaries are not on PATH")
def test_kaldi_binaries_give_the_same_numbers(corpus, tmp_path_factory):
    root, data = corpus
    run("make_mfcc.sh --nj 2 --compress false --mfcc-config conf/mfcc.conf data/train exp/m mfcc", cwd=root)
    ours = dict(ark.read_rspecifier(f"scp:{data}/feats.scp"))
    run("make_mfcc.sh --nj 2 --use-kaldi true --compress false --mfcc-config conf/mfcc.conf data/train exp/k kaldi",
        cwd=root)
    theirs = dict(ark.read_rspecifier(f"scp:{data}/feats.scp"))
    assert list(ours) == list(theirs)
    for utt in ours:
        np.testing.assert_allclose(ours[utt], theirs[utt], rtol=1e-4, atol=1e-3)
    run("compute_vad_decision.sh --nj 2 --use-kaldi true --vad-config conf/vad.conf data/train exp/kv kaldi", cwd=root)
    kaldi_vad = dict(ark.read_rspecifier(f"scp:{data}/vad.scp"))
    run("compute_vad_decision.sh --nj 2 --vad-config conf/vad.conf data/train exp/tv mfcc", cwd=root)
    our_vad = dict(ark.read_rspecifier(f"scp:{data}/vad.scp"))
    for utt in our_vad:
        assert np.mean(our_vad[utt] == kaldi_vad[utt]) > 0.99
    run("prepare_feats_for_egs.sh --nj 2 --min-len 0 --min-num-utts 0 --compress false --use-kaldi true "
        "data/train data/k_no_sil exp/k_no_sil", cwd=root)
    run("prepare_feats_for_egs.sh --nj 2 --min-len 0 --min-num-utts 0 --compress false "
        "data/train data/t_no_sil exp/t_no_sil", cwd=root)
    kaldi_egs = dict(ark.read_rspecifier(f"scp:{root}/data/k_no_sil/feats.scp"))
    our_egs = dict(ark.read_rspecifier(f"scp:{root}/data/t_no_sil/feats.scp"))
    assert list(kaldi_egs) == list(our_egs)
    for utt in our_egs:
        np.testing.assert_allclose(our_egs[utt], kaldi_egs[utt], rtol=1e-4, atol=1e-3)


def _killed_atomic_writer(path):
    """Leave what a job killed with SIGKILL while writing ``path`` leaves: tfspk.io.atomic's temporary."""
    import subprocess
    import sys
    script = ("import os, sys\nfrom tfspk.io.atomic import atomic_path\n"
              "tmp = atomic_path(sys.argv[1]).__enter__()\nopen(tmp, 'w').write('half')\n"
              "os.kill(os.getpid(), 9)\n")
    subprocess.run([sys.executable, "-c", script, str(path)])
    return set(path.parent.glob(f".tmp.*.{path.name}"))


def test_rerun_removes_the_temporaries_of_killed_jobs_only_its_own(corpus):
    # Before: the hidden .tmp.*.raw_mfcc_train.N.ark of killed jobs stayed in mfcc/ for ever.
    root, data = corpus
    (root / "mfcc").mkdir()
    (root / "exp/make_mfcc").mkdir(parents=True)
    stale = set()
    for name in ("raw_mfcc_train.1.ark", "raw_mfcc_train.1.scp", "raw_mfcc_train.7.ark", "vad_train.2.ark"):
        stale |= _killed_atomic_writer(root / "mfcc" / name)
    stale |= _killed_atomic_writer(root / "exp/make_mfcc/utt2num_frames.2")
    others = set()
    for name in ("raw_mfcc_train_aug.1.ark", "raw_fbank_train.1.ark", "raw_mfcc_train.1.ark.bak", "vad_eval.1.ark"):
        others |= _killed_atomic_writer(root / "mfcc" / name)
    assert len(stale) == 5 and len(others) == 4
    out = run("make_mfcc.sh --nj 2 --mfcc-config conf/mfcc.conf data/train exp/make_mfcc mfcc", cwd=root)
    run("compute_vad_decision.sh --nj 2 --vad-config conf/vad.conf data/train exp/make_vad mfcc", cwd=root)
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in others)   # other data dirs, features or files: not this step's
    assert "a temporary file left by an interrupted earlier run" in out.stdout
