"""The VoxCeleb recipe (egs/voxceleb/v2): data preparation on tiny corpora laid out like VoxCeleb1/2,
the numpy augmentation against independent formulas, layout errors, and every stage of run.sh on a
tiny synthetic corpus with a tiny network."""
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
import soundfile as sf

from conftest import REPO, run, synth_speech

RECIPE = REPO / "egs" / "voxceleb" / "v2"
LOCAL = RECIPE / "local"
PY = sys.executable


def write_wav(path, seconds, seed, f0, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, synth_speech(seconds, rate, seed=seed, f0=f0), rate, subtype="PCM_16")


def tiny_voxceleb1(root, speakers=("id10001", "id10002", "id10003", "id10270", "id10271"), videos=2, utts=2,
                   seconds=2.5):
    """wav/idXXXXX/<video>/NNNNN.wav with a pitch per speaker; test speakers are id1027x."""
    for s, speaker in enumerate(speakers):
        for v in range(videos):
            for u in range(1, utts + 1):
                write_wav(root / "wav" / speaker / f"vid{v}{speaker[-1]}" / f"{u:05d}.wav", seconds,
                          seed=100 * s + 10 * v + u, f0=90.0 + 35.0 * s)
    paths = sorted(str(p.relative_to(root / "wav")) for p in (root / "wav").rglob("*.wav"))
    test = [p for p in paths if p.startswith("id1027")]
    everyone = paths
    lines = {"veri_test2.txt": pairs(test), "list_test_all2.txt": pairs(everyone),
             "list_test_hard2.txt": [l for l in pairs(everyone) if l.startswith("0") or "id1027" in l]}
    for name, content in lines.items():
        (root / name).write_text("".join(line + "\n" for line in content))


def pairs(paths):
    return [f"{int(a.split('/')[0] == b.split('/')[0])} {a} {b}" for i, a in enumerate(paths) for b in paths[i + 1:]]


def tiny_voxceleb2(root, speakers=("id00012", "id00015", "id00017"), utts=3, seconds=2.5):
    """dev/aac/idXXXXX/<video>/NNNNN.m4a; the .m4a files hold WAV data (decoded by the ffmpeg double)."""
    for s, speaker in enumerate(speakers):
        for u in range(1, utts + 1):
            path = root / "dev" / "aac" / speaker / "vidA" / f"{u:05d}.m4a"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, synth_speech(seconds, 16000, seed=500 + 10 * s + u, f0=100.0 + 45.0 * s), 16000,
                     format="WAV", subtype="PCM_16")


def fake_ffmpeg(bin_dir):
    """An ffmpeg double for 'ffmpeg -v 8 -i <file> -f wav -acodec pcm_s16le -': writes the file to stdout."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "ffmpeg"
    path.write_text('#!/usr/bin/env bash\nwhile [ $# -gt 0 ]; do [ "$1" = -i ] && in=$2; shift; done\ncat "$in"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def table(path):
    return [line.split(None, 1) for line in Path(path).read_text().splitlines()]


# ---------------------------------------------------------------- data preparation

def test_make_voxceleb1_builds_train_test_and_three_trial_lists(tmp_path):
    tiny_voxceleb1(tmp_path / "vox1")
    run([PY, str(LOCAL / "make_voxceleb1.py"), str(tmp_path / "vox1"), str(tmp_path / "data")])
    data = tmp_path / "data"
    train_spk = {s for _, s in table(data / "voxceleb1_train" / "utt2spk")}
    test_spk = {s for _, s in table(data / "voxceleb1_test" / "utt2spk")}
    assert train_spk == {"id10001", "id10002", "id10003"} and test_spk == {"id10270", "id10271"}
    assert len(table(data / "voxceleb1" / "utt2spk")) == 20
    wav = dict(table(data / "voxceleb1" / "wav.scp"))
    assert wav["id10270-vid00-00001"] == str(tmp_path / "vox1" / "wav/id10270/vid00/00001.wav")
    official = (tmp_path / "vox1" / "veri_test2.txt").read_text().splitlines()
    trials = [l.split() for l in (data / "voxceleb1_test" / "trials_O").read_text().splitlines()]
    assert len(trials) == len(official) == 28
    for line, (enroll, test, label) in zip(official, trials):
        flag, a, b = line.split()
        assert enroll == a[:-4].replace("/", "-") and test == b[:-4].replace("/", "-")
        assert label == ("target" if flag == "1" else "nontarget")
    assert len((data / "voxceleb1" / "trials_E").read_text().splitlines()) == 190
    assert (data / "voxceleb1" / "trials_H").is_file()


def test_make_voxceleb1_accepts_kaldi_dev_test_layout(tmp_path):
    tiny_voxceleb1(tmp_path / "flat")
    root = tmp_path / "kaldi"
    for speaker_dir in (tmp_path / "flat" / "wav").iterdir():
        part = "test" if speaker_dir.name.startswith("id1027") else "dev"
        (root / part / "wav").mkdir(parents=True, exist_ok=True)
        speaker_dir.rename(root / part / "wav" / speaker_dir.name)
    run([PY, str(LOCAL / "make_voxceleb1.py"), "--trials-dir", str(tmp_path / "flat"), str(root), str(tmp_path / "d")])
    assert len(table(tmp_path / "d" / "voxceleb1" / "utt2spk")) == 20


@pytest.mark.parametrize("breakage, message", [
    ("no_wav", "no audio directory found"),
    ("stray_file", "should contain only speaker directories"),
    ("one_level_deeper", "found 'wav'"),
    ("no_trials", "no VoxCeleb1-O trial list"),
    ("trial_unknown_utt", "is not in the corpus"),
    ("bad_trial_line", "expected '<1|0>"),
])
def test_make_voxceleb1_layout_errors_are_clear(tmp_path, breakage, message):
    root = tmp_path / "vox1"
    tiny_voxceleb1(root, speakers=("id10001", "id10270", "id10271"), videos=1, utts=2, seconds=0.5)
    if breakage == "no_wav":
        (root / "wav").rename(root / "audio")
    elif breakage == "stray_file":
        (root / "wav" / "README.txt").write_text("x")
    elif breakage == "one_level_deeper":
        (root / "wav").rename(tmp_path / "tmpwav")
        (root / "wav").mkdir()
        (tmp_path / "tmpwav").rename(root / "wav" / "wav")
    elif breakage == "no_trials":
        (root / "veri_test2.txt").unlink()
    elif breakage == "trial_unknown_utt":
        with open(root / "veri_test2.txt", "a") as handle:
            handle.write("1 id10270/vid00/00001.wav id10270/vid00/09999.wav\n")
    elif breakage == "bad_trial_line":
        with open(root / "veri_test2.txt", "a") as handle:
            handle.write("yes id10270/vid00/00001.wav\n")
    proc = run([PY, str(LOCAL / "make_voxceleb1.py"), str(root), str(tmp_path / "data")], check=False)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "data" / "voxceleb1" / "spk2utt").exists()


def test_make_voxceleb2_writes_ffmpeg_pipes_that_decode(tmp_path):
    tiny_voxceleb2(tmp_path / "vox2", utts=2, seconds=0.5)
    env = {"PATH": f"{fake_ffmpeg(tmp_path / 'bin')}:{os.environ['PATH']}"}
    run([PY, str(LOCAL / "make_voxceleb2.py"), str(tmp_path / "vox2"), "dev", str(tmp_path / "data")], env=env)
    wav = table(tmp_path / "data" / "wav.scp")
    assert len(wav) == 6
    utt, value = wav[0]
    m4a = tmp_path / "vox2" / "dev/aac/id00012/vidA/00001.m4a"
    assert utt == "id00012-vidA-00001"
    assert value == f"ffmpeg -v 8 -i {m4a} -f wav -acodec pcm_s16le - |"
    decoded = subprocess.run(value.rstrip("|"), shell=True, capture_output=True, env=dict(os.environ, **env)).stdout
    assert decoded == m4a.read_bytes()


def test_make_voxceleb2_wrong_layout(tmp_path):
    (tmp_path / "vox2" / "dev" / "mp4" / "id00012").mkdir(parents=True)
    proc = run([PY, str(LOCAL / "make_voxceleb2.py"), str(tmp_path / "vox2"), "dev", str(tmp_path / "d")], check=False)
    assert proc.returncode == 1 and "dev/aac" in proc.stderr and "no audio directory" in proc.stderr


# ---------------------------------------------------------------- augmentation numerics

def reverberate(args, tmp_path, x, rate=16000):
    sf.write(tmp_path / "in.wav", x, rate, subtype="PCM_16")
    run([PY, str(LOCAL / "wav_reverberate.py")] + args + [str(tmp_path / "in.wav"), str(tmp_path / "out.wav")])
    out, out_rate = sf.read(tmp_path / "out.wav", dtype="int16")
    assert out_rate == rate and out.size == x.size
    return out.astype(np.float64)


def power_matched(y, x):
    """Independent statement of --normalize-output: y scaled to the mean square of x."""
    return y * np.sqrt(np.mean(x.astype(np.float64) ** 2) / np.mean(y ** 2))


def test_reverberation_matches_shifted_convolution(tmp_path):
    x = synth_speech(0.5, 16000, seed=1).astype(np.int16)
    rir = np.array([0.1, 1.0, 0.5, -0.25], dtype=np.float32)
    sf.write(tmp_path / "rir.wav", rir, 16000, subtype="FLOAT")
    out = reverberate(["--rir", str(tmp_path / "rir.wav")], tmp_path, x)
    xf = x.astype(np.float64)
    # y[n] = sum_k h[k] x[n + peak - k], peak = 1 (the direct path lands at n).
    padded = np.concatenate([np.zeros(2), xf, np.zeros(2)])
    expected = sum(h * padded[2 + 1 - k: 2 + 1 - k + x.size] for k, h in enumerate(rir.astype(np.float64)))
    np.testing.assert_allclose(out, np.round(power_matched(expected, x)), atol=1.0)


def test_foreground_noise_is_added_at_the_requested_snr(tmp_path):
    x = synth_speech(0.5, 16000, seed=2).astype(np.int16)
    noise = (np.random.default_rng(0).standard_normal(16000) * 3000).astype(np.int16)   # longer than x
    sf.write(tmp_path / "n.wav", noise, 16000, subtype="PCM_16")
    (tmp_path / "noises.list").write_text(f"{tmp_path / 'n.wav'}\n")
    out = reverberate(["--fg-noises", str(tmp_path / "noises.list"), "--snrs", "10"], tmp_path, x)
    xf, nf = x.astype(np.float64), noise[: x.size].astype(np.float64)
    # Noise scaled so that 10 log10(P_x / P_scaled_noise) = 10 dB, using the whole noise file's power.
    scale = np.sqrt(np.mean(xf ** 2) / np.mean(noise.astype(np.float64) ** 2) / 10 ** (10 / 10))
    np.testing.assert_allclose(out, np.round(power_matched(xf + scale * nf, x)), atol=1.0)


def test_babble_adds_the_drawn_number_of_background_signals(tmp_path):
    x = synth_speech(0.5, 16000, seed=3).astype(np.int16)
    constant = np.full(4000, 1000, dtype=np.int16)   # a looped constant: independent of the drawn phase
    sf.write(tmp_path / "c.wav", constant, 16000, subtype="PCM_16")
    (tmp_path / "speech.list").write_text(f"{tmp_path / 'c.wav'}\n")
    out = reverberate(["--bg-noises", str(tmp_path / "speech.list"), "--snrs", "20", "--num-bg", "3"], tmp_path, x)
    xf = x.astype(np.float64)
    one = np.sqrt(np.mean(xf ** 2) / 1000.0 ** 2 / 10 ** 2) * 1000.0
    np.testing.assert_allclose(out, np.round(power_matched(xf + 3 * one, x)), atol=1.0)


def test_augment_data_dir_writes_seeded_pipes_for_files_and_pipes(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_wav(tmp_path / "a.wav", 0.3, 1, 120.0)
    (data / "wav.scp").write_text(f"s1-u1 {tmp_path / 'a.wav'}\ns1-u2 cat {tmp_path / 'a.wav'} |\n")
    (data / "utt2spk").write_text("s1-u1 s1\ns1-u2 s1\n")
    musan = tmp_path / "musan"
    for kind in ("noise", "music", "speech"):
        write_wav(musan / kind / "set" / f"{kind}-0001.wav", 0.2, 7, 300.0)
    run([PY, str(LOCAL / "augment_data_dir.py"), "--kind", "babble", "--musan", str(musan), str(data),
         str(tmp_path / "babble")])
    wav = table(tmp_path / "babble" / "wav.scp")
    assert [u for u, _ in wav] == ["s1-u1-babble", "s1-u2-babble"]
    assert "--num-bg 3:4:5:6:7" in wav[0][1] and "--snrs 20:17:15:13" in wav[0][1]
    assert wav[1][1].startswith(f"cat {tmp_path / 'a.wav'} | python3 ") and wav[1][1].endswith("- - |")
    assert table(tmp_path / "babble" / "spk2utt") == [["s1", "s1-u1-babble s1-u2-babble"]]
    for _, value in wav:   # each pipe decodes to audio of the input's length
        audio = subprocess.run(value.rstrip("| "), shell=True, capture_output=True, check=True).stdout
        (tmp_path / "x.wav").write_bytes(audio)
        assert sf.info(tmp_path / "x.wav").frames == int(0.3 * 16000)
    proc = run([PY, str(LOCAL / "augment_data_dir.py"), "--kind", "reverb", "--rirs-noises", str(tmp_path / "none"),
                str(data), str(tmp_path / "reverb")], check=False)
    assert proc.returncode == 1 and "rir_list" in proc.stderr


# ---------------------------------------------------------------- the whole recipe, tiny

def tiny_rirs(root):
    for room in ("smallroom", "mediumroom"):
        rir_dir = root / "RIRS_NOISES" / "simulated_rirs" / room / "Room001"
        rir_dir.mkdir(parents=True)
        lines = []
        for i in range(2):
            rir = np.zeros(800, dtype=np.float32)
            rir[10 + i] = 1.0
            rir[200:] = np.random.default_rng(i).standard_normal(600) * 0.01
            sf.write(rir_dir / f"Room001-0000{i}.wav", rir, 16000, subtype="FLOAT")
            lines.append(f"--rir-id {i} --room-id 001 RIRS_NOISES/simulated_rirs/{room}/Room001/Room001-0000{i}.wav")
        (root / "RIRS_NOISES" / "simulated_rirs" / room / "rir_list").write_text("\n".join(lines) + "\n")
    return root / "RIRS_NOISES"


TINY_CONFIG = """seed: 1
nnet: {name: tdnn, params: {frame_dim: 16, pooling_dim: 24, embedding_dim: 8}}
optimizer: {name: adam, lr: 0.01}
schedule: {steps_per_epoch: 4, num_epochs: 1}
data: {speakers_per_batch: 3, min_frames: 40, max_frames: 60, num_threads: 1}
valid: {num_utts: 0}
log_every: 2
"""


@pytest.mark.slow
def test_every_stage_runs_on_a_tiny_voxceleb(tmp_path):
    tiny_voxceleb1(tmp_path / "vox1", videos=1, utts=3, seconds=1.5)
    tiny_voxceleb2(tmp_path / "vox2", utts=3, seconds=1.5)
    musan = tmp_path / "musan"
    for kind in ("noise", "music", "speech"):
        write_wav(musan / kind / "set" / f"{kind}-0001.wav", 1.0, 7, 300.0)
    rirs = tiny_rirs(tmp_path)
    (tmp_path / "train.yaml").write_text(TINY_CONFIG)
    env = {"PATH": f"{fake_ffmpeg(tmp_path / 'bin')}:{os.environ['PATH']}"}
    args = ["./run.sh", "--voxceleb1-root", str(tmp_path / "vox1"), "--voxceleb2-root", str(tmp_path / "vox2"),
            "--musan", str(musan), "--rirs-noises", str(rirs), "--aug-subset", "20", "--nj", "1",
            "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"), "--mfcc-dir", str(tmp_path / "mfcc"),
            "--train-config", str(tmp_path / "train.yaml"), "--min-len", "50", "--min-num-utts", "2",
            "--lda-dim", "2", "--calibration-min-trials", "2", "--loss", "softmax"]
    proc = run(args, cwd=RECIPE, env=env, timeout=900)
    out = proc.stdout
    for stage in range(9):
        assert f"=== stage {stage}:" in out, out
    data = tmp_path / "data"
    combined = {u for u, _ in table(data / "train_combined" / "utt2spk")}
    assert len(combined) == 9 + 20 and sum(u.endswith("-reverb") for u in combined) > 0
    nnet = tmp_path / "exp" / "xvector_nnet_softmax"
    for name in ("O", "E", "H"):
        results = (nnet / f"scores_{name}" / "results.txt").read_text()
        assert "plda" in results and "cosine" in results
        assert (nnet / f"scores_{name}" / "det.png").stat().st_size > 1000
        num_trials = len((data / ("voxceleb1_test/trials_O" if name == "O" else f"voxceleb1/trials_{name}"))
                         .read_text().splitlines())
        assert len((nnet / f"scores_{name}" / "plda_scores").read_text().splitlines()) == num_trials
    # Stage 8: -E and -H (5 speakers) are calibrated on one half and reported on the other; -O has two
    # test speakers, too few to split, and is skipped with a warning.
    for name in ("E", "H"):
        calibrated = (nnet / f"scores_{name}" / "calibration" / "results.txt").read_text()
        assert "plda_calibrated" in calibrated and "actDCF(0.01)" in calibrated
    assert not (nnet / "scores_O" / "calibration" / "results.txt").exists()
    assert "skipping calibration" in proc.stderr
    # Restarting at a later stage reuses what is there.
    proc = run(args + ["--stage", "7", "--stop-stage", "7"], cwd=RECIPE, env=env)
    assert "VoxCeleb1-H" in proc.stdout and "=== stage 8:" not in proc.stdout
    assert "=== stage 9:" not in run(args + ["--stage", "9"], cwd=RECIPE, env=env).stdout  # opt-in (--lmft)
    # Stage 9: large-margin fine-tuning from the stage-4 network (softmax: no margin to set). Its scoring loop over
    # the lists is stages 6-7's, run above on all three: two lists here (-E keeps the whole voxceleb1 set to
    # extract, which -O alone would swap for voxceleb1_test, not featurised by this run).
    proc = run(args + ["--stage", "9", "--lmft", "true", "--lmft-margin", "", "--lmft-frames", "70",
                       "--lmft-epochs", "2", "--trial-lists", "O E"], cwd=RECIPE, env=env, timeout=900)
    tuned = tmp_path / "exp" / "xvector_nnet_softmax_lmft"
    log = (tuned / "log" / "train.log").read_text()
    assert f"initialised the loss head from {nnet}/ckpt" in log and f"the network from {nnet}/final/model.weights.h5" in log
    assert "average of 2 epoch(s)" in log
    saved = yaml.safe_load((tuned / "config.yaml").read_text())
    assert saved["data"]["min_frames"] == 70 and saved["schedule"]["lr_policy"] == "exponential"
    assert "plda" in (tuned / "scores_O" / "results.txt").read_text()


def test_run_sh_refuses_e_and_h_when_voxceleb1_trains(tmp_path):
    proc = run(["./run.sh", "--vox1-train", "true", "--stage", "6", "--data", str(tmp_path / "d"),
                "--exp", str(tmp_path / "e")], cwd=RECIPE, check=False)
    assert "scoring VoxCeleb1-O only" in proc.stdout
    assert proc.returncode == 1 and "made by stage 5" in proc.stderr


def test_run_sh_needs_the_voxceleb1_root(tmp_path):
    proc = run(["./run.sh", "--data", str(tmp_path / "d"), "--exp", str(tmp_path / "e")], cwd=RECIPE, check=False)
    assert proc.returncode == 1 and "--voxceleb1-root" in proc.stderr


def test_voxceleb_training_config_is_liu2019_and_takes_every_loss():
    from tfspk import losses
    from tfspk.train.components import resolve
    from tfspk.train.config import build_config, check_values
    config = resolve(build_config(str(RECIPE / "conf" / "train.yaml"), []))
    check_values(config)
    params = config.nnet.params
    assert (config.nnet.name, params["frame_dim"], params["pooling_dim"], params["embedding_dim"]) == ("tdnn", 512, 1500, 512)
    assert (config.data.speakers_per_batch, config.data.min_frames, config.data.max_frames) == (64, 200, 400)
    assert (config.optimizer.name, config.optimizer.lr, config.optimizer.weight_decay) == ("sgd", 0.01, 0.01)
    assert config.schedule.min_lr == 1e-5 and config.valid.num_utts == 1000
    assert config.loss.name == "amsoftmax" and config.loss.params["m3"] == 0.2
    for name in losses.LOSSES:   # run.sh --loss <any> must work with this config
        check_values(resolve(build_config(str(RECIPE / "conf" / "train.yaml"), [f"loss.name={name}"])))


def test_mfcc_config_is_the_voxceleb_v2_one():
    lines = [l for l in (RECIPE / "conf" / "mfcc.conf").read_text().splitlines() if l.startswith("--")]
    assert sorted(lines) == sorted(["--sample-frequency=16000", "--frame-length=25", "--low-freq=20",
                                    "--high-freq=7600", "--num-mel-bins=30", "--num-ceps=30", "--snip-edges=false"])
    vad = [l for l in (RECIPE / "conf" / "vad.conf").read_text().splitlines() if l.startswith("--")]
    assert sorted(vad) == sorted(["--vad-energy-threshold=5.5", "--vad-energy-mean-scale=0.5",
                                  "--vad-proportion-threshold=0.12", "--vad-frames-context=2"])


@pytest.mark.parametrize("value", ["abc", "0", "-3", "5"])
def test_score_plda_cosine_checks_the_lda_dim(tmp_path, value):
    """--lda-dim is a positive integer below the number of training speakers, or 'max' (S - 1)."""
    for name in ("utt2spk", "xvector.scp", "trials"):
        (tmp_path / name).write_text("")
    (tmp_path / "spk2utt").write_text("a u1\nb u2\nc u3\n")
    proc = subprocess.run(["bash", "local/score_plda_cosine.sh", "--lda-dim", value, str(tmp_path), str(tmp_path),
                           str(tmp_path), str(tmp_path / "trials"), str(tmp_path / "scores")],
                          cwd=RECIPE, capture_output=True, text=True)
    assert proc.returncode == 1
    expected = ("must be below the number of training speakers (3" if value == "5"
                else f"--lda-dim must be a positive integer or 'max', got '{value}'")
    assert expected in proc.stderr


# ---------------------------------------------------------------- on-the-fly augmentation (--aug online)

@pytest.mark.slow
def test_aug_online_trains_from_voiced_audio_with_the_musan_and_rirs_dirs(tmp_path):
    tiny_voxceleb1(tmp_path / "vox1", speakers=("id10001", "id10270", "id10271"), videos=1, utts=2, seconds=1.0)
    tiny_voxceleb2(tmp_path / "vox2", utts=2, seconds=2.0)
    musan = tmp_path / "musan"
    for kind in ("noise", "music", "speech"):
        write_wav(musan / kind / "set" / f"{kind}-0001.wav", 1.0, 7, 300.0)
    rirs = tiny_rirs(tmp_path)
    (tmp_path / "train.yaml").write_text(TINY_CONFIG.replace("steps_per_epoch: 4", "steps_per_epoch: 2"))
    env = {"PATH": f"{fake_ffmpeg(tmp_path / 'bin')}:{os.environ['PATH']}"}
    data, exp = tmp_path / "data", tmp_path / "exp"
    args = ["./run.sh", "--voxceleb1-root", str(tmp_path / "vox1"), "--voxceleb2-root", str(tmp_path / "vox2"),
            "--musan", str(musan), "--rirs-noises", str(rirs), "--aug", "online", "--audio-dir",
            str(tmp_path / "audio"), "--nj", "1", "--trial-lists", "O", "--data", str(data), "--exp", str(exp),
            "--mfcc-dir", str(tmp_path / "mfcc"), "--train-config", str(tmp_path / "train.yaml"),
            "--loss", "softmax", "--stop-stage", "4", "--min-len", "50", "--min-num-utts", "2"]
    proc = run(args, cwd=RECIPE, env=env, timeout=900)
    assert "=== stage 2: on-the-fly augmentation" in proc.stdout and "=== stage 3:" not in proc.stdout
    assert "0 of 6 utterances have <= 50 voiced frames" in proc.stderr   # stage 3's filter, on vad.scp
    assert "schedule.lr_policy=exponential" in proc.stdout          # the tiny config's plateau is replaced
    # stage 2: the ffmpeg pipes decoded to FLAC files with the same samples; the corpora as data dirs
    pipes = dict(table(data / "train" / "wav.scp"))
    files = dict(table(data / "train_audio" / "wav.scp"))
    assert sorted(files) == sorted(pipes) and all(v.endswith(".flac") for v in files.values())
    for key, value in pipes.items():
        m4a = value.split(" -i ")[1].split()[0]
        np.testing.assert_array_equal(sf.read(files[key], dtype="int16")[0], sf.read(m4a, dtype="int16")[0])
    assert (data / "train_audio" / "vad.scp").read_text() == (data / "train" / "vad.scp").read_text()
    for name, count in (("musan_noise", 1), ("musan_music", 1), ("musan_speech", 1), ("rirs", 4)):
        assert len(table(data / name / "wav.scp")) == count
    # stage 4: trained from audio with the augmentation section and the VAD
    nnet = exp / "xvector_nnet_softmax"
    saved = yaml.safe_load((nnet / "config.yaml").read_text())
    assert saved["data"]["source"] == "audio" and saved["features"]["vad"] == "true"
    assert saved["features"]["cmn"] == "sliding" and saved["features"]["type"] == "mfcc"
    augment = saved["augment"]
    assert augment["noise_dir"] == f"{data}/musan_noise" and augment["babble_dir"] == f"{data}/musan_speech"
    assert augment["rir_dir"] == f"{data}/rirs" and augment["music_snrs"] == "15:10:8:5"
    assert augment["noise_snrs"] == "15:10:5:0" and augment["babble_snrs"] == "20:17:15:13"
    assert augment["babble_speakers"] == "3:4:5:6:7" and augment["noise_prob"] == 0.2
    log = (nnet / "log" / "train.log").read_text()
    assert f"voiced audio from {data}/train_audio/vad.scp" in log
    assert (nnet / "final" / "model.weights.h5").is_file()
    # a second run of stage 2 decodes nothing again
    proc = run(args + ["--stage", "2", "--stop-stage", "2"], cwd=RECIPE, env=env)
    assert "(0 decoded now, 6 already in" in proc.stderr


def test_wav_scp_to_files_errors_name_the_key_and_leave_no_wav_scp(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_wav(tmp_path / "a.wav", 0.3, 1, 200.0)
    (data / "wav.scp").write_text(f"u1 cat {tmp_path}/a.wav |\nu2 {tmp_path}/a.wav\nu3 false |\n")
    (data / "utt2spk").write_text("u1 s\nu2 s\nu3 s\n")
    proc = run([PY, str(LOCAL / "wav_scp_to_files.py"), "--nj", "1", str(data), str(tmp_path / "audio"),
                str(tmp_path / "out")], check=False)
    assert proc.returncode != 0 and "wav.scp entry 'u3'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "wav.scp").exists()
    (data / "wav.scp").write_text(f"u1 cat {tmp_path}/a.wav |\nu2 {tmp_path}/a.wav\n")
    run([PY, str(LOCAL / "wav_scp_to_files.py"), "--nj", "2", str(data), str(tmp_path / "audio"), str(tmp_path / "out")])
    assert table(tmp_path / "out" / "wav.scp") == [["u1", f"{tmp_path}/audio/u1.flac"], ["u2", f"{tmp_path}/a.wav"]]
    assert (tmp_path / "out" / "utt2spk").read_text() == (data / "utt2spk").read_text()
    np.testing.assert_array_equal(sf.read(tmp_path / "audio" / "u1.flac", dtype="int16")[0],
                                  sf.read(tmp_path / "a.wav", dtype="int16")[0])


@pytest.mark.parametrize("options, message", [
    (["--aug", "online"], "--aug online) needs both --musan and --rirs-noises"),
    (["--aug", "sometimes"], "--aug is one of offline, online, none; got 'sometimes'"),
])
def test_run_sh_aug_option_errors(tmp_path, options, message):
    proc = run(["./run.sh", "--data", str(tmp_path / "d"), "--exp", str(tmp_path / "e")] + options, cwd=RECIPE,
               check=False)
    assert proc.returncode != 0 and message in proc.stderr


# ---------------------------------------------------------------- non-TDNN systems through run.sh
# Each system's own experiment config (conf/<system>.yaml: its features, network, loss, optimizer and LR
# schedule), shrunk with run.sh --set to a few milliseconds per step. The ResNet runs with
# TF_ENABLE_ONEDNN_OPTS=0: TensorFlow 2.21's oneDNN kernels crash (SIGSEGV/SIGABRT, heap corruption) in
# small-width ResNet34 training steps here (docs/nnet.md, "Speed of the networks").
TINY_SCHEDULE = ["schedule.steps_per_epoch=3", "schedule.num_epochs=2", "data.speakers_per_batch=3",
                 "data.min_frames=40", "data.max_frames=60", "data.num_threads=1", "valid.num_utts=0", "log_every=1"]
TINY_SYSTEMS = {
    "ecapa_tdnn_c1024": ("ecapa_tdnn", "fbank", 80, ["nnet.params.channels=8", "nnet.params.scale=4",
                         "nnet.params.se_channels=4", "nnet.params.mfa_channels=12",
                         "nnet.params.attention_channels=4", "nnet.params.embedding_dim=6"]),
    "resnet34": ("resnet34", "fbank", 80, ["nnet.params.base_width=2", "nnet.params.embedding_dim=6",
                 "schedule.warmup_epochs=1", "schedule.margin_warmup_epochs=1"]),
}
TINY_ENV = {"resnet34": {"TF_ENABLE_ONEDNN_OPTS": "0"}}
#: Stages 6-8 (PLDA + cosine scoring, report, calibration) read x-vectors only, whatever network made them: they run
#: for one system here (and for the TDNN in test_every_stage_runs_on_a_tiny_voxceleb, on the same -E list); the
#: other stops after its extraction.
SCORED_SYSTEM = "ecapa_tdnn_c1024"


@pytest.fixture(scope="module")
def tiny_fbank_features(tmp_path_factory):
    """run.sh stages 0-3 on the tiny corpus for the non-TDNN systems, once for all of them: the data dirs, the
    MFCCs + energy VAD, the 80-dim fbank features and the training examples. Stages 0-3 depend on --system only
    through its config's features: section, the same in every TINY_SYSTEMS config (asserted here), so each
    system's test runs stages 4-8 on these. Returns (root, the run.sh arguments but --system, env, stdout)."""
    sections = {system: yaml.safe_load((RECIPE / "conf" / f"{system}.yaml").read_text())["features"]
                for system in TINY_SYSTEMS}
    first = sorted(TINY_SYSTEMS)[0]
    assert all(section == sections[first] for section in sections.values()), sections
    root = tmp_path_factory.mktemp("tiny_fbank")
    tiny_voxceleb1(root / "vox1", videos=1, utts=3, seconds=1.5)
    tiny_voxceleb2(root / "vox2", utts=3, seconds=1.5)
    env = {"PATH": f"{fake_ffmpeg(root / 'bin')}:{os.environ['PATH']}"}
    args = ["./run.sh", "--voxceleb1-root", str(root / "vox1"), "--voxceleb2-root", str(root / "vox2"),
            "--nj", "1", "--data", str(root / "data"), "--exp", str(root / "exp"),
            "--mfcc-dir", str(root / "mfcc"), "--trial-lists", "E", "--min-len", "50",
            "--min-num-utts", "2", "--lda-dim", "2", "--calibration-min-trials", "2"]
    proc = run(args + ["--system", first, "--stop-stage", "3"], cwd=RECIPE, env=env, timeout=600)
    assert "=== stage 4:" not in proc.stdout
    return root, args, env, proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("system", sorted(TINY_SYSTEMS))
def test_a_non_tdnn_system_goes_through_run_sh(tiny_fbank_features, system):
    """run.sh --system <non-TDNN> on the tiny corpus: its feature type, training with its config's loss and
    schedule, extraction, and for SCORED_SYSTEM PLDA + cosine scoring, the report and calibration (stages 0-8, no
    augmentation; stages 0-3, the same for every system here, are tiny_fbank_features's)."""
    from tfspk.io.ark import read_dict_of_arrays
    network, feat_type, feat_dim, params = TINY_SYSTEMS[system]
    root, args, env, prepared = tiny_fbank_features
    env = {**env, **TINY_ENV.get(system, {})}
    scored = system == SCORED_SYSTEM
    args = args + ["--system", system, "--stage", "4"] + ([] if scored else ["--stop-stage", "5"])
    for kv in TINY_SCHEDULE + params:
        args += ["--set", kv]
    proc = run(args, cwd=RECIPE, env=env, timeout=600)
    for stage in (0, 1, 3):
        assert f"=== stage {stage}:" in prepared, prepared
    for stage in (4, 5, 6, 7, 8) if scored else (4, 5):
        assert f"=== stage {stage}:" in proc.stdout, proc.stdout
    assert f"train the {system} network" in proc.stdout and f"{feat_type} features" in proc.stdout
    data, nnet = root / "data", root / "exp" / f"{system}_nnet"
    # The network was trained on the system's features (80-dim fbank with the MFCCs' VAD), with the
    # config's loss and the --set sizes.
    config = yaml.safe_load((nnet / "config.yaml").read_text())
    wanted = yaml.safe_load((RECIPE / "conf" / f"{system}.yaml").read_text())
    assert config["nnet"]["name"] == network and config["feat_dim"] == feat_dim
    assert config["features"]["type"] == feat_type and config["loss"]["name"] == wanted["loss"]["name"]
    assert config["schedule"]["lr_policy"] == wanted["schedule"]["lr_policy"]
    assert config["nnet"]["params"]["embedding_dim"] == 6 and (nnet / "final" / "DONE").is_file()
    assert (data / f"train_{feat_type}" / "vad.scp").read_text() == (data / "train" / "vad.scp").read_text()
    # the archives of another --data than 'data' go next to it (<data>_<type>), not to the recipe's <type>/
    scp = (data / f"train_{feat_type}" / "feats.scp").read_text().splitlines()
    arks = {line.split(None, 1)[1].rsplit(":", 1)[0] for line in scp}
    assert arks and all(Path(ark).parent == root / f"data_{feat_type}" for ark in arks), arks
    assert "done: 6 steps" in (nnet / "log" / "train.log").read_text()   # 2 epochs x 3 steps
    # Embeddings: one finite 6-dim vector per utterance of the training and evaluation sets.
    for name in ("train", "voxceleb1"):
        vectors = read_dict_of_arrays(f"scp:{nnet}/xvectors_{name}/xvector.scp")
        utts = {u for u, _ in table(data / name / "utt2spk")}
        assert set(vectors) == utts
        assert all(v.shape == (6,) and np.all(np.isfinite(v)) for v in vectors.values())
    if not scored:
        assert "=== stage 6:" not in proc.stdout
        return
    trials = (data / "voxceleb1" / "trials_E").read_text().splitlines()
    scores_dir = nnet / "scores_E"
    for kind in ("plda", "cosine"):
        scores = [line.split() for line in (scores_dir / f"{kind}_scores").read_text().splitlines()]
        assert [s[:2] for s in scores] == [t.split()[:2] for t in trials]
        assert all(np.isfinite(float(s[2])) for s in scores)
    results = (scores_dir / "results.txt").read_text()
    assert "plda" in results and "cosine" in results and "EER" in results
    assert (scores_dir / "det.png").stat().st_size > 1000
    assert "actDCF(0.01)" in (scores_dir / "calibration" / "results.txt").read_text()
