"""tfspk-perturb-data-dir-speed and utils/data/perturb_data_dir_speed.sh (Kaldi's speed-perturbed data dir copy),
and the demo recipe's --speed-perturb option.

The expected audio is stated independently of the tool: the rational ratio of each factor written out by hand
(``sox speed f`` plays ``1/f`` as many samples at the same rate), ``scipy.signal.resample_poly`` in float64 on
the source's int16 samples, rounded to int16.
"""
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from conftest import REPO, run, run_tool_here, synth_speech

SCRIPT = REPO / "utils" / "data" / "perturb_data_dir_speed.sh"
RATE = 8000
# factor -> (up, down) with up / down = 1 / factor, by hand
RATIOS = {"0.9": (10, 9), "1.1": (10, 11), "0.5": (2, 1), "1.5": (2, 3), "2": (1, 2)}
SPEAKERS = {"bob": 2, "alice": 3, "carl": 1}
LENGTHS = [8000, 4001, 12345, 999, 6000, 7777]   # odd ones too: the ceil of n * up / down


def lines(path):
    return Path(path).read_text().splitlines()


def table(path):
    return dict(line.split(None, 1) if " " in line else (line, "") for line in lines(path))


def c_sorted(keys):
    return sorted(keys, key=lambda k: k.encode())


def make_source(root, pipe=True):
    """A data dir of 6 utterances of 3 speakers at 8 kHz, keys out of speaker order on purpose ("bob" < "alice"
    by utterance name is not the speaker order): wav.scp (one entry a `cat ... |` pipe), utt2spk, spk2utt,
    utt2lang, spk2lang, spk2gender, text, utt2dur, and tables of the unperturbed audio (feats.scp, vad.scp,
    utt2num_frames, cmvn.scp) that must not be carried. Returns (dir, {utt: int16 samples})."""
    src = root / "src"
    wav = root / "wav"
    wav.mkdir(parents=True)
    src.mkdir()
    audio, utt2spk = {}, {}
    n = 0
    for spk, count in SPEAKERS.items():
        for i in range(count):
            utt = f"{spk}-u{i}"
            samples = synth_speech(LENGTHS[n] / RATE, RATE, seed=n, f0=100.0 + 20 * n)[:LENGTHS[n]]
            if n == 0:   # a full-scale square wave: resampling overshoots (Gibbs) and must clip, not wrap
                square = np.sin(2 * np.pi * 200.0 * np.arange(LENGTHS[n]) / RATE) >= 0
                samples = np.where(square, 32767, -32767).astype(np.int16)
            assert len(samples) == LENGTHS[n]
            sf.write(wav / f"{utt}.wav", samples, RATE, subtype="PCM_16")
            audio[utt], utt2spk[utt] = samples, spk
            n += 1
    keys = c_sorted(utt2spk)
    scp = [f"{u} cat {wav / u}.wav |" if pipe and u == "alice-u1" else f"{u} {wav / u}.wav" for u in keys]
    (src / "wav.scp").write_text("".join(s + "\n" for s in scp))
    (src / "utt2spk").write_text("".join(f"{u} {utt2spk[u]}\n" for u in keys))
    spk2utt = {}
    for u in keys:
        spk2utt.setdefault(utt2spk[u], []).append(u)
    (src / "spk2utt").write_text("".join(f"{s} {' '.join(spk2utt[s])}\n" for s in c_sorted(spk2utt)))
    (src / "utt2lang").write_text("".join(f"{u} {'fr' if utt2spk[u] == 'carl' else 'en'}\n" for u in keys))
    (src / "text").write_text("".join(f"{u} words of {u}\n" for u in keys))
    (src / "utt2dur").write_text("".join(f"{u} {len(audio[u]) / RATE}\n" for u in keys))
    (src / "spk2lang").write_text("alice en\nbob en,es\ncarl fr\n")
    (src / "spk2gender").write_text("alice f\nbob m\ncarl m\n")
    for name in ("feats.scp", "vad.scp", "utt2num_frames"):
        (src / name).write_text("".join(f"{u} x\n" for u in keys))
    (src / "cmvn.scp").write_text("alice x\nbob x\ncarl x\n")
    return src, audio


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_source(tmp_path_factory.mktemp("sp"))


@pytest.fixture(scope="module")
def perturbed(source, tmp_path_factory):
    """{factor: (destdir, tool output)} of the tool run on the source for each factor of RATIOS."""
    src, _ = source
    out = tmp_path_factory.mktemp("sp_out")
    result = {}
    for factor in RATIOS:
        proc = run_tool_here(["tfspk-perturb-data-dir-speed", "--progress-every", "2", factor, src, out / factor])
        result[factor] = (out / factor, proc.stderr)
    return result


@pytest.mark.parametrize("factor", sorted(RATIOS))
def test_audio_is_resample_poly_of_the_source_at_the_rational_ratio(source, perturbed, factor):
    src, audio = source
    dest, _ = perturbed[factor]
    up, down = RATIOS[factor]
    scp = table(dest / "wav.scp")
    assert sorted(scp) == sorted(f"sp{factor}-{u}" for u in audio)
    for utt, samples in audio.items():
        path = scp[f"sp{factor}-{utt}"]
        assert os.path.isabs(path) and Path(path).parent == dest / "wav"
        info = sf.info(path)
        assert (info.samplerate, info.subtype, info.channels) == (RATE, "PCM_16", 1)
        got = sf.read(path, dtype="int16")[0].astype(np.int64)
        assert len(got) == math.ceil(len(samples) * up / down) == -(-len(samples) * up // down)
        want = np.clip(np.round(resample_poly(samples.astype(np.float64), up, down)), -32768, 32767)
        # float32 arithmetic in the tool against float64 here: at most one int16 step apart after rounding
        assert np.max(np.abs(got - want)) <= 1, utt
        assert np.mean(got == want) > 0.99


def test_the_first_utterance_is_clipped_not_wrapped_and_the_clipping_is_reported(source, perturbed):
    _, audio = source
    dest, stderr = perturbed["0.9"]
    got = sf.read(table(dest / "wav.scp")["sp0.9-bob-u0"], dtype="int16")[0]
    assert resample_poly(audio["bob-u0"].astype(np.float64), 10, 9).max() > 32767   # the case exists
    assert got.max() == 32767
    assert "clipped to the 16-bit range" in stderr


@pytest.mark.parametrize("factor", ["0.9", "1.1"])
def test_ids_are_prefixed_sorted_and_spk2utt_is_utt2spk_inverted(source, perturbed, factor):
    src, _ = source
    dest, _ = perturbed[factor]
    p = f"sp{factor}-"
    for name in ("wav.scp", "utt2spk", "spk2utt", "utt2dur", "utt2lang", "text", "spk2lang", "spk2gender",
                 "utt2uniq"):
        keys = [line.split()[0] for line in lines(dest / name)]
        assert keys == c_sorted(keys) and len(set(keys)) == len(keys), name
        assert all(k.startswith(p) for k in keys), name
    src_utt2spk = table(src / "utt2spk")
    utt2spk = table(dest / "utt2spk")
    assert utt2spk == {p + u: p + s for u, s in src_utt2spk.items()}
    inverted = {}
    for u in c_sorted(utt2spk):
        inverted.setdefault(utt2spk[u], []).append(u)
    assert {s: v.split() for s, v in table(dest / "spk2utt").items()} == inverted
    # Kaldi: sort -k2 utt2spk equals utt2spk (speaker ids prefixes of utterance ids, both prefixed alike)
    rows = [f"{u} {s}" for u, s in utt2spk.items()]
    assert sorted(rows, key=lambda r: (r.split()[1].encode(), r.encode())) == rows
    assert table(dest / "utt2uniq") == {p + u: u for u in src_utt2spk}


def test_labels_are_carried_and_tables_of_the_old_audio_are_not(source, perturbed):
    src, _ = source
    dest, stderr = perturbed["1.1"]
    for name in ("utt2lang", "text", "spk2lang", "spk2gender"):
        assert table(dest / name) == {"sp1.1-" + k: v for k, v in table(src / name).items()}, name
    for name in ("feats.scp", "vad.scp", "utt2num_frames", "cmvn.scp", "segments", "frame_shift"):
        assert not (dest / name).exists(), name
    assert "not carried" in stderr and "feats.scp" in stderr
    assert "6/6 utterances" in stderr and "2/6 utterances" in stderr   # progress every 2 utterances


@pytest.mark.parametrize("factor", sorted(RATIOS))
def test_utt2dur_is_the_new_length(source, perturbed, factor):
    src, audio = source
    dest, _ = perturbed[factor]
    up, down = RATIOS[factor]
    durations = table(dest / "utt2dur")
    source_durations = table(src / "utt2dur")
    for utt, samples in audio.items():
        got = float(durations[f"sp{factor}-{utt}"])
        assert got == pytest.approx(math.ceil(len(samples) * up / down) / RATE, rel=1e-5)
        # the source's duration scaled by 1/factor, up to the last sample's rounding
        assert abs(got - float(source_durations[utt]) / float(factor)) <= 1.0 / RATE


def test_utt2uniq_of_the_source_is_followed_and_an_external_wav_dir_is_used(source, tmp_path):
    src, audio = source
    copy = tmp_path / "src"
    copy.mkdir()
    for name in ("wav.scp", "utt2spk", "spk2utt"):
        (copy / name).write_text((src / name).read_text())
    (copy / "utt2uniq").write_text("".join(f"{u} orig-{u}\n" for u in c_sorted(audio)))
    run_tool_here(["tfspk-perturb-data-dir-speed", "--wav-dir", tmp_path / "audio", "0.9", copy, tmp_path / "out"])
    assert table(tmp_path / "out" / "utt2uniq") == {f"sp0.9-{u}": f"orig-{u}" for u in audio}
    assert not (tmp_path / "out" / "wav").exists()
    assert sorted(os.listdir(tmp_path / "audio")) == sorted(f"sp0.9-{u}.wav" for u in audio)
    assert {Path(v).parent for v in table(tmp_path / "out" / "wav.scp").values()} == {tmp_path / "audio"}


def test_a_second_run_replaces_the_destination(source, tmp_path):
    src, audio = source
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "feats.scp").write_text("old x\n")
    run_tool_here(["tfspk-perturb-data-dir-speed", "1.1", src, dest])
    assert not (dest / "feats.scp").exists() and len(lines(dest / "wav.scp")) == len(audio)
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []


# ---------------------------------------------------------------- bad input: one ToolError, nothing complete-looking

def _bad_source(tmp_path, source, change):
    src, audio = source
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("wav.scp", "utt2spk", "spk2utt", "utt2lang"):
        (bad / name).write_text((src / name).read_text())
    change(bad, audio)
    return bad


def _corrupt_one(bad, audio):
    broken = bad / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav file" * 10)
    text = (bad / "wav.scp").read_text().splitlines()
    text[3] = f"{text[3].split()[0]} {broken}"   # the fourth utterance: three are written before it fails
    (bad / "wav.scp").write_text("\n".join(text) + "\n")


BAD_SOURCES = [
    ("missing wav.scp", lambda d, a: (d / "wav.scp").unlink(), "wav.scp"),
    ("empty wav.scp", lambda d, a: (d / "wav.scp").write_text(""), "wav.scp is empty"),
    ("segments", lambda d, a: (d / "segments").write_text("x r 0 1\n"), "segments are not supported"),
    ("unreadable audio", _corrupt_one, "'bob-u0'"),
    ("missing audio", lambda d, a: (d / "wav.scp").write_text(
        (d / "wav.scp").read_text().replace("carl-u0 ", "carl-u0 /no/such")),
     "'carl-u0'"),
    ("failing pipe", lambda d, a: (d / "wav.scp").write_text((d / "wav.scp").read_text().replace(
        "alice-u1 cat ", "alice-u1 false && cat ")), "alice-u1"),
    ("wav.scp and utt2spk differ", lambda d, a: (d / "utt2spk").write_text("".join(
        line + "\n" for line in lines(d / "utt2spk") if not line.startswith("carl"))), "'carl-u0' is in wav.scp only"),
    ("side table with an unknown key", lambda d, a: (d / "utt2lang").write_text(
        (d / "utt2lang").read_text() + "zed-u0 en\n"), "utt2lang: 1 utterance ids not in utt2spk (first: 'zed-u0')"),
    ("unsorted side table", lambda d, a: (d / "utt2lang").write_text(
        "".join(reversed((d / "utt2lang").read_text().splitlines(True)))), "utt2lang:2: key"),
]


@pytest.mark.parametrize("what, change, message", BAD_SOURCES, ids=[b[0] for b in BAD_SOURCES])
def test_bad_input_is_one_error_naming_it_and_leaves_no_destination(source, tmp_path, what, change, message):
    bad = _bad_source(tmp_path, source, change)
    dest = tmp_path / "out"
    proc = run_tool_here(["tfspk-perturb-data-dir-speed", "0.9", bad, dest], check=False)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not dest.exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []


@pytest.mark.parametrize("factor, message", [
    ("fast", "must be a number, got 'fast'"), ("0.4", "in [0.5, 2], got '0.4'"), ("2.5", "in [0.5, 2], got '2.5'"),
    ("nan", "in [0.5, 2], got 'nan'"), ("inf", "in [0.5, 2], got 'inf'"), ("-1", "in [0.5, 2]"),
    ("1", "leaves the audio as it is"), ("1.000", "leaves the audio as it is"),
])
def test_bad_factors_are_refused(source, tmp_path, factor, message):
    src, _ = source
    proc = run_tool_here(["tfspk-perturb-data-dir-speed", "--", factor, src, tmp_path / "out"], check=False)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_destination_equal_to_or_containing_the_source_is_refused(source, tmp_path):
    src, _ = source
    proc = run_tool_here(["tfspk-perturb-data-dir-speed", "0.9", src, src], check=False)
    assert proc.returncode == 1 and "same directory" in proc.stderr
    proc = run_tool_here(["tfspk-perturb-data-dir-speed", "0.9", src, f"{src}/../src/."], check=False)
    assert proc.returncode == 1 and "same directory" in proc.stderr
    proc = run_tool_here(["tfspk-perturb-data-dir-speed", "0.9", src, src.parent], check=False)
    assert proc.returncode == 1 and "contains the source" in proc.stderr
    assert (src / "wav.scp").exists()


def test_an_interrupted_run_leaves_no_complete_looking_destination(source, tmp_path, monkeypatch):
    """A failure after some audio is written (here: the disk "fills up" at the third file) leaves neither the
    destination nor the temporary dir."""
    from tfspk.data import perturb_data_dir
    from tfspk.errors import ToolError
    src, _ = source
    written = []

    def progress(done, total):
        written.append(done)
        if done == 3:
            raise ToolError("no space left (simulated)")

    with pytest.raises(ToolError, match="simulated"):
        perturb_data_dir.perturb_data_dir_speed(src, tmp_path / "out", 0.9, progress=progress)
    assert written == [1, 2, 3]
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- the script: Kaldi's interface

def test_script_writes_the_copy_and_echoes_its_command_line(source, tmp_path):
    src, audio = source
    proc = run([str(SCRIPT), "--wav-dir", str(tmp_path / "w"), "0.9", str(src), str(tmp_path / "out")])
    assert proc.stdout.splitlines()[0] == f"{SCRIPT} --wav-dir {tmp_path / 'w'} 0.9 {src} {tmp_path / 'out'}"
    assert len(lines(tmp_path / "out" / "wav.scp")) == len(audio) == len(os.listdir(tmp_path / "w"))


@pytest.mark.parametrize("args, message", [
    (["0.9"], "Usage:"),
    (["0.9", "{src}", "{out}", "extra"], "Usage:"),
    (["0.9", "{tmp}/nowhere", "{out}"], "no such directory"),
    (["3", "{src}", "{out}"], "in [0.5, 2], got '3'"),
    (["1", "{src}", "{out}"], "leaves the audio as it is"),
    (["0.9", "{src}", "{src}"], "same directory"),
])
def test_script_errors_exit_non_zero(source, tmp_path, args, message):
    src, _ = source
    argv = [a.format(src=src, out=tmp_path / "out", tmp=tmp_path) for a in args]
    proc = subprocess.run([str(SCRIPT)] + argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the demo recipe's --speed-perturb

RECIPE = REPO / "egs" / "demo" / "v2"
COMBINE = RECIPE / "local" / "combine_speed_perturbed.sh"


def fake_prepared_dir(path, speakers, utts=2):
    """A prepared training-examples dir as far as combining looks at it (tables only)."""
    path.mkdir(parents=True)
    rows = sorted((f"{s}-u{i}", s) for s in speakers for i in range(utts))
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in rows))
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(u for u, t in rows if t == s)}\n" for s in c_sorted(speakers)))
    (path / "feats.scp").write_text("".join(f"{u} {path}/feats.ark:{9 + 100 * i}\n" for i, (u, _) in enumerate(rows)))
    (path / "utt2num_frames").write_text("".join(f"{u} {50 + i}\n" for i, (u, _) in enumerate(rows)))
    return path


def speakers_of(path):
    return [line.split()[0] for line in lines(path / "spk2utt")]


def test_combined_training_set_has_no_dev_speaker_in_any_form(tmp_path):
    """The dev speakers (c, d) are out of the unperturbed training dir; their copies sp0.9-c, sp1.1-d, ... must go
    too, and nothing else (a speaker whose id merely contains a dev id, 'dd', stays)."""
    dev = tmp_path / "dev_speakers.txt"
    dev.write_text("c\nd\n")
    train = fake_prepared_dir(tmp_path / "train_nodev", ["a", "b", "dd"])
    copies = [fake_prepared_dir(tmp_path / f"train_sp{f}", [f"sp{f}-{s}" for s in ("a", "b", "c", "d", "dd")])
              for f in ("0.9", "1.1")]
    dest = tmp_path / "train_nodev_sp"
    proc = run([str(COMBINE), "--dev-speakers", str(dev), str(dest), str(train)] + [str(c) for c in copies],
               cwd=RECIPE)
    expected = ["a", "b", "dd"] + [f"sp{f}-{s}" for f in ("0.9", "1.1") for s in ("a", "b", "dd")]
    assert speakers_of(dest) == c_sorted(expected)
    bases = {s.split("-", 1)[1] if s.startswith("sp") else s for s in speakers_of(dest)}
    assert not bases & {"c", "d"}
    assert "2 copies of dev speakers left out" in proc.stdout
    frames = table(dest / "utt2num_frames")
    assert sorted(frames) == sorted(table(dest / "utt2spk")) == sorted(table(dest / "feats.scp"))
    assert frames["sp0.9-dd-u1"] == table(copies[0] / "utt2num_frames")["sp0.9-dd-u1"]
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []

    # without a dev split every copy is combined
    proc = run([str(COMBINE), str(tmp_path / "all"), str(train)] + [str(c) for c in copies], cwd=RECIPE)
    assert len(speakers_of(tmp_path / "all")) == 3 + 2 * 5


@pytest.mark.parametrize("case, message", [
    ("dev speaker in train", "has the dev speaker 'c'"),
    ("unprefixed copy", "without a speed prefix"),
    ("missing utt2num_frames", "no such file"),
])
def test_combining_refuses_inputs_that_would_leak_or_lack(tmp_path, case, message):
    dev = tmp_path / "dev_speakers.txt"
    dev.write_text("c\n")
    train = fake_prepared_dir(tmp_path / "train", ["a", "c"] if case == "dev speaker in train" else ["a"])
    copy = fake_prepared_dir(tmp_path / "copy", ["a", "c"] if case == "unprefixed copy" else ["sp0.9-a", "sp0.9-c"])
    if case == "missing utt2num_frames":
        (copy / "utt2num_frames").unlink()
    proc = run([str(COMBINE), "--dev-speakers", str(dev), str(tmp_path / "out"), str(train), str(copy)],
               cwd=RECIPE, check=False)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--speed-perturb", "0.9 fast"], "'fast' is not a speed factor"),
    (["--speed-perturb", "1"], "'1' is not a speed factor"),
    (["--speed-perturb", "2.5"], "'2.5' is not a speed factor"),
    (["--speed-perturb", "0.9 0.90"], "0.9 is given twice"),
    (["--speed-perturb", "0.9", "--aug", "online"], "perturbs the speed on the fly"),
    (["--speed-perturb", "0.9", "--stage", "3"], "train_sp_fbank_no_sil/.done; it is made by stage 2"),
])
def test_run_sh_speed_perturb_option_is_checked(tmp_path, args, message):
    proc = run(["./run.sh", "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp")] + args, cwd=RECIPE,
               check=False)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
