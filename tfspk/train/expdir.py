"""Who may write an experiment dir, and whether its model is finished.

* :class:`ExpDirLock`: one trainer per experiment dir. ``<exp>/.lock`` is created with O_EXCL and
  holds the owner's host, pid and process start time. A second trainer finds it and stops with an
  error naming the owner. A lock whose owner is gone (same host, and no process with that pid and
  start time: the pid may have been reused) is stale: it is reported in the log and taken over
  (a kill -9 leaves one behind, and re-running the command is how a killed training resumes). A
  lock of another host cannot be checked and is never broken: the error says to remove it by hand.
* :func:`back_up_previous_run`: ``--resume false`` on a dir that holds a run moves that run's files
  to ``<exp>/.backup`` (as Kaldi scripts keep replaced files in ``.backup``), so the dir never
  mixes two runs.
* The completion marker ``final/DONE`` is written (atomically) only at the very end of a
  training that finished, and removed as soon as a trainer starts changing the dir.
  :func:`tfspk.nnet.saved.check_finished` is what extraction calls before it uses ``final/model.weights.h5``.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time

from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_open
from tfspk.nnet.saved import DONE, LOCK  # the marker is read by extraction (tfspk.nnet.saved.check_finished)

BACKUP = ".backup"
# What tfspk-train writes into an experiment dir (a --resume false run moves these away).
RUN_FILES = ("config.yaml", "spk2int", "ckpt", "final", "log", "tb")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), None if no
    such process. With the pid it identifies a process even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _owner_alive(owner: dict) -> bool | None:
    """True/False for a lock of this host, None when it cannot be checked (another host)."""
    if owner.get("host") != socket.gethostname():
        return None
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False
    if os.path.isdir("/proc/self"):
        started = _start_time(pid)
        return started is not None and started == owner.get("start_time", started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(owner: dict) -> str:
    return (f"pid {owner.get('pid')} on host {owner.get('host')}, started {owner.get('started', '?')}"
            + (f": {owner['command']}" if owner.get("command") else ""))


class ExpDirLock:
    """Exclusive right of one process to train into ``exp_dir`` (a context manager).

    ``log`` receives the message about a stale lock that is taken over.
    """

    def __init__(self, exp_dir: str, command: str = "", log=None):
        self.exp_dir = exp_dir
        self.path = os.path.join(exp_dir, LOCK)
        self.command = command
        self.log = log or (lambda message: None)
        self.held = False
        self.stale_owner: dict | None = None

    def acquire(self) -> "ExpDirLock":
        try:
            os.makedirs(self.exp_dir, exist_ok=True)
        except OSError as err:
            raise ToolError(f"cannot create experiment dir {self.exp_dir}: {err.strerror or err}") from None
        pid = os.getpid()
        me = {"host": socket.gethostname(), "pid": pid, "start_time": _start_time(pid),
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": self.command}
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._handle_existing()
                continue
            except OSError as err:
                raise ToolError(f"cannot create the lock {self.path}: {err.strerror or err}") from None
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(me, handle)
                handle.write("\n")
            self.held = True
            return self
        raise ToolError(f"cannot take the lock {self.path}: it keeps reappearing (another trainer starting?)")

    def _handle_existing(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            return  # released meanwhile: try again
        try:
            owner = json.loads(text)
            if not isinstance(owner, dict):
                raise ValueError
        except ValueError:
            if time.time() - _mtime(self.path) < 5:
                time.sleep(0.2)  # the owner may be writing it right now
                return
            owner = {}
        alive = _owner_alive(owner) if owner else False
        if alive:
            raise ToolError(f"{self.exp_dir} is being trained by another tfspk-train ({_describe(owner)}; lock "
                            f"{self.path}); wait for it to finish or use another experiment dir")
        if alive is None:
            raise ToolError(f"{self.exp_dir} is locked by a tfspk-train on another host ({_describe(owner)}; lock "
                            f"{self.path}); if no such process runs any more, remove {self.path} and re-run")
        # Stale: move it aside atomically, so of two processes taking it over only one succeeds.
        aside = f"{self.path}.stale.{os.getpid()}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        os.remove(aside)
        self.stale_owner = owner
        self.log(f"taking over the stale lock {self.path} of a tfspk-train that is no longer running "
                 f"({_describe(owner) if owner else 'unreadable lock file'}); it did not finish")

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


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
