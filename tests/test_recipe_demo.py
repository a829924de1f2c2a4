"""The demo recipe (egs/demo/v2): corpus building blocks, stage input checks, and (marked e2e) a
real-speech end-to-end run on a small subset of the Debian packages."""
import contextlib
import importlib.util
import os
import re
import shutil
import stat
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, run, synth_speech
from tfspk.errors import ToolError

RECIPE = REPO / "egs" / "demo" / "v2"
LOCAL = RECIPE / "local"
PY = sys.executable


def load_local(name):
    spec = importlib.util.spec_from_file_location(name, LOCAL / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_demo_data = load_local("make_demo_data")


# ---------------------------------------------------------------- speaker map

def test_shipped_speaker_map_is_consistent():
    entries = make_demo_data.read_speaker_map(LOCAL / "speakers.txt")
    speakers = {e.speaker for e in entries}
    assert len(speakers) >= 60
    eval_speakers = [s.split("#")[0].strip() for s in (LOCAL / "eval_speakers.txt").read_text().splitlines()]
    eval_speakers = [s for s in eval_speakers if s]
    assert set(eval_speakers) <= speakers, set(eval_speakers) - speakers
    assert len(eval_speakers) >= 10 and len(speakers - set(eval_speakers)) >= 30
    # One speaker may span packages only when it is the same voice (Allison, en + es).
    packages_per_speaker = {}
    for e in entries:
        packages_per_speaker.setdefault(e.speaker, set()).add(e.package)
    assert {s for s, p in packages_per_speaker.items() if len(p) > 1} == {"ast_allison"}


@pytest.mark.parametrize("line, message", [
    ("pkg spk en", "expected 4 fields"),
    ("pkg Bad-Id en .*", "speaker id 'Bad-Id'"),
    ("pkg spk english .*", "language 'english'"),
    ("pkg spk en (unclosed", "bad regular expression"),
])
def test_speaker_map_errors_name_the_line(tmp_path, line, message):
    path = tmp_path / "map.txt"
    path.write_text("# comment\n\n" + line + "\n")
    with pytest.raises(ToolError, match=re.escape(f"{path}:3") + ".*" + re.escape(message)):
        make_demo_data.read_speaker_map(path)


# ---------------------------------------------------------------- decoding

def write_als(path, body):
    """A Drascula speech file: 32-byte header, 8-bit unsigned samples, 32 trailing bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(range(32)) + bytes(body) + bytes([7] * 32))


def test_drascula_als_decoding_skips_header_and_tail(tmp_path):
    body = np.array([128, 0, 255, 129, 127, 64], dtype=np.uint8)
    write_als(tmp_path / "1.ALS", body)
    samples, rate = make_demo_data.decode(str(tmp_path / "1.ALS"))
    assert rate == 11025
    # Independent statement: unsigned 8-bit PCM centred at 128, scaled to int16 range (x 256).
    np.testing.assert_array_equal(samples, (body.astype(np.int64) - 128) * 256)


def test_gsm_decoding_reads_raw_gsm610_at_8khz(tmp_path):
    tone = (np.sin(2 * np.pi * 300 * np.arange(8000) / 8000) * 8000).astype(np.int16)
    sf.write(tmp_path / "a.gsm", tone, 8000, format="RAW", subtype="GSM610")
    samples, rate = make_demo_data.decode(str(tmp_path / "a.gsm"))
    assert rate == 8000 and samples.size == 8000
    assert np.corrcoef(samples[100:7900], tone[100:7900])[0, 1] > 0.99


def test_resampling_keeps_the_frequency_and_the_duration():
    rate, freq, seconds = 11025, 1000.0, 2.0
    n = int(rate * seconds)
    tone = np.sin(2 * np.pi * freq * np.arange(n) / rate) * 10000
    out = make_demo_data.resample(tone, rate, 8000)
    assert out.size == int(np.ceil(n * 8000 / rate))
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    assert abs(np.argmax(spectrum) * 8000 / out.size - freq) < 1.0
    # Amplitude preserved away from the edges (polyphase filter has unit pass-band gain).
    assert abs(np.max(np.abs(out[800:-800])) - 10000) < 150


def test_corrupt_file_is_reported_by_name(tmp_path):
    bad = tmp_path / "broken.ogg"
    bad.write_bytes(b"not an ogg file")
    with pytest.raises(ToolError, match="broken.ogg"):
        make_demo_data.decode(str(bad))


# ---------------------------------------------------------------- corpus build

def fake_corpus(root):
    """Two fake packages: a game with three characters (ALS) and a prompt set (ogg, one duplicate)."""
    game = root / "game-voices" / "usr/share/game/en"
    for character, f0 in (("", 110.0), ("VB", 160.0), ("BJ", 220.0)):
        for i in range(1, 4):
            speech = synth_speech(1.0, rate=11025, seed=i, f0=f0).astype(np.int32)
            write_als(game / f"{character}{i}.ALS", np.clip(speech // 256 + 128, 0, 255).astype(np.uint8))
    (game / "S1.ALS").write_bytes(b"\x80" * 400)  # a sound effect: matched by no line, ignored
    prompts = root / "prompt-fr" / "usr/share/sounds/fr"
    prompts.mkdir(parents=True)
    for i in range(3):
        sf.write(prompts / f"p{i}.ogg", np.stack([synth_speech(1.5, 22050, seed=10 + i, f0=180.0)] * 2, 1),
                 22050, format="OGG", subtype="VORBIS")
    shutil.copy(prompts / "p0.ogg", prompts / "p0_copy.ogg")
    speaker_map = root / "speakers.txt"
    speaker_map.write_text(
        "game-voices g_hero  en usr/share/game/en/[0-9]+\\.ALS\n"
        "game-voices g_vb    en usr/share/game/en/VB[0-9]+\\.ALS\n"
        "game-voices g_bj    en usr/share/game/en/BJ[0-9]+\\.ALS\n"
        "prompt-fr   p_voice fr usr/share/sounds/fr/.*\\.ogg\n")
    return speaker_map


def read_table(path):
    return [line.split(None, 1) for line in Path(path).read_text().splitlines()]


def test_make_demo_data_builds_a_sorted_8khz_data_dir(tmp_path):
    speaker_map = fake_corpus(tmp_path / "corpus")
    proc = run([PY, str(LOCAL / "make_demo_data.py"), "--nj", "1", str(speaker_map), str(tmp_path / "corpus"),
                str(tmp_path / "wav"), str(tmp_path / "data")])
    assert "skipped 1 files whose bytes duplicate" in proc.stderr
    data = tmp_path / "data"
    utt2spk = read_table(data / "utt2spk")
    assert [u for u, _ in utt2spk] == sorted(u for u, _ in utt2spk)
    assert {s for _, s in utt2spk} == {"g_hero", "g_vb", "g_bj", "p_voice"}
    assert sum(1 for _, s in utt2spk if s == "p_voice") == 3          # the copy is dropped
    assert all(u.startswith(s + "-") for u, s in utt2spk)               # Kaldi sort consistency
    assert not any("S1" in u for u, _ in utt2spk)                      # unmatched files are ignored
    spk2utt = dict(read_table(data / "spk2utt"))
    assert spk2utt["g_vb"].split() == sorted(u for u, s in utt2spk if s == "g_vb")
    assert dict(read_table(data / "utt2lang"))["p_voice-fr_p1"] == "fr"
    for utt, wav in read_table(data / "wav.scp"):
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    durations = dict(read_table(data / "utt2dur"))
    # ALS: 1 s at 11025 Hz -> 8000 samples; ogg: 1.5 s.
    assert float(durations["g_vb-en_VB2"]) == pytest.approx(1.0, abs=1e-3)
    assert float(durations["p_voice-fr_p2"]) == pytest.approx(1.5, abs=1e-3)


def test_make_demo_data_subset_per_speaker_is_seeded(tmp_path):
    speaker_map = fake_corpus(tmp_path / "corpus")

    def build(seed, out):
        run([PY, str(LOCAL / "make_demo_data.py"), "--nj", "1", "--max-utts-per-speaker", "2", "--seed", str(seed),
             str(speaker_map), str(tmp_path / "corpus"), str(tmp_path / "wav"), str(out)])
        return [u for u, _ in read_table(out / "utt2spk")]

    first, again = build(1, tmp_path / "a"), build(1, tmp_path / "b")
    assert first == again and len(first) == 8
    assert any(build(s, tmp_path / f"c{s}") != first for s in range(2, 4))


def test_make_demo_data_names_a_missing_package(tmp_path):
    speaker_map = fake_corpus(tmp_path / "corpus")
    shutil.rmtree(tmp_path / "corpus" / "prompt-fr")
    proc = run([PY, str(LOCAL / "make_demo_data.py"), str(speaker_map), str(tmp_path / "corpus"),
                str(tmp_path / "wav"), str(tmp_path / "data")], check=False)
    assert proc.returncode == 1
    assert "package 'prompt-fr' is not unpacked" in proc.stderr and "stage 0" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "data" / "spk2utt").exists()


def test_make_demo_data_rejects_a_file_claimed_by_two_speakers(tmp_path):
    speaker_map = fake_corpus(tmp_path / "corpus")
    with open(speaker_map, "a") as handle:
        handle.write("game-voices g_other en usr/share/game/en/VB1\\.ALS\n")
    proc = run([PY, str(LOCAL / "make_demo_data.py"), str(speaker_map), str(tmp_path / "corpus"),
                str(tmp_path / "wav"), str(tmp_path / "data")], check=False)
    assert proc.returncode == 1 and "matched by two speaker map lines" in proc.stderr
    assert f"{speaker_map}:2" in proc.stderr and f"{speaker_map}:5" in proc.stderr


# ---------------------------------------------------------------- split and trials

def write_data(dir_, spk_langs, utts_per_spk):
    dir_.mkdir(parents=True, exist_ok=True)
    rows = [(f"{spk}-u{i:02d}", spk, lang) for spk, lang in spk_langs for i in range(utts_per_spk[spk])]
    rows.sort()
    (dir_ / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _ in rows))
    (dir_ / "utt2lang").write_text("".join(f"{u} {l}\n" for u, _, l in rows))
    (dir_ / "wav.scp").write_text("".join(f"{u} /x/{u}.wav\n" for u, _, _ in rows))
    spk2utt = {}
    for u, s, _ in rows:
        spk2utt.setdefault(s, []).append(u)
    (dir_ / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    return rows


def test_split_speakers_is_disjoint_and_complete(tmp_path):
    rows = write_data(tmp_path / "all", [("a", "en"), ("b", "en"), ("c", "fr"), ("d", "fr"), ("e", "de")],
                      {"a": 2, "b": 3, "c": 2, "d": 2, "e": 1})
    (tmp_path / "eval.txt").write_text("# eval\nb\nd\nnot_here\n")
    proc = run([PY, str(LOCAL / "split_speakers.py"), str(tmp_path / "all"), str(tmp_path / "eval.txt"),
                str(tmp_path / "train"), str(tmp_path / "eval")])
    assert "not_here" in proc.stderr
    train = {s for _, s in read_table(tmp_path / "train" / "utt2spk")}
    evaluation = {s for _, s in read_table(tmp_path / "eval" / "utt2spk")}
    assert train == {"a", "c", "e"} and evaluation == {"b", "d"}
    assert len(read_table(tmp_path / "eval" / "wav.scp")) == 5
    assert [s for s, _ in read_table(tmp_path / "eval" / "spk2utt")] == ["b", "d"]
    (tmp_path / "eval1.txt").write_text("b\n")
    proc = run([PY, str(LOCAL / "split_speakers.py"), str(tmp_path / "all"), str(tmp_path / "eval1.txt"),
                str(tmp_path / "t2"), str(tmp_path / "e2")], check=False)
    assert proc.returncode == 1 and "each side needs at least 2" in proc.stderr


def test_trials_have_every_target_pair_and_seeded_nontargets(tmp_path):
    counts = {"a": 4, "b": 3, "c": 5, "d": 2}
    langs = {"a": "en", "b": "en", "c": "fr", "d": "de"}
    rows = write_data(tmp_path / "eval", list(langs.items()), counts)
    out = tmp_path / "trials"
    proc = run([PY, str(LOCAL / "make_trials.py"), "--nontarget-ratio", "2", "--same-language-fraction", "0.5",
                "--seed", "3", str(tmp_path / "eval"), str(out)])
    trials = [line.split() for line in out.read_text().splitlines()]
    spk = {u: s for u, s, _ in rows}
    lang = {u: l for u, _, l in rows}
    targets = {(a, b) for a, b, label in trials if label == "target"}
    nontargets = [(a, b) for a, b, label in trials if label == "nontarget"]
    # Independent statement: every unordered same-speaker pair, C(n, 2) per speaker.
    expected_targets = {pair for s in counts for pair in combinations(sorted(u for u in spk if spk[u] == s), 2)}
    assert targets == expected_targets and len(targets) == sum(n * (n - 1) // 2 for n in counts.values())
    assert len(nontargets) == 2 * len(targets) == len(set(nontargets))
    assert all(spk[a] != spk[b] and a < b for a, b in nontargets)
    same_language = [p for p in nontargets if lang[p[0]] == lang[p[1]]]
    # Half of the 40 non-targets should be same-language, but only the 4 x 3 en pairs exist: all are drawn.
    assert len(same_language) == counts["a"] * counts["b"] == 12
    assert "same-language" in proc.stderr
    again = tmp_path / "again"
    run([PY, str(LOCAL / "make_trials.py"), "--nontarget-ratio", "2", "--same-language-fraction", "0.5",
         "--seed", "3", str(tmp_path / "eval"), str(again)])
    assert again.read_text() == out.read_text()


def test_trials_refuse_a_single_speaker(tmp_path):
    write_data(tmp_path / "eval", [("a", "en")], {"a": 3})
    proc = run([PY, str(LOCAL / "make_trials.py"), str(tmp_path / "eval"), str(tmp_path / "t")], check=False)
    assert proc.returncode == 1 and "at least 2" in proc.stderr and not (tmp_path / "t").exists()


@pytest.mark.parametrize("script, name, text, message", [
    ("make_trials.py", "utt2lang", "a-u00 en\na-u01 en fr\n", r"utt2lang:2: expected 'utt lang', got 'a-u01 en fr' "
                                                              r"\(more than one language\)"),
    ("make_trials.py", "utt2spk", "a-u00 a\na-u00 a\n", r"utt2spk:2: duplicate key 'a-u00' \(first seen on line 1\)"),
    ("choose_dev_speakers.py", "utt2spk", "a-u00 a\na-u01 a b\n", r"utt2spk:2: expected 'utt spk', got 'a-u01 a b'"),
    ("choose_dev_speakers.py", "utt2spk", "b-u00 b\na-u00 a\n", r"utt2spk:2: key 'a-u00' is not sorted"),
    ("choose_dev_speakers.py", "utt2spk", "a-u00\n", r"utt2spk:1: key 'a-u00' has no value"),
])
def test_dev_speakers_and_trials_name_file_and_line_of_a_bad_table(tmp_path, script, name, text, message):
    """Both read the data dir through tfspk.io.table (Kaldi's table rules), whose errors name file and line."""
    write_data(tmp_path / "d", [("a", "en"), ("b", "fr")], {"a": 3, "b": 3})
    (tmp_path / "d" / name).write_text(text)
    proc = run([PY, str(LOCAL / script), str(tmp_path / "d"), str(tmp_path / "out")], check=False)
    assert proc.returncode == 1 and re.search(re.escape(str(tmp_path / "d")) + "/" + message, proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_dev_speakers_are_a_seeded_choice_of_eligible_speakers(tmp_path):
    counts = {f"s{i}": 6 for i in range(12)}
    counts["few"] = 2   # too few utterances for target trials with --min-utts 3: never chosen
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "utt2spk").write_text("".join(f"{s}-u{j} {s}\n" for s, n in sorted(counts.items())
                                                    for j in range(n)))

    def choose(num, seed, out):
        return run([PY, str(LOCAL / "choose_dev_speakers.py"), "--num-speakers", str(num), "--seed", str(seed),
                    "--min-utts", "3", str(tmp_path / "d"), str(tmp_path / out)], check=False)

    assert choose(4, 5, "a").returncode == 0 and choose(4, 5, "b").returncode == 0
    chosen = (tmp_path / "a").read_text().split()
    assert chosen == (tmp_path / "b").read_text().split() == sorted(chosen)   # reproducible, sorted
    # Independent statement: the first 4 of numpy's seeded permutation of the sorted eligible speakers.
    eligible = sorted(s for s, n in counts.items() if n >= 3)
    assert chosen == sorted(eligible[i] for i in np.random.default_rng(5).permutation(len(eligible))[:4])
    choose(6, 5, "c")
    assert set(chosen) < set((tmp_path / "c").read_text().split())          # a larger N extends the list
    choose(4, 6, "g")
    assert (tmp_path / "g").read_text().split() != chosen                     # another seed, another set
    proc = choose(7, 5, "e")   # 13 speakers: holding out 7 would leave fewer for training
    assert proc.returncode == 1 and "cannot hold out 7" in proc.stderr and not (tmp_path / "e").exists()
    proc = choose(1, 5, "f")
    assert proc.returncode == 1 and "--num-speakers must be at least 2" in proc.stderr


# ---------------------------------------------------------------- package fetching

def fake_apt(bin_dir, known, debs_dir, log):
    """apt-cache / apt-get / id doubles: apt knows ``known`` packages and 'downloads' prebuilt .debs."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    scripts = {
        "apt-cache": f"""#!/usr/bin/env bash
echo "apt-cache $@" >> {log}
case " {' '.join(known)} " in *" $2 "*) echo "  Candidate: 1.0";; *) echo "  Candidate: (none)";; esac
""",
        "apt-get": f"""#!/usr/bin/env bash
echo "apt-get $@" >> {log}
pkg="${{@: -1}}"
if [ "$pkg" = update ]; then exit 0; fi
cp {debs_dir}/"$pkg"_1.0_all.deb .
""",
        "id": "#!/usr/bin/env bash\necho 0\n",
    }
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


def build_deb(debs_dir, package, files):
    root = debs_dir / f"{package}-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\nDescription: test\n")
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(debs_dir / f"{package}_1.0_all.deb")],
                   check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_fetch_packages_unpacks_once_and_names_unknown_packages(tmp_path):
    debs, log = tmp_path / "debs", tmp_path / "apt.log"
    debs.mkdir()
    build_deb(debs, "voices-a", {"usr/share/voices/a.txt": b"hello"})
    fake_apt(tmp_path / "bin", ["voices-a"], debs, log)
    env = {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    fetch = str(LOCAL / "fetch_packages.sh")
    out = tmp_path / "downloads"
    proc = run([fetch, str(out), "voices-a"], env=env)
    assert (out / "voices-a" / "usr/share/voices/a.txt").read_bytes() == b"hello"
    assert "unpacked voices-a" in proc.stdout
    proc = run([fetch, str(out), "voices-a"], env=env)
    assert "already unpacked" in proc.stdout
    assert sum("download" in line for line in log.read_text().splitlines()) == 1
    proc = run([fetch, str(out), "voices-missing"], env=env, check=False)
    assert proc.returncode == 1
    assert "Debian package 'voices-missing' is not available" in proc.stderr
    assert "apt-get update" in log.read_text()            # root with unknown package: one update, then give up
    assert not (out / "voices-missing").exists()


# ---------------------------------------------------------------- run.sh input checks

def recipe(args, tmp_path, check=False, timeout=600):
    """Run the demo's run.sh from its directory with every output under tmp_path."""
    outputs = ["--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"), "--mfcc-dir", str(tmp_path / "mfcc"),
               "--feat-dir", str(tmp_path / "fbank")]
    return run(["./run.sh"] + outputs + args, cwd=RECIPE, check=check, timeout=timeout)


@pytest.mark.parametrize("stage, missing, maker", [
    ("1", "data/train/wav.scp", "0"),
    ("2", "data/train_fbank/feats.scp", "1"),   # the default ECAPA-TDNN trains on fbank
    ("3", "data/train_fbank_no_sil/feats.scp", "2"),
    ("4", "final/model.weights.h5", "3"),
    ("5", "xvectors_train/xvector.scp", "4"),
    ("6", "scores/plda_scores", "5"),
    ("7", "scores/plda_scores", "5"),
])
def test_a_stage_without_its_inputs_names_them_and_their_stage(tmp_path, stage, missing, maker):
    proc = recipe(["--stage", stage], tmp_path)
    assert proc.returncode == 1
    assert missing in proc.stderr and f"made by stage {maker}" in proc.stderr, proc.stderr


def _fake_nnet_dir(nnet, config, front_end):
    """An nnet dir as far as run.sh looks at it: config.yaml, features.yaml and an (empty) final model."""
    (nnet / "final").mkdir(parents=True)
    (nnet / "final" / "model.weights.h5").write_bytes(b"")
    (nnet / "config.yaml").write_text(config)
    (nnet / "features.yaml").write_text("format: 1\n" + front_end)
    return nnet


@pytest.mark.parametrize("config, front_end, missing, maker", [
    ("feat_dim: 80\n", "type: fbank\nsample_rate: 8000.0\n", "data/train_fbank/feats.scp", "1"),   # the recipe's
    ("feat_dim: 80\nimported: {source: x}\n", "type: fbank\nsample_rate: 8000.0\n", "data/train/wav.scp", "0"),
    ("feat_dim: 80\n", "type: fbank\nsample_rate: 16000.0\n", "data/train/wav.scp", "0"),         # another rate
    ("feat_dim: 80\n", "type: speechbrain_fbank\nsample_rate: 8000.0\n", "data/train/wav.scp", "0"),
])
def test_stage_4_takes_the_features_of_the_nnet_dirs_front_end(tmp_path, config, front_end, missing, maker):
    """An imported network, or one recording another feature type or rate, needs the audio (stage 0), not the
    recipe's features (stage 1): stage 4 computes its own."""
    nnet = _fake_nnet_dir(tmp_path / "nnet", config, front_end)
    proc = recipe(["--stage", "4", "--nnet-dir", str(nnet)], tmp_path)
    assert proc.returncode == 1
    assert missing in proc.stderr and f"made by stage {maker}" in proc.stderr, proc.stderr
    assert ("has a front end of its own" in proc.stdout) == (maker == "0")


SB_LIKE = "type: speechbrain_fbank\nsample_rate: 16000.0\ncmn:\n  mode: crop\n  window: 300\nvad:\n  apply: false\n"


@pytest.mark.parametrize("config, front_end, missing, error", [
    ("feat_dim: 80\nimported: {source: x}\n", SB_LIKE, "data/train_nnet/feats.scp", None),   # imported
    ("feat_dim: 30\nimported: {source: x}\n", "type: mfcc\nsample_rate: 16000.0\ncmn:\n  mode: sliding\n  window: 300\n"
     "vad:\n  apply: true\n", "data/train_nnet/feats.scp", None),                              # Kaldi-like, VAD on
    ("feat_dim: 80\nfeatures:\n  type: fbank\n", "type: fbank\nsample_rate: 8000.0\n", "data/train_fbank/feats.scp", None),
    ("feat_dim: 80\nimported: {source: x}\n", SB_LIKE.replace("crop", "none"), None, "has cmn mode 'none'"),
])
def test_init_from_trains_on_the_features_of_the_sources_front_end(tmp_path, config, front_end, missing, error):
    """--init-from a source with a front end of its own (imported, or another type or rate) trains on its features
    (data/train_<source name>, stage 1 from the audio) with its CMN and VAD; one of the recipe's front end on the
    recipe's features (data/train_fbank); a CMN the training features cannot have is refused by name."""
    nnet = _fake_nnet_dir(tmp_path / "nnet", config, front_end)
    proc = recipe(["--stage", "2", "--init-from", str(nnet)], tmp_path)
    assert proc.returncode == 1
    if error:
        assert error in proc.stderr, proc.stderr
    else:
        assert missing in proc.stderr and "made by stage 1" in proc.stderr, proc.stderr


def test_corpus_dir_without_a_package_is_named(tmp_path):
    (tmp_path / "corpus").mkdir()
    proc = recipe(["--stop-stage", "0", "--corpus-dir", str(tmp_path / "corpus"), "--packages", "drascula"], tmp_path)
    assert proc.returncode == 1
    assert "has no unpacked package drascula" in proc.stderr


def test_unknown_option_is_refused(tmp_path):
    proc = recipe(["--no-such-option", "1"], tmp_path)
    assert proc.returncode == 1 and "no-such-option" in proc.stderr


def test_aug_option_is_checked(tmp_path):
    proc = recipe(["--aug", "sometimes"], tmp_path)
    assert proc.returncode == 1 and "--aug must be online or none, got 'sometimes'" in proc.stderr
    proc = recipe(["--aug", "online", "--net", "tdnn"], tmp_path)       # no conf/tdnn_aug.yaml
    assert proc.returncode == 1 and "no conf/tdnn_aug.yaml" in proc.stderr



@pytest.mark.parametrize("recipe_dir", [RECIPE, REPO / "egs" / "voxceleb" / "v2"])
def test_path_sh_without_the_virtualenv_names_the_setup_command(tmp_path, recipe_dir):
    proc = run(". ./path.sh && echo sourced", cwd=recipe_dir, env={"TFSPK_VENV": str(tmp_path / "no_venv")},
               check=False)
    assert proc.returncode == 1 and "sourced" not in proc.stdout
    assert "virtualenv is missing" in proc.stderr and "tools/setup_env.sh" in proc.stderr
    proc = run(". ./path.sh && command -v tfspk-train && command -v run.pl", cwd=recipe_dir)
    assert str(Path(sys.executable).parent) in proc.stdout

# ---------------------------------------------------------------- end to end on real speech

@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("apt-get") is None and not (RECIPE / "downloads" / "drascula" / ".unpacked").exists(),
                    reason="needs apt-get (Debian/Ubuntu) to fetch the demo packages")
def test_demo_end_to_end_on_two_packages_beats_chance(tmp_path):
    """Stages 0-8 on the two Drascula packages (22 character voices, at most 25 recordings each, 14 training
    speakers of which 2 are held out as the dev set, 8 evaluation speakers, 150 training steps, AM-Softmax as
    measured): the packages go to the recipe's own download dir, so a second run skips the download. Measured on
    the 12 speakers left by the dev split: PLDA EER 30.2 %, cosine 32.0 % (chance: 50 %; trained on all 14: 28.3 %,
    32.6 %); 2 min 54 s on 2 busy cores (load average 7; 2 min 28 s without the dev split)."""
    proc = recipe(["--net", "tdnn", "--system", "amsoftmax", "--packages", "drascula drascula-spanish", "--max-utts-per-speaker", "25",
                   "--min-len", "50", "--min-num-utts", "4", "--lda-dim", "max", "--noisy-eval", "true", "--nj", "1",
                   "--dev-speakers", "2",
                   "--train-opts", "--num-epochs 3 --steps-per-epoch 50 --set data.speakers_per_batch=12"],
                  tmp_path, check=True, timeout=600)
    results = (tmp_path / "exp" / "xvector_nnet_amsoftmax" / "scores" / "results.txt").read_text()
    rows = {line.split()[0]: line.split() for line in results.splitlines() if line.split()[:1] in (["plda"], ["cosine"])}
    eer_plda, eer_cosine = float(rows["plda"][3]), float(rows["cosine"][3])
    assert "--lda-dim max: 11 (12 training speakers)" in proc.stdout + proc.stderr
    assert eer_plda < 35.0 and eer_cosine < 35.0, results
    assert (tmp_path / "exp" / "xvector_nnet_amsoftmax" / "scores" / "det.png").stat().st_size > 1000
    trials = (tmp_path / "data" / "eval" / "trials").read_text().splitlines()
    train_speakers = {line.split()[0] for line in (tmp_path / "data" / "train" / "spk2utt").read_text().splitlines()}
    assert not any(t.split()[0].split("-")[0] in train_speakers for t in trials)   # disjoint speaker sets
    assert (RECIPE / "downloads" / "drascula" / ".unpacked").exists()
    # Stage 8: the same trials on the reverberant / babble copy of the evaluation set, scored.
    noisy = tmp_path / "exp" / "xvector_nnet_amsoftmax" / "scores_noisy"
    assert "=== stage 8: noisy condition" in proc.stdout
    assert (tmp_path / "data" / "eval_noisy" / "trials").read_text() == "\n".join(trials) + "\n"
    assert len((noisy / "plda_scores").read_text().splitlines()) == len(trials)
    assert "plda" in (noisy / "results.txt").read_text() and "cosine" in (noisy / "results.txt").read_text()
    # ... and on a copy of the dev set made alike, with babble of the other dev speakers only, scored with the
    # back-end of the training speakers left by the dev split (fails on the old run.sh, which made no dev copy)
    data = tmp_path / "data"
    dev_utt2spk = dict(line.split() for line in (data / "dev" / "utt2spk").read_text().splitlines())
    left = {line.split()[0] for line in (data / "train_nodev" / "spk2utt").read_text().splitlines()}
    assert len(set(dev_utt2spk.values())) == 2 and left == train_speakers - set(dev_utt2spk.values())
    assert (data / "dev_noisy" / "utt2spk").read_text() == (data / "dev" / "utt2spk").read_text()
    dev_trials = (data / "dev" / "trials").read_text()
    assert (data / "dev_noisy" / "trials").read_text() == dev_trials
    assert (data / "dev_noisy" / ".done").read_text() == "speakers=2 seed=777\n"
    assert (data / "dev_noisy" / "feats.scp").is_file() and (data / "dev_noisy" / "vad.scp").is_file()
    utt2noise = [line.split() for line in (data / "dev_noisy" / "utt2noise").read_text().splitlines()]
    assert sorted(u[0] for u in utt2noise) == sorted(dev_utt2spk)
    babble = [u for u in utt2noise if u[1] == "babble"]
    assert len(babble) > 5
    for key, _, *sources in babble:
        assert all(dev_utt2spk.get(s, dev_utt2spk[key]) != dev_utt2spk[key] for s in sources), (key, sources)
    dev_noisy = tmp_path / "exp" / "xvector_nnet_amsoftmax" / "scores_dev_noisy"
    assert len((dev_noisy / "plda_scores").read_text().splitlines()) == len(dev_trials.splitlines())
    report = (dev_noisy / "results.txt").read_text()
    assert "local/report.sh --title demo (dev, noisy), tdnn, amsoftmax" in proc.stderr
    stage_8 = proc.stdout.split("=== stage 8:", 1)[1]
    assert re.search(r"score_plda_cosine.sh .*/data/train_nodev \S*/xvectors_train_nodev \S*/xvectors_dev_noisy ", stage_8)
    counts = [line.split()[1:3] for line in report.splitlines() if line.split()[:1] in (["plda"], ["cosine"])]
    targets = sum(line.endswith(" target") for line in dev_trials.splitlines())
    assert counts == [[str(targets), str(len(dev_trials.splitlines()) - targets)]] * 2, report


# ---------------------------------------------------------------- the noisy test condition (stage 8)

def test_babble_is_the_speech_plus_each_signal_at_its_snr():
    """with_babble against an independent statement: y = x + sum_b g_b s_b, g_b^2 P(s_b) 10^(snr_b/10) = P(x)."""
    noisy = load_local("make_noisy_eval")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(800) * 1000
    others = [rng.standard_normal(800) * 300, np.sin(np.arange(800) * 0.3) * 50]
    y = noisy.with_babble(x, others, [10.0], np.random.default_rng(1))   # one SNR: no draw to follow
    power = lambda s: np.mean(np.asarray(s, np.float64) ** 2)  # noqa: E731
    expected = x + sum(np.sqrt(power(x) / (power(s) * 10.0)) * s for s in others)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-2)


def test_babble_signals_are_other_speakers_looped_to_the_length():
    noisy = load_local("make_noisy_eval")
    keys, speakers = ["a1", "a2", "b1", "c1"], ["a", "a", "b", "c"]
    signals = {"a1": np.arange(5.0), "a2": np.arange(7.0), "b1": np.arange(3.0) + 10, "c1": np.arange(4.0) + 20}
    chosen, out = noisy.babble(keys, speakers, signals, "a", 11, 2, np.random.default_rng(3))
    assert len(out) == 2 and all(s.size == 11 for s in out)
    assert sorted(chosen) == ["b1", "c1"]                   # one from b, one from c: never speaker a
    for key, s in zip(chosen, out):                         # each signal is the utterance its key names
        assert tuple(s) in {tuple(np.resize(np.roll(signals[key], -i), 11)) for i in range(signals[key].size)}
    with pytest.raises(ToolError, match="only 2 utterances of other speakers"):
        noisy.babble(keys, speakers, signals, "a", 11, 3, np.random.default_rng(3))


def _tiny_eval_dir(root, rate=8000):
    (root / "wav").mkdir(parents=True)
    wav, utt2spk = [], []
    for s in range(3):
        for u in range(2):
            key = f"spk{s}-u{u}"
            sf.write(root / "wav" / f"{key}.wav", synth_speech(0.6 + 0.1 * u, rate, seed=10 * s + u, f0=100.0 + 40 * s),
                     rate, subtype="PCM_16")
            wav.append(f"{key} {root / 'wav' / key}.wav\n")
            utt2spk.append(f"{key} spk{s}\n")
    (root / "eval").mkdir()
    (root / "eval" / "wav.scp").write_text("".join(wav))
    (root / "eval" / "utt2spk").write_text("".join(utt2spk))
    (root / "eval" / "trials").write_text("spk0-u0 spk0-u1 target\nspk0-u0 spk1-u0 nontarget\n")
    return root / "eval"


def test_make_noisy_eval_writes_a_seeded_copy_of_every_utterance(tmp_path):
    """Same keys, speakers, lengths and trials; each utterance reverberated (same power as the input) or with
    babble (more power) of other speakers' utterances of the same dir, as utt2noise records; the same seed gives the
    same files, another seed others."""
    eval_dir = _tiny_eval_dir(tmp_path)
    script = str(LOCAL / "make_noisy_eval.py")
    args = ["--num-rirs", "1", "--num-babblers", "1:2", "--snrs", "5:10"]
    run([PY, script] + args + [str(eval_dir), str(tmp_path / "w1"), str(tmp_path / "n1")])
    run([PY, script] + args + [str(eval_dir), str(tmp_path / "w2"), str(tmp_path / "n2")])
    run([PY, script] + args + ["--seed", "5", str(eval_dir), str(tmp_path / "w3"), str(tmp_path / "n3")])
    for name in ("utt2spk", "trials"):
        assert (tmp_path / "n1" / name).read_text() == (eval_dir / name).read_text()
    assert (tmp_path / "n1" / "spk2utt").read_text().splitlines()[0] == "spk0 spk0-u0 spk0-u1"
    kinds, differs = set(), False
    utt2spk = dict(line.split() for line in (eval_dir / "utt2spk").read_text().splitlines())
    utt2noise = {line.split()[0]: line.split()[1:] for line in (tmp_path / "n1" / "utt2noise").read_text().splitlines()}
    assert sorted(utt2noise) == sorted(utt2spk)
    for line in (eval_dir / "wav.scp").read_text().splitlines():
        key, path = line.split()
        x, _ = sf.read(path, dtype="float64")
        y, rate = sf.read(tmp_path / "w1" / f"{key}.wav", dtype="float64")
        assert rate == 8000 and y.shape == x.shape and not np.allclose(y, x)
        np.testing.assert_array_equal(y, sf.read(tmp_path / "w2" / f"{key}.wav", dtype="float64")[0])
        differs |= not np.array_equal(y, sf.read(tmp_path / "w3" / f"{key}.wav", dtype="float64")[0])
        ratio = np.mean(y ** 2) / np.mean(x ** 2)
        kind = "reverb" if abs(ratio - 1) < 0.02 else "babble"
        kinds.add(kind)
        assert ratio > 0.98 and utt2noise[key][0] == kind, (key, ratio, utt2noise[key])
        if kind == "reverb":
            assert len(utt2noise[key]) == 2 and re.fullmatch(r"(small|medium)room-000", utt2noise[key][1])
        else:   # 1 or 2 (--num-babblers) distinct utterances of the dir, none of this utterance's speaker
            sources = utt2noise[key][1:]
            assert len(sources) in (1, 2) and len(set(sources)) == len(sources)
            assert all(utt2spk.get(s, utt2spk[key]) != utt2spk[key] for s in sources), (key, sources)
    assert differs and kinds == {"reverb", "babble"}, kinds
    assert (tmp_path / "n1" / "wav.scp").read_text().split()[1] == str(tmp_path / "w1" / "spk0-u0.wav")


def test_make_noisy_eval_refuses_mismatched_keys(tmp_path):
    eval_dir = _tiny_eval_dir(tmp_path)
    (eval_dir / "utt2spk").write_text("spk0-u0 spk0\n")
    proc = run([PY, str(LOCAL / "make_noisy_eval.py"), str(eval_dir), str(tmp_path / "w"), str(tmp_path / "n")],
               check=False)
    assert proc.returncode == 1 and "wav.scp and utt2spk have different keys" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "n" / "wav.scp").exists()


def test_run_seeds_noisy_eval_runs_stage_8_once_per_seed_and_summarises_it(tmp_path):
    """local/run_seeds.sh --noisy-eval true --dev-speakers 2 with a run.sh that writes each stage's results.txt
    (EERs of a table per seed and scores dir): every seed gets stage 8 (with --noisy-eval true and its own
    --nnet-dir) after its training, and the summary has dev, dev_noisy, eval and eval_noisy, each the numpy
    mean and sample std of its seeds. A second call reuses everything; a seed without its dev noisy results
    gets stage 8 again, alone. --split-seed S is run.sh's --seed (S: another dev split). Fails on the old
    run_seeds.sh, which had no --noisy-eval nor --split-seed."""
    recipe = tmp_path / "recipe"
    (recipe / "local").mkdir(parents=True)
    for name in ("run_seeds.sh", "mean_std.awk"):
        shutil.copy(LOCAL / name, recipe / "local" / name)
    (recipe / "utils").symlink_to(REPO / "utils")
    (recipe / "cmd.sh").write_text("")
    (recipe / "path.sh").write_text("")
    (recipe / "data" / "dev").mkdir(parents=True)
    (recipe / "data" / "dev" / ".done").write_text("speakers=2 seed=777\n")   # the split run_seeds.sh expects
    seeds = (1, 2, 7)
    rng = np.random.default_rng(0)
    eers = {(s, d): rng.uniform(10, 40, size=2).round(2)
            for s in seeds for d in ("scores", "scores_dev", "scores_noisy", "scores_dev_noisy")}
    (recipe / "eers.txt").write_text("".join(f"{s} {d} {p} {c}\n" for (s, d), (p, c) in eers.items()))
    (recipe / "run.sh").write_text(   # records its options; stages 3-6 write the clean results, stage 8 the noisy
        '#!/usr/bin/env bash\necho "$*" >> calls.txt\n'
        'while [ $# -gt 0 ]; do case $1 in --nnet-dir) dir=$2 ;; --stage) stage=$2 ;; --set) seed=${2#seed=} ;; esac; shift; done\n'
        'dirs="scores scores_dev"; [ "$stage" = 8 ] && dirs="scores_noisy scores_dev_noisy"\n'
        'for d in $dirs; do mkdir -p "$dir/$d"; awk -v s="$seed" -v d="$d" \'$1 == s && $2 == d {print "system a b EER"; '
        'print "plda 10 20", $3, "0.9 0.9 0.7"; print "cosine 10 20", $4, "0.9 0.9 0.7"}\' eers.txt > "$dir/$d/results.txt"; done\n')
    (recipe / "run.sh").chmod(0o755)
    args = ["local/run_seeds.sh", "--name", "sys", "--seeds", " ".join(map(str, seeds)), "--dev-speakers", "2",
            "--noisy-eval", "true"]
    proc = run(args, cwd=recipe)
    calls = (recipe / "calls.txt").read_text().splitlines()
    assert [(re.search(r"--stage (\d)", c).group(1), re.search(r"--nnet-dir (\S+)", c).group(1)) for c in calls] == \
        [(stage, f"exp/sys_seed{s}") for s in seeds for stage in ("3", "8")], calls
    assert all("--dev-speakers 2" in c and ("--noisy-eval true" in c) == (" --stage 8 " in c) for c in calls), calls
    lines = [line for line in proc.stdout.splitlines() if line.startswith("sys ")]
    assert [line.split()[1:3] for line in lines] == [[name, backend] for name in ("dev", "eval", "dev_noisy", "eval_noisy")
                                                     for backend in ("plda", "cosine")], proc.stdout
    for line in lines:
        name, backend = line.split()[1:3]
        values = np.array([eers[(s, {"eval": "scores", "dev": "scores_dev", "eval_noisy": "scores_noisy",
                                     "dev_noisy": "scores_dev_noisy"}[name])][int(backend == "cosine")] for s in seeds])
        assert line.endswith(f"EER {values.mean():.2f} +- {values.std(ddof=1):.2f} % over 3 seeds (per seed: "
                             + " ".join(f"{v:.2f}" for v in values) + ")"), line
    run(args, cwd=recipe)
    assert len((recipe / "calls.txt").read_text().splitlines()) == len(calls)   # all reused
    shutil.rmtree(recipe / "exp" / "sys_seed2" / "scores_dev_noisy")
    run(args, cwd=recipe)
    new = (recipe / "calls.txt").read_text().splitlines()[len(calls):]
    assert len(new) == 1 and "--stage 8 " in new[0] and "--nnet-dir exp/sys_seed2 " in new[0], new
    clean = run(args[:-2], cwd=recipe)   # without --noisy-eval: the clean sets only, no stage 8
    assert "noisy" not in clean.stdout and len((recipe / "calls.txt").read_text().splitlines()) == len(calls) + 1
    assert all(re.search(r" --seed 777( |$)", c) for c in calls), calls   # the default split, run.sh's own seed
    # --split-seed: another dev split (its data dir made with run.sh --seed 3) is run.sh's --seed, no stage 2 remade
    (recipe / "data" / "dev" / ".done").write_text("speakers=2 seed=3\n")
    run(["local/run_seeds.sh", "--name", "other", "--seeds", "1", "--dev-speakers", "2", "--split-seed", "3"], cwd=recipe)
    other = (recipe / "calls.txt").read_text().splitlines()[len(calls) + 1:]
    assert len(other) == 1 and " --stage 3 " in other[0] and re.search(r" --seed 3( |$)", other[0]), other


def test_stage_8_with_a_dev_split_needs_that_split(tmp_path):
    """run.sh --dev-speakers N --noisy-eval true --stage 8 needs data/dev (stage 2) of the same split: a missing dev
    set is named with its stage, one of another --dev-speakers is refused before any noisy copy is made."""
    data, nnet = tmp_path / "data", tmp_path / "nnet"
    for path in (data / "eval" / "wav.scp", data / "eval" / "trials", nnet / "config.yaml",
                 nnet / "xvectors_train_nodev" / "xvector.scp"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    args = ["--stage", "8", "--noisy-eval", "true", "--dev-speakers", "3", "--nnet-dir", str(nnet)]
    proc = recipe(args, tmp_path)
    assert proc.returncode == 1 and "data/dev/wav.scp; it is made by stage 2" in proc.stderr, proc.stderr
    (data / "dev").mkdir()
    for name, text in (("wav.scp", ""), ("trials", ""), (".done", "speakers=2 seed=777\n")):
        (data / "dev" / name).write_text(text)
    proc = recipe(args, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "data/dev was made with speakers=2 seed=777, not speakers=3 seed=777; rerun stage 2" in proc.stderr
    assert not (data / "dev_noisy").exists() and not (data / "eval_noisy").exists()


def test_stage_3_refuses_a_speed_perturbed_training_set_made_for_other_options(tmp_path):
    """run.sh --speed-perturb --stage 3 trains on data/train_sp_fbank_no_sil only when stage 2 made it with these
    factors, this dev split and seed (its .done, require_marker): missing, it names stage 2; made with other
    factors, it says which, and nothing is trained."""
    args = ["--stage", "3", "--stop-stage", "3", "--speed-perturb", "0.9 1.1"]
    proc = recipe(args, tmp_path)
    assert proc.returncode == 1 and "data/train_sp_fbank_no_sil/.done; it is made by stage 2" in proc.stderr, proc.stderr
    done = tmp_path / "data" / "train_sp_fbank_no_sil" / ".done"
    done.parent.mkdir(parents=True)
    done.write_text("factors=0.9 dev_speakers=0 seed=777\n")
    proc = recipe(args, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert ("train_sp_fbank_no_sil was made with factors=0.9 dev_speakers=0 seed=777, not factors=0.9 1.1 "
            "dev_speakers=0 seed=777; rerun stage 2") in proc.stderr, proc.stderr
    assert not (tmp_path / "exp").exists() or not any((tmp_path / "exp").rglob("final"))


def test_run_sh_noisy_eval_option_is_checked(tmp_path):
    proc = run(["./run.sh", "--noisy-eval", "yes", "--data", str(tmp_path / "d"), "--exp", str(tmp_path / "e")],
               cwd=RECIPE, check=False)
    assert proc.returncode == 1 and "expected \"true\" or \"false\": --noisy-eval 'yes'" in proc.stderr


# ---------------------------------------------------------------- an imported model through stages 4-7

def _demo_like_data(data, rate=8000):
    """What the demo's stage 0 leaves: data/train (6 speakers of 6 utterances: LDA needs more utterances than
    the 32 dimensions of the fixture's embeddings) and data/eval (4 speakers of 4 utterances), 0.8-1.3 s at
    8 kHz, a voice (f0) per speaker, each with wav.scp, utt2spk, spk2utt, utt2lang; eval trials by the demo's
    local/make_trials.py."""
    wav_dir = data / "wav"
    wav_dir.mkdir(parents=True)
    for part, first, speakers, utts in (("train", 0, 6, 6), ("eval", 6, 4, 4)):
        (data / part).mkdir()
        wav, utt2spk, spk2utt = [], [], []
        for s in range(first, first + speakers):
            keys = [f"spk{s}-u{u}" for u in range(utts)]
            for u, key in enumerate(keys):
                sf.write(wav_dir / f"{key}.wav", synth_speech(0.8 + 0.1 * u, rate, seed=10 * s + u, f0=95.0 + 17 * s),
                         rate, subtype="PCM_16")
                wav.append(f"{key} {wav_dir / key}.wav\n")
                utt2spk.append(f"{key} spk{s}\n")
            spk2utt.append(f"spk{s} {' '.join(keys)}\n")
        (data / part / "wav.scp").write_text("".join(wav))
        (data / part / "utt2spk").write_text("".join(utt2spk))
        (data / part / "utt2lang").write_text("".join(line.split()[0] + " en\n" for line in utt2spk))
        (data / part / "spk2utt").write_text("".join(spk2utt))
    run([PY, str(LOCAL / "make_trials.py"), str(data / "eval"), str(data / "eval" / "trials")])


def _import_md_block(title):
    text = (REPO / "docs" / "import.md").read_text(encoding="utf-8")
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```bash\n")[1:]
    assert len(blocks) == 1, f"docs/import.md '{title}': expected one bash block"
    return blocks[0].split("```", 1)[0]


def _demo_copy(root):
    """A copy of the checkout (links to its steps/, utils/, ...) whose demo recipe has a tiny demo-like corpus and
    runs one job at a time (run.sh's default --nj 2 only adds process start-ups on so little data)."""
    (root / "egs" / "demo").mkdir(parents=True)
    for entry in ("steps", "utils", "tests", "tools", "egs/voxceleb"):   # the demo's local/ links into voxceleb's
        (root / entry).symlink_to(REPO / entry)
    shutil.copytree(RECIPE, root / "egs" / "demo" / "v2", symlinks=True,
                    ignore=shutil.ignore_patterns("data", "exp", "mfcc", "fbank", "downloads", "*.log"))
    recipe_dir = root / "egs" / "demo" / "v2"
    run_sh = recipe_dir / "run.sh"
    text = run_sh.read_text()
    assert "\nnj=2 " in text
    run_sh.write_text(text.replace("\nnj=2 ", "\nnj=1 ", 1))
    _demo_like_data(recipe_dir / "data")
    return recipe_dir


DEMO_ENV = {"TFSPK_VENV": str(Path(PY).parent.parent), "PATH": f"{Path(PY).parent}:{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def imported_in_demo(tmp_path_factory):
    """docs/import.md's block, as written, in a demo copy (_demo_copy): the SpeechBrain fixture imported into the
    recipe's exp/speechbrain_ecapa and run through stages 4-7. Returns (root, the block's output)."""
    root = tmp_path_factory.mktemp("imported_demo") / "tfspk"
    _demo_copy(root)
    proc = run(["bash", "-e", "-o", "pipefail", "-c", _import_md_block("An imported model in the demo recipe")],
               cwd=root, env=DEMO_ENV, timeout=600)
    return root, proc.stdout + proc.stderr


@pytest.mark.slow
def test_an_imported_model_runs_through_stages_4_to_7_as_docs_import_md_says(imported_in_demo, monkeypatch):
    """docs/import.md's block, as written, in a copy of the checkout whose demo recipe has a tiny demo-like corpus
    (8 kHz): the SpeechBrain fixture (speechbrain_fbank at 16 kHz, utterance-mean CMN, no VAD) gets its own features
    from the upsampled audio, and stages 4-7 extract, score, report and calibrate. The x-vectors equal the network
    applied to the features of the audio resampled by scipy (an independent resampler) and mean-normalised."""
    root, out = imported_in_demo
    recipe_dir = root / "egs" / "demo" / "v2"
    for stage in (4, 5, 6, 7):
        assert f"=== stage {stage}:" in out
    assert "=== stage 3:" not in out and "has a front end of its own" in out
    exp = recipe_dir / "exp" / "speechbrain_ecapa"
    data = recipe_dir / "data"
    # the model's front end, written as Kaldi config files, at its own rate; the audio resampled to it
    conf = (data / "eval_speechbrain_ecapa" / "conf" / "features.conf").read_text().splitlines()
    assert "--sample-frequency=16000.0" in conf and "--n-fft=400" in conf
    assert "resampl" in (recipe_dir / "exp" / "make_front_end_feats" /
                         "make_speechbrain_fbank_eval_speechbrain_ecapa.1.log").read_text()
    assert not (data / "eval_speechbrain_ecapa" / "vad.scp").exists()
    results = (exp / "scores" / "results.txt").read_text()
    assert "plda" in results and "cosine" in results
    assert (exp / "scores" / "calibration" / "results.txt").is_file()
    trials = (data / "eval" / "trials").read_text().splitlines()
    assert len((exp / "scores" / "plda_scores").read_text().splitlines()) == len(trials)

    from scipy.signal import resample_poly
    from tfspk.features.frontend import read_front_end
    from tfspk.io.ark import read_rspecifier
    from tfspk.nnet import load_trained
    monkeypatch.chdir(recipe_dir)   # the scp holds paths relative to the recipe
    got = dict(read_rspecifier(f"scp:{exp}/xvectors_eval/xvector.scp"))
    assert sorted(got) == sorted(line.split()[0] for line in (data / "eval" / "utt2spk").read_text().splitlines())
    model, _, _ = load_trained(str(exp))
    features = read_front_end(str(exp)).extractor(dither=False)
    for key in ("spk6-u0", "spk9-u3"):
        samples, rate = sf.read(data / "wav" / f"{key}.wav", dtype="int16")
        assert rate == 8000
        feats = features(resample_poly(samples.astype(np.float64), 2, 1).astype(np.float32), 16000)
        want = model((feats - feats.mean(axis=0))[None])["embedding_a"].numpy()[0]
        cosine = float(got[key] @ want / np.linalg.norm(got[key]) / np.linalg.norm(want))
        assert cosine > 0.999, (key, cosine)


def _init_from_block():
    text = (REPO / "docs" / "import.md").read_text(encoding="utf-8")
    section = text.split("### Fine-tuning an imported model\n", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```bash\n")[1:]
    assert len(blocks) == 1, "docs/import.md 'Fine-tuning an imported model': expected one bash block"
    return blocks[0].split("```", 1)[0]


@pytest.mark.slow
def test_run_sh_init_from_an_imported_model_fine_tunes_it_on_its_own_features(imported_in_demo):
    """docs/import.md's fine-tuning block (after the import of imported_in_demo), one epoch of 5 steps, on the
    tiny 8 kHz corpus: stage 1 computes the training features of the SpeechBrain model's front end (80-dim
    speechbrain_fbank from the audio upsampled to 16 kHz, no VAD), stage 2 mean-normalises each utterance and keeps
    every frame, stage 3 fine-tunes the imported weights with a head from the new speakers' mean embeddings and
    records the source's front end, and stage 4 extracts with it, from the fine-tuned network's own features (stages
    5-7 read x-vectors only, whichever network made them: imported_in_demo runs them in the same recipe copy, on the
    same data and trials). Fails on the old run.sh, which
    gave stage 3 the recipe's 8 kHz MFCCs (here too short for the crops; on the demo's data 'has feat_dim 80, this
    experiment's features have 30')."""
    root, _ = imported_in_demo
    recipe_dir = root / "egs" / "demo" / "v2"
    data, exp = recipe_dir / "data", recipe_dir / "exp"
    block = _init_from_block()
    assert block.count("./run.sh --init-from exp/speechbrain_ecapa --stage 1") == 1
    block = block.replace("./run.sh --init-from exp/speechbrain_ecapa --stage 1",
                          "./run.sh --init-from exp/speechbrain_ecapa --stage 1 --stop-stage 4 "
                          "--set schedule.num_epochs=1 --set schedule.steps_per_epoch=5 "
                          "--set data.speakers_per_batch=6 --set finetune.head_init_steps=2 --set log_every=1 "
                          "--set valid.num_utts=0")
    proc = run(["bash", "-e", "-o", "pipefail", "-c", block], cwd=root, env=DEMO_ENV, timeout=600)
    out = proc.stdout + proc.stderr
    nnet = exp / "finetune_speechbrain_ecapa_aamsoftmax"
    assert "exp/speechbrain_ecapa has a front end of its own" in out
    # the training features: the model's front end at its rate, from the audio (no MFCC, no VAD of the recipe)
    conf = (data / "train_speechbrain_ecapa" / "conf" / "features.conf").read_text().splitlines()
    assert "--sample-frequency=16000.0" in conf and "--num-mel-bins=80" in conf
    assert not (data / "train_speechbrain_ecapa" / "vad.scp").exists() and not (data / "train" / "feats.scp").exists()
    from tfspk.io.ark import read_rspecifier
    train_dir = data / "train_speechbrain_ecapa_no_sil"
    with contextlib.chdir(recipe_dir):   # the scp hold paths relative to the recipe
        raw = dict(read_rspecifier(f"scp:{data / 'train_speechbrain_ecapa' / 'feats.scp'}"))
        prepared = dict(read_rspecifier(f"scp:{train_dir / 'feats.scp'}"))
    assert sorted(prepared) == sorted(raw) and len(raw) == 36
    for key in ("spk0-u0", "spk5-u5"):
        samples, rate = sf.read(data / "wav" / f"{key}.wav")
        # SpeechBrain's Fbank at 16 kHz: centred 10 ms frames, 1 + samples // 160 of them
        assert rate == 8000 and raw[key].shape == (1 + len(samples) * 2 // 160, 80)
        # stage 2: utterance-mean CMN (the front end's crop at inference), every frame kept (no VAD)
        want = raw[key] - raw[key].mean(axis=0)
        np.testing.assert_allclose(prepared[key], want, atol=0.01)   # compressed archives
    # stage 3: fine-tuned from the imported weights, a new head from the mean embeddings, the source's front end
    log = "".join(path.read_text() for path in nnet.rglob("*.log")) + out
    assert re.search(r"initialised the network from \S*speechbrain_ecapa\S*; new head of 6 classes from the mean "
                     r"embeddings", log), log[-3000:]
    assert (nnet / "features.yaml").read_text().split("format:", 1)[1] == \
        (exp / "speechbrain_ecapa" / "features.yaml").read_text().split("format:", 1)[1]
    # stage 4: the fine-tuned network's own features from the audio, embeddings that differ from the source's
    for stage in (1, 2, 3, 4):
        assert f"=== stage {stage}:" in out
    assert "=== stage 5:" not in out
    assert (data / "eval_finetune_speechbrain_ecapa_aamsoftmax" / "feats.scp").is_file()
    with contextlib.chdir(recipe_dir):
        tuned = dict(read_rspecifier(f"scp:{nnet / 'xvectors_eval' / 'xvector.scp'}"))
        source = dict(read_rspecifier(f"scp:{exp / 'speechbrain_ecapa' / 'xvectors_eval' / 'xvector.scp'}"))
    assert sorted(tuned) == sorted(source)
    assert not np.allclose(tuned["spk6-u0"], source["spk6-u0"], atol=1e-4)   # the weights moved
