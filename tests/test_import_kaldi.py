"""Kaldi nnet3 x-vector import (tfspk.importers.kaldi_nnet3): text and binary final.raw -> tdnn_kaldi, exact
against an independent numpy forward pass of the nnet3 graph (tests/kaldi_nnet3_reference.py), through the
network, tfspk-import-model + steps/extract_xvectors.sh, tfspk-export (SavedModel, ONNX, TFLite) + tfspk.Embedder;
bad and foreign files are clear errors; an imported model is fine-tuned on new speakers."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from tfspk.errors import ToolError

sys.path.insert(0, os.path.dirname(__file__))
import kaldi_nnet3_reference as ref  # noqa: E402
from conftest import run, run_tool_here, synth_speech  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "kaldi_nnet3")
FORMATS = {"text": "final.txt.raw", "binary": "final.raw"}
# Measured: max |tfspk - numpy| <= 9e-7 on x-vectors of magnitude ~1 (float32 network vs float64 numpy).
MAX_ABS = 1e-5
MIN_COSINE = 0.9999
# Through the exported graphs (float32 MFCC/VAD/CMN inside TF): 3e-5 measured on x-vector values up to 7.5.
MAX_ABS_AUDIO = 2e-4


def _cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def model_weights():
    return ref.make_model()


@pytest.fixture(scope="module")
def reference():
    return np.load(os.path.join(FIXTURES, "reference.npz"))


def test_committed_fixtures_are_what_the_script_writes(tmp_path, model_weights):
    ref.write_fixtures(str(tmp_path))
    for name in FORMATS.values():
        assert (tmp_path / name).read_bytes() == open(os.path.join(FIXTURES, name), "rb").read(), name
    fresh, committed = np.load(tmp_path / "reference.npz"), np.load(os.path.join(FIXTURES, "reference.npz"))
    assert sorted(fresh.files) == sorted(committed.files)
    for key in fresh.files:
        np.testing.assert_array_equal(fresh[key], committed[key])


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_component_is_mapped_and_every_weight_set(fmt):
    from tfspk.importers.kaldi_nnet3 import map_xvector, read_nnet3
    nnet = read_nnet3(os.path.join(FIXTURES, FORMATS[fmt]))
    assert nnet.binary == (fmt == "binary") and len(nnet.components) == 25
    mapped = map_xvector(nnet)
    assert sorted(mapped.used + list(mapped.ignored)) == sorted(nnet.components)   # none left over
    assert sorted(mapped.ignored) == ["output.affine", "output.log-softmax", "tdnn7.relu"]
    assert mapped.params == {"frame_dim": 24, "pooling_dim": 40, "embedding_dim": 16, "layer_order": "relu_bn",
                             "variance_floor": 1e-10, "bn_epsilon": 1e-3}
    from tfspk.importers.expdir import build_model
    from tfspk.importers import get_source
    imported = get_source("kaldi_nnet3").convert(os.path.join(FIXTURES, FORMATS[fmt]))
    model = build_model(imported)    # raises if a variable has no weight or a weight no variable
    assert len(model.weights) == len(imported.weights) == 42


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_weights_equal_the_file_in_the_kaldi_layout(fmt, model_weights):
    """The Append order: kernel[j, i, o] = W[o, j * in + i]; BN folded as gamma = target_rms, moving stats."""
    from tfspk.importers import get_source
    w = get_source("kaldi_nnet3").convert(os.path.join(FIXTURES, FORMATS[fmt])).weights
    linear = model_weights["tdnn2.affine"]["LinearParams"]           # [24, 3 * 24]
    for j in range(3):
        np.testing.assert_array_equal(w["tdnn2_affine/kernel"][j], linear[:, j * 24:(j + 1) * 24].T)
    np.testing.assert_array_equal(w["tdnn6_affine/kernel"], model_weights["tdnn6.affine"]["LinearParams"].T)
    bn = model_weights["tdnn3.batchnorm"]
    np.testing.assert_allclose(w["tdnn3_bn/gamma"], bn["TargetRms"], rtol=1e-7)
    np.testing.assert_array_equal(w["tdnn3_bn/moving_mean"], bn["StatsMean"])
    # tdnn7's epsilon (2e-3) differs from the network's (1e-3): the variance carries the difference
    np.testing.assert_allclose(w["tdnn7_bn/moving_variance"], model_weights["tdnn7.batchnorm"]["StatsVar"] + 1e-3,
                               rtol=1e-6)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_embeddings_equal_the_numpy_nnet3_forward(fmt, reference):
    from tfspk.importers import get_source
    from tfspk.importers.expdir import build_model
    model = build_model(get_source("kaldi_nnet3").convert(os.path.join(FIXTURES, FORMATS[fmt])))
    worst = 0.0
    for utt in sorted({key.split("/")[0] for key in reference.files}):
        feats, want = reference[f"{utt}/feats"], reference[f"{utt}/xvector"]
        got = model(feats[None])["embedding_a"].numpy()[0]
        assert _cosine(got, want) >= MIN_COSINE, utt
        worst = max(worst, float(np.abs(got - want).max()))
    assert worst <= MAX_ABS, worst


def test_numpy_reference_is_the_kaldi_graph_not_a_copy_of_tfspk(model_weights):
    """Sanity of the reference itself: 15 frames (the receptive field) pool one frame, so the stddev is
    sqrt(floor) and the x-vector is W6 [h, 1e-5] + b6; the pooled frames are t = 7 .. T - 8."""
    feats = ref.reference_inputs()["utt15"]
    out = ref.forward(model_weights, feats)
    assert out["tdnn6.affine"].shape == (ref.EMB_DIM,)
    np.testing.assert_allclose(np.exp(out["output"]).sum(), 1.0, rtol=1e-12)
    longer = ref.forward(model_weights, np.concatenate([feats, feats]))
    assert not np.allclose(longer["tdnn6.affine"], out["tdnn6.affine"])


@pytest.fixture(scope="module")
def imported_dir(tmp_path_factory):
    """tfspk-import-model of the binary fixture, in this process."""
    root = tmp_path_factory.mktemp("kaldi_import")
    run_tool_here(["tfspk-import-model", "--source=kaldi_nnet3", os.path.join(FIXTURES, "final.raw"), root / "exp"])
    return root / "exp"


def test_import_tool_reports_the_unused_components(tool, tmp_path):
    proc = tool(f"tfspk-import-model --source=kaldi_nnet3 {FIXTURES}/final.txt.raw {tmp_path}/exp")
    assert "network tdnn_kaldi, 30-dim mfcc at 16000 Hz (CMN sliding, VAD on), 42 weights" in proc.stderr, proc.stderr
    assert "unused tensors: output.affine, output.log-softmax, tdnn7.relu" in proc.stderr


def test_imported_experiment_dir_records_the_voxceleb_front_end(imported_dir):
    from tfspk.features.frontend import read_front_end
    from tfspk.train.config import load_yaml
    config = load_yaml(str(imported_dir / "config.yaml"))
    assert config["nnet"]["name"] == "tdnn_kaldi" and config["feat_dim"] == 30
    assert config["imported"]["recipe"] == "voxceleb" and config["imported"]["format"] == "binary"
    front_end = read_front_end(str(imported_dir))
    mfcc = front_end.options
    assert front_end.feature_type == "mfcc" and front_end.sample_rate == 16000 and front_end.dim == 30
    assert (mfcc.num_ceps, mfcc.mel.num_mel_bins, mfcc.mel.low_freq, mfcc.mel.high_freq) == (30, 30, 20.0, 7600.0)
    assert mfcc.frame.snip_edges is False and mfcc.frame.frame_length == 25.0
    assert (front_end.cmn, front_end.cmn_window, front_end.vad) == ("sliding", 300, True)
    v = front_end.vad_options
    assert (v.vad_energy_threshold, v.vad_energy_mean_scale, v.vad_proportion_threshold, v.vad_frames_context) == \
        (5.5, 0.5, 0.12, 2)
    assert (imported_dir / "final" / "DONE").is_file()


def _kaldi_front_end(samples, rate, exp_dir):
    """compute-mfcc-feats (the recipe's conf/mfcc.conf) -> compute-vad (conf/vad.conf) -> apply-cmvn-sliding
    --cmn-window=300 --center=true -> select-voiced-frames, with tfspk's Kaldi-exact functions, on the front
    end the import recorded."""
    from tfspk.features import apply_cmvn_sliding, compute_vad, mfcc, select_voiced_frames
    from tfspk.features.frontend import read_front_end
    front_end = read_front_end(str(exp_dir))
    feats = mfcc(samples, rate, front_end.inference_options())
    v = front_end.vad_options
    vad = compute_vad(feats, v.vad_energy_threshold, v.vad_energy_mean_scale, v.vad_proportion_threshold,
                      v.vad_frames_context)
    return feats, vad, select_voiced_frames(apply_cmvn_sliding(feats, 300, center=True), vad)


def _write_data(root, rate=16000):
    import soundfile as sf
    from tfspk.io.ark import ArchiveWriter
    (root / "wav").mkdir(parents=True)
    utts = {}
    for i, seconds in enumerate((1.4, 3.1, 4.6)):
        utt = f"spk{i % 2}-u{i}"
        samples = synth_speech(seconds, rate, seed=40 + i, f0=110 + 25 * i)
        sf.write(str(root / "wav" / f"{utt}.wav"), samples, rate, subtype="PCM_16")
        utts[utt] = np.asarray(samples, np.float32)
    return utts


def test_extract_xvectors_sh_equals_the_numpy_forward(imported_dir, model_weights, tmp_path):
    """Features + VAD written as a recipe has them, then steps/extract_xvectors.sh on the imported dir
    (sliding CMN 300 and voiced frames inside, as Kaldi's extract_xvectors.sh)."""
    from tfspk.io.ark import ArchiveWriter, read_rspecifier
    utts = _write_data(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    expected = {}
    with ArchiveWriter(f"ark,scp:{data}/feats.ark,{data}/feats.scp") as fw, \
            ArchiveWriter(f"ark,scp:{data}/vad.ark,{data}/vad.scp") as vw:
        for utt in sorted(utts):
            feats, vad, ready = _kaldi_front_end(utts[utt], 16000, imported_dir)
            fw.write(utt, feats)
            vw.write(utt, vad)
            expected[utt] = ref.forward(model_weights, ready)["tdnn6.affine"]
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(utts)))
    (data / "spk2utt").write_text("".join(f"spk{s} {' '.join(u for u in sorted(utts) if u.startswith(f'spk{s}-'))}\n"
                                          for s in (0, 1)))
    run(f"extract_xvectors.sh --nj 1 {imported_dir} {data} {tmp_path}/xv", cwd=tmp_path)
    got = dict(read_rspecifier(f"scp:{tmp_path}/xv/xvector.scp"))
    assert sorted(got) == sorted(expected)
    for utt in expected:
        assert _cosine(got[utt], expected[utt]) >= MIN_COSINE, utt
        assert np.abs(got[utt] - expected[utt]).max() <= MAX_ABS, utt


@pytest.mark.parametrize("backend", ["saved_model", "onnx", "tflite"])
def test_export_and_embedder_from_raw_audio(imported_dir, model_weights, tmp_path_factory, backend):
    """tfspk-export of the imported dir as it is (conf/mfcc.conf, conf/vad.conf, CMN 300 inside the graphs),
    then tfspk.Embedder on 16 kHz audio against the numpy forward of the Kaldi front end's features."""
    export_dir = imported_dir.parent / "export"
    if not (export_dir / "export.json").is_file():
        # in this process (TensorFlow is loaded once); tests/test_export.py runs tfspk-export's console script
        run_tool_here(["tfspk-export", imported_dir, export_dir])
    from tfspk.export import Embedder
    embedder = Embedder(str(export_dir), backend=backend)
    assert embedder.sample_rate == 16000
    utts = _write_data(tmp_path_factory.mktemp(f"audio_{backend}"))
    for utt, samples in utts.items():
        want = ref.forward(model_weights, _kaldi_front_end(samples, 16000, imported_dir)[2])["tdnn6.affine"]
        got = embedder.embed(samples, 16000, utt)
        assert _cosine(got, want) >= MIN_COSINE, utt
        assert np.abs(got - want).max() <= MAX_ABS_AUDIO, (utt, np.abs(got - want).max())


# ---------------------------------------------------------------------------------------------- bad files
def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_truncated_binary_files_name_the_byte_offset(tmp_path):
    from tfspk.importers.kaldi_nnet3 import read_nnet3
    data = open(os.path.join(FIXTURES, "final.raw"), "rb").read()
    for cut in (1, 40, len(data) // 3, len(data) // 2 + 7, len(data) - 3):
        path = _write(tmp_path, f"cut{cut}.raw", data[:cut])
        with pytest.raises(ToolError, match=r"cut%d\.raw: .*(truncated|expected).*byte offset \d+" % cut):
            read_nnet3(path)


def test_text_file_truncated_inside_a_matrix(tmp_path):
    from tfspk.importers.kaldi_nnet3 import read_nnet3
    data = open(os.path.join(FIXTURES, "final.txt.raw"), "rb").read()
    path = _write(tmp_path, "cut.txt.raw", data[:data.index(b"<BiasParams>", 20000) - 50])
    with pytest.raises(ToolError, match=r"no closing '\]'; truncated\?\) \(byte offset \d+\)"):
        read_nnet3(path)


@pytest.mark.parametrize("binary", [False, True])
def test_unknown_component_names_component_and_offset(tmp_path, model_weights, binary):
    from tfspk.importers.kaldi_nnet3 import read_nnet3
    data = ref.nnet3_bytes(model_weights, binary, extra_component=(
        "tdnn3.dropout", b"<DropoutComponent> <Dim> " + (b"\x04\x18\x00\x00\x00" if binary else b"24 ")
        + b"</DropoutComponent> "))
    path = _write(tmp_path, "dropout.raw", data)
    with pytest.raises(ToolError, match=r"component 'tdnn3.dropout' has type <DropoutComponent>, which this importer "
                                        r"does not know .*byte offset %d" % data.index(b"<DropoutComponent>")):
        read_nnet3(path)


def test_unknown_field_wrong_context_and_left_over_component(tmp_path, model_weights):
    from tfspk.importers.kaldi_nnet3 import map_xvector, read_nnet3
    text = ref.nnet3_bytes(model_weights, False)
    bad_field = text.replace(b"<TargetRms>", b"<TargetRMS>", 1)
    with pytest.raises(ToolError, match=r"component 'tdnn1.batchnorm' \(BatchNormComponent\): unexpected '<TargetRMS>' "
                                        r"\(byte offset \d+\)"):
        read_nnet3(_write(tmp_path, "field.raw", bad_field))
    lines = ref.config_lines()
    lines[4] = lines[4].replace("Offset(tdnn1.batchnorm, -2), tdnn1.batchnorm, Offset(tdnn1.batchnorm, 2)",
                                "Offset(tdnn1.batchnorm, -1), tdnn1.batchnorm, Offset(tdnn1.batchnorm, 1)")
    other = read_nnet3(_write(tmp_path, "context.raw", ref.nnet3_bytes(model_weights, False, lines=lines)))
    with pytest.raises(ToolError, match=r"node 'tdnn2.affine' reads tdnn1.batchnorm at offsets \[-1, 0, 1\]; layer 2 "
                                        r"of the x-vector TDNN \(tdnn_kaldi\) has context \[-2, 0, 2\]"):
        map_xvector(other)
    extra = ref.nnet3_bytes(model_weights, False, extra_component=(
        "spare.relu", b"<RectifiedLinearComponent> <Dim> 4 <ValueAvg> [ ] <DerivAvg> [ ] <Count> 0 "
                      b"</RectifiedLinearComponent> "))
    with pytest.raises(ToolError, match=r"1 component\(s\) not part of the x-vector chain: spare.relu \(first at byte "
                                        r"offset \d+\)"):
        map_xvector(read_nnet3(_write(tmp_path, "extra.raw", extra)))


def test_foreign_files_are_refused(tmp_path):
    from tfspk.importers.kaldi_nnet3 import read_nnet3
    with pytest.raises(ToolError, match=r"not a Kaldi nnet3 file: expected <Nnet3>, got 'PK"):
        read_nnet3(_write(tmp_path, "model.pt", b"PK\x03\x04 some zip"))
    with pytest.raises(ToolError, match=r"a Kaldi .mdl"):
        read_nnet3(_write(tmp_path, "final.mdl", b"\0B<TransitionModel> <Topology> "))
    with pytest.raises(ToolError, match=r"cannot read .*nowhere.raw"):
        read_nnet3(str(tmp_path / "nowhere.raw"))


def test_tool_errors_exit_non_zero_without_traceback(tmp_path, tool):
    data = open(os.path.join(FIXTURES, "final.raw"), "rb").read()
    path = _write(tmp_path, "cut.raw", data[:5000])
    proc = tool(f"tfspk-import-model --source=kaldi_nnet3 {path} {tmp_path}/exp", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "byte offset" in proc.stderr
    assert not (tmp_path / "exp").exists()
    proc = tool(f"tfspk-import-model --source=kaldi_nnet3 --param recipe=sre16 {FIXTURES}/final.raw {tmp_path}/exp2",
                check=False)
    assert proc.returncode != 0 and "takes 30-dim features; the sre16 recipe's MFCCs have 23" in proc.stderr


# ---------------------------------------------------------------------------------------------- fine-tuning
def test_fine_tune_the_imported_model_on_new_speakers(imported_dir, tmp_path):
    """init_from an imported Kaldi model (no checkpoint, no spk2int): the network comes from its config.yaml
    and the front end from its features.yaml, the head from the new speakers' mean embeddings; lr ~ 0 keeps the weights."""
    from test_train import make_features
    from tfspk.train import build_config, train
    from tfspk.train.inference import load_for_inference
    data = make_features(str(tmp_path / "data"), num_speakers=5, dim=30)
    config = build_config(None, ["data.speakers_per_batch=4", "data.min_frames=48", "data.max_frames=48",
                                 "valid.num_utts=5", "valid.frames=40", "schedule.steps_per_epoch=3",
                                 "schedule.num_epochs=1", "optimizer.lr=1e-30", "optimizer.momentum=0",
                                 "optimizer.weight_decay=0", "loss.name=amsoftmax", f"init_from={imported_dir}"])
    with open(os.devnull, "w") as null:
        train(data, str(tmp_path / "tuned"), config, stream=null)
    from tfspk.features.frontend import read_front_end
    assert read_front_end(str(tmp_path / "tuned")).to_dict() == read_front_end(str(imported_dir)).to_dict()
    log = (tmp_path / "tuned" / "log" / "train.log").read_text()
    assert f"initialised the network from {imported_dir}/final/model.weights.h5" in log
    assert "new head of 5 classes from the mean embeddings" in log
    source, tuned = load_for_inference(str(imported_dir))[0], load_for_inference(str(tmp_path / "tuned"))[0]
    tuned.load_weights(str(tmp_path / "tuned" / "final" / "last.weights.h5"))
    for a, b in zip(source.weights, tuned.weights):
        if "moving" not in a.path:
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-12, err_msg=a.path)


def test_the_command_of_docs_import_md_runs_as_written(tool, tmp_path, monkeypatch):
    """docs/import.md's Kaldi command, run from a dir where tests/ is the repository's (the command's cwd)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    lines = [line for line in open(os.path.join(repo, "docs", "import.md")).read().splitlines()
             if line.startswith("tfspk-import-model --source=kaldi_nnet3")]
    assert len(lines) == 1
    os.symlink(os.path.join(repo, "tests"), tmp_path / "tests")
    monkeypatch.chdir(tmp_path)
    tool(lines[0])
    assert (tmp_path / "exp" / "import_demo" / "kaldi_xvector" / "final" / "DONE").is_file()
