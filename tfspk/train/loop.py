"""The epoch loop of tfspk-train: training steps, per-epoch validation, the LR policy, checkpoints.

:func:`run_epochs` drives a :class:`tfspk.train.trainer.Trainer`; :func:`apply_policy` applies
:func:`tfspk.train.schedule.plateau_step` ([Liu2019, sec. 4.2]) to the epoch's validation loss, or
sets the LR of every step from :func:`tfspk.train.lr.learning_rate_at` (``schedule.lr_policy``
exponential / warmup_exponential). With ``schedule.average_last = N`` the last N epochs' weights are
kept as ``final/epoch-<n>.weights.h5`` and their mean (:mod:`tfspk.train.average`) becomes
``final/model.weights.h5``.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time

from tfspk.errors import ToolError
from tfspk.train import average, lr as lr_mod, schedule


@dataclasses.dataclass
class EpochResult:
    epoch: int
    step: int
    loss: float
    accuracy: float
    lr: float
    valid_loss: float | None
    valid_accuracy: float | None
    valid_eer: float | None
    frames_per_second: float


@dataclasses.dataclass
class TrainResult:
    epochs: list
    stopped_early: str = ""


def run_epochs(trainer, source, trial_set, config, manager, report, chief) -> TrainResult:
    sched = config.schedule
    valid = source.validation_batches(config.valid.batch_size)
    final_dir = os.path.join(trainer.exp_dir, "final")
    result = TrainResult([])
    start_epoch = int(trainer.epoch.numpy())
    if start_epoch >= sched.num_epochs or int(trainer.stopped.numpy()):
        why = "stopped early by the LR policy" if int(trainer.stopped.numpy()) else \
            f"schedule.num_epochs={sched.num_epochs}"
        report.log(f"nothing to do: already trained {start_epoch} epochs ({why})")
        return result
    batches = trainer.batches(source, trainer.global_step)
    for epoch in range(start_epoch + 1, sched.num_epochs + 1):
        report.start_epoch(epoch, sched.steps_per_epoch, sched.num_epochs)
        sums = {"loss": 0.0, "accuracy": 0.0, "frames": 0.0}
        start = time.time()
        first_step = trainer.global_step
        for i in range(1, sched.steps_per_epoch + 1):
            if sched.lr_policy != "plateau":  # a function of the global step: exact after a resume
                trainer.set_learning_rate(lr_mod.learning_rate_at(first_step + i - 1, config.optimizer.lr, sched))
            batch = next(batches)
            values = trainer.train_step(batch)
            if not math.isfinite(values["total"]):
                raise ToolError(trainer.divergence_message(source, values, batch))
            for key in sums:
                sums[key] += values[key]
            report.step(epoch, i, sched.steps_per_epoch, trainer.global_step, values["loss"], values["accuracy"])
            if trainer.global_step % config.log_every == 0:
                report.scalars({"train/step_loss": values["loss"], "train/step_total": values["total"]},
                               trainer.global_step)
        elapsed = time.time() - start
        n = sched.steps_per_epoch
        epoch_result = EpochResult(epoch, trainer.global_step, sums["loss"] / n, sums["accuracy"] / n,
                                   trainer.learning_rate, None, None, None, sums["frames"] / max(elapsed, 1e-9))
        if valid:
            epoch_result.valid_loss, epoch_result.valid_accuracy = trainer.validation_loss(valid)
        if trial_set is not None:
            epoch_result.valid_eer = trainer.validation_eer(trial_set, config.valid.batch_size, config.valid.frames)
        log_epoch(report, epoch_result, elapsed)
        stop = apply_policy(trainer, epoch_result, config, final_dir, chief, report)
        if chief and sched.average_last:
            trainer.save_weights(os.path.join(final_dir, f"epoch-{epoch}.weights.h5"))
            average.prune_epoch_weights(final_dir, sched.average_last)
        trainer.epoch.assign(epoch)
        trainer.stopped.assign(1 if stop else 0)
        manager.save(checkpoint_number=trainer.global_step)
        result.epochs.append(epoch_result)
        if stop:
            result.stopped_early = stop
            report.log(f"stopping: {stop}", epoch)
            break
    if chief:
        trainer.save_weights(os.path.join(final_dir, "last.weights.h5"))
        if not os.path.exists(os.path.join(final_dir, "model.weights.h5")):
            trainer.save_weights(os.path.join(final_dir, "model.weights.h5"))
        if sched.average_last:
            files = average.epoch_weight_files(final_dir)[-sched.average_last:]
            average.average_weight_files(files, os.path.join(final_dir, "model.weights.h5"))
            report.log(f"final/model.weights.h5 = average of {len(files)} epoch(s): "
                       + ", ".join(os.path.basename(f) for f in files))
    report.log(f"done: {trainer.global_step} steps; model for extraction: {final_dir}/model.weights.h5")
    return result


def apply_policy(trainer, result: EpochResult, config, final_dir, chief, report) -> str:
    """LR policy on the validation loss; save the best model so far. Returns a stop reason or ''."""
    sched = config.schedule
    if result.valid_loss is None or sched.lr_policy != "plateau":
        # step-function LR policies ([Li2022AR], [Wang2023]) run all epochs: the model is the last one
        if chief:
            trainer.save_weights(os.path.join(final_dir, "model.weights.h5"))
        return ""
    state = trainer.plateau_state()
    decision = schedule.plateau_step(state, result.valid_loss, trainer.learning_rate, lr_factor=sched.lr_factor,
                                     patience=sched.patience, min_improvement=sched.min_improvement,
                                     max_reductions_without_improvement=sched.max_reductions_without_improvement,
                                     min_lr=sched.min_lr)
    trainer.store_plateau_state(state)
    if decision.improved and chief:
        trainer.save_weights(os.path.join(final_dir, "model.weights.h5"))
    if decision.new_lr != trainer.learning_rate and not decision.stop:
        report.log(f"validation loss has not improved for {sched.patience} epoch(s): learning rate "
                   f"{trainer.learning_rate:.4g} -> {decision.new_lr:.4g}", result.epoch)
        trainer.set_learning_rate(decision.new_lr)
    return decision.reason if decision.stop else ""


def log_epoch(report, r: EpochResult, elapsed: float) -> None:
    parts = [f"epoch {r.epoch} step {r.step}: loss {r.loss:.4f} accuracy {r.accuracy:.4f} lr {r.lr:.4g}"]
    if r.valid_loss is not None:
        parts.append(f"valid-loss {r.valid_loss:.4f} valid-accuracy {r.valid_accuracy:.4f}")
    if r.valid_eer is not None:
        parts.append(f"valid-eer {r.valid_eer:.2f}%")
    parts.append(f"time {elapsed:.1f}s frames/s {r.frames_per_second:.0f}")
    report.log(" ".join(parts), r.epoch)
    report.scalars({"train/loss": r.loss, "train/accuracy": r.accuracy, "train/lr": r.lr,
                    "valid/loss": r.valid_loss, "valid/accuracy": r.valid_accuracy, "valid/eer": r.valid_eer,
                    "train/frames_per_second": r.frames_per_second}, r.step)
