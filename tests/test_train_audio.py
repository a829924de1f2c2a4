"""data.source audio: features on the fly equal the offline tool's, training equals training on them."""
from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from conftest import run, synth_speech
from tfspk.errors import ToolError
from tfspk.train import config as config_mod

RATE = 8000
AUDIO = ["nnet.params.frame_dim=16", "nnet.params.pooling_dim=24", "nnet.params.embedding_dim=8",
         "data.speakers_per_batch=4", "data.min_frames=40", "data.max_frames=60", "valid.num_utts=0",
         "schedule.steps_per_epoch=2", "log_every=1", "optimizer.lr=0.05", "data.source=audio",
         "data.num_threads=1", "features.cmn=crop"]


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    data = root / "data"
    (root / "wav").mkdir()
    data.mkdir()
    wav_scp, utt2spk = [], []
    for s in range(4):
        for u in range(2):
            utt = f"spk{s}-u{u}"
            path = root / "wav" / f"{utt}.wav"
            sf.write(str(path), synth_speech(1.2 + 0.1 * u, RATE, seed=10 * s + u, f0=100 + 25 * s), RATE,
                     subtype="PCM_16")
            wav_scp.append(f"{utt} {path}\n")
            utt2spk.append(f"{utt} spk{s}\n")
    (data / "wav.scp").write_text("".join(wav_scp))
    (data / "utt2spk").write_text("".join(utt2spk))
    conf = root / "fbank.conf"
    conf.write_text(f"--sample-frequency={RATE}\n--dither=0\n--num-mel-bins=20\n")
    # the offline tool, as a recipe runs it
    run(["tfspk-compute-fbank-feats", f"--config={conf}", f"scp:{data}/wav.scp",
         f"ark,scp:{root}/feats.ark,{data}/feats.scp"])
    return str(data), str(conf)


def audio_config(conf, *extra):
    return config_mod.build_config(None, AUDIO + [f"features.conf={conf}"] + list(extra))


def load_offline(data_dir):
    """utt -> matrix of the offline tool's feats.scp, and wav path -> utt."""
    from tfspk.io.ark import read_rspecifier
    feats = {key: np.asarray(matrix) for key, matrix in read_rspecifier(f"scp:{data_dir}/feats.scp")}
    paths = {}
    for line in open(os.path.join(data_dir, "wav.scp")):
        key, path = line.split()
        paths[path] = key
    return feats, paths


def offline_batch(source, step, feats, paths, mean_norm):
    """The batch of ``step`` assembled from the offline features of the same crops."""
    frames, crops = source.batches.plan(step)
    shift = source.batches._shift
    out = []
    for key, start, _, _, _ in crops:
        assert start % shift == 0  # frame-aligned crops
        crop = feats[key][start // shift: start // shift + frames]
        assert crop.shape[0] == frames
        if mean_norm:
            crop = crop - crop.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
        out.append(crop)
    return np.stack(out).astype(np.float32)


def test_on_the_fly_features_equal_the_offline_tool(audio_dir):
    from tfspk.train.inputs.audio import AudioInput
    data, conf = audio_dir
    feats, paths = load_offline(data)
    source = AudioInput(data, audio_config(conf, "features.cmn=none"))
    assert source.feat_dim == 20 and source.num_classes == 4
    for step in range(4):
        got, labels = source.batch(step)
        np.testing.assert_array_equal(got, offline_batch(source, step, feats, paths, False), err_msg=f"step {step}")
        _, crops = source.batches.plan(step)
        assert [int(c.key[3]) for c in crops] == list(labels)  # spk<k> -> label k
    normed = AudioInput(data, audio_config(conf))
    got, _ = normed.batch(2)
    expected = offline_batch(normed, 2, feats, paths, False).astype(np.float64)
    expected -= expected.mean(axis=1, keepdims=True)  # independent statement of crop CMN
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_training_from_audio_equals_training_from_offline_features_step_for_step(audio_dir):
    import tensorflow as tf
    from tfspk.train import components
    from tfspk.train.inputs.audio import AudioInput
    from tfspk.train.trainer import Trainer
    data, conf = audio_dir
    feats, paths = load_offline(data)
    config = components.resolve(audio_config(conf, "loss.name=amsoftmax"))
    source = AudioInput(data, config)
    from_audio = Trainer(config, source.feat_dim, source.num_classes)
    from_feats = Trainer(config, source.feat_dim, source.num_classes)
    batches = iter(source.dataset(0))  # the trainer's path: tf.data over AudioCropBatches.iterate
    for step in range(3):
        a = from_audio.train_step(next(batches))
        _, labels = source.batches.plan(step)[0], [c[3] for c in source.batches.plan(step)[1]]
        b = from_feats.train_step((tf.constant(offline_batch(source, step, feats, paths, True)),
                                   tf.constant(np.array(labels, np.int32))))
        assert a == b, (step, a, b)
    for x, y in zip(from_audio.variables, from_feats.variables):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_train_from_audio_with_augmentation_and_resume_batches(audio_dir, tmp_path):
    import yaml
    from tfspk.train import train
    from tfspk.train.inputs.audio import AudioInput
    data, conf = audio_dir
    aug = ["augment={speed_factors: '1.0,0.9', spec_augment: true, max_time_width: 5}"]
    config = audio_config(conf, *aug)
    exp = tmp_path / "exp"
    # one epoch: without validation nothing stops the run early, and the checks below read epoch 1 only
    result = train(data, str(exp), audio_config(conf, *aug, "schedule.num_epochs=1"), stream=open(os.devnull, "w"))
    assert [e.epoch for e in result.epochs] == [1] and np.isfinite(result.epochs[0].loss)
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert saved["num_classes"] == 8 and saved["feat_dim"] == 20  # speed copies: 4 speakers x 2
    from tfspk.features import read_front_end
    front_end = read_front_end(str(exp))   # the recorded front end: the conf's options, no VAD, crop CMN
    assert (front_end.feature_type, front_end.dim, front_end.sample_rate) == ("fbank", 20, RATE)
    assert front_end.options.mel.num_mel_bins == 20 and front_end.options.frame.dither == 0
    assert (front_end.cmn, front_end.vad) == ("crop", False)
    assert "8 of 8 utterances used (no VAD); skipped: 0 shorter" in (exp / "log" / "train.log").read_text()
    # the same (seed, step) gives the same augmented batch: a new source, worker processes, from step 3
    first = AudioInput(data, config)
    expected = [first.batch(step) for step in (3, 4)]
    again = AudioInput(data, config)
    for (f, l), (gf, gl) in zip(expected, list(again.batches.iterate(3, 2, num_workers=2))):
        np.testing.assert_array_equal(f, gf)
        np.testing.assert_array_equal(l, gl)
    assert set(np.concatenate([l for _, l in expected])) <= set(range(8))


def test_audio_source_errors(audio_dir, tmp_path):
    from tfspk.train import train
    data, conf = audio_dir
    with pytest.raises(ToolError, match=r"missing .*wav.scp"):
        train(str(tmp_path), str(tmp_path / "e"), audio_config(conf), stream=open(os.devnull, "w"))
    bad = tmp_path / "bad.conf"
    bad.write_text("--no-such-option=3\n")
    with pytest.raises(ToolError, match=r"bad.conf:1: unknown option '--no-such-option'"):
        train(data, str(tmp_path / "e"), audio_config(str(bad)), stream=open(os.devnull, "w"))
    with pytest.raises(ToolError, match=r"data.source"):
        config_mod.build_config(None, ["data.source=wav"])


def test_train_from_shards_runs_and_resumes_on_the_same_stream(tmp_path):
    import sys
    import tensorflow as tf
    import yaml
    sys.path.insert(0, os.path.dirname(__file__))
    from test_train import TINY, make_features
    from tfspk.data.shards import make_shards
    from tfspk.train import train
    from tfspk.train.inputs.shards import ShardInput
    data = make_features(str(tmp_path / "data"), min_len=60, max_len=80)
    make_shards(data, str(tmp_path / "shards"), utts_per_shard=10, seed=3)
    config = config_mod.build_config(None, TINY + ["data.source=shards", f"data.shards={tmp_path}/shards",
                                                   "schedule.num_epochs=1"])
    exp = tmp_path / "exp"
    result = train(data, str(exp), config, stream=open(os.devnull, "w"))
    assert np.isfinite(result.epochs[0].loss) and result.epochs[0].valid_loss is None
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert saved["num_classes"] == 8 and saved["feat_dim"] == 12
    assert (exp / "spk2int").read_text() == (tmp_path / "shards" / "spk2int").read_text()
    source = ShardInput(data, config)
    whole = [b for b in source.dataset(0).take(5)]
    resumed = [b for b in source.dataset(3).take(2)]
    for (f, l), (gf, gl) in zip(whole[3:], resumed):
        np.testing.assert_array_equal(f.numpy(), gf.numpy())
        np.testing.assert_array_equal(l.numpy(), gl.numpy())
    assert whole[0][0].shape[0] == 4 and whole[0][0].shape[2] == 12
    del tf
