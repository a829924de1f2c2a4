"""Learning-rate and margin schedules that are pure functions of the global step.

``schedule.lr_policy`` chooses how the learning rate evolves:

* ``plateau`` (default): reduce on a validation-loss plateau, [Liu2019, sec. 4.2]; the LR is state
  kept in the checkpoint (:mod:`tfspk.train.schedule`).
* ``exponential``: decay per epoch, [Li2022AR] (Adam 1e-3, x0.95 per epoch)::

      lr(k) = lr_0 * d ** floor(k / E)            d = schedule.lr_decay, E = steps_per_epoch

* ``warmup_exponential``: linear warm-up, then exponential decay to a final LR over the whole run
  (the WeSpeaker recipes' ExponentialDecrease scheduler with warm-up, [Wang2023])::

      lr(k) = lr_0 * min(1, (k + 1) / W) * (lr_T / lr_0) ** (k / T)
      W = schedule.warmup_steps (or warmup_epochs * E),  T = num_epochs * E,  lr_T = schedule.final_lr

  W = 0 means no warm-up. The decay runs over all T steps (warm-up included), so lr(T) = lr_T.

``k`` is the 0-based index of the step about to be taken (``optimizer.iterations`` before it). As
every value is a function of k and the config, a resumed run uses exactly the LRs of an
uninterrupted one.

Margin warm-up (``schedule.margin_warmup_epochs = N``): the margin heads' target value is
``cos + w(k) * (psi_train - cos)`` with ``w(k) = min(1, k / (N * E))``, a multiplier rising from 0
to 1 on the margin (for additive-cosine margins, AM-Softmax: exactly the margin ``w * m``), applied
on top of [Liu2019, eq. 8] annealing (:func:`tfspk.losses.annealing.margin_warmup_weight`).
"""
from __future__ import annotations

import math

POLICIES = ("plateau", "exponential", "warmup_exponential")


def warmup_steps(schedule) -> int:
    """W of the warm-up: ``warmup_steps`` if set, else ``warmup_epochs * steps_per_epoch``."""
    if schedule.warmup_steps > 0:
        return int(schedule.warmup_steps)
    return int(round(schedule.warmup_epochs * schedule.steps_per_epoch))


def learning_rate_at(step: int, lr0: float, schedule) -> float:
    """The learning rate of 0-based step ``step`` for the step-function policies (see module doc).

    ``schedule`` is a :class:`tfspk.train.config.ScheduleConfig`; for ``plateau`` this returns ``lr0``
    (the plateau policy keeps its LR in the checkpoint instead).
    """
    policy = schedule.lr_policy
    step = int(step)
    if policy == "plateau":
        return float(lr0)
    if policy == "exponential":
        return float(lr0 * schedule.lr_decay ** (step // schedule.steps_per_epoch))
    if policy == "warmup_exponential":
        total = schedule.num_epochs * schedule.steps_per_epoch
        warm = warmup_steps(schedule)
        factor = min(1.0, (step + 1) / warm) if warm > 0 else 1.0
        return float(lr0 * factor * math.exp(step / total * math.log(schedule.final_lr / lr0)))
    raise ValueError(f"unknown lr_policy {policy!r}")


def margin_warmup_steps(schedule) -> int:
    """Length in steps of the margin warm-up (0 = off)."""
    return int(round(schedule.margin_warmup_epochs * schedule.steps_per_epoch))
