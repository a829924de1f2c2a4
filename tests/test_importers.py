"""tfspk.importers: PyTorch checkpoints read without torch (and never executed), WeSpeaker/SpeechBrain models
converted exactly (against the source toolkits' own features and embeddings, tests/fixtures/import, made by
tests/fixtures/import/make_fixtures.py), tfspk-import-model, and the imported experiment dir through tfspk's tools."""
import io
import os
import pickle
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO, run, run_tool_here
from tfspk.errors import ToolError

FIXTURES = REPO / "tests" / "fixtures" / "import"
UTTS = ("utt1", "utt2")
#: fixture model dir -> (source, checkpoint file name)
MODELS = {"wespeaker_resnet34": ("wespeaker_resnet", "avg_model.pt"),
          "wespeaker_ecapa": ("wespeaker_ecapa_tdnn", "avg_model.pt")}
FEATURE_TOLERANCE = 1e-3      # log-mel values (about -15..15 after mean subtraction); measured 3.1e-4
EMBEDDING_TOLERANCE = 1e-5    # embeddings of magnitude ~0.5-0.9; measured <= 1e-6


def _cosine(a, b):
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(FIXTURES / "reference.npz"))


# ------------------------------------------------------------------------------- the zip reader
def _torch_like_zip(path, payload: bytes, top="archive", storages=None, byteorder="little"):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{top}/data.pkl", payload)
        archive.writestr(f"{top}/byteorder", byteorder)
        for key, data in (storages or {}).items():
            archive.writestr(f"{top}/data/{key}", data)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_calls_anything_else_is_refused_without_running_it(tmp_path):
    from tfspk.importers.torch_zip import read_state_dict
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = marker
    checkpoint = tmp_path / "evil.pt"
    _torch_like_zip(checkpoint, pickle.dumps({"conv.weight": evil}, protocol=2))
    with pytest.raises(ToolError, match=r"evil\.pt: the checkpoint's pickle names '(posix|os)\.system', which is not "
                                        r"a tensor rebuild.*refused without running it"):
        read_state_dict(str(checkpoint))
    assert not marker.exists()
    # builtins (eval/exec/getattr) and torch's own loader are refused the same way
    for module, name in (("builtins", "eval"), ("builtins", "getattr"), ("torch", "load"), ("torch._utils", "x")):
        payload = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X\x01\x00\x00\x001\x85R."
        _torch_like_zip(checkpoint, payload)
        with pytest.raises(ToolError, match=rf"names '{module}\.{name}'"):
            read_state_dict(str(checkpoint))


def test_not_a_checkpoint_and_legacy_format_are_clear_errors(tmp_path):
    from tfspk.importers.torch_zip import read_state_dict
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps(119547037146038801333356, protocol=2))   # torch's legacy magic number first
    with pytest.raises(ToolError, match=r"legacy \(pre-1\.6, non-zip\) torch\.save file.*torch\.save\(torch\.load"):
        read_state_dict(str(legacy))
    text = tmp_path / "model.txt"
    text.write_text("hello")
    with pytest.raises(ToolError, match="model.txt: not a PyTorch checkpoint"):
        read_state_dict(str(text))
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("a/b.txt", "x")
    with pytest.raises(ToolError, match="not a PyTorch checkpoint .no <folder>/data.pkl"):
        read_state_dict(str(other))
    with pytest.raises(ToolError, match="no such checkpoint file"):
        read_state_dict(str(tmp_path / "missing.pt"))


def _fake_torch_pickle(tensors: dict) -> tuple[bytes, dict]:
    """A pickle as torch.save writes it (names torch._utils._rebuild_tensor_v2 and torch.<Type>Storage, storages
    as persistent ids), made with stand-in modules; tensors: name -> (storage array, offset, size, stride)."""
    utils = types.ModuleType("torch._utils")
    torch = types.ModuleType("torch")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called")
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    storage_types = {}
    for name in ("FloatStorage", "LongStorage", "HalfStorage"):
        storage_types[name] = type(name, (), {"__module__": "torch"})
        setattr(torch, name, storage_types[name])
    torch._utils = utils
    kinds = {np.dtype("<f4"): "FloatStorage", np.dtype("<i8"): "LongStorage", np.dtype("<f2"): "HalfStorage"}

    class Storage:
        def __init__(self, key, array):
            self.key, self.array = key, array

    class Tensor:
        def __init__(self, storage, offset, size, stride):
            self.args = (storage, offset, size, stride, False, __import__("collections").OrderedDict())

        def __reduce__(self):
            return (_rebuild_tensor_v2, self.args)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                return ("storage", storage_types[kinds[obj.array.dtype]], obj.key, "cpu", obj.array.size)
            return None

    saved = dict(sys.modules)
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        state, storages = {}, {}
        for index, (name, (array, offset, size, stride)) in enumerate(tensors.items()):
            storages[str(index)] = array.tobytes()
            state[name] = Tensor(Storage(str(index), array), offset, size, stride)
        buffer = io.BytesIO()
        Pickler(buffer, protocol=2).dump(__import__("collections").OrderedDict(state))
    finally:
        sys.modules.clear()
        sys.modules.update(saved)
    return buffer.getvalue(), storages


def test_tensors_are_rebuilt_with_offset_stride_and_dtype(tmp_path):
    """Independent statement: element [i, j] of a tensor = storage[offset + i stride_0 + j stride_1]."""
    from tfspk.importers.torch_zip import TorchCheckpoint
    base = np.arange(24, dtype="<f4") * 0.5
    payload, storages = _fake_torch_pickle({
        "plain": (base, 0, (4, 6), (6, 1)),
        "transposed": (base, 2, (5, 3), (1, 6)),    # a non-contiguous view at an offset
        "counter": (np.array([7], "<i8"), 0, (), ()),
        "half": (np.array([1.5, -2.0], "<f2"), 1, (1,), (1,)),
    })
    _torch_like_zip(tmp_path / "m.pt", payload, top="m", storages=storages)
    state = TorchCheckpoint(str(tmp_path / "m.pt")).state_dict()
    assert list(state) == ["plain", "transposed", "counter", "half"]
    np.testing.assert_array_equal(state["plain"], base.reshape(4, 6))
    want = np.array([[base[2 + i + 6 * j] for j in range(3)] for i in range(5)])
    np.testing.assert_array_equal(state["transposed"], want)
    assert state["counter"].shape == () and state["counter"] == 7 and state["counter"].dtype == np.int64
    assert state["half"].tolist() == [-2.0]
    # big-endian storages are byte-swapped
    payload, storages = _fake_torch_pickle({"plain": (base, 0, (24,), (1,))})
    _torch_like_zip(tmp_path / "b.pt", payload, storages={"0": base.astype(">f4").tobytes()}, byteorder="big")
    np.testing.assert_array_equal(TorchCheckpoint(str(tmp_path / "b.pt")).state_dict()["plain"], base)
    # a tensor reaching beyond its storage (corrupt or truncated file)
    payload, storages = _fake_torch_pickle({"w": (base, 20, (2, 6), (6, 1))})
    _torch_like_zip(tmp_path / "c.pt", payload, storages=storages)
    with pytest.raises(ToolError, match=r"c\.pt: a tensor of size \(2, 6\) at offset 20 does not fit in storage 0"):
        TorchCheckpoint(str(tmp_path / "c.pt"))


# ------------------------------------------------------------------------------- conversion exactness
@pytest.fixture(scope="module")
def converted():
    from tfspk.importers import get_source
    from tfspk.importers.expdir import build_model
    out = {}
    for name, (source, filename) in MODELS.items():
        imported = get_source(source).convert(str(FIXTURES / name / filename))
        out[name] = (imported, build_model(imported))
    return out


@pytest.mark.parametrize("name", MODELS)
def test_every_tensor_is_mapped(converted, name):
    from tfspk.importers.torch_zip import read_state_dict
    imported, model = converted[name]
    state = read_state_dict(str(FIXTURES / name / MODELS[name][1]))
    # every checkpoint tensor is used, or is the loss head / a BN counter (named in the experiment's facts)
    assert imported.facts["tensors_mapped"] + len(imported.ignored) == len(state)
    assert all(key.startswith("projection.") or key.endswith(".num_batches_tracked") for key in imported.ignored)
    assert "projection.weight" in imported.ignored
    # every variable of the network gets a weight (build_model refuses otherwise)
    assert sorted(imported.weights) == sorted(v.path for v in model.weights)
    used = [k for k in state if k not in imported.ignored]
    assert sum(state[k].size for k in used) == sum(int(np.prod(v.shape)) for v in model.weights)


def test_leftover_or_missing_tensors_are_errors(monkeypatch):
    from tfspk.importers import get_source, wespeaker
    from tfspk.importers.torch_zip import read_state_dict
    path = str(FIXTURES / "wespeaker_resnet34" / "avg_model.pt")
    state = read_state_dict(path)
    extra = dict(state, **{"layer4.2.extra.weight": np.zeros(3, np.float32)})
    monkeypatch.setattr(wespeaker, "read_state_dict", lambda p: extra)
    with pytest.raises(ToolError, match=r"1 tensor\(s\) of the checkpoint are not used by the conversion: "
                                        r"layer4\.2\.extra\.weight"):
        get_source("wespeaker_resnet").convert(path)
    missing = {k: v for k, v in state.items() if k != "layer3.1.bn2.running_var"}
    monkeypatch.setattr(wespeaker, "read_state_dict", lambda p: missing)
    with pytest.raises(ToolError, match=r"tensor 'layer3\.1\.bn2\.running_var' is missing"):
        get_source("wespeaker_resnet").convert(path)
    ddp = {f"module.{k}": v for k, v in state.items()}   # DDP-saved keys load the same
    monkeypatch.setattr(wespeaker, "read_state_dict", lambda p: ddp)
    assert get_source("wespeaker_resnet").convert(path).network.params.layout == "resnet34"
    with pytest.raises(ToolError, match="unknown import source 'kaldi_xyz'; valid sources: .*wespeaker_resnet"):
        get_source("kaldi_xyz")


def _front_end_features(front_end, samples, rate):
    """The front end at inference: its features (no dither), then its CMN as inference_cmn() gives it."""
    from tfspk.features.cmvn import apply_cmvn_sliding
    feats = front_end.extractor(dither=False)(samples, rate)
    apply, window = front_end.inference_cmn()
    return apply_cmvn_sliding(feats, cmn_window=window, center=True) if apply else feats


def _source_features(imported, utt):
    """tfspk's features and mean normalisation (the imported front end) of a fixture wav."""
    from tfspk.io.audio import read_audio
    samples, rate = read_audio(str(FIXTURES / "audio" / f"{utt}.wav"))
    assert rate == imported.front_end.sample_rate
    return _front_end_features(imported.front_end, samples, rate)


@pytest.mark.parametrize("name", MODELS)
def test_features_and_embeddings_equal_the_source_toolkits(converted, reference, name):
    imported, model = converted[name]
    front_end = imported.front_end
    assert front_end.feature_type == "fbank" and front_end.sample_rate == 16000 and not front_end.vad
    assert front_end.cmn == "crop" and front_end.post == []
    for utt in UTTS:
        feats = _source_features(imported, utt)
        want_feats = reference[f"{name}/{utt}/feats"]
        assert feats.shape == want_feats.shape
        assert np.abs(feats - want_feats).max() < FEATURE_TOLERANCE
        want = reference[f"{name}/{utt}/embedding"]
        for label, inputs in (("source features", want_feats), ("tfspk features", feats)):
            got = model(inputs[None])["embedding_a"].numpy()[0]
            assert _cosine(got, want) >= 0.9999, (name, utt, label)
            assert np.abs(got - want).max() < EMBEDDING_TOLERANCE, (name, utt, label, np.abs(got - want).max())


def test_utterance_longer_than_the_default_cmn_window_uses_its_own_mean(converted, reference):
    """utt2 has 335 frames: a 300-frame sliding window would differ from WeSpeaker's utterance mean."""
    imported, _ = converted["wespeaker_resnet34"]
    apply, window = imported.front_end.inference_cmn()
    assert apply and window > 10 ** 6
    feats = _source_features(imported, "utt2")
    assert feats.shape[0] > 300
    np.testing.assert_allclose(feats.mean(axis=0), 0, atol=1e-4)


# ------------------------------------------------------------------------------- tools on the exp dir
#: The TFLite and ONNX conversions of the imported networks are checked on one representative, the SpeechBrain
#: fixture (speechbrain_export, every backend): its front end is the only one of its kind (speechbrain_fbank's
#: graph), its ECAPA-TDNN has the layer kinds of WeSpeaker's (dilated Conv1D, Res2 groups, squeeze-excitation,
#: attentive statistics pooling with the utterance's mean and std, PyTorch-epsilon BN), and it has the WeSpeaker
#: fixtures' utterance-mean CMN without VAD. The WeSpeaker fixtures are exported to the SavedModel only (the model
#: TFLite and ONNX are converted from): wespeaker_resnet's Conv2D, BN, ReLU and Add layers are those
#: tests/test_export.py converts to every format in resnet18 (its explicit ZeroPadding2D is a constant pad), which
#: also converts their Kaldi fbank graph; their pooling (mean and standard deviation over time) is the statistics
#: pooling of test_export.py's converted TDNN.
IMPORTED_BACKENDS = ("saved_model",)


@pytest.fixture(scope="module")
def imported_dirs(tmp_path_factory):
    """tfspk-import-model of each fixture checkpoint (in this process), then tfspk-export to IMPORTED_BACKENDS."""
    root = tmp_path_factory.mktemp("imported")
    dirs = {}
    for name, (source, filename) in MODELS.items():
        run_tool_here(["tfspk-import-model", f"--source={source}", FIXTURES / name / filename, root / name / "exp"])
        run_tool_here(["tfspk-export", "--tflite=false", "--onnx=false", root / name / "exp", root / name / "export"])
        dirs[name] = root / name
    return dirs


@pytest.mark.parametrize("name", MODELS)
def test_imported_experiment_dir_is_finished_and_records_the_front_end(imported_dirs, name):
    from tfspk.features.frontend import read_front_end
    exp = imported_dirs[name] / "exp"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert sorted(config) == ["feat_dim", "imported", "nnet", "num_classes"] and config["feat_dim"] == 80
    assert config["imported"]["source"] == MODELS[name][0]
    for path in ("final/DONE", "final/model.weights.h5", "features.yaml"):
        assert (exp / path).is_file(), path
    # one home for the front end: no feature config files beside features.yaml
    assert sorted(p.name for p in exp.iterdir()) == ["config.yaml", "features.yaml", "final"]
    front_end = read_front_end(str(exp))
    frame = front_end.options.frame
    assert (front_end.feature_type, front_end.dim, front_end.sample_rate) == ("fbank", 80, 16000)
    assert (frame.window_type, frame.dither, frame.frame_length, frame.frame_shift) == ("hamming", 0, 25, 10)
    assert not front_end.options.use_energy and front_end.options.mel.num_mel_bins == 80
    assert front_end.cmn == "crop" and not front_end.vad and front_end.post == []
    from tfspk.nnet import load_trained
    model, _, network = load_trained(str(exp))
    assert network.network_name == config["nnet"]["name"]


def test_import_refuses_a_non_empty_dir_and_a_wrong_source(imported_dirs, tool):
    exp = imported_dirs["wespeaker_resnet34"] / "exp"
    proc = tool(f"tfspk-import-model --source=wespeaker_resnet {FIXTURES}/wespeaker_resnet34/avg_model.pt {exp}", check=False)
    assert proc.returncode == 1 and "exists and is not empty" in proc.stderr
    proc = tool(f"tfspk-import-model --source=wespeaker_resnet {FIXTURES}/wespeaker_ecapa/avg_model.pt {exp}x", check=False)
    assert proc.returncode == 1 and "'conv1.weight' is missing" in proc.stderr
    assert not os.path.exists(f"{exp}x")


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("backend", IMPORTED_BACKENDS)
def test_embedder_from_raw_audio_equals_the_source(imported_dirs, reference, name, backend):
    from tfspk.export import Embedder
    embedder = Embedder(str(imported_dirs[name] / "export"), backend=backend)
    assert embedder.sample_rate == 16000
    for utt in UTTS:
        got = embedder.embed_file(str(FIXTURES / "audio" / f"{utt}.wav"))
        want = reference[f"{name}/{utt}/embedding"]
        assert _cosine(got, want) >= 0.9999, (name, backend, utt, _cosine(got, want))
        assert np.abs(got - want).max() < 1e-4, (name, backend, utt, np.abs(got - want).max())


# wespeaker_ecapa only: the wespeaker_resnet34 dir goes through the same make_fbank.sh and extract_xvectors.sh
# commands in test_the_commands_of_docs_import_md_run_as_written (docs/import.md's second block, compressed features,
# cosine >= 0.9999 against the source); the path is the same for every imported network.
@pytest.mark.parametrize("name", ["wespeaker_ecapa"])
def test_extract_xvectors_sh_equals_the_source(imported_dirs, reference, name, tmp_path):
    from tfspk.io.ark import read_rspecifier
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("".join(f"{u} {FIXTURES}/audio/{u}.wav\n" for u in UTTS))
    (data / "utt2spk").write_text("".join(f"{u} {u}\n" for u in UTTS))
    (data / "spk2utt").write_text("".join(f"{u} {u}\n" for u in UTTS))
    exp = imported_dirs[name] / "exp"
    export = imported_dirs[name] / "export"
    # features.yaml says no VAD and the utterance's mean: no --use-vad or --cmn-window, no vad.scp
    run(f"make_fbank.sh --nj 1 --compress false --fbank-config {export}/conf/features.conf data exp/make_fbank fbank && "
        f"extract_xvectors.sh --nj 1 {exp} data {tmp_path}/xv", cwd=tmp_path)
    got = dict(read_rspecifier(f"scp:{tmp_path}/xv/xvector.scp"))
    assert sorted(got) == list(UTTS)
    for utt in UTTS:
        want = reference[f"{name}/{utt}/embedding"]
        assert _cosine(got[utt], want) >= 0.9999
        assert np.abs(got[utt] - want).max() < EMBEDDING_TOLERANCE * 10


def test_import_tool_usage_lists_the_sources(tool):
    proc = tool("tfspk-import-model --help-source wespeaker_resnet")
    assert "sample_rate" in proc.stdout
    proc = tool("tfspk-import-model", check=False)
    assert proc.returncode != 0 and "wespeaker_ecapa_tdnn" in proc.stderr


# ------------------------------------------------------------------------------- SpeechBrain
SB_CHECKPOINT = FIXTURES / "speechbrain_ecapa" / "embedding_model.ckpt"
SB_EMB_NORM = FIXTURES / "speechbrain_ecapa" / "mean_var_norm_emb.ckpt"
SB_FEATURE_TOLERANCE = 1e-3   # dB values about -55..20; measured 4.9e-4 (float32 log10 of small energies)


def _sb_fbank_reference(samples, rate, n_mels=80):
    """An independent statement of SpeechBrain's Fbank (defaults: 16 kHz, n_fft 400, 25/10 ms), loops and float64."""
    x = samples.astype(np.float64) / 32768.0
    n_fft, hop, win = 400, 160, 400
    x = np.concatenate([np.zeros(200), x, np.zeros(200)])
    mel = lambda f: 2595 * np.log10(1 + f / 700)   # noqa: E731
    hz = 700 * (10 ** (np.linspace(mel(0), mel(rate / 2), n_mels + 2) / 2595) - 1)
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    bank = np.zeros((n_fft // 2 + 1, n_mels))
    for b in range(n_mels):
        centre, half = hz[b + 1], hz[b + 1] - hz[b]
        bank[:, b] = np.clip(1 - np.abs(freqs - centre) / half, 0, None)
    window = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(win) / win)
    rows = []
    for t in range(1 + (len(x) - n_fft) // hop):
        frame = x[t * hop:t * hop + n_fft] * window
        spectrum = np.array([np.sum(frame * np.exp(-2j * np.pi * k * np.arange(n_fft) / n_fft))
                             for k in range(n_fft // 2 + 1)])
        rows.append(np.abs(spectrum) ** 2 @ bank)
    db = 10 * np.log10(np.maximum(np.array(rows), 1e-10))
    return np.maximum(db, db.max() - 80)


def test_speechbrain_fbank_equals_speechbrain_and_an_independent_statement(reference):
    import tensorflow as tf
    from tfspk.features.speechbrain_fbank import SpeechBrainFbankOptions, SpeechBrainFbankTF, speechbrain_fbank
    from tfspk.io.audio import read_audio
    opts = SpeechBrainFbankOptions()
    graph = SpeechBrainFbankTF(opts)
    for utt in UTTS:
        samples, rate = read_audio(str(FIXTURES / "audio" / f"{utt}.wav"))
        feats = speechbrain_fbank(samples, rate, opts)
        want = reference[f"speechbrain_ecapa/{utt}/fbank"]
        assert feats.shape == want.shape == (1 + len(samples) // 160, 80)
        assert np.abs(feats - want).max() < SB_FEATURE_TOLERANCE
        assert np.abs(graph(tf.constant(samples)).numpy() - feats).max() < SB_FEATURE_TOLERANCE
    short = samples[:1234]
    np.testing.assert_allclose(speechbrain_fbank(short, rate, opts), _sb_fbank_reference(short, rate), atol=2e-3)
    # edge cases: silence hits the amin floor everywhere; the top-db floor is relative to the loudest value
    silence = speechbrain_fbank(np.zeros(800, np.float32), 16000, opts)
    assert silence.shape == (6, 80) and np.allclose(silence, -100, atol=1e-4)
    assert np.allclose(graph(tf.zeros([800])).numpy(), -100, atol=1e-4)
    loud = speechbrain_fbank(short * 100, rate, opts)
    assert loud.min() >= loud.max() - 80 - 1e-4
    with pytest.raises(ToolError, match="sample rate 8000 Hz differs"):
        speechbrain_fbank(short, 8000, opts)


def test_speechbrain_fbank_is_a_registered_feature_type_with_checked_options(tmp_path):
    from tfspk.features.options import option_lines, read_options_file, validate
    from tfspk.features.registry import feature_type
    from tfspk.features.speechbrain_fbank import SpeechBrainFbankOptions
    entry = feature_type("speechbrain_fbank")
    assert entry.Options is SpeechBrainFbankOptions
    conf = tmp_path / "sb.conf"
    conf.write_text("".join(line + "\n" for line in option_lines(SpeechBrainFbankOptions(num_mel_bins=40))))
    opts = read_options_file(str(conf), entry.Options(), "speechbrain_fbank")
    assert opts.num_mel_bins == 40 and opts.frame.frame_shift == 10 and opts.n_fft == 400
    conf.write_text("--num-mel-bins=80\n--hop-size=3\n")
    with pytest.raises(ToolError, match=r"sb\.conf:2: unknown option '--hop-size'"):
        read_options_file(str(conf), entry.Options(), "speechbrain_fbank")
    for line, message in (("--f-max=9000", "need 0 <= f-min < f-max <= 8000"),
                          ("--preemphasis-coefficient=0.97", "--preemphasis-coefficient must be 0.0 for SpeechBrain"),
                          ("--snip-edges=true", "--snip-edges must be false"),
                          ("--window-type=povey", "--window-type must be hamming"),
                          ("--frame-length=30", r"1 <= window <= n-fft samples \(got 80, 400, 160, 480\)")):
        conf.write_text(f"--sample-frequency=16000\n{line}\n")
        opts = read_options_file(str(conf), entry.Options(), "speechbrain_fbank")
        with pytest.raises(ToolError, match=message):
            validate(opts)
    # its frame count (1 + N // hop) is not Kaldi's: an energy VAD whose MFCC frames differ is refused
    from tfspk.features.frontend import FrontEnd
    from tfspk.features.mfcc import num_frames
    assert entry.num_frames(SpeechBrainFbankOptions(), 1000) == 7 != num_frames(1000, SpeechBrainFbankOptions().frame)
    with pytest.raises(ToolError, match="different numbers of frames"):
        FrontEnd("speechbrain_fbank", SpeechBrainFbankOptions(), vad=True)


@pytest.mark.parametrize("normalize", [False, True], ids=["plain", "embedding_norm"])
def test_speechbrain_ecapa_every_tensor_mapped_and_embeddings_equal(reference, normalize):
    from tfspk.importers import get_source
    from tfspk.importers.expdir import build_model
    from tfspk.importers.torch_zip import read_state_dict
    from tfspk.io.audio import read_audio
    params = {"embedding_norm": str(SB_EMB_NORM)} if normalize else {}
    imported = get_source("speechbrain_ecapa", params).convert(str(SB_CHECKPOINT))
    state = read_state_dict(str(SB_CHECKPOINT))
    assert imported.facts["tensors_mapped"] + len(imported.ignored) == len(state)
    assert all(key.endswith(".num_batches_tracked") for key in imported.ignored)
    model = build_model(imported)
    assert sorted(imported.weights) == sorted(v.path for v in model.weights)
    front_end = imported.front_end
    assert front_end.feature_type == "speechbrain_fbank" and not front_end.vad and front_end.cmn == "crop"
    assert front_end.options.num_mel_bins == 80 and front_end.sample_rate == 16000
    suffix = "_normalized" if normalize else ""
    for utt in UTTS:
        samples, rate = read_audio(str(FIXTURES / "audio" / f"{utt}.wav"))
        feats = _front_end_features(front_end, samples, rate)
        want_feats = reference[f"speechbrain_ecapa/{utt}/feats"]
        assert np.abs(feats - want_feats).max() < SB_FEATURE_TOLERANCE
        want = reference[f"speechbrain_ecapa/{utt}/embedding{suffix}"]
        for label, inputs in (("source features", want_feats), ("tfspk features", feats)):
            got = model(inputs[None])["embedding_a"].numpy()[0]
            assert _cosine(got, want) >= 0.9999, (utt, label)
            assert np.abs(got - want).max() < EMBEDDING_TOLERANCE, (utt, label, np.abs(got - want).max())


def test_speechbrain_network_needs_more_frames_than_its_reflection_padding():
    from tfspk.nnet import get_network
    network = get_network("speechbrain_ecapa_tdnn", {"channels": 16, "mfa_channels": 8, "embedding_dim": 4,
                                                     "attention_channels": 4, "se_channels": 4})
    assert network.min_frames() == 5
    model = network.build(8)
    x = np.random.default_rng(0).normal(size=(1, 5, 8)).astype(np.float32)
    assert np.all(np.isfinite(model(x)["embedding_a"].numpy()))
    # reflection padding, stated in numpy: frames mirrored about the edges, the edge frame not repeated
    from tfspk.nnet.speechbrain import ReflectPad1D
    padded = ReflectPad1D(2)(x).numpy()[0]
    np.testing.assert_array_equal(padded, np.concatenate([x[0, 2:0:-1], x[0], x[0, -2:-4:-1]]))


def _doc_blocks():
    text = (REPO / "docs" / "import.md").read_text(encoding="utf-8")
    section = text.split("## Example with the test fixtures", 1)[1].split("\n## ", 1)[0]
    return [block.split("\n", 1)[1] for block in section.split("```sh")[1:] for block in [block.split("```")[0]]]


def test_the_commands_of_docs_import_md_run_as_written(tmp_path, monkeypatch):
    """docs/import.md's example, from a copy of the repository root (tests/ linked), exactly as shown."""
    (tmp_path / "tests").symlink_to(REPO / "tests")
    (tmp_path / "steps").symlink_to(REPO / "steps")
    (tmp_path / "utils").symlink_to(REPO / "utils")
    data = tmp_path / "data" / "import_demo"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text("".join(f"{u} tests/fixtures/import/audio/{u}.wav\n" for u in UTTS))
    (data / "utt2spk").write_text("".join(f"{u} {u}\n" for u in UTTS))
    (data / "spk2utt").write_text("".join(f"{u} {u}\n" for u in UTTS))
    blocks = _doc_blocks()
    assert len(blocks) == 2 and "tfspk-import-model" in blocks[0] and "extract_xvectors.sh" in blocks[1]
    proc = run(blocks[0], cwd=tmp_path)
    score = float(proc.stdout.split("score ", 1)[1].split()[0])
    reference = np.load(FIXTURES / "reference.npz")
    want = _cosine(reference["wespeaker_resnet34/utt1/embedding"], reference["wespeaker_resnet34/utt2/embedding"])
    assert abs(score - want) < 1e-4, proc.stdout
    run(blocks[1], cwd=tmp_path)
    from tfspk.io.ark import read_rspecifier
    monkeypatch.chdir(tmp_path)   # the scp holds paths relative to where the commands ran
    got = dict(read_rspecifier("scp:exp/import_demo/xvectors/xvector.scp"))
    for utt in UTTS:
        assert _cosine(got[utt], reference[f"wespeaker_resnet34/{utt}/embedding"]) >= 0.9999


def test_speechbrain_import_writes_a_finished_experiment_dir(speechbrain_import, tmp_path, tool, reference):
    exp, stderr = speechbrain_import
    assert "unused tensors" in stderr
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["nnet"]["name"] == "speechbrain_ecapa_tdnn" and "features" not in config
    assert config["imported"]["embedding_norm"] == str(SB_EMB_NORM)
    from tfspk.features.frontend import read_front_end
    front_end = read_front_end(str(exp))
    assert front_end.feature_type == "speechbrain_fbank" and front_end.options.num_mel_bins == 80
    assert front_end.cmn == "crop" and not front_end.vad
    from tfspk.nnet import load_trained
    model, _, _ = load_trained(str(exp))
    got = model(reference["speechbrain_ecapa/utt1/feats"][None])["embedding_a"].numpy()[0]
    assert np.abs(got - reference["speechbrain_ecapa/utt1/embedding_normalized"]).max() < EMBEDDING_TOLERANCE
    proc = tool(f"tfspk-import-model --source=speechbrain_ecapa --param embedding_norm={SB_CHECKPOINT} {SB_CHECKPOINT} "
                f"{tmp_path}/bad", check=False)
    assert proc.returncode == 1 and "no 'glob_mean' tensor" in proc.stderr and not (tmp_path / "bad").exists()


@pytest.fixture(scope="module")
def speechbrain_import(tmp_path_factory):
    """tfspk-import-model of the SpeechBrain fixture (with its embedding normalisation), once for the file (the
    import test reads it, speechbrain_export exports it): (exp dir, the tool's stderr)."""
    exp = tmp_path_factory.mktemp("speechbrain") / "exp"
    imported = run_tool_here(["tfspk-import-model", "--source=speechbrain_ecapa",
                              f"--param=embedding_norm={SB_EMB_NORM}", SB_CHECKPOINT, exp])
    return exp, imported.stderr


@pytest.fixture(scope="module")
def speechbrain_export(speechbrain_import):
    """tfspk-export of speechbrain_import's dir with every backend: the speechbrain_fbank feature type's
    TensorFlow graph from the recorded front end."""
    exp, _ = speechbrain_import
    run_tool_here(["tfspk-export", exp, exp.parent / "export"])
    return exp.parent / "export"


@pytest.mark.parametrize("backend", ["saved_model", "tflite", "onnx"])
def test_speechbrain_embedder_from_raw_audio_equals_the_source(speechbrain_export, reference, backend):
    from tfspk.export import Embedder
    embedder = Embedder(str(speechbrain_export), backend=backend)
    assert embedder.sample_rate == 16000
    for utt in UTTS:
        got = embedder.embed_file(str(FIXTURES / "audio" / f"{utt}.wav"))
        want = reference[f"speechbrain_ecapa/{utt}/embedding_normalized"]
        assert _cosine(got, want) >= 0.9999, (backend, utt, _cosine(got, want))
        assert np.abs(got - want).max() < 1e-4, (backend, utt, np.abs(got - want).max())


def test_speechbrain_through_the_steps_scripts_equals_the_source(speechbrain_export, reference, tmp_path):
    """The imported SpeechBrain dir through Kaldi-style steps: steps/make_front_end_feats.sh (tfspk-front-end-conf ->
    steps/make_speechbrain_fbank.sh) and steps/extract_xvectors.sh, with no feature option: SpeechBrain's features
    and embeddings (its embedding normalisation folded in)."""
    from tfspk.io.ark import read_rspecifier
    exp = speechbrain_export.parent / "exp"
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("".join(f"{u} {FIXTURES}/audio/{u}.wav\n" for u in UTTS))
    (data / "utt2spk").write_text("".join(f"{u} {u}\n" for u in UTTS))
    (data / "spk2utt").write_text("".join(f"{u} {u}\n" for u in UTTS))
    proc = run(f"make_front_end_feats.sh --nj 1 --compress false {exp} data exp/make_feats feats && "
               f"extract_xvectors.sh --nj 1 {exp} data {tmp_path}/xv", cwd=tmp_path)
    assert "make_speechbrain_fbank.sh" in proc.stdout and "VAD off" in proc.stdout
    assert not (data / "vad.scp").exists()
    feats = dict(read_rspecifier(f"scp:{data}/feats.scp"))
    got = dict(read_rspecifier(f"scp:{tmp_path}/xv/xvector.scp"))
    assert sorted(got) == sorted(feats) == list(UTTS)
    for utt in UTTS:
        assert np.abs(feats[utt] - reference[f"speechbrain_ecapa/{utt}/fbank"]).max() < SB_FEATURE_TOLERANCE
        want = reference[f"speechbrain_ecapa/{utt}/embedding_normalized"]
        assert _cosine(got[utt], want) >= 0.9999
        assert np.abs(got[utt] - want).max() < EMBEDDING_TOLERANCE * 10
    # Kaldi has no binary for these features
    proc = run(f"make_speechbrain_fbank.sh --use-kaldi true --speechbrain-fbank-config data/conf/features.conf data",
               cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "Kaldi has no compute-speechbrain-fbank-feats" in proc.stderr


def test_front_end_conf_writes_the_recorded_front_end_as_kaldi_config_files(tmp_path, tool):
    """tfspk-front-end-conf: the Kaldi x-vector's MFCC + energy VAD front end as config files that read back into
    the same options; a VAD file of an earlier front end is removed; a front end with post-processing is refused."""
    from tfspk.features.frontend import FrontEnd, read_front_end, write_front_end
    from tfspk.features.options import MfccOptions, read_options_file
    from tfspk.features.vad import VadOptions
    exp = tmp_path / "kaldi"
    tool(f"tfspk-import-model --source=kaldi_nnet3 {REPO}/tests/fixtures/kaldi_nnet3/final.raw {exp}")
    proc = tool(f"tfspk-front-end-conf {exp} {tmp_path}/conf")
    assert proc.stdout.strip() == "mfcc"
    front_end = read_front_end(str(exp))
    mfcc = read_options_file(str(tmp_path / "conf" / "features.conf"), MfccOptions(), "compute-mfcc-feats")
    assert mfcc == front_end.inference_options() and mfcc.frame.dither == 0 and mfcc.num_ceps == 30
    assert read_options_file(str(tmp_path / "conf" / "vad.conf"), VadOptions(), "compute-vad") == front_end.vad_options
    assert (read_options_file(str(tmp_path / "conf" / "vad_mfcc.conf"), MfccOptions(), "compute-mfcc-feats")
            == front_end.vad_energy_options())
    proc = tool(f"tfspk-front-end-conf {FIXTURES}/../kaldi_nnet3 {tmp_path}/conf", check=False)
    assert proc.returncode == 1 and "has no features.yaml" in proc.stderr
    no_vad = tmp_path / "no_vad"
    no_vad.mkdir()
    write_front_end(str(no_vad), FrontEnd("mfcc", front_end.options, cmn="crop", vad=False))
    tool(f"tfspk-front-end-conf {no_vad} {tmp_path}/conf")
    assert sorted(p.name for p in (tmp_path / "conf").iterdir()) == ["features.conf"]
    with_deltas = {**read_front_end(str(no_vad)).to_dict(), "post": ["add_deltas"]}
    del with_deltas["dim"]
    write_front_end(str(no_vad), FrontEnd.from_dict(with_deltas, "with deltas"))
    proc = tool(f"tfspk-front-end-conf {no_vad} {tmp_path}/conf2", check=False)
    assert proc.returncode == 1 and "post-processes" in proc.stderr and not (tmp_path / "conf2").exists()


def test_make_front_end_feats_gives_a_kaldi_xvector_its_mfcc_and_kaldis_vad(tmp_path, tool):
    """The Kaldi x-vector's front end (MFCC + energy VAD) through steps/make_front_end_feats.sh from 8 kHz audio:
    its features equal steps/make_mfcc.sh's with the recorded options on the same audio resampled, and its VAD
    (on the VAD's own MFCCs) equals Kaldi's recipe's, compute_vad_decision.sh on the features themselves."""
    from tfspk.io.ark import read_rspecifier
    from tfspk.io.audio import read_audio
    from tfspk.io.resample import resample
    import soundfile as sf
    exp = tmp_path / "kaldi"
    tool(f"tfspk-import-model --source=kaldi_nnet3 {REPO}/tests/fixtures/kaldi_nnet3/final.raw {exp}")
    for name in ("data", "ref"):
        (tmp_path / name).mkdir()
    for utt in UTTS:
        samples, rate = read_audio(str(FIXTURES / "audio" / f"{utt}.wav"))
        sf.write(tmp_path / f"{utt}_8k.wav", resample(samples, rate, 8000).astype(np.int16), 8000, subtype="PCM_16")
        eight = np.round(resample(samples, rate, 8000))   # as written to the 8 kHz file
        # float samples: rounding to int16 would fill the empty band above 4 kHz with noise the MFCCs' upper mel
        # bins (to 7600 Hz) read; the steps resample in float too
        sf.write(tmp_path / f"{utt}_16k.wav", resample(eight, 8000, 16000) / 32768.0, 16000, subtype="FLOAT")
    for name, suffix in (("data", "8k"), ("ref", "16k")):
        (tmp_path / name / "wav.scp").write_text("".join(f"{u} {tmp_path}/{u}_{suffix}.wav\n" for u in UTTS))
        (tmp_path / name / "utt2spk").write_text("".join(f"{u} {u}\n" for u in UTTS))
        (tmp_path / name / "spk2utt").write_text("".join(f"{u} {u}\n" for u in UTTS))
    run(f"make_front_end_feats.sh --nj 1 --compress false {exp} data && "
        f"make_mfcc.sh --nj 1 --compress false --mfcc-config data/conf/features.conf ref && "
        f"compute_vad_decision.sh --nj 1 --vad-config data/conf/vad.conf ref", cwd=tmp_path)
    for table in ("feats", "vad"):
        got = dict(read_rspecifier(f"scp:{tmp_path}/data/{table}.scp"))
        want = dict(read_rspecifier(f"scp:{tmp_path}/ref/{table}.scp"))
        assert sorted(got) == sorted(want) == list(UTTS)
        for utt in UTTS:
            assert got[utt].shape == want[utt].shape
            # MFCCs: the near-empty mel bins above 4 kHz are sensitive to float32 storage (measured 0.06 on values
            # up to 40); VAD decisions identical
            assert np.abs(got[utt] - want[utt]).max() < (0.15 if table == "feats" else 0.5), (table, utt)
    assert (tmp_path / "data" / "conf" / "vad_mfcc.conf").is_file() and (tmp_path / "data" / "data_vad_mfcc").is_dir()
    proc = run(f"make_front_end_feats.sh --resample maybe {exp} data", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "expected \"true\" or \"false\": --resample 'maybe'" in proc.stderr
    proc = run(f"make_front_end_feats.sh --nj 1 --resample false {exp} data", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "8000 Hz" in (proc.stdout + proc.stderr + "".join(
        p.read_text() for p in (tmp_path / "data" / "log").glob("*.log")))
