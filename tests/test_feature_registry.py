"""The feature-type registry and the recorded front end: add-deltas against Kaldi's loop, a toy feature type
registered in one entry and run through training from audio, extraction and export, features.yaml errors."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pytest
import soundfile as sf
import yaml

from conftest import synth_speech
from tfspk.errors import ToolError
from tfspk.features import FEATURE_TYPES, FeatureType, FrameOptions, FrontEnd, read_front_end
from tfspk.features.deltas import AddDeltas, DeltaParams
from tfspk.params import param

RATE = 8000


# ------------------------------------------------------------------------------------------ add-deltas
def kaldi_add_deltas(feats, order, window):
    """Kaldi DeltaFeatures (feature-functions.cc), statement by statement: the kernels scales_[i] built by
    convolution with j / sum(j^2), applied to the input with clamped frame indices."""
    scales = [np.array([1.0])]
    for _ in range(order):
        prev = scales[-1]
        prev_offset = (len(prev) - 1) // 2
        cur_offset = prev_offset + window
        cur = np.zeros(len(prev) + 2 * window)
        normalizer = 0.0
        for j in range(-window, window + 1):
            normalizer += j * j
            for k in range(-prev_offset, prev_offset + 1):
                cur[j + k + cur_offset] += j * prev[k + prev_offset]
        scales.append(cur / normalizer)
    count, dim = feats.shape
    out = np.zeros((count, dim * (order + 1)))
    for t in range(count):
        for i in range(order + 1):
            max_offset = (len(scales[i]) - 1) // 2
            for j in range(-max_offset, max_offset + 1):
                frame = min(max(t + j, 0), count - 1)
                out[t, i * dim:(i + 1) * dim] += scales[i][j + max_offset] * feats[frame]
    return out


@pytest.mark.parametrize("count", [1, 2, 3, 7, 40])
@pytest.mark.parametrize("order, window", [(0, 2), (1, 1), (2, 2), (3, 3), (2, 4)])
def test_add_deltas_equals_kaldis_loop_and_the_tf_ops(count, order, window):
    import tensorflow as tf
    feats = np.random.default_rng(count * 10 + order).normal(size=(count, 5)).astype(np.float32) * 10
    params = DeltaParams(order=order, window=window)
    got = AddDeltas.apply(params, feats)
    assert got.shape == (count, 5 * (order + 1)) == (count, AddDeltas.dim(params, 5)) and got.dtype == np.float32
    np.testing.assert_allclose(got, kaldi_add_deltas(feats.astype(np.float64), order, window), rtol=1e-5, atol=1e-4)
    ops = AddDeltas.tensorflow(params, tf.constant(feats)).numpy()
    np.testing.assert_allclose(ops, got, rtol=1e-6, atol=1e-5)


def test_add_deltas_of_a_ramp_is_its_slope_and_of_no_frames_is_empty():
    ramp = np.arange(30, dtype=np.float32)[:, None] * 3.0
    out = AddDeltas.apply(DeltaParams(order=2, window=2), ramp)
    np.testing.assert_allclose(out[4:-4, 1], 3.0, rtol=1e-6)     # first-order regression of a line: its slope
    np.testing.assert_allclose(out[4:-4, 2], 0.0, atol=1e-5)     # second order of a line: 0
    assert AddDeltas.apply(DeltaParams(), np.zeros((0, 4), np.float32)).shape == (0, 12)


def test_post_steps_and_feature_types_are_looked_up_by_name():
    from tfspk.features.registry import feature_type, post_steps
    assert feature_type("FBANK").feature_type == "fbank"
    assert post_steps(["deltas", {"name": "add-deltas", "params": {"order": 1}}], "p") == [
        ("add_deltas", DeltaParams()), ("add_deltas", DeltaParams(order=1))]
    with pytest.raises(ToolError, match=r"unknown feature type 'mel'; valid feature types: fbank, mfcc, spectrogram"):
        feature_type("mel")
    with pytest.raises(ToolError, match=r"p\[0\]: unknown feature post-processing step 'cmvn'"):
        post_steps(["cmvn"], "p")
    with pytest.raises(ToolError, match=r"parameter 'window' must be >= 1"):
        post_steps([{"name": "add_deltas", "params": {"window": 0}}], "p")


# ------------------------------------------------------------------------------------------ a toy type
@dataclass
class BandOptions:
    """Options of the toy type: Kaldi's framing, and the number of bands."""
    frame: FrameOptions = field(default_factory=lambda: FrameOptions(sample_frequency=RATE))
    num_bands: int = param(6, "number of equal-length pieces of each frame whose log energies are the features")

    @property
    def dim(self) -> int:
        return self.num_bands


def _band_energies_numpy(opts, samples):
    frame = opts.frame
    shift, length = frame.window_shift_samples, frame.window_size_samples
    count = 0 if samples.size < length else 1 + (samples.size - length) // shift
    frames = samples[np.arange(count)[:, None] * shift + np.arange(length)[None, :]].astype(np.float32)
    usable = length // opts.num_bands * opts.num_bands
    pieces = frames[:, :usable].reshape(count, opts.num_bands, -1)
    return np.log(np.sum(pieces * pieces, axis=2) + np.float32(1.0)).astype(np.float32)


class _BandEnergiesTF:
    def __init__(self, opts):
        self.opts, self.frame, self.dim = opts, opts.frame, opts.dim

    def __call__(self, samples):
        import tensorflow as tf
        frame = self.frame
        shift, length = frame.window_shift_samples, frame.window_size_samples
        samples = tf.reshape(tf.cast(samples, tf.float32), [-1])
        count = tf.maximum(0, (tf.shape(samples)[0] - length) // shift + 1)
        frames = tf.gather(samples, tf.range(count)[:, None] * shift + tf.range(length)[None, :])
        usable = length // self.opts.num_bands * self.opts.num_bands
        pieces = tf.reshape(frames[:, :usable], [count, self.opts.num_bands, -1])
        return tf.math.log(tf.reduce_sum(pieces * pieces, axis=2) + 1.0)


@pytest.fixture(scope="module")
def band_type():
    """The toy feature type: one registered entry, nothing else."""
    @FEATURE_TYPES.register("test_band_energies", "test_bands")
    class BandEnergies(FeatureType):
        Options = BandOptions

        @classmethod
        def check(cls, opts):
            if opts.num_bands < 1:
                raise ToolError(f"--num-bands must be >= 1, got {opts.num_bands}")

        @classmethod
        def compute(cls, opts):
            return lambda samples, rate: _band_energies_numpy(opts, samples)

        @classmethod
        def tensorflow(cls, opts):
            return _BandEnergiesTF(opts)
    yield BandEnergies
    del FEATURE_TYPES.classes["test_band_energies"]
    for alias in ("testbandenergies", "testbands"):
        FEATURE_TYPES.aliases.pop(alias)


def _wav_dir(root, speakers=4, utts=3):
    data = root / "data"
    (root / "wav").mkdir(parents=True)
    data.mkdir()
    wav_scp, utt2spk = [], []
    for s in range(speakers):
        for u in range(utts):
            utt = f"spk{s}-u{u}"
            path = root / "wav" / f"{utt}.wav"
            sf.write(str(path), synth_speech(1.3 + 0.2 * u, RATE, seed=10 * s + u, f0=90 + 30 * s), RATE,
                     subtype="PCM_16")
            wav_scp.append(f"{utt} {path}\n")
            utt2spk.append(f"{utt} spk{s}\n")
    (data / "wav.scp").write_text("".join(wav_scp))
    (data / "utt2spk").write_text("".join(utt2spk))
    return data


def _cosine(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_a_registered_toy_type_runs_through_training_extraction_and_export(band_type, tmp_path):
    import tensorflow as tf
    from tfspk.export.embedder import Embedder
    from tfspk.export.export import default_options, export
    from tfspk.extract import load_extractor, prepare_features
    from tfspk.extract.run import extract_to_archive, recorded_cmn
    from tfspk.io.ark import ArchiveWriter, read_rspecifier
    from tfspk.train import config as config_mod
    from tfspk.train import train
    data = _wav_dir(tmp_path)
    conf = tmp_path / "bands.conf"
    conf.write_text(f"--sample-frequency={RATE}\n--num-bands=5\n--dither=0\n--frame-length=20\n")
    config = config_mod.build_config(None, [
        "data.source=audio", "features.type=test_bands", f"features.conf={conf}", "features.post=[add_deltas]",
        "nnet.params.frame_dim=16", "nnet.params.pooling_dim=24", "nnet.params.embedding_dim=8",
        "data.speakers_per_batch=4", "data.min_frames=30", "data.max_frames=40", "valid.num_utts=0",
        "schedule.steps_per_epoch=2", "schedule.num_epochs=1", "data.num_threads=1", "log_every=1"])
    exp = tmp_path / "exp"
    # training from audio: the type's numpy side + add-deltas, 5 bands x 3
    train(str(data), str(exp), config, stream=open(os.devnull, "w"))
    assert yaml.safe_load((exp / "config.yaml").read_text())["feat_dim"] == 15
    front_end = read_front_end(str(exp))
    assert (front_end.feature_type, front_end.dim, front_end.options.num_bands) == ("test_band_energies", 15, 5)
    assert front_end.post == [("add_deltas", DeltaParams())] and not front_end.vad
    # extraction: offline features of the recorded front end -> tfspk-extract's library path
    extractor = front_end.extractor(dither=False)
    samples = {f"spk{s}-u0": synth_speech(1.7, RATE, seed=100 + s, f0=90 + 30 * s) for s in range(2)}
    feats = {utt: extractor(x.astype(np.float32), RATE, utt) for utt, x in samples.items()}
    with ArchiveWriter(f"ark,scp:{tmp_path}/feats.ark,{tmp_path}/feats.scp") as writer:
        for utt, matrix in sorted(feats.items()):
            writer.write(utt, matrix)
    assert recorded_cmn(str(exp)) == (True, 300)
    extract_to_archive(load_extractor(str(exp)), f"scp:{tmp_path}/feats.scp", None, f"ark:{tmp_path}/xv.ark")
    extracted = dict(read_rspecifier(f"ark:{tmp_path}/xv.ark"))
    network = load_extractor(str(exp))
    for utt, matrix in feats.items():   # independent of the archive path: the network on the prepared frames
        want = network.extract_one(utt, prepare_features(matrix, None, utt, cmn_window=300))
        np.testing.assert_allclose(extracted[utt], want, rtol=1e-5, atol=1e-6)
    # export: the type's TF side found through the registry; the exported graph equals the extraction
    export(str(exp), str(tmp_path / "export"), default_options(str(exp), tflite=False, onnx=False))
    for model in (str(tmp_path / "export"), str(exp)):   # an export dir, and the experiment dir exported on the fly
        embedder = Embedder(model)
        for utt, x in samples.items():
            assert _cosine(embedder.embed(x, RATE), extracted[utt]) >= 0.9999, (model, utt)
    loaded = tf.saved_model.load(str(tmp_path / "export" / "saved_model"))
    graph_feats = loaded.signatures["features_wav"](samples=samples["spk0-u0"].astype(np.float32))["feats"]
    np.testing.assert_allclose(graph_feats.numpy(), feats["spk0-u0"], rtol=1e-4, atol=1e-3)


# ------------------------------------------------------------------------------------------ features.yaml
def test_front_end_file_round_trip_and_errors(tmp_path):
    from tfspk.features import FbankOptions, MfccOptions, VadOptions, write_front_end
    front_end = FrontEnd("fbank", FbankOptions(), [("add_deltas", DeltaParams(order=1))], "crop", 300, True,
                         VadOptions(vad_energy_threshold=5.5), MfccOptions())
    write_front_end(str(tmp_path), front_end)
    assert read_front_end(str(tmp_path)) == front_end
    assert front_end.inference_cmn() == (True, 1 << 30) and front_end.dim == 46
    data = yaml.safe_load((tmp_path / "features.yaml").read_text())
    for change, message in (
            (lambda d: d.pop("vad"), "missing key"),
            (lambda d: d.update(type="mel"), "unknown feature type 'mel'"),
            (lambda d: d["options"]["frame"].update(frame_shift="fast"), r"options.frame.frame_shift: expected a value"),
            (lambda d: d["options"]["mel"].update(bins=3), r"options.mel.bins: unknown option"),
            (lambda d: d["cmn"].update(mode="global"), "cmn must be one of sliding, crop, none"),
            (lambda d: d.update(dim=40), "dim 40 disagrees with the options"),
            (lambda d: d["options"]["mel"].update(num_mel_bins=2), "--num-mel-bins must be at least 3")):
        broken = yaml.safe_load(yaml.safe_dump(data))
        change(broken)
        (tmp_path / "features.yaml").write_text(yaml.safe_dump(broken))
        with pytest.raises(ToolError, match=rf"{tmp_path}/features.yaml: .*{message}"):
            read_front_end(str(tmp_path))
    os.remove(tmp_path / "features.yaml")
    with pytest.raises(ToolError, match=rf"{tmp_path} has no features.yaml"):
        read_front_end(str(tmp_path))


def test_training_records_the_front_end_of_its_features_section(tmp_path):
    """tfspk-train's recording (tfspk.train.expdir.record_front_end) with offline features: the section's
    dimension must be the input's; a resumed run with other options is refused; no type or conf: no file."""
    from types import SimpleNamespace
    from tfspk.train import config as config_mod
    from tfspk.train.expdir import record_front_end
    exp = tmp_path / "exp"
    exp.mkdir()
    conf = tmp_path / "fbank.conf"
    conf.write_text("--num-mel-bins=20\n--snip-edges=false\n")
    config = config_mod.build_config(None, ["features.type=fbank", f"features.conf={conf}", "features.vad=false"])
    line = record_front_end(str(exp), config, SimpleNamespace(feat_dim=20))
    assert line == f"front end {exp}/features.yaml: fbank (20 dims at 16000 Hz), CMN sliding 300, VAD off"
    assert read_front_end(str(exp)).options.mel.num_mel_bins == 20
    with pytest.raises(ToolError, match=rf"front end gives 20-dimensional features \(fbank of {conf}\) but the "
                                        "training input has dimension 30"):
        record_front_end(str(exp), config, SimpleNamespace(feat_dim=30))
    conf.write_text("--num-mel-bins=20\n--snip-edges=false\n--low-freq=60\n")   # same path, other options
    with pytest.raises(ToolError, match="has a checkpoint trained with another front end"):
        record_front_end(str(exp), config, SimpleNamespace(feat_dim=20), resuming=True)
    record_front_end(str(exp), config, SimpleNamespace(feat_dim=20))             # a new run: recorded
    assert read_front_end(str(exp)).options.mel.low_freq == 60
    assert record_front_end(str(exp), config_mod.build_config(None, []), SimpleNamespace(feat_dim=20)).startswith(
        "no front end recorded")
    assert not (exp / "features.yaml").exists()
