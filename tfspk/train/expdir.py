"""Who may write an experiment dir, and whether its model is finished (issue 12 items 2 and 3).

* :class:`ExpDirLock`: one trainer per experiment dir (``<exp>/.lock``; the mechanism, shared with
  the other output dirs, is :class:`tfspk.io.dirlock.DirLock`): a second trainer stops with an error
  naming the owner; a stale lock (its owner is gone, e.g. after kill -9) is reported and taken over.
* :func:`back_up_previous_run`: ``--resume false`` on a dir that holds a run moves that run's files
  to ``<exp>/.backup`` (as Kaldi scripts keep replaced files in ``.backup``), so the dir never
  mixes two runs.
* The completion marker ``final/DONE`` is written (atomically) only at the very end of a
  training that finished, and removed as soon as a trainer starts changing the dir.
  :func:`tfspk.nnet.saved.check_finished` is what extraction calls before it uses ``final/model.weights.h5``.
"""
from __future__ import annotations

import os
import shutil
import time

from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_open
from tfspk.io.dirlock import DirLock
from tfspk.nnet.saved import DONE, LOCK  # the marker is read by extraction (tfspk.nnet.saved.check_finished)

BACKUP = ".backup"
# What tfspk-train writes into an experiment dir (a --resume false run moves these away).
RUN_FILES = ("config.yaml", "spk2int", "ckpt", "final", "log", "tb")


class ExpDirLock(DirLock):
    """Exclusive right of one trainer to ``exp_dir`` (:class:`tfspk.io.dirlock.DirLock`, the one lock
    mechanism of output dirs). ``log`` receives the message about a stale lock that is taken over."""

    def __init__(self, exp_dir: str, command: str = "", log=None):
        super().__init__(exp_dir, command=command, log=log, what="tfspk-train", activity="trained",
                         kind="experiment dir", name=LOCK)
        self.exp_dir = exp_dir


def has_previous_run(exp_dir: str) -> bool:
    return any(os.path.exists(os.path.join(exp_dir, name)) for name in RUN_FILES)


def back_up_previous_run(exp_dir: str, log=None) -> str | None:
    """Move the files of an earlier run (:data:`RUN_FILES`) to ``<exp>/.backup`` (an earlier backup is
    replaced). Returns the backup dir, or None if there was nothing to move."""
    present = [name for name in RUN_FILES if os.path.exists(os.path.join(exp_dir, name))]
    if not present:
        return None
    backup = os.path.join(exp_dir, BACKUP)
    try:
        if os.path.exists(backup):
            shutil.rmtree(backup)
        os.makedirs(backup)
        for name in present:
            os.rename(os.path.join(exp_dir, name), os.path.join(backup, name))
    except OSError as err:
        raise ToolError(f"cannot move the earlier run in {exp_dir} to {backup}: "
                        f"{err.strerror or err} ({err.filename or backup})") from None
    if log:
        log(f"--resume false: moved the earlier run's {', '.join(present)} to {backup}")
    return backup


def clear_done(exp_dir: str) -> None:
    """Withdraw the completion marker: from now on the dir is being changed."""
    try:
        os.remove(os.path.join(exp_dir, DONE))
    except FileNotFoundError:
        pass


def mark_done(exp_dir: str, **facts) -> None:
    """Write ``final/DONE`` (atomically; ``key: value`` lines) at the very end of a finished training."""
    os.makedirs(os.path.join(exp_dir, "final"), exist_ok=True)
    with atomic_open(os.path.join(exp_dir, DONE)) as handle:
        handle.write(f"finished: {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        for key, value in facts.items():
            handle.write(f"{key}: {value}\n")
