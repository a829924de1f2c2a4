"""From an exported model to a decision: input scale and sample rate of the Embedder and tfspk-embed, the
recipe's back-end carried by the export (vs egs/demo/v2/local/score_plda_cosine.sh), calibration, the
default runtime, enrolment and identification (vs Kaldi's ivector-mean + ivector-plda-scoring --num-utts)."""
import json
import math

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, run, run_tool_here, synth_speech
from test_export import MFCC_CONF, VAD_CONF, _cosine, _make_exp
from tfspk.errors import ToolError
from tfspk.io.ark import read_rspecifier, write_archive

RATE = 16000


# ------------------------------------------------------------------------------------------ input scale
def test_int16_scale_detects_float_int16_and_wider_integers():
    from tfspk.export.embedder import int16_scale
    x = synth_speech(0.5, RATE, seed=1)
    as_int16, taken = int16_scale(x)
    assert taken.startswith("int16") and as_int16.dtype == np.float32
    np.testing.assert_array_equal(as_int16, x.astype(np.float32))
    unit = x / 32768.0                                    # soundfile / torchaudio / librosa convention
    scaled, taken = int16_scale(unit)
    assert taken == "float in [-1, 1]"
    np.testing.assert_allclose(scaled, x, atol=1e-3)
    scaled, taken = int16_scale(x.astype(np.float32))     # int16-scaled float (Kaldi's reading)
    assert taken == "int16"
    np.testing.assert_array_equal(scaled, x)
    wide, _ = int16_scale(x.astype(np.int32) * 65536)     # 32-bit PCM
    np.testing.assert_array_equal(wide, x)
    np.testing.assert_allclose(int16_scale(unit, scale=2.0)[0], unit * 2.0, rtol=1e-6)
    np.testing.assert_allclose(int16_scale(unit, scale="float")[0], x, atol=1e-3)
    # an int16-scale float signal that happens to be quiet would be misread by auto; the explicit scale keeps it
    quiet = np.full(100, 0.5, np.float32)
    assert int16_scale(quiet, scale="int16")[0].max() == 0.5 and int16_scale(quiet)[0].max() == 16384


def test_int16_scale_refuses_nonfinite_and_undecidable_input():
    from tfspk.export.embedder import int16_scale
    x = synth_speech(0.2, RATE).astype(np.float32)
    x[7] = np.nan
    x[9] = np.inf
    with pytest.raises(ToolError, match="'u': 2 samples are NaN or infinite \\(the first is sample 7\\)"):
        int16_scale(x, label="'u'")
    with pytest.raises(ToolError, match="peak 1e\\+06 is beyond both \\[-1, 1\\] and the int16 range; give scale="):
        int16_scale(np.array([0.0, 1e6], np.float32))
    with pytest.raises(ToolError, match="scale must be one of auto, int16, float"):
        int16_scale(x[:5], scale="pcm")
    with pytest.raises(ToolError, match="positive factor"):
        int16_scale(x[:5], scale=-1.0)


# ------------------------------------------------------------------------------------------ exports
MFCC_8K = MFCC_CONF.replace("--sample-frequency=16000", "--sample-frequency=8000").replace(
    "--high-freq=7600", "--high-freq=3700")


@pytest.fixture(scope="module")
def model8k(tmp_path_factory):
    """A tiny TDNN on 8 kHz MFCCs (as the demo), exported with every runtime (in this process: TensorFlow is
    loaded once; tests/test_export.py's test_export_tool_bad_input runs tfspk-export's console script)."""
    root = tmp_path_factory.mktemp("decision")
    exp = _make_exp(root / "exp", confs={"mfcc.conf": MFCC_8K, "vad.conf": VAD_CONF})
    run_tool_here(f"tfspk-export {exp} {root}/export")
    return root


def test_float_and_resampled_input_match_offline_resampling(model8k, tmp_path, tool):
    """16 kHz and 44.1 kHz speech into the 8 kHz model: cosine >= 0.99 against the same speech resampled
    offline by scipy's FFT resampler (a different method from the polyphase filter inside), through
    tfspk.Embedder (int16 and float [-1, 1] samples) and tfspk-embed (wav files); --allow-resample=false
    keeps the strict error."""
    import scipy.signal
    import tfspk
    embedder = tfspk.Embedder(str(model8k / "export"), backend="saved_model")
    wavs = []
    for rate in (16000, 44100):
        speech = synth_speech(2.5, rate, seed=3, f0=110.0)
        offline = scipy.signal.resample(speech.astype(np.float64), int(round(len(speech) * 8000 / rate)))
        want = embedder.embed(offline.astype(np.float32), 8000, scale="int16")
        got = embedder.embed(speech, rate)
        as_float = embedder.embed(speech / 32768.0, rate)     # soundfile's default float32 in [-1, 1]
        assert _cosine(got, want) >= 0.99 and _cosine(as_float, want) >= 0.99, rate
        np.testing.assert_allclose(as_float, got, rtol=1e-3, atol=1e-3)
        sf.write(str(tmp_path / f"r{rate}.wav"), speech, rate, subtype="PCM_16")
        wavs.append((f"r{rate}", want))
    from tfspk.io import resample
    resample._announced.clear()   # announced once per process: the Embedder calls above did already
    out = tool(f"tfspk-embed --output-format=text {model8k}/export {tmp_path}/r16000.wav {tmp_path}/r44100.wav -")
    assert "resampling audio from 16000 Hz to 8000 Hz" in out.stderr
    rows = {line.split()[0]: np.array(line.split("[")[1].split("]")[0].split(), float) for line in out.stdout.splitlines()}
    for key, want in wavs:
        assert _cosine(rows[key], want) >= 0.99, key
    strict = tool(f"tfspk-embed --allow-resample=false {model8k}/export {tmp_path}/r16000.wav ark,t:-", check=False)
    assert strict.returncode == 1 and "'r16000' has sample rate 16000 Hz but 8000 Hz is expected" in strict.stderr
    with pytest.raises(ToolError, match="sample rate 16000 Hz but 8000 Hz is expected"):
        tfspk.Embedder(str(model8k / "export"), backend="saved_model", allow_resample=False).embed(speech, 16000)


def test_no_voiced_frames_names_the_scale_taken(model8k):
    import tfspk
    embedder = tfspk.Embedder(str(model8k / "export"), backend="saved_model")
    quiet = (synth_speech(1.0, 8000) / 32768.0 * 1e-4).astype(np.float32)   # float audio far below the VAD
    with pytest.raises(ToolError, match="no voiced frames .* taken as float in \\[-1, 1\\] \\(scale=auto"):
        embedder.embed(quiet, 8000)
    nan = synth_speech(1.0, 8000).astype(np.float32)
    nan[100] = np.nan
    with pytest.raises(ToolError, match="NaN or infinite"):
        embedder.embed(nan, 8000)


def test_auto_runtime_is_the_fastest_present(model8k, tmp_path, tool):
    import shutil
    from tfspk.export.embedder import Embedder
    assert Embedder(str(model8k / "export")).backend == "onnx"
    partial = tmp_path / "export"
    shutil.copytree(model8k / "export", partial)
    (partial / "model.onnx").unlink()
    assert Embedder(str(partial)).backend == "tflite"
    (partial / "model.tflite").unlink()
    assert Embedder(str(partial)).backend == "saved_model"
    sf.write(str(tmp_path / "a.wav"), synth_speech(1.5, 8000), 8000, subtype="PCM_16")
    err = tool(f"tfspk-embed {model8k}/export {tmp_path}/a.wav ark,t:{tmp_path}/a.txt").stderr
    assert "onnx runtime" in err


# ------------------------------------------------------------------------------------------ back-end
def _speaker_embeddings(embedder, speakers, utts, rate=8000, first_seed=0):
    """``{utt: embedding}`` and utt2spk of synthetic speakers (each its own f0 and timbre)."""
    vectors, utt2spk = {}, {}
    for s in range(speakers):
        for u in range(utts):
            key = f"spk{s + first_seed:02d}-u{u}"
            speech = synth_speech(1.0 + 0.1 * u, rate, seed=100 * (s + first_seed) + u, f0=90.0 + 17.0 * (s + first_seed))
            vectors[key] = embedder.embed(speech, rate)
            utt2spk[key] = f"spk{s + first_seed:02d}"
    return vectors, utt2spk


def _write_data(directory, vectors, utt2spk):
    directory.mkdir(parents=True, exist_ok=True)
    keys = sorted(vectors)
    write_archive(f"ark,scp:{directory}/xvector.ark,{directory}/xvector.scp", [(k, vectors[k]) for k in keys])
    (directory / "utt2spk").write_text("".join(f"{k} {utt2spk[k]}\n" for k in keys))
    spk2utt = {}
    for k in keys:
        spk2utt.setdefault(utt2spk[k], []).append(k)
    (directory / "spk2utt").write_text("".join(f"{s} {' '.join(u)}\n" for s, u in sorted(spk2utt.items())))
    return spk2utt


@pytest.fixture(scope="module")
def recipe_backend(model8k):
    """The recipe's stage 5 (local/score_plda_cosine.sh) on embeddings of the tiny model: 7 training
    speakers x 6 utterances, 4 evaluation speakers x 4 utterances, every pair a trial."""
    from tfspk.export.embedder import Embedder
    root = model8k / "recipe"
    embedder = Embedder(str(model8k / "export"), backend="onnx")
    train, train_utt2spk = _speaker_embeddings(embedder, 7, 6)
    evaluation, eval_utt2spk = _speaker_embeddings(embedder, 4, 4, first_seed=20)
    _write_data(root / "data" / "train", train, train_utt2spk)
    (root / "exp" / "xvectors_train").mkdir(parents=True)
    for name in ("xvector.ark", "xvector.scp"):
        (root / "data" / "train" / name).rename(root / "exp" / "xvectors_train" / name)
    _write_data(root / "exp" / "xvectors_eval", evaluation, eval_utt2spk)
    (root / "exp" / "xvectors_train" / "xvector.scp").write_text(
        (root / "exp" / "xvectors_train" / "xvector.scp").read_text().replace(
            str(root / "data" / "train"), str(root / "exp" / "xvectors_train")))
    keys = sorted(evaluation)
    trials = [(a, b, "target" if eval_utt2spk[a] == eval_utt2spk[b] else "nontarget")
              for i, a in enumerate(keys) for b in keys[i + 1:]]
    (root / "trials").write_text("".join(" ".join(t) + "\n" for t in trials))
    run(f"local/score_plda_cosine.sh --lda-dim 5 {root}/data/train {root}/exp/xvectors_train "
        f"{root}/exp/xvectors_eval {root}/trials {root}/scores", cwd=REPO / "egs" / "demo" / "v2")
    return root, evaluation, eval_utt2spk


def _scores(path):
    return {(line.split()[0], line.split()[1]): float(line.split()[2]) for line in path.read_text().splitlines()}


@pytest.mark.parametrize("scoring, scores_file", [("plda", "plda_scores"), ("centred-cosine", "cosine_scores")])
def test_export_scores_equal_the_recipes_stage5(model8k, recipe_backend, scoring, scores_file, tool):
    """The export carries the recipe's back-end: Embedder.score of the evaluation embeddings equals
    local/score_plda_cosine.sh's scores (float32 pipes between the recipe's tools: rtol 1e-4)."""
    from tfspk.export.embedder import Embedder
    root, evaluation, _ = recipe_backend
    out = root / f"export_{scoring}"
    tool(f"tfspk-export --tflite=false --onnx=false --scoring={scoring} --backend-dir={root}/exp/xvectors_train "
         f"{model8k}/exp {out}")
    info = json.loads((out / "export.json").read_text())
    assert info["scoring"]["kind"] == scoring and (out / "backend" / "mean.vec").is_file()
    embedder = Embedder(str(out))
    assert embedder.scoring == scoring
    want = _scores(root / "scores" / scores_file)
    assert len(want) == 120
    got = {pair: embedder.score(evaluation[pair[0]], evaluation[pair[1]]) for pair in want}
    for pair, value in want.items():
        assert got[pair] == pytest.approx(value, rel=1e-4, abs=1e-4), (scoring, pair)
    # the default back-end is found where the recipe writes it (<exp>/xvectors_train): PLDA
    from tfspk.export.export import default_scoring
    import shutil
    shutil.copytree(root / "exp" / "xvectors_train", model8k / "exp" / "xvectors_train", dirs_exist_ok=True)
    try:
        assert default_scoring(str(model8k / "exp"), None, None) == ("plda", str(model8k / "exp" / "xvectors_train"))
    finally:
        shutil.rmtree(model8k / "exp" / "xvectors_train")
    assert default_scoring(str(model8k / "exp"), None, None) == ("cosine", None)


def test_calibrated_compare_uses_tfspk_calibrate_output(model8k, recipe_backend, tmp_path, tool):
    """trials -> scores -> tfspk-calibrate -> tfspk-export --calibration -> tfspk-embed --compare: the LLR
    is the calibration applied to the back-end score, the decision at the calibration's own prior."""
    from tfspk.export.embedder import Embedder
    root, evaluation, utt2spk = recipe_backend
    tool(f"tfspk-calibrate {root}/trials {root}/scores/plda_scores {tmp_path}/plda.cal")
    assert "target-prior 0.5" in (tmp_path / "plda.cal").read_text()
    out = tmp_path / "export"
    tool(f"tfspk-export --tflite=false --onnx=false --backend-dir={root}/exp/xvectors_train "
         f"--calibration={tmp_path}/plda.cal {model8k}/exp {out}")
    embedder = Embedder(str(out))
    assert embedder.calibration["scoring"] == "plda" and embedder.target_prior == 0.5
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(str(a), synth_speech(1.4, 8000, seed=2000, f0=430.0), 8000, subtype="PCM_16")
    sf.write(str(b), synth_speech(1.6, 8000, seed=2001, f0=430.0), 8000, subtype="PCM_16")
    printed = tool(f"tfspk-embed --compare {out} {a} {b}").stdout
    score = embedder.score(str(a), str(b))
    scale, offset = (float(line.split()[1]) for line in (tmp_path / "plda.cal").read_text().splitlines()
                     if line.split()[0] in ("scale", "offset"))
    llr = scale * score + offset
    fields = dict(line.split()[:2] for line in printed.splitlines())
    assert float(fields["score"]) == pytest.approx(score, abs=2e-6) and "(plda)" in printed
    assert float(fields["llr"]) == pytest.approx(llr, abs=1e-5)
    assert f"decision {'target' if llr >= 0 else 'nontarget'} (Bayes threshold 0.0000" in printed
    assert "P=0.5" in printed
    assert embedder.decide(score) == (llr >= 0) and embedder.decide(score, 0.01) == (llr >= math.log(99))
    # identification with the calibrated export: LLRs per speaker, 'none' below the Bayes threshold (0 at P=0.5)
    keys = sorted(evaluation)
    speakers = {}
    for key in keys[:-4]:
        speakers.setdefault(utt2spk[key], []).append(evaluation[key])
    models = embedder.enroll(speakers)
    for key in keys:
        result = embedder.identify(evaluation[key], models, top_n=2)
        for _, s, l in result.ranked:
            assert l == pytest.approx(scale * s + offset, abs=1e-9)
        assert result.decision == (result.ranked[0][0] if result.ranked[0][2] >= 0 else "none")
    strict = embedder.identify(evaluation[keys[0]], models, threshold=1e9)
    assert strict.decision == "none"


def test_bad_backend_and_calibration_input(model8k, recipe_backend, tmp_path, tool):
    root, _, _ = recipe_backend
    cases = [
        (f"--scoring=plda --backend-dir={tmp_path}", "needs " + str(tmp_path / "mean.vec")),
        ("--scoring=plda", "--scoring=plda needs the recipe's back-end files: give --backend-dir"),
        (f"--backend-dir={tmp_path}/none", "is not a directory"),
    ]
    (tmp_path / "old.cal").write_text("1.5 -2.0\n")
    cases.append((f"--calibration={tmp_path}/old.cal", "old.cal:1: unexpected line in a calibration model"))
    for options, message in cases:
        proc = tool(f"tfspk-export --tflite=false --onnx=false {options} {model8k}/exp {tmp_path}/out", check=False)
        assert proc.returncode == 1 and message in proc.stderr, (options, proc.stderr)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    from tfspk.io.objects import write_vector
    write_vector(str(wrong / "mean.vec"), np.zeros(5), double=True)
    proc = tool(f"tfspk-export --tflite=false --onnx=false --scoring=centred-cosine --backend-dir={wrong} "
                f"{model8k}/exp {tmp_path}/out", check=False)
    assert proc.returncode == 1 and "have dimension 8 but the centred-cosine back-end takes 5" in proc.stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ speakers
def test_enroll_and_identify_equal_kaldi_num_utts_scoring(model8k, recipe_backend, tmp_path, tool):
    """tfspk-enroll (spk2utt + embeddings) writes Kaldi's speaker means and num_utts.ark; tfspk-identify's
    PLDA scores equal ivector-mean | subtract-global-mean | transform-vec | normalize-length ->
    ivector-plda-scoring --num-utts, as Kaldi's sre recipes score multi-utterance enrolments."""
    root, evaluation, utt2spk = recipe_backend
    export = root / "export_plda"
    if not export.exists():
        tool(f"tfspk-export --tflite=false --onnx=false --scoring=plda --backend-dir={root}/exp/xvectors_train "
             f"{model8k}/exp {export}")
    keys = sorted(evaluation)
    enroll_keys = [k for k in keys if not k.endswith("u3")]
    test_keys = [k for k in keys if k.endswith("u3")]
    by_speaker = {}
    for k in enroll_keys:
        by_speaker.setdefault(utt2spk[k], []).append(k)
    (tmp_path / "spk2utt").write_text("".join(f"{s} {' '.join(u)}\n" for s, u in sorted(by_speaker.items())))
    xv = root / "exp" / "xvectors_eval" / "xvector.scp"
    tool(f"tfspk-enroll --vectors=true {export} {tmp_path}/spk2utt scp:{xv} {tmp_path}/speakers")
    assert (tmp_path / "speakers" / "num_utts.ark").read_text().split() == sum(
        ([s, "3"] for s in sorted(by_speaker)), [])
    out = tool(f"tfspk-identify --vectors=true --top-n=4 {export} {tmp_path}/speakers scp:{xv} -").stdout
    lines = {line.split()[0]: line.split() for line in out.splitlines()}
    assert sorted(lines) == keys
    # Kaldi's chain with tfspk's tools
    train = root / "exp" / "xvectors_train"
    (tmp_path / "trials").write_text("".join(f"{s} {t}\n" for s in sorted(by_speaker) for t in keys))
    pipe = f"tfspk-ivector-subtract-global-mean {train}/mean.vec ark:- ark:- | tfspk-transform-vec {train}/transform.mat " \
           "ark:- ark:- | tfspk-ivector-normalize-length ark:- ark:- |"
    # the speaker means as steps/extract_xvectors.sh writes them (ivector-mean) are a speakers-dir too
    kaldi_dir = tmp_path / "kaldi"
    kaldi_dir.mkdir()
    run(f"tfspk-ivector-mean ark:{tmp_path}/spk2utt scp:{xv} ark,scp:{kaldi_dir}/spk_xvector.ark,"
        f"{kaldi_dir}/spk_xvector.scp ark,t:{kaldi_dir}/num_utts.ark")
    same = tool(f"tfspk-identify --vectors=true --top-n=4 {export} {kaldi_dir} scp:{xv} -").stdout
    for line, other in zip(out.splitlines(), same.splitlines()):
        assert line.split()[::3] == other.split()[::3]
        np.testing.assert_allclose([float(v) for v in line.split()[3::3]], [float(v) for v in other.split()[3::3]],
                                   rtol=1e-5, atol=1e-5)
    run(f"tfspk-ivector-mean ark:{tmp_path}/spk2utt scp:{xv} ark:{tmp_path}/spk.ark ark,t:{tmp_path}/n.ark && "
        f"tfspk-ivector-plda-scoring --normalize-length=true --num-utts=ark:{tmp_path}/n.ark {train}/plda "
        f"'ark:cat {tmp_path}/spk.ark | {pipe}' "
        f"'ark:tfspk-ivector-subtract-global-mean {train}/mean.vec scp:{xv} ark:- | tfspk-transform-vec "
        f"{train}/transform.mat ark:- ark:- | tfspk-ivector-normalize-length ark:- ark:- |' "
        f"{tmp_path}/trials {tmp_path}/kaldi_scores")
    kaldi = _scores(tmp_path / "kaldi_scores")
    for key, fields in lines.items():
        ranked = {fields[i]: float(fields[i + 1]) for i in range(2, len(fields), 3)}
        assert len(ranked) == 4 and all(fields[i + 2] == "-" for i in range(2, len(fields), 3))
        for speaker, score in ranked.items():
            assert score == pytest.approx(kaldi[(speaker, key)], rel=1e-4, abs=1e-4), (key, speaker)
        assert list(ranked.values()) == sorted(ranked.values(), reverse=True)
        assert fields[1] == fields[2]   # closed set without threshold or calibration
    # open set: a threshold above every score answers none
    top = max(float(f[3]) for f in lines.values())
    out = tool(f"tfspk-identify --vectors=true --threshold={top + 1} {export} {tmp_path}/speakers scp:{xv} -").stdout
    assert {line.split()[1] for line in out.splitlines()} == {"none"}


def test_enroll_identify_from_audio_and_api(model8k, tmp_path, tool):
    """From wav files: a spk2utt + wav.scp and a per-speaker file list give the same speaker models; the
    Python API (Embedder.enroll / identify) agrees with the tools; real identification of synthetic voices."""
    import tfspk
    from tfspk.backend.speakers import SpeakerModels
    (tmp_path / "wav").mkdir()
    wav_scp, spk2utt, listing, tests = [], {}, {}, []
    for s in range(3):
        for u in range(4):
            path = tmp_path / "wav" / f"s{s}-{u}.wav"
            sf.write(str(path), synth_speech(1.2, 8000, seed=10 * s + u, f0=100.0 + 60 * s), 8000, subtype="PCM_16")
            if u < 3:
                wav_scp.append(f"s{s}-{u} {path}\n")
                spk2utt.setdefault(f"s{s}", []).append(f"s{s}-{u}")
                listing.setdefault(f"s{s}", []).append(str(path))
            else:
                tests.append(str(path))
    (tmp_path / "wav.scp").write_text("".join(sorted(wav_scp)))
    (tmp_path / "spk2utt").write_text("".join(f"{s} {' '.join(u)}\n" for s, u in spk2utt.items()))
    (tmp_path / "list").write_text("".join(f"{s} {' '.join(p)}\n" for s, p in listing.items()))
    export = model8k / "export"
    tool(f"tfspk-enroll {export} {tmp_path}/spk2utt {tmp_path}/wav.scp {tmp_path}/a")
    tool(f"tfspk-enroll --list=true {export} {tmp_path}/list {tmp_path}/b")
    a, b = SpeakerModels.read(str(tmp_path / "a")), SpeakerModels.read(str(tmp_path / "b"))
    assert a.speakers == b.speakers == ["s0", "s1", "s2"] and list(a.counts) == [3, 3, 3]
    np.testing.assert_allclose(a.means, b.means, rtol=1e-5, atol=1e-6)
    out = tool(f"tfspk-identify {export} {tmp_path}/a {' '.join(tests)} {tmp_path}/id.txt")
    lines = (tmp_path / "id.txt").read_text().splitlines()
    # the tiny test network does not separate the voices reliably (its training depends on the thread
    # count): check the answer's form and ranking, closed set: the decision is the best-scoring speaker
    assert [line.split()[0] for line in lines] == ["s0-3", "s1-3", "s2-3"], lines
    for line in lines:
        fields = line.split()
        scores = [float(x) for x in fields[3::3]]
        assert fields[1] == fields[2] and sorted(fields[2::3]) == ["s0", "s1", "s2"] and scores == sorted(scores)[::-1]
    embedder = tfspk.Embedder(str(export))
    models = embedder.enroll(listing)
    np.testing.assert_allclose(models.means, a.means, rtol=1e-4, atol=1e-5)
    result = embedder.identify(tests[1], models, top_n=2)
    assert result.decision == lines[1].split()[1] and len(result.ranked) == 2
    assert result.ranked[0][1] == pytest.approx(float(lines[1].split()[3]), abs=1e-5)
    assert "identified 3 inputs against 3 speakers" in out.stderr


def test_enroll_identify_bad_input(model8k, tmp_path, tool):
    export = model8k / "export"
    sf.write(str(tmp_path / "a.wav"), synth_speech(1.2, 8000), 8000, subtype="PCM_16")
    (tmp_path / "wav.scp").write_text(f"u1 {tmp_path}/a.wav\n")
    (tmp_path / "spk2utt").write_text("alice u1 u2\n")
    (tmp_path / "empty").write_text("")
    (tmp_path / "nolist").write_text("bob\n")
    write_archive(f"ark,scp:{tmp_path}/v5.ark,{tmp_path}/v5.scp", [("u1", np.ones(5, np.float32)),
                                                                   ("u2", np.ones(5, np.float32))])
    cases = [
        (f"tfspk-enroll {export} {tmp_path}/spk2utt {tmp_path}/wav.scp {tmp_path}/o",
         "has no entry for utterance 'u2'"),
        (f"tfspk-enroll {export} {tmp_path}/empty {tmp_path}/wav.scp {tmp_path}/o", "no speakers to enroll"),
        (f"tfspk-enroll --list=true {export} {tmp_path}/nolist {tmp_path}/o", "nolist:1"),
        (f"tfspk-enroll --vectors=true {export} {tmp_path}/spk2utt scp:{tmp_path}/v5.scp {tmp_path}/o",
         "embeddings of dimension 5, the model's have 8"),
        (f"tfspk-identify {export} {tmp_path}/nothing {tmp_path}/a.wav -", "holds no enrolled speakers"),
        (f"tfspk-identify --top-n=0 {export} {tmp_path}/nothing {tmp_path}/a.wav -", "holds no enrolled speakers"),
    ]
    for command, message in cases:
        proc = tool(command, check=False)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, (command, proc.stderr)
    assert not (tmp_path / "o").exists()
    (tmp_path / "spk2utt").write_text("alice u1\n")
    tool(f"tfspk-enroll {export} {tmp_path}/spk2utt {tmp_path}/wav.scp {tmp_path}/o")
    proc = tool(f"tfspk-identify --top-n=0 {export} {tmp_path}/o {tmp_path}/a.wav -", check=False)
    assert proc.returncode == 1 and "--top-n=0 must be at least 1" in proc.stderr
    write_archive(f"ark,scp:{tmp_path}/o/spk_xvector.ark,{tmp_path}/o/spk_xvector.scp", [("alice", np.ones(5, np.float32))])
    proc = tool(f"tfspk-identify {export} {tmp_path}/o {tmp_path}/a.wav -", check=False)
    assert proc.returncode == 1 and "speakers of dimension 5, the model's embeddings have 8" in proc.stderr


def test_demo_enroll_identify_script(model8k, tmp_path):
    """egs/demo/v2/local/enroll_identify.sh on a small data dir: closed-set accuracy and open-set EER lines."""
    data = tmp_path / "data"
    (data / "wav").mkdir(parents=True)
    wav_scp, spk2utt = [], {}
    for s in range(6):
        for u in range(5):
            key = f"s{s}-{u}"
            path = data / "wav" / f"{key}.wav"
            sf.write(str(path), synth_speech(1.2, 8000, seed=50 * s + u, f0=95.0 + 45 * s), 8000, subtype="PCM_16")
            wav_scp.append(f"{key} {path}\n")
            spk2utt.setdefault(f"s{s}", []).append(key)
    (data / "wav.scp").write_text("".join(sorted(wav_scp)))
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(u)}\n" for s, u in spk2utt.items()))
    proc = run(f"local/enroll_identify.sh --num-enroll 2 {model8k}/export {data} {tmp_path}/id",
               cwd=REPO / "egs" / "demo" / "v2")
    results = (tmp_path / "id" / "results.txt").read_text().splitlines()
    assert results[0].startswith("closed-set accuracy") and "of 12 test utterances" in results[0], results
    assert results[1].startswith("open-set EER") and "12 enrolled-speaker vs 10 impostor" in results[1], results
    assert (tmp_path / "id" / "impostors").read_text().split() == ["s2", "s5"]
    identified = (tmp_path / "id" / "identified").read_text().splitlines()
    assert len(identified) == 22 and "closed-set accuracy" in proc.stdout


def test_calibration_named_after_the_other_score_file_is_warned_about(capsys):
    from tfspk.export.export import _check_calibration_name
    _check_calibration_name("exp/scores/calibration/plda.cal", "plda")
    _check_calibration_name("exp/scores/calibration/cosine.cal", "centred-cosine")
    _check_calibration_name("my.cal", "cosine")
    assert capsys.readouterr().err == ""
    _check_calibration_name("exp/scores/calibration/cosine.cal", "plda")
    assert "looks like a calibration of the recipe's cosine_scores" in capsys.readouterr().err
