"""A training run: ``train(data_dir, exp_dir, config)``, what tfspk-train does.

The run holds ``<exp>/.lock``, picks the training input of ``data.source``
(:func:`tfspk.train.inputs.make_input`), builds the :class:`tfspk.train.trainer.Trainer`, writes the
experiment dir (``config.yaml``, ``spk2int``, ``features.conf``), restores a checkpoint or
initialises from another experiment, and hands over to :func:`tfspk.train.loop.run_epochs`. Errors
writing the dir become ToolErrors naming the path, in ``log/train.log`` too.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys

import tensorflow as tf

import tfspk
from tfspk import data as tfdata
from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_open
from tfspk.train import components, config as config_mod, distribute, expdir, finetune, inputs
from tfspk.train.config import TrainConfig
from tfspk.train.loop import TrainResult, run_epochs
from tfspk.train.report import TrainReport
from tfspk.train.resume import check_resume_compatible, restore
from tfspk.train.trainer import Trainer


def effective_config_dict(config: TrainConfig, feat_dim: int, num_classes: int) -> dict:
    data = config_mod.to_dict(config)
    data.update(feat_dim=feat_dim, num_classes=num_classes, tfspk_version=tfspk.__version__)
    return data


def train(data_dir: str, exp_dir: str, config: TrainConfig, *, resume: bool = True,
          strategy: tf.distribute.Strategy | None = None, stream=None) -> TrainResult:
    """Train an x-vector network on a Kaldi data dir; everything goes into ``exp_dir`` (see module doc).

    The chief holds ``<exp>/.lock`` for the whole run (a second trainer is refused, see
    :mod:`tfspk.train.expdir`); ``final/DONE`` is removed first and written last, when training has
    finished. Errors writing the dir (full disk, permissions) name the path and the OS error, in
    ``log/train.log`` too.
    """
    config = components.resolve(config)
    inputs.source_class(config.data.source).check(data_dir, config)   # before the dir is locked or written
    strategy = strategy or distribute.make_strategy(config.strategy)  # first: see make_strategy
    notes = []  # said in the log once it is open
    lock = None
    if distribute.is_chief(strategy):
        lock = expdir.ExpDirLock(exp_dir, command=" ".join(sys.argv), log=notes.append).acquire()
    try:
        return _train_locked(data_dir, exp_dir, config, resume, strategy, stream, notes)
    finally:
        if lock is not None:
            lock.release()


def _train_locked(data_dir, exp_dir, config, resume, strategy, stream, notes) -> TrainResult:
    source = inputs.source_class(config.data.source)(data_dir, config)
    notes.extend(source.notes)  # e.g. the audio input's count of skipped utterances
    trial_set = None
    if config.valid.eer_data:
        trial_set = tfdata.TrialSet(config.valid.eer_data, config.valid.eer_trials or None, source.feat_dim)
    current = effective_config_dict(config, source.feat_dim, source.num_classes)
    ckpt_dir = os.path.join(exp_dir, "ckpt")
    config_path = os.path.join(exp_dir, "config.yaml")
    has_checkpoint = resume and tf.train.latest_checkpoint(ckpt_dir) is not None
    if has_checkpoint and os.path.isfile(config_path):
        check_resume_compatible(config_mod.load_yaml(config_path), current, exp_dir)

    trainer = Trainer(config, source.feat_dim, source.num_classes, exp_dir, strategy)
    chief = distribute.is_chief(trainer.strategy)
    if chief:
        with _write_errors(exp_dir):
            if not resume:  # never two runs mixed in one dir
                expdir.back_up_previous_run(exp_dir, log=notes.append)
            expdir.clear_done(exp_dir)
    report = TrainReport(exp_dir, enabled=chief, log_every=config.log_every, stream=stream)
    try:
        for note in notes:
            report.log(note)
        with _write_errors(exp_dir):
            if chief:
                os.makedirs(exp_dir, exist_ok=True)
                # first: a front end that does not fit the input leaves no config.yaml
                report.log(expdir.record_front_end(exp_dir, config, source, resuming=has_checkpoint))
                with atomic_open(config_path) as handle:
                    handle.write(f"# written by tfspk-train {tfspk.__version__}\n")
                    handle.write(config_mod.dump_yaml(current))
                source.write_spk2int(os.path.join(exp_dir, "spk2int"))
            own_dir = ckpt_dir if chief else os.path.join(exp_dir, f".ckpt-worker{distribute.worker_index(trainer.strategy)}")
            manager = tf.train.CheckpointManager(trainer.checkpoint, own_dir, max_to_keep=config.keep_checkpoints)
            if has_checkpoint:
                latest = tf.train.latest_checkpoint(ckpt_dir)
                restore(trainer.checkpoint, latest, ckpt_dir)
                report.log(f"resumed from {latest}: global step {trainer.global_step}, "
                           f"epoch {int(trainer.epoch.numpy())}, learning rate {trainer.learning_rate:.4g}")
            elif config.init_from:
                finetune.init_from(trainer, source, config, exp_dir, report.log)
            if trainer.freeze.active:
                report.log(f"fine-tuning: {trainer.freeze.describe()}")
            report.log(f"{source.num_classes} speakers, {source.num_train_utts} training and "
                       f"{len(source.valid_utts)} validation utterances, feat_dim {source.feat_dim}, "
                       f"{trainer.num_replicas} replica(s), loss {config.loss.name}"
                       + (f" + {', '.join(a.name for a in config.aux)}" if config.aux else ""))
            with source.errors():
                result = run_epochs(trainer, source, trial_set, config, manager, report, chief)
            if chief:
                expdir.mark_done(exp_dir, global_step=trainer.global_step, epochs=int(trainer.epoch.numpy()),
                                 stopped_early=result.stopped_early or "no")
            return result
    except ToolError as err:
        report.log_error(str(err))
        raise
    finally:
        report.close()


@contextlib.contextmanager
def _write_errors(exp_dir):
    """An OS error writing the experiment dir (ENOSPC, EACCES, ...) becomes a ToolError naming the path
    and the OS's message; TensorFlow's checkpoint writer reports them as OpErrors of these kinds."""
    try:
        yield
    except OSError as err:
        where = str(err.filename or exp_dir)
        inside = os.path.abspath(where).startswith(os.path.abspath(exp_dir) + os.sep) or where == exp_dir
        raise ToolError(f"{'cannot write' if inside else 'I/O error on'} {where}: {err.strerror or err}") from None
    except tf.errors.OpError as err:
        text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", (err.message or str(err)).strip())
        first_line = text.splitlines()[0] if text else type(err).__name__
        # Only I/O on the experiment dir; an OpError of the computation is a bug and stays one.
        if exp_dir not in text and not any(w in text.lower() for w in ("no space left", "permission denied",
                                                                       "read-only file system", "quota")):
            raise
        raise ToolError(f"cannot write the checkpoint in {os.path.join(exp_dir, 'ckpt')}: {first_line}") from None


