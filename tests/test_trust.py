"""Training state you can trust: one writer per experiment dir, no
unfinished model used silently, non-finite features found where they enter, write errors named,
LDA/PLDA on too few speakers reported.

Each test says what main did instead (the test fails there).
"""
import errno
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import run
from test_train import TINY, make_features
from tfspk.errors import ToolError


def _config(*extra):
    from tfspk.train import config as config_mod
    return config_mod.build_config(None, TINY + list(extra))


def _train(data_dir, exp, *extra, resume=True):
    from tfspk.train import train
    with open(os.devnull, "w") as null:
        return train(data_dir, str(exp), _config(*extra), resume=resume, stream=null)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_features(str(tmp_path_factory.mktemp("trust_data") / "data"))


@pytest.fixture(scope="module")
def finished_exp(data_dir, tmp_path_factory):
    exp = tmp_path_factory.mktemp("trust_exp") / "exp"
    _train(data_dir, exp, "schedule.num_epochs=1")
    return exp


def _log(exp):
    return open(os.path.join(exp, "log", "train.log")).read()


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------------------------ one writer
def test_a_second_trainer_on_a_locked_exp_dir_is_refused(data_dir, tmp_path):
    """main: both trainers ran to the end on the same dir."""
    from tfspk.train.expdir import ExpDirLock
    exp = tmp_path / "exp"
    with ExpDirLock(str(exp), command="tfspk-train first"):
        with pytest.raises(ToolError, match=rf"{exp} is being trained by another tfspk-train \(pid {os.getpid()} "
                                            rf"on host .*tfspk-train first; lock .*\.lock\)"):
            _train(data_dir, exp, "schedule.num_epochs=1")
        assert (exp / ".lock").exists()  # the refused trainer did not touch the owner's lock
    assert not (exp / ".lock").exists() and not (exp / "config.yaml").exists()


def test_a_running_tfspk_train_refuses_a_second_one(data_dir, tmp_path, tool):
    """Two real processes: the lock holder is another process (a helper holding the exp dir's lock), the
    refused tfspk-train runs in this one (its lock check reads the holder's pid and start time from /proc).
    The helper takes the lock through tfspk.io.dirlock, the mechanism ExpDirLock is, without importing
    TensorFlow."""
    from tfspk.nnet.saved import LOCK
    exp = tmp_path / "exp"
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from tfspk.io.dirlock import DirLock; "
                               "lock = DirLock(sys.argv[1], 'holder', name=sys.argv[2]).acquire(); "
                               "print('locked', flush=True); sys.stdin.read(); lock.release()", str(exp), LOCK],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        argv = []
        for item in TINY + ["schedule.num_epochs=1"]:
            argv += ["--set", item]
        proc = tool(["tfspk-train"] + argv + [data_dir, str(exp)], check=False)
        assert proc.returncode == 1, proc.stderr
        assert f"is being trained by another tfspk-train (pid {holder.pid}" in proc.stderr
        assert "Traceback" not in proc.stderr and not (exp / "config.yaml").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert not (exp / ".lock").exists()


def test_a_stale_lock_of_a_dead_process_is_reported_and_taken_over(data_dir, tmp_path):
    """main: no lock at all. Here: the stale lock is named in the log, the run proceeds and releases it."""
    exp = tmp_path / "exp"
    exp.mkdir()
    pid = _dead_pid()
    (exp / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "start_time": "1",
                                           "started": "2026-01-01 00:00:00", "command": "tfspk-train old"}))
    _train(data_dir, exp, "schedule.num_epochs=1")
    assert f"taking over the stale lock {exp}/.lock of a tfspk-train that is no longer running (pid {pid} " in _log(exp)
    assert not (exp / ".lock").exists() and (exp / "final" / "DONE").exists()


def test_a_reused_pid_does_not_keep_a_lock_alive(tmp_path):
    """Same pid as a live process, other start time: the owner is gone (pid reuse)."""
    from tfspk.train.expdir import ExpDirLock
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "start_time": "-5"}))
    said = []
    with ExpDirLock(str(exp), log=said.append) as lock:
        assert lock.held and lock.stale_owner["pid"] == os.getpid()
    assert len(said) == 1 and "stale lock" in said[0]


def test_a_lock_of_another_host_is_never_broken(data_dir, tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / ".lock").write_text(json.dumps({"host": "elsewhere.example", "pid": 1, "started": "x"}))
    with pytest.raises(ToolError, match=r"locked by a tfspk-train on another host \(pid 1 on host elsewhere.example"
                                        r".*remove .*\.lock and re-run"):
        _train(data_dir, exp, "schedule.num_epochs=1")
    assert (exp / ".lock").exists()


def test_resume_false_moves_the_earlier_run_to_backup(data_dir, tmp_path):
    """main: the new run's files were written over the old run's (checkpoints, log and config mixed)."""
    exp = tmp_path / "exp"
    _train(data_dir, exp, "schedule.num_epochs=2", "loss.name=amsoftmax")
    _train(data_dir, exp, "schedule.num_epochs=1", "loss.name=softmax", resume=False)
    backup = exp / ".backup"
    assert "name: amsoftmax" in (backup / "config.yaml").read_text()
    assert "name: softmax" in (exp / "config.yaml").read_text()
    assert sorted(os.listdir(exp / "ckpt")) == ["checkpoint", "ckpt-4.data-00000-of-00001", "ckpt-4.index"]
    assert "ckpt-8.index" in os.listdir(backup / "ckpt")
    log = _log(exp)
    assert "epoch 2" not in log and "moved the earlier run's config.yaml, spk2int, ckpt, final, log, tb" in log
    assert (exp / "final" / "DONE").exists() and (backup / "final" / "DONE").exists()


# ---------------------------------------------------------------------- completion marker
def _interrupt_at(monkeypatch, step):
    from tfspk.train import trainer
    original = trainer.Trainer.train_step

    def train_step(self, batch):
        values = original(self, batch)
        if self.global_step == step:
            raise KeyboardInterrupt
        return values
    monkeypatch.setattr(trainer.Trainer, "train_step", train_step)


def test_an_interrupted_training_is_not_used_for_extraction(data_dir, tmp_path, monkeypatch, capsys):
    """main: final/model.weights.h5 of epoch 1 was loaded and extracted from with exit 0."""
    from tfspk.train import load_for_inference
    exp = tmp_path / "exp"
    _interrupt_at(monkeypatch, 6)
    with pytest.raises(KeyboardInterrupt):
        _train(data_dir, exp, "schedule.num_epochs=3")
    assert (exp / "final" / "model.weights.h5").exists() and not (exp / "final" / "DONE").exists()
    assert not (exp / ".lock").exists()
    with pytest.raises(ToolError, match=rf"the training of {exp} did not finish \({exp}/final/DONE is missing.*"
                                        r"--allow-unfinished true"):
        load_for_inference(str(exp))
    warnings = []
    model, config = load_for_inference(str(exp), allow_unfinished=True, warn=warnings.append)
    assert config["feat_dim"] == 12 and "using it anyway" in warnings[0]

    data = tmp_path / "data"
    data.mkdir()
    for name in ("feats.scp", "vad.scp", "utt2spk", "spk2utt"):
        (data / name).write_text("")
    proc = run(["steps/extract_xvectors.sh", str(exp), str(data), str(tmp_path / "xv")], check=False,
               cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 1 and f"the training of {exp} did not finish (no {exp}/final/DONE)" in proc.stderr
    assert not (tmp_path / "xv").exists()

    monkeypatch.undo()
    _train(data_dir, exp, "schedule.num_epochs=3")  # resumed and finished
    done = (exp / "final" / "DONE").read_text()
    assert "global_step: 12" in done and "epochs: 3" in done
    load_for_inference(str(exp))


def test_a_resumed_training_withdraws_the_marker_until_it_finishes(data_dir, finished_exp, tmp_path, monkeypatch):
    import shutil
    exp = tmp_path / "exp"
    shutil.copytree(finished_exp, exp)
    assert (exp / "final" / "DONE").exists()
    _interrupt_at(monkeypatch, 6)
    with pytest.raises(KeyboardInterrupt):
        _train(data_dir, exp, "schedule.num_epochs=3")
    assert not (exp / "final" / "DONE").exists()


def test_tfspk_extract_refuses_or_warns(finished_exp, tmp_path, tool):
    import shutil
    from test_extract import _make_raw_data
    exp = tmp_path / "exp"
    shutil.copytree(finished_exp, exp)
    (exp / "final" / "DONE").unlink()
    _make_raw_data(tmp_path / "data", [80, 90], dim=12)
    args = [str(exp), f"scp:{tmp_path}/data/feats.scp", f"scp:{tmp_path}/data/vad.scp", f"ark:{tmp_path}/xv.ark"]
    proc = tool(" ".join(["tfspk-extract"] + args), check=False)   # in this process: TensorFlow loaded once
    assert proc.returncode == 1 and "did not finish" in proc.stderr and not (tmp_path / "xv.ark").exists()
    proc = tool(" ".join(["tfspk-extract", "--allow-unfinished=true"] + args))
    assert "WARNING" in proc.stderr and "using it anyway (--allow-unfinished true)" in proc.stderr
    assert (tmp_path / "xv.ark").exists()


# ------------------------------------------------------------------------ non-finite values
def _poison(data_dir, target, utt, frame, value=np.nan):
    """Copy of data dir ``data_dir`` at ``target`` with ``value`` in one feature of ``utt``. The archive is
    written by hand in Kaldi's binary float-matrix format (tfspk's ArchiveWriter refuses NaN/Inf)."""
    import shutil
    import struct
    from tfspk.io.ark import read_rspecifier
    shutil.copytree(data_dir, target)
    feats = dict(read_rspecifier(f"scp:{target}/feats.scp"))
    feats[utt] = feats[utt].copy()
    feats[utt][frame, 3] = value
    ark = f"{target}/poisoned.ark"
    with open(ark, "wb") as out, open(f"{target}/feats.scp", "w") as scp:
        for key in sorted(feats):
            out.write(key.encode() + b" ")
            scp.write(f"{key} {ark}:{out.tell()}\n")
            rows, cols = feats[key].shape
            out.write(b"\0BFM " + struct.pack("<bibi", 4, rows, 4, cols) + feats[key].astype("<f4").tobytes())
    return str(target)


def test_non_finite_features_are_named_when_read_for_training(data_dir, tmp_path):
    """main: the sampler returned the NaN frames."""
    from tfspk.data import SpeakerBalancedSampler
    bad = _poison(data_dir, tmp_path / "data", "spk3-utt2", 7, np.inf)
    sampler = SpeakerBalancedSampler(bad, num_speakers=4, min_frames=20, max_frames=40, num_valid_utts=0)
    with pytest.raises(ToolError, match=rf"{bad}/feats.scp: utterance 'spk3-utt2' \({bad}/poisoned.ark:\d+\) has "
                                        r"non-finite values \(NaN or Inf\) in frame 7"):
        sampler.read_segment("spk3-utt2", 5, 20)
    assert np.isfinite(sampler.read_segment("spk3-utt2", 8, 20)).all()  # only the frames read are checked


def test_a_nan_in_a_validation_utterance_stops_training_naming_it(data_dir, tmp_path):
    """main: valid-loss nan counted as "no improvement"; the LR halved each epoch and the run ended with
    success."""
    from tfspk.train import inputs
    valid_utt = inputs.make_sampler(data_dir, _config()).valid_utts[0]
    bad = _poison(data_dir, tmp_path / "data", valid_utt, slice(None))  # whatever the crop, it has NaNs
    exp = tmp_path / "exp"
    with pytest.raises(ToolError, match=rf"utterance '{valid_utt}' \(.*poisoned.ark:\d+\) has non-finite values"):
        _train(bad, exp, "schedule.num_epochs=3")
    assert not (exp / "final" / "DONE").exists()
    assert f"ERROR (tfspk-train) {bad}/feats.scp: utterance '{valid_utt}'" in _log(exp)


def test_a_nan_validation_loss_is_an_error_not_a_plateau(data_dir):
    from tfspk.train import components
    from tfspk.train.trainer import Trainer
    trainer = Trainer(components.resolve(_config()), 12, 8)
    feats = np.random.default_rng(0).normal(size=(3, 40, 12)).astype(np.float32)
    labels = np.array([0, 1, 2], np.int32)
    loss, _ = trainer.validation_loss([(feats, labels)])
    assert np.isfinite(loss)
    feats[1, 4, 0] = np.nan  # bypassing the readers' check: the network itself gives NaN
    with pytest.raises(ToolError, match=r"the validation loss is nan at step 0"):
        trainer.validation_loss([(feats, labels)])


def test_divergence_names_the_batch_of_the_step(data_dir):
    from tfspk.train import inputs
    from tfspk.train import components
    from tfspk.train.trainer import Trainer
    config = _config()
    source = inputs.make_input(data_dir, config)
    sampler = source.sampler
    trainer = Trainer(components.resolve(config), sampler.feat_dim, sampler.num_classes)
    trainer.optimizer.iterations.assign(8)  # the step that diverged was global step 7 -> 8
    message = trainer.divergence_message(source, {"total": float("nan")})
    plan = sampler.plan(7)
    assert message.startswith("training diverged at step 8 (loss nan); the batch of that step was 48 frames of ")
    for utt in plan.utts:
        assert f"{utt} ({sampler.reader.location(utt)})" in message
    largest = np.max(np.abs(sampler.load(plan)[0]))
    assert f"largest |feature| {largest:.4g}" in message


def test_extraction_names_the_input_with_non_finite_features(finished_exp, data_dir, tmp_path):
    """main: the error (if any) named the output archive."""
    from tfspk.extract import extract_to_archive, load_extractor
    bad = _poison(data_dir, tmp_path / "data", "spk1-utt4", 2)
    extractor = load_extractor(str(finished_exp))
    out = tmp_path / "out.ark"
    with pytest.raises(ToolError, match=rf"utterance 'spk1-utt4' of scp:{bad}/feats.scp \({bad}/poisoned.ark:\d+\)"
                                        r" has non-finite values \(NaN or Inf\) in 1 frame"):
        extract_to_archive(extractor, f"scp:{bad}/feats.scp", None, f"ark:{out}", apply_cmn=False)
    assert not out.exists()


# ---------------------------------------------------------------------------- write errors
def test_a_full_disk_names_the_file_and_goes_into_the_log(data_dir, tmp_path, monkeypatch):
    """main: an OSError escaped (the tool said "internal error ... please report it", no file, not in the log)."""
    from tfspk.train import trainer

    def full(self, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    monkeypatch.setattr(trainer.Trainer, "save_weights", full)
    exp = tmp_path / "exp"
    with pytest.raises(ToolError, match=rf"cannot write {exp}/final/model.weights.h5: No space left on device"):
        _train(data_dir, exp, "schedule.num_epochs=1")
    assert f"ERROR (tfspk-train) cannot write {exp}/final/model.weights.h5: No space left on device" in _log(exp)
    assert not (exp / ".lock").exists() and not (exp / "final" / "DONE").exists()


def test_a_failed_checkpoint_write_names_the_checkpoint_dir(data_dir, tmp_path, monkeypatch):
    import tensorflow as tf

    def full(self, checkpoint_number=None):
        raise tf.errors.ResourceExhaustedError(None, None, f"{{{{function_node __wrapped__SaveV2}}}} {exp}/ckpt/"
                                               "ckpt-4_temp/part-00000; No space left on device [Op:SaveV2]")
    exp = tmp_path / "exp"
    monkeypatch.setattr(tf.train.CheckpointManager, "save", full)
    with pytest.raises(ToolError, match=rf"cannot write the checkpoint in {exp}/ckpt: {exp}/ckpt/ckpt-4_temp/"
                                        r"part-00000; No space left on device \[Op:SaveV2\]$"):
        _train(data_dir, exp, "schedule.num_epochs=1")
    assert "No space left on device" in _log(exp)


# ----------------------------------------------------------------------------- LDA / PLDA
def test_lda_dimension_above_speakers_minus_one_is_warned_about():
    """main: no word. The warning's claim checked in numpy: directions beyond S - 1 have zero
    between-class variance."""
    from tfspk.backend.lda import compute_lda
    rng = np.random.default_rng(3)
    speakers = [f"s{i % 3}" for i in range(60)]
    centres = rng.normal(size=(3, 6)) * 3
    vectors = rng.normal(size=(60, 6)) + centres[np.arange(60) % 3]
    warnings = []
    result = compute_lda(vectors, speakers, 4, warn=warnings.append)
    assert len(warnings) == 1 and "--dim=4 is more than the number of speakers minus one (3 - 1 = 2)" in warnings[0]
    assert "the last 2 LDA directions" in warnings[0]
    # Independent statement: between-class scatter of 3 class means has rank 2.
    means = np.array([vectors[[i for i in range(60) if i % 3 == s]].mean(axis=0) for s in range(3)])
    centred = means - vectors.mean(axis=0)
    assert np.linalg.matrix_rank(centred.T @ centred, tol=1e-8) == 2
    assert np.all(np.abs(result.eigenvalues[2:]) < 1e-8) and result.eigenvalues[1] > 1e-3
    warnings.clear()
    compute_lda(vectors, speakers, 2, warn=warnings.append)
    assert warnings == []


def test_plda_on_a_single_speaker_is_an_error():
    from tfspk.backend import plda
    rng = np.random.default_rng(4)
    stats = plda.PldaStats.from_groups([rng.normal(size=(30, 4))])
    with pytest.raises(ToolError, match=r"only 1 speaker: PLDA needs at least 2 speakers"):
        plda.estimate_plda(stats)
    plda.estimate_plda(plda.PldaStats.from_groups([rng.normal(size=(30, 4)), rng.normal(size=(30, 4)) + 1]))
