"""Any finished experiment dir is usable with no further option: `tfspk-export <exp> <out>`, `tfspk-embed <exp> ...`
and `tfspk.Embedder(<exp>)`, for a dir trained by tfspk-train alone (no recipe) and one made by the demo's run.sh."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import run, synth_speech
from tfspk.io.ark import read_rspecifier

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "egs" / "demo" / "v2"
TINY_NNET = ["nnet.params.frame_dim=16", "nnet.params.pooling_dim=24", "nnet.params.embedding_dim=8"]


def _write_speakers(root, name, rate, speakers, utts, seconds=2.5, seed=0):
    """A data dir of synthetic speech: wav.scp, utt2spk, spk2utt."""
    data, wavs = root / name, root / "wav" / name
    data.mkdir(parents=True)
    wavs.mkdir(parents=True)
    wav_scp, utt2spk, spk2utt = [], [], []
    for s in range(speakers):
        keys = []
        for u in range(utts):
            utt = f"{name}{s}-u{u}"
            sf.write(str(wavs / f"{utt}.wav"), synth_speech(seconds + 0.1 * u, rate, seed=seed + 10 * s + u,
                                                           f0=90 + 25 * s), rate, subtype="PCM_16")
            wav_scp.append(f"{utt} {wavs / utt}.wav\n")
            utt2spk.append(f"{utt} {name}{s}\n")
            keys.append(utt)
        spk2utt.append(f"{name}{s} {' '.join(keys)}\n")
    (data / "wav.scp").write_text("".join(wav_scp))
    (data / "utt2spk").write_text("".join(utt2spk))
    (data / "spk2utt").write_text("".join(spk2utt))
    return data


def _text_vectors(text):
    return {line.split()[0]: np.array(line.split("[")[1].split("]")[0].split(), float) for line in text.splitlines()}


def _check_inference(exp, out, wav, tool, console_script=False):
    """tfspk-export <exp> <out> (the console script if ``console_script``, else in this process: TensorFlow is
    loaded once), then tfspk-embed on the export and on the experiment dir, and tfspk.Embedder on both: the same
    embedding of ``wav`` everywhere."""
    import tfspk
    proc = (run if console_script else tool)(["tfspk-export", "--tflite=false", "--onnx=false", str(exp), str(out)])
    assert "exported" in proc.stderr and "front end of" in proc.stderr
    from_export = _text_vectors(tool(f"tfspk-embed {out} {wav} ark,t:-").stdout)
    from_exp = _text_vectors(tool(f"tfspk-embed {exp} {wav} ark,t:-").stdout)
    key = Path(wav).stem
    np.testing.assert_allclose(from_exp[key], from_export[key], rtol=1e-5, atol=1e-6)
    samples, rate = sf.read(wav, dtype="int16")
    for model in (out, exp):
        np.testing.assert_allclose(tfspk.Embedder(str(model)).embed(samples, rate), from_export[key],
                                   rtol=1e-4, atol=1e-5)
    return from_export[key]


def test_an_exp_dir_of_tfspk_train_alone_exports_and_embeds(tmp_path, tool):
    """tfspk-train on a folder of 16 kHz wavs, no config file, no recipe: fbank with Kaldi's defaults, crop-free
    sliding CMN, no VAD (no vad.scp) are recorded, and every inference entry point takes them from the dir."""
    data = _write_speakers(tmp_path, "spk", 16000, speakers=4, utts=2)
    exp = tmp_path / "exp"
    sets = ["data.source=audio", "data.speakers_per_batch=4", "data.min_frames=40", "data.max_frames=60",
            "valid.num_utts=0", "data.num_threads=1", "log_every=1"] + TINY_NNET
    # in this process (tool): TensorFlow is loaded here once; the console script is export's, in _check_inference
    # (here only: the other tests export in their process)
    tool(["tfspk-train", "--num-epochs", "1", "--steps-per-epoch", "2"]
         + [arg for kv in sets for arg in ("--set", kv)] + [str(data), str(exp)])
    from tfspk.features import read_front_end
    front_end = read_front_end(str(exp))
    assert (front_end.feature_type, front_end.dim, front_end.sample_rate) == ("fbank", 23, 16000)
    assert (front_end.cmn, front_end.vad, front_end.options.frame.dither) == ("sliding", False, 1.0)
    wav = tmp_path / "wav" / "spk" / "spk1-u0.wav"
    _check_inference(exp, tmp_path / "export", wav, tool, console_script=True)


def test_an_exp_dir_of_tfspk_train_on_offline_features_records_its_features_section(tmp_path, tool):
    """data.source feats: the features: section names how feats.scp was made; without it nothing is recorded and
    export says what is missing."""
    (tmp_path / "mfcc.conf").write_text("--sample-frequency=16000\n--num-ceps=20\n--num-mel-bins=20\n"
                                        "--snip-edges=false\n--dither=0\n")
    (tmp_path / "vad.conf").write_text("--vad-energy-threshold=5.5\n--vad-proportion-threshold=0.12\n")
    data = _write_speakers(tmp_path, "spk", 16000, speakers=4, utts=3)
    run(f"make_mfcc.sh --nj 1 --mfcc-config {tmp_path}/mfcc.conf {data} {tmp_path}/mk {tmp_path}/mfcc && "
        f"compute_vad_decision.sh --nj 1 --vad-config {tmp_path}/vad.conf {data} {tmp_path}/mk {tmp_path}/mfcc && "
        f"prepare_feats_for_egs.sh --nj 1 --min-len 40 --min-num-utts 2 {data} {tmp_path}/train {tmp_path}/mk2",
        cwd=tmp_path)
    sets = ["data.speakers_per_batch=4", "data.min_frames=40", "data.max_frames=60", "valid.num_utts=0",
            "log_every=1"] + TINY_NNET
    # the tools in this process (tool): TensorFlow is loaded here once; tfspk-export's console script runs in
    # test_an_exp_dir_of_tfspk_train_alone_exports_and_embeds
    args = ["tfspk-train", "--num-epochs", "1", "--steps-per-epoch", "2"] + [a for kv in sets for a in ("--set", kv)]
    tool(args + [str(tmp_path / "train"), str(tmp_path / "bare")])
    assert "no front end recorded" in (tmp_path / "bare" / "log" / "train.log").read_text()
    proc = tool(["tfspk-export", str(tmp_path / "bare"), str(tmp_path / "out")], check=False)
    assert proc.returncode == 1 and "has no features.yaml" in proc.stderr and "features.type" in proc.stderr
    described = ["--set", "features.type=mfcc", "--set", f"features.conf={tmp_path}/mfcc.conf",
                 "--set", f"features.vad_conf={tmp_path}/vad.conf"]
    wrong = tool(args + described[:2] + [str(tmp_path / "train"), str(tmp_path / "wrong")], check=False)
    assert wrong.returncode == 1 and "front end gives 13-dimensional features" in wrong.stderr
    exp = tmp_path / "exp"
    tool(args + described + [str(tmp_path / "train"), str(exp)])
    from tfspk.features import read_front_end
    front_end = read_front_end(str(exp))
    assert front_end.vad and front_end.vad_options.vad_energy_threshold == 5.5 and front_end.dim == 20
    wav = tmp_path / "wav" / "spk" / "spk2-u1.wav"
    embedding = _check_inference(exp, tmp_path / "export", wav, tool)
    # the recipe's extraction of the same utterance (features, VAD, CMN from the same dir) agrees
    run(f"extract_xvectors.sh --nj 1 {exp} {data} {tmp_path}/xv", cwd=tmp_path)
    recipe = dict(read_rspecifier(f"scp:{tmp_path}/xv/xvector.scp"))
    cosine = np.dot(recipe["spk2-u1"], embedding) / np.linalg.norm(recipe["spk2-u1"]) / np.linalg.norm(embedding)
    assert cosine >= 0.9999


@pytest.mark.slow
def test_an_exp_dir_of_the_demo_recipe_exports_and_embeds(tmp_path, tool):
    """egs/demo/v2/run.sh stages 1-3 (fbank network, energy VAD on the MFCCs, sliding CMN) on synthetic 8 kHz
    speech, then the three entry points on its experiment dir with no option."""
    data = tmp_path / "data"
    _write_speakers(data, "train", 8000, speakers=5, utts=3, seed=0)
    _write_speakers(data, "eval", 8000, speakers=2, utts=2, seed=500)
    exp = tmp_path / "exp"
    train_opts = ("--num-epochs 1 --steps-per-epoch 2 --set data.speakers_per_batch=4 --set valid.num_utts=3 "
                  "--set data.min_frames=50 --set data.max_frames=60 " + " ".join(f"--set {kv}" for kv in TINY_NNET))
    # run.sh's default --nj 2 on purpose: the recipe's parallel feature jobs (split, JOB arrays, merge); the demo's
    # end-to-end test runs --nj 1 (tests/test_extract.py runs extract_xvectors.sh --nj 2)
    # no --mfcc-dir / --feat-dir: another --data than 'data' gets archive dirs of its own next to it (<data>_mfcc,
    # <data>_fbank), not the recipe's mfcc/ and fbank/, where the archives of data/ (named by set) would be overwritten
    run(["./run.sh", "--stage", "1", "--stop-stage", "3", "--net", "tdnn_fbank", "--data", str(data), "--exp", str(exp),
         "--min-len", "50", "--min-num-utts", "2", "--train-opts", train_opts], cwd=DEMO, timeout=1200)
    for name, archives in (("train", "data_mfcc"), ("train_fbank", "data_fbank"), ("eval_fbank", "data_fbank")):
        arks = {line.split(None, 1)[1].rsplit(":", 1)[0] for line in (data / name / "feats.scp").read_text().splitlines()}
        assert arks and all(Path(ark).parent == tmp_path / archives for ark in arks), (name, arks)
    vad_arks = {line.split(None, 1)[1].rsplit(":", 1)[0] for line in (data / "train" / "vad.scp").read_text().splitlines()}
    assert all(Path(ark).parent == tmp_path / "data_mfcc" for ark in vad_arks), vad_arks
    nnet = exp / "tdnn_fbank_nnet_aamsoftmax"
    from tfspk.features import read_front_end
    front_end = read_front_end(str(nnet))
    assert (front_end.feature_type, front_end.dim, front_end.sample_rate, front_end.cmn) == ("fbank", 80, 8000, "sliding")
    assert front_end.vad and front_end.vad_options.vad_proportion_threshold == 0.12   # conf/vad.conf
    assert front_end.vad_mfcc.num_ceps == 30 and front_end.vad_mfcc.frame.snip_edges is False   # conf/mfcc.conf
    wav = tmp_path / "data" / "wav" / "eval" / "eval1-u0.wav"
    _check_inference(nnet, tmp_path / "export", wav, tool)
