"""Fine-tuning on new speakers (tfspk.train.finetune): init_from with another speaker table, the new head
(mean embeddings or random), frozen blocks, the source's network inherited, and an exact resume."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from tfspk.errors import ToolError

sys.path.insert(0, os.path.dirname(__file__))
from test_resume import _KILLING_TRAINER, _assert_identical, _state  # noqa: E402
from test_train import TINY, make_features  # noqa: E402


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """A source experiment trained on 8 speakers, and a data dir of 6 other speakers."""
    from tfspk.train import build_config, train
    root = tmp_path_factory.mktemp("finetune")
    old = make_features(str(root / "old"))
    new = make_features(str(root / "new"), num_speakers=6, seed=5)
    # Other speakers: new names (utterance keys keep their speaker prefix, as Kaldi sorts them).
    for name in ("utt2spk", "feats.scp", "feats.0.scp", "feats.1.scp", "utt2num_frames"):
        path = os.path.join(new, name)
        with open(path) as handle:
            text = handle.read()
        with open(path, "w") as handle:
            handle.write(text.replace("spk", "new"))
    source = str(root / "source")
    with open(os.devnull, "w") as null:
        train(old, source, build_config(None, TINY + ["schedule.num_epochs=1", "loss.name=amsoftmax"]), stream=null)
    return {"old": old, "new": new, "source": source, "root": root}


def _train(data_dir, exp, *overrides, tiny=True):
    from tfspk.train import build_config, train
    with open(os.devnull, "w") as null:
        return train(data_dir, exp, build_config(None, (TINY if tiny else []) + list(overrides)), stream=null)


def _weights(exp_dir, name="model.weights.h5"):
    """Every variable of the experiment's network with the weights of final/<name>, by layer/variable path."""
    from tfspk.train.inference import load_for_inference
    model = load_for_inference(exp_dir, allow_unfinished=True)[0]
    model.load_weights(os.path.join(exp_dir, "final", name))
    return {v.path: v.numpy() for v in model.weights}


def _ckpt(exp_dir):
    import tensorflow as tf
    path = tf.train.latest_checkpoint(os.path.join(exp_dir, "ckpt"))
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(path)
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def _head_kernel(exp_dir):
    state = _ckpt(exp_dir)
    [name] = [n for n in state if n.startswith("head/") and "kernel" in n and "OPTIMIZER" not in n]
    return state[name]


def _log(exp_dir):
    return open(os.path.join(exp_dir, "log", "train.log")).read()


def _is_bn_statistic(key):
    """Batch-norm moving mean and variance: statistics, not weights."""
    return "moving_" in key


FROZEN_LR = ["optimizer.lr=1e-30", "optimizer.momentum=0", "optimizer.weight_decay=0"]


def test_mean_head_on_new_speakers_matches_numpy_means(dirs, tmp_path):
    """lr ~ 0: the network stays the source's final weights and the head is exactly its initialisation,
    compared with the mean of unit embeddings computed here from the source model and the same batches."""
    from tfspk.data.sampler import read_spk2int
    from tfspk.train import build_config, inputs
    from tfspk.train.inference import load_for_inference
    tuned = str(tmp_path / "tuned")
    _train(dirs["new"], tuned, "schedule.num_epochs=1", "loss.name=amsoftmax", f"init_from={dirs['source']}",
           "finetune.head_init_steps=6", *FROZEN_LR)
    log = _log(tuned)
    assert "new head of 6 classes from the mean embeddings of the batches of 6 steps" in log, log
    assert read_spk2int(os.path.join(tuned, "spk2int")) == {f"new{i}": i for i in range(6)}
    source_w, tuned_w = _weights(dirs["source"]), _weights(tuned, "last.weights.h5")
    assert set(source_w) == set(tuned_w)
    weights = [k for k in source_w if not _is_bn_statistic(k)]
    assert len(weights) > 10
    for key in weights:   # BN statistics follow the new data even at lr ~ 0
        np.testing.assert_allclose(tuned_w[key], source_w[key], rtol=0, atol=1e-12, err_msg=key)

    model = load_for_inference(dirs["source"])[0]
    config = build_config(None, TINY + ["schedule.num_epochs=1", "loss.name=amsoftmax"])
    sampler = inputs.make_sampler(dirs["new"], config)
    sums = np.zeros((6, 8))
    for step in range(6):
        feats, labels = sampler.batch(step)
        emb = np.asarray(model(feats, training=False)["embedding_b"], np.float64)
        for vector, label in zip(emb, labels):
            sums[label] += vector / np.linalg.norm(vector)
    head = _head_kernel(tuned)
    assert head.shape == (8, 6)
    expected_dirs = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    got_dirs = (head / np.linalg.norm(head, axis=0)).T
    np.testing.assert_allclose(got_dirs, expected_dirs, atol=2e-6)
    norms = np.linalg.norm(head, axis=0)
    np.testing.assert_allclose(norms, norms[0], rtol=1e-5)  # one scale for every class


def test_random_head_and_head_keep_needs_the_same_speakers(dirs, tmp_path):
    tuned = str(tmp_path / "random")
    _train(dirs["new"], tuned, "schedule.num_epochs=1", "loss.name=amsoftmax", f"init_from={dirs['source']}",
           "finetune.head=random", *FROZEN_LR)
    assert "new random head of 6 classes" in _log(tuned)
    head = _head_kernel(tuned)
    norms = np.linalg.norm(head, axis=0)
    assert not np.allclose(norms, norms[0], rtol=1e-3)  # glorot columns, not rescaled means
    with pytest.raises(ToolError, match=r"differs from this experiment's speakers"):
        _train(dirs["new"], str(tmp_path / "keep"), "schedule.num_epochs=1", "loss.name=amsoftmax",
               f"init_from={dirs['source']}", "finetune.head=keep")


def test_same_speakers_keep_the_head_and_take_the_final_network(dirs, tmp_path):
    """Same speakers: head keep by default. The head is the checkpoint's, the network the final model's (the
    averaged one extraction uses, not the checkpoint's last step): a source whose final/model.weights.h5
    differs from its checkpoint; lr ~ 0 keeps what was loaded."""
    source = str(tmp_path / "source")
    shutil.copytree(dirs["source"], source)
    shifted = {path: value + 0.25 for path, value in _weights(source).items()}
    from tfspk.train.inference import load_for_inference
    model = load_for_inference(source, allow_unfinished=True)[0]
    for variable in model.weights:
        variable.assign(shifted[variable.path])
    model.save_weights(os.path.join(source, "final", "model.weights.h5"))
    tuned = str(tmp_path / "same")
    _train(dirs["old"], tuned, "schedule.num_epochs=1", "loss.name=amsoftmax", f"init_from={source}", *FROZEN_LR)
    assert f"initialised the loss head from {source}/ckpt" in _log(tuned)
    assert f"the network from {source}/final/model.weights.h5" in _log(tuned)
    np.testing.assert_allclose(_head_kernel(tuned), _head_kernel(source), rtol=0, atol=1e-12)
    tuned_weights = _weights(tuned, "last.weights.h5")
    for path, value in shifted.items():
        if not _is_bn_statistic(path):
            np.testing.assert_allclose(tuned_weights[path], value, rtol=0, atol=1e-6, err_msg=path)


def test_imported_source_without_checkpoint_and_inherited_network(dirs, tmp_path):
    """An experiment dir with only config.yaml and final/model.weights.h5 (what tfspk-import-model writes); the
    fine-tuning config names no network, so the source's (TINY's widths) is built."""
    imported = str(tmp_path / "imported")
    os.makedirs(os.path.join(imported, "final"))
    shutil.copy(os.path.join(dirs["source"], "config.yaml"), imported)
    shutil.copy(os.path.join(dirs["source"], "final", "model.weights.h5"), os.path.join(imported, "final"))
    no_nnet = [t for t in TINY if not t.startswith("nnet.")]
    tuned = str(tmp_path / "tuned")
    _train(dirs["new"], tuned, *no_nnet, "schedule.num_epochs=1", "loss.name=amsoftmax", f"init_from={imported}",
           *FROZEN_LR, tiny=False)
    from tfspk.train.config import load_yaml
    saved = load_yaml(os.path.join(tuned, "config.yaml"))
    assert saved["nnet"]["params"]["frame_dim"] == 16 and saved["nnet"]["params"]["embedding_dim"] == 8
    assert f"initialised the network from {imported}/final/model.weights.h5" in _log(tuned)


def test_network_mismatch_and_bad_keys_are_tool_errors(dirs, tmp_path):
    with pytest.raises(ToolError, match=r"init_from: the network of .*config.yaml differs.*frame_dim: 16 -> 20"):
        _train(dirs["new"], str(tmp_path / "a"), "schedule.num_epochs=1", "nnet.params.frame_dim=20",
               f"init_from={dirs['source']}")
    with pytest.raises(ToolError, match=r"finetune.head': expected one of auto, keep, mean, random"):
        _train(dirs["new"], str(tmp_path / "b"), f"init_from={dirs['source']}", "finetune.head=mine")
    with pytest.raises(ToolError, match=r"freezing needs both"):
        _train(dirs["new"], str(tmp_path / "c"), f"init_from={dirs['source']}", "finetune.freeze_blocks=2")
    with pytest.raises(ToolError, match=r"finetune.head' \(mean\) needs init_from"):
        _train(dirs["new"], str(tmp_path / "d"), "finetune.head=mean")
    with pytest.raises(ToolError, match=r"9 blocks asked, the network has 7 \(tdnn1, tdnn2, .*tdnn7\)"):
        _train(dirs["new"], str(tmp_path / "e"), f"init_from={dirs['source']}", "finetune.freeze_blocks=9",
               "finetune.freeze_steps=2")
    with pytest.raises(ToolError, match=r"init_from: .*config.yaml not found"):
        _train(dirs["new"], str(tmp_path / "f"), *[t for t in TINY if not t.startswith("nnet.")],
               f"init_from={tmp_path}", tiny=False)


def test_frozen_blocks_are_unchanged_for_freeze_steps_then_train(dirs, tmp_path):
    """Blocks tdnn1-2 frozen for the 4 steps of epoch 1: bit-identical to the source after it, changed after
    epoch 2; unfrozen blocks change from the start."""
    frozen = str(tmp_path / "frozen")
    extra = ["loss.name=amsoftmax", f"init_from={dirs['source']}", "finetune.freeze_blocks=2",
             "finetune.freeze_steps=4"]
    _train(dirs["new"], frozen, "schedule.num_epochs=1", *extra)
    assert "fine-tuning: blocks tdnn1, tdnn2 frozen for the first 4 steps" in _log(frozen)
    source, after1 = _weights(dirs["source"]), _weights(frozen, "last.weights.h5")
    frozen_keys = [k for k in source if k.startswith(("tdnn1_", "tdnn2_")) and not _is_bn_statistic(k)]
    assert len(frozen_keys) >= 4, sorted(source)   # kernels, biases, BN gamma/beta (moving stats follow the data)
    for key in frozen_keys:
        assert np.array_equal(source[key], after1[key]), key
    assert any(not np.array_equal(source[k], after1[k]) for k in source if k.startswith("tdnn3_")), \
        "unfrozen blocks were not trained"
    _train(dirs["new"], frozen, "schedule.num_epochs=2", *extra)
    after2 = _weights(frozen, "last.weights.h5")
    assert any(not np.array_equal(source[k], after2[k]) for k in frozen_keys), "blocks stay frozen after freeze_steps"


def test_kill_9_during_fine_tuning_then_resume_is_bit_identical(dirs, tmp_path, tool):
    """The kill/resume test of test_resume.py on a fine-tuning run (new speakers, mean head, blocks frozen
    for 6 steps): killed at step 5 (inside the freeze, before any checkpoint) and at step 7 (after it)."""
    extra = ["loss.name=amsoftmax", "schedule.num_epochs=3", "schedule.patience=1", "log_every=1",
             "data.min_frames=20", "data.max_frames=58", f"init_from={dirs['source']}", "finetune.freeze_blocks=3",
             "finetune.freeze_steps=6"]
    straight = str(tmp_path / "straight")
    _train(dirs["new"], straight, *extra)
    argv = []
    for item in TINY + extra:
        argv += ["--set", item]
    for kill_at in (5, 7):
        killed = str(tmp_path / f"killed{kill_at}")
        proc = subprocess.run([sys.executable, "-c", _KILLING_TRAINER] + argv + [dirs["new"], killed],
                              env=dict(os.environ, KILL_AT_STEP=str(kill_at)), capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        # the resume in this process (TensorFlow loaded once): the kill -9 needs a process of its own, the resume not
        rerun = tool(["tfspk-train", *argv, dirs["new"], killed])
        assert rerun.returncode == 0, rerun.stderr
        _assert_identical(_state(straight), _state(killed))
