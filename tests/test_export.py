"""tfspk.export: Kaldi features/VAD/CMN as TF ops (vs tfspk.features and loop statements), tfspk-export's
SavedModel / TFLite / ONNX models (vs the toolkit's own extraction), tfspk-embed (vs extract_xvectors.sh),
tfspk.Embedder, and bad input."""
import json
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import yaml

from conftest import run, run_tool_here, synth_speech
from test_features import kaldi_mel_banks as loop_mel_banks
from test_features import loop_sliding_cmvn, loop_vad
from tfspk.errors import ToolError
from tfspk.features import FeatureExtractor, apply_cmvn_sliding, compute_vad
from tfspk.features.options import FbankOptions, MfccOptions, SpectrogramOptions
from tfspk.io.ark import read_rspecifier

tf = pytest.importorskip("tensorflow")

RATE = 16000
MFCC_CONF = ("--sample-frequency=16000\n--frame-length=25\n--low-freq=20\n--high-freq=7600\n--num-mel-bins=30\n"
             "--num-ceps=30\n--snip-edges=false\n--dither=0\n")
FBANK_CONF = ("--sample-frequency=16000\n--frame-length=25\n--frame-shift=10\n--num-mel-bins=24\n--low-freq=20\n"
              "--high-freq=7600\n--snip-edges=false\n--dither=0\n")
VAD_CONF = "--vad-energy-threshold=5.5\n--vad-energy-mean-scale=0.5\n--vad-proportion-threshold=0.12\n" \
           "--vad-frames-context=2\n"
NNET = dict(arch="tdnn", frame_dim=16, pooling_dim=24, embedding_dim=8)
BACKENDS = ("saved_model", "tflite", "onnx")


def _options(kind, **changes):
    opts = {"mfcc": MfccOptions, "fbank": FbankOptions, "spectrogram": SpectrogramOptions}[kind]()
    opts.frame.dither = 0.0
    for name, value in changes.items():
        for target in (opts.frame, getattr(opts, "mel", None), opts):
            if target is not None and hasattr(target, name):
                setattr(target, name, value)
                break
        else:
            raise AttributeError(name)
    return opts


def _read_conf(path, kind):
    """Options of feature type ``kind`` (or ``vad``) from a Kaldi config file, with the library's one reader."""
    from tfspk.features.options import read_options_file
    from tfspk.features.registry import feature_type
    from tfspk.features.vad import VadOptions
    return read_options_file(str(path), VadOptions() if kind == "vad" else feature_type(kind).Options(), kind)


def _record_front_end(path, kind, confs):
    """``<exp>/features.yaml`` as tfspk-train writes it from a features: section naming conf/ files of ``confs``."""
    from tfspk.features.frontend import front_end_from_section, write_front_end
    from tfspk.train.config import FeaturesConfig
    conf = path / "conf"
    section = FeaturesConfig(type=kind, conf=str(conf / f"{kind}.conf"),
                             vad_conf=str(conf / "vad.conf") if "vad.conf" in confs else "",
                             vad_mfcc_conf=str(conf / "mfcc.conf") if kind != "mfcc" and "mfcc.conf" in confs else "")
    write_front_end(str(path), front_end_from_section(section, vad="vad.conf" in confs))


def _cosine(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# ------------------------------------------------------------------------------------------ feature ops
FEATURE_CASES = {
    "mfcc-recipe": ("mfcc", dict(num_mel_bins=30, num_ceps=30, low_freq=20, high_freq=7600, snip_edges=False)),
    "mfcc-defaults-snip": ("mfcc", {}),
    "mfcc-hamming-noenergy-nolifter": ("mfcc", dict(window_type="hamming", use_energy=False, cepstral_lifter=0.0)),
    "mfcc-energyfloor-notraw": ("mfcc", dict(energy_floor=1e6, raw_energy=False, remove_dc_offset=False,
                                             window_type="blackman")),
    "fbank-80": ("fbank", dict(num_mel_bins=80, high_freq=7600, snip_edges=False)),
    "fbank-energy-magnitude": ("fbank", dict(use_energy=True, use_power=False, window_type="hanning",
                                             preemphasis_coefficient=0.0)),
    "spectrogram-161": ("spectrogram", dict(frame_length=20, round_to_power_of_two=False, snip_edges=False)),
    "spectrogram-8k": ("spectrogram", dict(sample_frequency=8000, raw_energy=False, window_type="sine")),
}


@pytest.mark.parametrize("case", sorted(FEATURE_CASES))
def test_tf_features_match_tfspk_features(case):
    from tfspk.export.tf_features import KaldiFeaturesTF
    kind, changes = FEATURE_CASES[case]
    opts = _options(kind, **changes)
    rate = opts.frame.sample_frequency
    graph = KaldiFeaturesTF(opts)
    reference = FeatureExtractor(opts)
    window = opts.frame.window_size_samples
    # shorter than a window, exactly one window, a window + 1, odd lengths, a few seconds
    for num in (81, window - 1, window, window + 1, 2 * window + 37, int(1.3 * rate), int(3.01 * rate)):
        samples = synth_speech((num + 1) / rate, int(rate), seed=num).astype(np.float32)[:num]
        want = reference(samples, rate)
        got = graph(tf.constant(samples)).numpy()
        assert got.shape == want.shape, (num, got.shape, want.shape)
        if want.size == 0:   # shorter than one frame (snip-edges true)
            continue
        # float32 DFT vs the float64 reference: a single low-power spectrogram bin (|X|^2 ~ 10 in a frame of
        # energy ~1e10) can lose more digits to cancellation, as Kaldi's own float32 FFT does; mel sums cannot
        error = np.abs(got - want) / (1.0 + 0.1 * np.abs(want))
        assert error.max() < 5e-3, (case, num, error.max())
        assert np.mean(error > 1e-3) < 1e-4, (case, num, np.mean(error > 1e-3))
        if kind == "spectrogram" or opts.use_energy:   # column 0 is the log energy, which the VAD reads alone
            np.testing.assert_array_equal(graph.log_energy(tf.constant(samples)).numpy(), got[:, 0])


def test_constants_follow_kaldi_formulas():
    from tfspk.export.tf_features import dft_basis, kaldi_mel_banks, mfcc_dct
    for bins, fft, rate, low, high in ((30, 512, 16000, 20, 7600), (80, 512, 16000, 20, -400), (23, 256, 8000, 0, 0)):
        np.testing.assert_allclose(kaldi_mel_banks(bins, fft, rate, low, high), loop_mel_banks(bins, fft, rate, low, high).T,
                                   atol=1e-12)
    # DCT: orthonormal DCT-II (scipy), times the lifter 1 + Q/2 sin(pi k / Q)
    from scipy.fft import dct
    eye = np.eye(30)
    want = dct(eye, type=2, norm="ortho", axis=1)[:, :13] * (1 + 11 * np.sin(np.pi * np.arange(13) / 22))
    np.testing.assert_allclose(mfcc_dct(30, 13, 22.0), want, atol=1e-12)
    # DFT basis: the zero-padded rfft
    frame = np.random.default_rng(0).normal(size=400)
    cos, sin = dft_basis(400, 512)
    np.testing.assert_allclose(frame @ cos - 1j * (frame @ sin), np.fft.rfft(frame, 512), atol=1e-9)


@pytest.mark.parametrize("params", [(5.0, 0.5, 0.6, 0), (5.5, 0.5, 0.12, 2), (2.0, 0.0, 0.3, 5), (9.0, 1.0, 0.5, 1)])
def test_vad_ops_match_kaldi(params):
    from tfspk.export.tf_features import vad_tf
    threshold, scale, proportion, context = params
    rng = np.random.default_rng(int(threshold * 10 + context))
    for num in (1, 2, 7, 100, 1001):
        feats = np.stack([rng.normal(12, 4, num), rng.normal(size=num)], axis=1).astype(np.float32)
        got = vad_tf(tf.constant(feats), threshold, scale, proportion, context).numpy().astype(np.float32)
        want = compute_vad(feats, threshold, scale, proportion, context)
        np.testing.assert_array_equal(want, loop_vad(feats[:, 0], threshold, scale, proportion, context))
        differ = np.flatnonzero(got != want)
        # only where an energy in the window is within 1e-4 of the (float32-summed) threshold
        thr = threshold + scale * feats[:, 0].astype(np.float64).mean()
        for t in differ:
            window = feats[max(t - context, 0):t + context + 1, 0]
            assert np.min(np.abs(window - thr)) < 1e-4, (num, t)


@pytest.mark.parametrize("center", [True, False])
def test_sliding_cmn_ops_match_kaldi(center):
    from tfspk.export.tf_features import sliding_cmn_tf
    rng = np.random.default_rng(3)
    for num in (1, 5, 99, 150, 299, 300, 301, 777, 3000):
        feats = (rng.normal(size=(num, 4)) * 3 + np.array([15.0, -40.0, 2.0, 0.0])).astype(np.float32)
        got = sliding_cmn_tf(tf.constant(feats), cmn_window=300, center=center, min_cmn_window=100).numpy()
        want = apply_cmvn_sliding(feats, cmn_window=300, center=center, norm_vars=False, min_cmn_window=100)
        np.testing.assert_allclose(got, want, atol=2e-4)
    small = rng.normal(size=(40, 3)).astype(np.float32)
    np.testing.assert_allclose(sliding_cmn_tf(tf.constant(small), 10, center).numpy(),
                               loop_sliding_cmvn(small.astype(np.float64), 10, center, False, 100), atol=1e-5)


def test_padding_and_selection_ops_match_extract():
    from tfspk.export.tf_features import pad_to_min_chunk_tf, select_frames_tf
    from tfspk.extract import pad_chunk
    rng = np.random.default_rng(4)
    for rows in (1, 2, 10, 24, 25, 26, 60):
        chunk = rng.normal(size=(rows, 3)).astype(np.float32)
        np.testing.assert_array_equal(pad_to_min_chunk_tf(tf.constant(chunk), 25).numpy(), pad_chunk(chunk, 25))
    assert np.all(pad_to_min_chunk_tf(tf.zeros([0, 3]), 25).numpy() == 0)
    feats = rng.normal(size=(9, 2)).astype(np.float32)
    voiced = rng.random(9) > 0.5
    np.testing.assert_array_equal(select_frames_tf(tf.constant(feats), tf.constant(voiced)).numpy(), feats[voiced])


# ------------------------------------------------------------------------------------------ export
def _make_exp(path, feat_dim=30, confs=None):
    from tfspk.nnet import build_xvector
    net = build_xvector(feat_dim=feat_dim, **NNET)
    rng = np.random.default_rng(0)
    for layer in net.layers:   # non-trivial BN statistics so the embedding depends on every layer
        if layer.name.endswith("_bn"):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.3, beta.shape),
                               rng.normal(0, 0.3, mean.shape), rng.uniform(0.5, 2.0, var.shape)])
    (path / "final").mkdir(parents=True)
    nnet = {"name": NNET["arch"], "params": {k: v for k, v in NNET.items() if k != "arch"}}
    (path / "config.yaml").write_text(yaml.safe_dump({"feat_dim": feat_dim, "num_classes": 3, "nnet": nnet}))
    net.save_weights(str(path / "final" / "model.weights.h5"))
    (path / "final" / "DONE").write_text("finished: by the test\n")  # a finished training (tfspk.nnet.saved)
    if confs:
        (path / "conf").mkdir()
        for name, text in confs.items():
            (path / "conf" / name).write_text(text)
        _record_front_end(path, "fbank" if "fbank.conf" in confs else "mfcc", confs)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny TDNN on the recipe's MFCCs, exported once by the tool (all three formats, calibrated)."""
    root = tmp_path_factory.mktemp("export")
    exp = _make_exp(root / "exp", confs={"mfcc.conf": MFCC_CONF, "vad.conf": VAD_CONF})
    (root / "calibration.txt").write_text("# as tfspk-calibrate writes it\ntype linear\ntarget-prior 0.01\n"
                                          "scale 4.0\noffset -1.5\n")
    # in this process (TensorFlow is loaded once); tfspk-export's console script runs in
    # test_export_tool_bad_input and, exporting, in docs/import.md's commands (tests/test_importers.py)
    assert "exported" in run_tool_here(["tfspk-export", f"--calibration={root}/calibration.txt", exp,
                                        f"{root}/export"]).stderr
    return root


def _toolkit_embedding(root, samples, feature_conf=MFCC_CONF, kind="mfcc"):
    """The toolkit's own extraction: tfspk.features -> compute_vad -> prepare_features -> XvectorExtractor."""
    from tfspk.extract import load_extractor, prepare_features
    (root / "ref").mkdir(exist_ok=True)
    (root / "ref" / "f.conf").write_text(feature_conf)
    (root / "ref" / "m.conf").write_text(MFCC_CONF)
    (root / "ref" / "v.conf").write_text(VAD_CONF)
    feats = FeatureExtractor(_read_conf(root / "ref" / "f.conf", kind))(samples, RATE)
    mfcc = FeatureExtractor(_read_conf(root / "ref" / "m.conf", "mfcc"))(samples, RATE)
    vad_opts = _read_conf(root / "ref" / "v.conf", "vad")
    vad = compute_vad(mfcc, vad_opts.vad_energy_threshold, vad_opts.vad_energy_mean_scale,
                      vad_opts.vad_proportion_threshold, vad_opts.vad_frames_context)
    extractor = load_extractor(str(root / "exp"))
    return extractor.extract_one("u", prepare_features(feats, vad, "u")), feats, vad


def test_export_dir_contents(exported):
    info = json.loads((exported / "export" / "export.json").read_text())
    assert info["sample_rate"] == RATE and info["network"]["feat_dim"] == 30 and info["embedding_layer"] == "a"
    assert info["network"]["min_frames"] == 15 and info["min_samples"] == 15 * 160 - 80
    assert info["features"]["options"]["num_ceps"] == 30 and info["features"]["options"]["frame"]["dither"] == 0
    assert info["vad"]["options"]["vad_frames_context"] == 2
    assert info["cmn"] == {"apply": True, "mode": "sliding", "window": 300, "center": True, "norm_vars": False}
    assert info["calibration"]["a"] == 4.0 and info["calibration"]["b"] == -1.5
    for name in ("saved_model/saved_model.pb", "model.tflite", "model.onnx", "model_feats.onnx", "conf/features.conf",
                 "conf/vad.conf", "calibration.txt", "features.yaml"):
        assert (exported / "export" / name).exists(), name
    assert not [p.name for p in exported.iterdir() if p.name.startswith(".export")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_exported_models_match_toolkit_extraction(exported, backend):
    from tfspk.export.embedder import Embedder
    embedder = Embedder(str(exported / "export"), backend=backend)
    # from the minimum length (15 frames) to 30 s; the short ones are padded to 25 frames as the toolkit does
    for seconds in (2320 / RATE, 0.4, 3.0, 30.0):
        samples = synth_speech(seconds, RATE, seed=int(seconds * 10)).astype(np.float32)
        want, feats, vad = _toolkit_embedding(exported, samples)
        assert vad.sum() > 0
        from_wav = embedder.embed(samples, RATE)
        from_feats = embedder.embed_features(feats, vad)
        assert from_wav.shape == want.shape == (8,)
        assert _cosine(from_wav, want) >= 0.9999, (backend, seconds, _cosine(from_wav, want))
        assert _cosine(from_feats, want) >= 0.9999, (backend, seconds)
        np.testing.assert_allclose(from_feats, want, rtol=1e-3, atol=1e-4)


def test_int16_input_and_api_score(exported):
    import tfspk
    embedder = tfspk.Embedder(str(exported / "export"))
    samples = synth_speech(1.5, RATE, seed=5)
    np.testing.assert_array_equal(embedder.embed(samples, RATE), embedder.embed(samples.astype(np.float32), RATE))
    a = embedder.embed(samples, RATE)
    b = embedder.embed(synth_speech(1.5, RATE, seed=6, f0=200.0), RATE)
    assert embedder.score(a, b) == pytest.approx(_cosine(a, b), abs=1e-6)
    assert embedder.score(a, a) == pytest.approx(1.0, abs=1e-6)
    assert embedder.llr(0.5) == pytest.approx(4.0 * 0.5 - 1.5)
    assert embedder.decide(0.5, 0.01) is False   # llr 0.5 < log(99)
    assert embedder.decide(0.99, 0.5) is True


def test_fbank_network_with_separate_vad_mfcc(tmp_path, tool):
    """Features other than MFCC: the VAD runs on the MFCC config, the network on the fbank."""
    from tfspk.export.embedder import Embedder
    exp = _make_exp(tmp_path / "exp", feat_dim=24,
                    confs={"fbank.conf": FBANK_CONF, "mfcc.conf": MFCC_CONF, "vad.conf": VAD_CONF})
    tool(f"tfspk-export --tflite=false --onnx=false {exp} {tmp_path}/export")   # in this process
    info = json.loads((tmp_path / "export" / "export.json").read_text())
    assert info["features"]["type"] == "fbank" and info["vad"]["mfcc_options"]["num_ceps"] == 30
    embedder = Embedder(str(tmp_path / "export"))
    samples = synth_speech(2.5, RATE, seed=9).astype(np.float32)
    want, _, _ = _toolkit_embedding(tmp_path, samples, FBANK_CONF, "fbank")
    assert _cosine(embedder.embed(samples, RATE), want) >= 0.9999


# ------------------------------------------------------------------------------------------ every network
SPECTROGRAM_CONF = ("--sample-frequency=16000\n--frame-length=20\n--frame-shift=10\n--round-to-power-of-two=false\n"
                    "--snip-edges=false\n--dither=0\n")
FEATURE_CONFS = {"mfcc": MFCC_CONF, "fbank": FBANK_CONF, "spectrogram": SPECTROGRAM_CONF}
#: registered network -> (feature type, tiny parameters): the code paths of the full-size networks (attentive
#: pooling, SE-Res2Blocks, 2-D convolutions and strides, bottlenecks, adaptive pooling) at a fraction of the
#: cost. The TDNN is the `exported` fixture above; the networks of SAME_CODE_AS are exported as their twin.
EXPORT_CASES = {
    "tdnn_kaldi": ("mfcc", dict(frame_dim=16, pooling_dim=24, embedding_dim=8)),
    # scale 3: the Res2 branch 3 adds the previous branch's output before its convolution (scale 2 has no such
    # addition; a fourth branch repeats the third's ops and cost a third of this export's ONNX conversions), and
    # ecapa_tdnn is the ECAPA converted to TFLite and ONNX here
    "ecapa_tdnn": ("fbank", dict(channels=6, scale=3, se_channels=4, mfa_channels=12, attention_channels=4,
                                 embedding_dim=8)),
    "resnet18": ("fbank", dict(base_width=2, embedding_dim=8)),
    "resnet50": ("fbank", dict(base_width=2, embedding_dim=8)),
    # one residual block per module (the paper's 3, 4, 6, 3 repeat the same layers): config.yaml records the depths
    "rescnn": ("spectrogram", dict(base_channels=2, embedding_dim=8, depths=[1, 1, 1, 1])),
    "wespeaker_resnet": ("fbank", dict(layout="resnet18", base_width=2, embedding_dim=8)),
    "wespeaker_ecapa_tdnn": ("fbank", dict(channels=8, scale=2, se_channels=4, mfa_channels=12, attention_channels=4,
                                           embedding_dim=8)),
    "speechbrain_ecapa_tdnn": ("fbank", dict(channels=8, res2net_scale=2, se_channels=4, mfa_channels=12,
                                             attention_channels=4, embedding_dim=8)),
}


#: network -> the network of EXPORT_CASES whose export runs its code: resnet34 is resnet18's class (tfspk.nnet.resnet's
#: _ResNet.build) with another row of its LAYOUTS table, 3, 4, 6, 3 basic blocks instead of 2, 2, 2, 2; exporting
#: it repeated resnet18's export with more of the same blocks (its layers and their count are checked in
#: tests/test_nnet_networks.py: shapes, save/load, mixed precision and the parameter count against the formula).
SAME_CODE_AS = {"resnet34": "resnet18"}


def test_export_cases_cover_every_network():
    from tfspk.nnet import NETWORKS
    from tfspk.nnet.resnet import LAYOUTS
    shipped = {name for name, cls in NETWORKS.items() if cls.__module__.startswith("tfspk.nnet.")}
    assert set(EXPORT_CASES) | set(SAME_CODE_AS) | {"tdnn"} == shipped  # toy networks of other test modules aside
    assert not set(EXPORT_CASES) & set(SAME_CODE_AS)
    for name, twin in SAME_CODE_AS.items():   # the same methods; the table rows differ only in block counts
        assert NETWORKS[name].__mro__[1:] == NETWORKS[twin].__mro__[1:] and not vars(NETWORKS[name]).keys() - {
            "__module__", "__doc__", "network_name", "aliases", "__qualname__"}, name
        assert LAYOUTS[name][0] == LAYOUTS[twin][0], name


def _make_registry_exp(path, name, kind, params):
    """An experiment dir of network ``name`` with random weights and random BN statistics (so that every BN
    layer changes the embedding), its feature/VAD configs in conf/."""
    import keras

    from tfspk.nnet import get_network, network_config
    keras.utils.set_random_seed(1)
    path.mkdir(parents=True)
    (path / "conf").mkdir()
    for conf_name, text in ((f"{kind}.conf", FEATURE_CONFS[kind]), ("mfcc.conf", MFCC_CONF), ("vad.conf", VAD_CONF)):
        (path / "conf" / conf_name).write_text(text)
    feat_dim = _read_conf(path / "conf" / f"{kind}.conf", kind).dim
    _record_front_end(path, kind, {"mfcc.conf", "vad.conf"})
    network = get_network(name, params)
    model = network.build(feat_dim)
    rng = np.random.default_rng(2)
    for weight in model.weights:
        draw = {"gamma": lambda n: rng.uniform(0.5, 1.5, n), "beta": lambda n: rng.normal(0, 0.3, n),
                "moving_mean": lambda n: rng.normal(0, 0.3, n),
                "moving_variance": lambda n: rng.uniform(0.5, 2.0, n)}.get(weight.path.split("/")[-1])
        if draw is not None:
            weight.assign(draw(weight.shape).astype(np.float32))
    (path / "final").mkdir()
    model.save_weights(str(path / "final" / "model.weights.h5"))
    (path / "final" / "DONE").write_text("finished: by the test\n")
    (path / "config.yaml").write_text(yaml.safe_dump({"feat_dim": feat_dim, "num_classes": 3,
                                                      "nnet": network_config(network)}))
    return path, feat_dim


def _reference_embeddings(exp, kind, cases):
    """The toolkit's own extraction of each case: tfspk.features (``kind``, and MFCC for the VAD) ->
    compute_vad -> prepare_features -> XvectorExtractor; {label: (embedding, feats, vad)}."""
    from tfspk.extract import load_extractor, prepare_features
    features = FeatureExtractor(_read_conf(exp / "conf" / f"{kind}.conf", kind))
    mfccs = FeatureExtractor(_read_conf(exp / "conf" / "mfcc.conf", "mfcc"))
    o = _read_conf(exp / "conf" / "vad.conf", "vad")
    extractor = load_extractor(str(exp))
    out = {}
    for label, samples in cases.items():
        feats = features(samples, RATE)
        vad = compute_vad(mfccs(samples, RATE), o.vad_energy_threshold, o.vad_energy_mean_scale,
                          o.vad_proportion_threshold, o.vad_frames_context)
        assert vad.sum() > 0, label
        out[label] = (extractor.extract_one("u", prepare_features(feats, vad, "u")), feats, vad)
    return out


#: Networks whose TFLite and ONNX conversions are checked elsewhere, so that here they are exported to the
#: SavedModel only (the conversions take most of an export's time; the SavedModel is what both are made from).
#: Each still goes through the SavedModel at every length below.
CONVERTED_ELSEWHERE = {
    # the TDNN's layers (Conv1D, BN, ReLU, statistics pooling, Dense; the `exported` fixture above converts it to
    # every format) in another order, with dilations (ecapa_tdnn's Res2 convolutions are dilated, converted here)
    "tdnn_kaldi": "the `exported` fixture's tdnn and ecapa_tdnn below",
    # the same ResNet class and layers as resnet18 (its stage table differs; resnet50's bottleneck blocks are
    # Conv2D + BN + ReLU as the basic blocks), converted to every format here
    "resnet50": "resnet18 below",
    # tests/test_importers.py exports the SpeechBrain fixture with every backend and checks its embeddings from raw
    # audio against SpeechBrain's (test_speechbrain_embedder_from_raw_audio_equals_the_source); the WeSpeaker
    # fixtures' layer kinds are converted there (SpeechBrain's ECAPA-TDNN) and here (resnet18): the comment on its
    # IMPORTED_BACKENDS
    "wespeaker_resnet": "resnet18 below (tests/test_importers.py's IMPORTED_BACKENDS)",
    "wespeaker_ecapa_tdnn": "tests/test_importers.py (speechbrain_ecapa fixture, IMPORTED_BACKENDS)",
    "speechbrain_ecapa_tdnn": "tests/test_importers.py (speechbrain_ecapa fixture)",
}
NETWORK_BACKENDS = [(name, backend) for name in sorted(EXPORT_CASES)
                    for backend in (("saved_model",) if name in CONVERTED_ELSEWHERE else BACKENDS)]


@pytest.fixture(scope="module")
def network_exports(tmp_path_factory):
    """name -> one export per network (in this process: TF is loaded once; TFLite and ONNX unless
    CONVERTED_ELSEWHERE) and the toolkit's embeddings of the audio cases, shared by the backends: (name, export dir,
    feature type, cases, references). A cache rather than a parametrized module fixture: the tests of a network
    have different backends, and pytest would reorder module-scoped parameters and export a network twice."""
    from tfspk.export.export import default_options, export
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = _export_network(name, tmp_path_factory, default_options, export)
        return cache[name]
    return get


@pytest.fixture
def network_export(request, network_exports):
    return network_exports(request.param)


def _export_network(name, tmp_path_factory, default_options, export):
    """An experiment dir of network ``name`` exported, and the toolkit's embeddings of the audio cases."""
    kind, params = EXPORT_CASES[name]
    root = tmp_path_factory.mktemp(f"export-{name}")
    exp, _ = _make_registry_exp(root / "exp", name, kind, params)
    convert = name not in CONVERTED_ELSEWHERE
    export(str(exp), str(root / "export"), default_options(str(exp), tflite=convert, onnx=convert))
    min_samples = json.loads((root / "export" / "export.json").read_text())["min_samples"]
    speech = synth_speech(1.0, RATE, seed=11).astype(np.float32)
    start = int(np.argmax(np.abs(speech) > 6000))   # a voiced stretch, so the shortest input has a voiced frame
    # the network's minimum length, an odd length, 30 s
    cases = {"minimum": speech[start:start + min_samples],
             "odd": synth_speech(1.2345, RATE, seed=12).astype(np.float32),
             "30s": synth_speech(30.0, RATE, seed=13).astype(np.float32)}
    return name, root / "export", kind, cases, _reference_embeddings(exp, kind, cases)


def test_every_network_not_converted_here_is_converted_elsewhere():
    assert set(CONVERTED_ELSEWHERE) < set(EXPORT_CASES)
    converted = {name for name, backend in NETWORK_BACKENDS if backend == "onnx"}
    assert converted == {"ecapa_tdnn", "resnet18", "rescnn"}   # one network per module of tfspk/nnet not converted
    # elsewhere
    assert EXPORT_CASES["ecapa_tdnn"][1]["scale"] >= 3   # the converted Res2 blocks add branch outputs
    from test_importers import MODELS
    sources = {source for source, _ in MODELS.values()} | {"speechbrain_ecapa_tdnn"}
    assert {name for name in CONVERTED_ELSEWHERE if name.startswith(("wespeaker", "speechbrain"))} <= sources


@pytest.mark.slow
@pytest.mark.parametrize("network_export,backend", NETWORK_BACKENDS, indirect=["network_export"])
def test_every_network_exports_and_matches_toolkit_extraction(network_export, backend):
    """SavedModel, TFLite and ONNX embeddings (wav and feature input) vs the toolkit's own extraction,
    cosine >= 0.9999, at the network's minimum length, an odd length and 30 s."""
    from tfspk.export.embedder import Embedder
    name, export_dir, kind, cases, references = network_export
    info = json.loads((export_dir / "export.json").read_text())
    assert info["network"]["arch"] == name and info["features"]["type"] == kind
    # --snip-edges=false, 10 ms shift: frames = round(N / 160), so F frames need at least 160 F - 80 samples
    assert cases["minimum"].size == info["min_samples"] == 160 * info["network"]["min_frames"] - 80
    embedder = Embedder(str(export_dir), backend=backend)
    for label, samples in cases.items():
        want, feats, vad = references[label]
        from_wav = embedder.embed(samples, RATE)
        from_feats = embedder.embed_features(feats, vad)
        assert from_wav.shape == want.shape == (8,)
        assert _cosine(from_wav, want) >= 0.9999, (name, backend, label, _cosine(from_wav, want))
        assert _cosine(from_feats, want) >= 0.9999, (name, backend, label, _cosine(from_feats, want))
    with pytest.raises(ToolError, match="too short"):
        embedder.embed(cases["minimum"][:-1], RATE)


# ------------------------------------------------------------------------------------------ tfspk-embed
def _write_wavs(root, durations, rate=RATE):
    (root / "wav").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, seconds in enumerate(durations):
        path = root / "wav" / f"spk{i % 2}-u{i}.wav"
        sf.write(str(path), synth_speech(seconds, rate, seed=20 + i, f0=100 + 20 * i), rate, subtype="PCM_16")
        lines.append(f"spk{i % 2}-u{i} {path}\n")
    return sorted(lines)


def test_embed_tool_equals_extract_xvectors_sh(exported, tmp_path, tool):
    """steps/make_mfcc.sh -> compute_vad_decision.sh -> extract_xvectors.sh vs tfspk-embed on the same wavs.
    tfspk-embed runs in this process (``tool``; TensorFlow is loaded once); test_bad_audio_is_a_clear_error
    runs the console script."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mfcc.conf").write_text(MFCC_CONF)
    (tmp_path / "conf" / "vad.conf").write_text(VAD_CONF)
    data = tmp_path / "data"
    data.mkdir()
    lines = _write_wavs(tmp_path, [1.1, 2.7, 0.6, 4.2])
    (data / "wav.scp").write_text("".join(lines))
    utts = [line.split()[0] for line in lines]
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    (data / "spk2utt").write_text("".join(f"spk{s} {' '.join(u for u in utts if u.startswith(f'spk{s}-'))}\n"
                                          for s in (0, 1)))
    run("make_mfcc.sh --nj 1 --compress false --mfcc-config conf/mfcc.conf data exp/make_mfcc mfcc && "
        "compute_vad_decision.sh --nj 1 --vad-config conf/vad.conf data exp/make_vad mfcc && "
        f"extract_xvectors.sh --nj 1 {exported}/exp data {tmp_path}/xv", cwd=tmp_path)
    recipe = dict(read_rspecifier(f"scp:{tmp_path}/xv/xvector.scp"))
    proc = tool(f"tfspk-embed {exported}/export scp:{data}/wav.scp ark,scp:{tmp_path}/e.ark,{tmp_path}/e.scp")
    assert "wrote 4 embeddings" in proc.stderr
    embedded = dict(read_rspecifier(f"scp:{tmp_path}/e.scp"))
    assert sorted(embedded) == sorted(recipe) == utts
    for utt in utts:
        assert _cosine(embedded[utt], recipe[utt]) >= 0.9999, utt
        np.testing.assert_allclose(embedded[utt], recipe[utt], rtol=1e-3, atol=1e-4)
    # the other output formats and backends give the same vectors; wav files are keyed by their base name
    wavs = " ".join(line.split()[1] for line in lines)
    tool(f"tfspk-embed --output-format=npy --backend=onnx {exported}/export {wavs} {tmp_path}/e.npy")
    assert (tmp_path / "e.npy.keys").read_text().split() == utts
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), np.stack([recipe[u] for u in utts]), rtol=1e-3, atol=1e-4)
    text = tool(f"tfspk-embed --output-format=text --backend=tflite {exported}/export {wavs} -").stdout
    rows = {line.split()[0]: np.array(line.split("[")[1].split("]")[0].split(), float) for line in text.splitlines()}
    for utt in utts:
        np.testing.assert_allclose(rows[utt], recipe[utt], rtol=1e-3, atol=1e-4)
    # an experiment dir with its features.yaml is exported on the fly
    on_the_fly = tool(f"tfspk-embed {exported}/exp scp:{data}/wav.scp ark,t:-").stdout
    first = on_the_fly.splitlines()[0]
    np.testing.assert_allclose(np.array(first.split("[")[1].split("]")[0].split(), float), recipe[first.split()[0]],
                               rtol=1e-3, atol=1e-4)


def test_compare_prints_score_llr_and_bayes_decision(exported, tmp_path, tool):
    from tfspk.export.embedder import Embedder
    _write_wavs(tmp_path, [1.5, 1.8])
    a, b = tmp_path / "wav" / "spk0-u0.wav", tmp_path / "wav" / "spk1-u1.wav"
    out = tool(f"tfspk-embed --compare --target-prior=0.2 {exported}/export {a} {b}").stdout
    embedder = Embedder(str(exported / "export"))
    score = embedder.score(str(a), str(b))
    llr = 4.0 * score - 1.5
    printed = dict(line.split()[:2] for line in out.splitlines())
    assert float(printed["score"]) == pytest.approx(score, abs=2e-6)
    assert float(printed["llr"]) == pytest.approx(llr, abs=1e-5)
    threshold = math.log(0.8 / 0.2)
    assert f"decision {'target' if llr > threshold else 'nontarget'}" in out and f"{threshold:.4f}" in out
    same = tool(f"tfspk-embed --compare --target-prior=0.5 {exported}/export {a} {a}").stdout
    assert "score 1.000000" in same and "decision target" in same


# ------------------------------------------------------------------------------------------ bad input
def test_bad_audio_is_a_clear_error(exported, tmp_path, tool):
    from tfspk.export.embedder import Embedder
    embedder = Embedder(str(exported / "export"), allow_resample=False)
    with pytest.raises(ToolError, match="has sample rate 8000 Hz but 16000 Hz is expected .resampling is off"):
        embedder.embed(synth_speech(2.0, 8000), 8000)
    with pytest.raises(ToolError, match="too short: 2319 samples .* at least 2320"):
        embedder.embed(synth_speech(1.0, RATE)[:2319], RATE)
    with pytest.raises(ToolError, match="no voiced frames"):
        embedder.embed(np.zeros(RATE, np.int16), RATE)
    with pytest.raises(ToolError, match="have 10 frames; the network needs at least 15"):
        embedder.embed_features(np.zeros((10, 30), np.float32))
    sf.write(str(tmp_path / "narrow.wav"), synth_speech(2.0, 8000), 8000, subtype="PCM_16")
    sf.write(str(tmp_path / "ok.wav"), synth_speech(2.0, RATE), RATE, subtype="PCM_16")
    sf.write(str(tmp_path / "short.wav"), synth_speech(0.1, RATE), RATE, subtype="PCM_16")
    for name, message in (("narrow", "'narrow' has sample rate 8000 Hz"),):
        proc = run(f"tfspk-embed --allow-resample=false {exported}/export {tmp_path}/ok.wav {tmp_path}/{name}.wav "
                   f"ark,scp:{tmp_path}/{name}.ark,{tmp_path}/{name}.scp", check=False)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / f"{name}.ark").exists() and not (tmp_path / f"{name}.scp").exists()
    # in this process (TensorFlow loaded once); the case above runs the console script
    proc = tool(f"tfspk-embed --compare {exported}/export {tmp_path}/ok.wav {tmp_path}/missing.wav", check=False)
    assert proc.returncode == 1 and "missing.wav" in proc.stderr and "Traceback" not in proc.stderr


def test_incomplete_export_dir(exported, tmp_path):
    from tfspk.export.embedder import Embedder
    broken = tmp_path / "export"
    shutil.copytree(exported / "export", broken)
    (broken / "model.onnx").unlink()
    assert Embedder(str(broken)).backend == "tflite"   # auto: the fastest runtime left
    Embedder(str(broken), backend="saved_model")
    with pytest.raises(ToolError, match=f"incomplete: missing {broken}/model.onnx"):
        Embedder(str(broken), backend="onnx")
    shutil.rmtree(broken / "saved_model" / "variables")
    with pytest.raises(ToolError, match="cannot load the saved_model model of .*damaged or incomplete"):
        Embedder(str(broken), backend="saved_model")
    (broken / "export.json").unlink()
    proc = run(f"tfspk-embed --compare {broken} a.wav b.wav", check=False)
    assert proc.returncode == 1 and f"missing {broken}/export.json" in proc.stderr
    with pytest.raises(ToolError, match="does not exist"):
        Embedder(str(tmp_path / "nothing"))


def test_export_tool_bad_input(tmp_path):
    exp = _make_exp(tmp_path / "exp")   # no features.yaml
    out = str(tmp_path / "out")
    proc = run(f"tfspk-export {exp} {out}", check=False)   # the real command: exit 1, message, no traceback
    assert proc.returncode == 1 and f"{exp} has no features.yaml" in proc.stderr and "features:" in proc.stderr
    assert "Traceback" not in proc.stderr
    (exp / "conf").mkdir()
    (exp / "conf" / "mfcc.conf").write_text(MFCC_CONF)
    _record_front_end(exp, "mfcc", {"mfcc.conf"})
    recorded = (exp / "features.yaml").read_text()
    (exp / "features.yaml").write_text(recorded.replace("vad_frames_context:", "vad_frames_contxt:"))
    export = run_tool_here(["tfspk-export", exp, out], check=False)
    assert export.returncode == 1 and "features.yaml: vad.options.vad_frames_contxt: unknown option" in export.stderr
    (exp / "features.yaml").write_text(recorded)
    (tmp_path / "cal.txt").write_text("4.0\n")
    export = run_tool_here(["tfspk-export", f"--calibration={tmp_path}/cal.txt", exp, out], check=False)
    assert export.returncode == 1 and "cal.txt:1" in export.stderr
    wide = _make_exp(tmp_path / "wide", feat_dim=20, confs={"mfcc.conf": MFCC_CONF})
    export = run_tool_here(["tfspk-export", wide, out], check=False)
    assert export.returncode == 1 and "30-dimensional features" in export.stderr and "dimension 20" in export.stderr
    (exp / "final" / "model.weights.h5").unlink()
    export = run_tool_here(["tfspk-export", exp, out], check=False)
    assert export.returncode == 1 and "missing" in export.stderr and "model.weights.h5" in export.stderr
    assert not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".export")]


def test_onnx_conversion_falls_back_to_tf2onnx_default_when_an_optimizer_pass_raises(tmp_path, monkeypatch):
    """tfspk.export.writers converts with tf2onnx's optimizer error catching off first (no copy of the graph per
    pass); a pass that raises there gives tf2onnx's default conversion (the pass skipped), not a failed export,
    and the environment is left as it was."""
    import onnxruntime
    import tf2onnx
    from tf2onnx import constants, optimizer

    from tfspk.export import writers

    class Raising:
        graph_been_opt = False

        def optimize(self, graph, iteration):
            raise RuntimeError("a failing pass")

    monkeypatch.setitem(optimizer._optimizers, "raising", Raising)
    monkeypatch.delenv(constants.ENV_TF2ONNX_CATCH_ERRORS, raising=False)
    spec = tf.TensorSpec([None], tf.float32, name="x")
    function = tf.function(lambda x: {"y": 2.0 * x + 1.0}, input_signature=[spec])
    writers._onnx_convert(tf2onnx, function, [spec], str(tmp_path / "m.onnx"))
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: np.array([0.0, 1.5], np.float32)})[0]
    np.testing.assert_array_equal(got, [1.0, 4.0])
    assert constants.ENV_TF2ONNX_CATCH_ERRORS not in __import__("os").environ
