"""Who may write an output dir: one lock mechanism for experiment dirs, shard dirs and extraction dirs.

``<dir>/.lock`` is created with O_EXCL and holds the owner's host, pid and process start time (JSON).
A second writer finds it and stops with an error naming the owner. A lock whose owner is gone (same
host, and no process with that pid and start time: the pid may have been reused) is stale: it is
reported and taken over (a kill -9 leaves one behind, and re-running the command is how a killed run
resumes). A lock of another host cannot be checked and is never broken: the error says to remove it.

The owner is normally the process itself; a step script takes the lock for its own pid with the tool
``tfspk-lock-dir`` (steps/internal/checks.sh ``lock_output_dir``), so that the lock lives exactly as
long as the script while its jobs write into the dir. A process that finds the lock held by one of its
ancestors (the tool a locked step script runs, through run.pl) works under that lock: it neither
takes nor releases it.
"""
from __future__ import annotations

import json
import os
import socket
import time

from tfspk.errors import ToolError

LOCK_NAME = ".lock"


def process_start_time(pid: int) -> str | None:
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


def owner_alive(owner: dict) -> bool | None:
    """True/False for a lock of this host, None when it cannot be checked (another host)."""
    if owner.get("host") != socket.gethostname():
        return None
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False
    if os.path.isdir("/proc/self"):
        started = process_start_time(pid)
        return started is not None and started == owner.get("start_time", started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ancestors(pid: int | None = None) -> set:
    """Pids of the processes ``pid`` (default: this one) runs under: parent, grandparent, ... (Linux /proc;
    empty elsewhere)."""
    found = set()
    pid = os.getpid() if pid is None else pid
    while pid > 1 and len(found) < 256:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            break
        pid = int(stat[stat.rfind(")") + 2:].split()[1])
        found.add(pid)
    return found


def describe_owner(owner: dict) -> str:
    return (f"pid {owner.get('pid')} on host {owner.get('host')}, started {owner.get('started', '?')}"
            + (f": {owner['command']}" if owner.get("command") else ""))


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


class DirLock:
    """Exclusive right of one process (``owner_pid``, default this one) to write ``directory``; a
    context manager. ``what`` names the writer in messages (``tfspk-train``), ``activity`` what it does
    (``trained``: "X is being trained by another tfspk-train"), ``kind`` the dir (``experiment dir``).
    ``log`` receives the message about a stale lock that is taken over.
    """

    def __init__(self, directory: str, command: str = "", log=None, what: str = "tfspk process",
                 activity: str = "written", kind: str = "dir", owner_pid: int | None = None,
                 name: str = LOCK_NAME):
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, name)
        self.command = command
        self.log = log or (lambda message: None)
        self.what, self.activity, self.kind = what, activity, kind
        self.owner_pid = owner_pid or os.getpid()
        self.held = False
        self.stale_owner: dict | None = None
        self.inherited_from: dict | None = None   # the lock of an ancestor (a step script) this run works under

    def acquire(self) -> "DirLock":
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as err:
            raise ToolError(f"cannot create {self.kind} {self.directory}: {err.strerror or err}") from None
        pid = self.owner_pid
        me = {"host": socket.gethostname(), "pid": pid, "start_time": process_start_time(pid),
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": self.command}
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if self._handle_existing():
                    return self       # held by a process this one runs under: its lock covers this run
                continue
            except OSError as err:
                raise ToolError(f"cannot create the lock {self.path}: {err.strerror or err}") from None
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(me, handle)
                handle.write("\n")
            self.held = True
            return self
        raise ToolError(f"cannot take the lock {self.path}: it keeps reappearing (another {self.what} starting?)")

    def read_owner(self) -> dict | None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                owner = json.loads(handle.read())
        except (OSError, ValueError):
            return None
        return owner if isinstance(owner, dict) else None

    def _handle_existing(self) -> bool:
        """Deal with an existing lock file: True if an ancestor of this process holds it (a step script
        that locked its output dir runs this tool), None/False to try again; ToolError if another holds it."""
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
        alive = owner_alive(owner) if owner else False
        if alive and owner.get("pid") in ancestors():
            self.inherited_from = owner
            return True
        if alive:
            raise ToolError(f"{self.directory} is being {self.activity} by another {self.what} ({describe_owner(owner)}; "
                            f"lock {self.path}); wait for it to finish or use another {self.kind}")
        if alive is None:
            raise ToolError(f"{self.directory} is locked by a {self.what} on another host ({describe_owner(owner)}; "
                            f"lock {self.path}); if no such process runs any more, remove {self.path} and re-run")
        # Stale: move it aside atomically, so of two processes taking it over only one succeeds.
        aside = f"{self.path}.stale.{os.getpid()}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        os.remove(aside)
        self.stale_owner = owner
        self.log(f"taking over the stale lock {self.path} of a {self.what} that is no longer running "
                 f"({describe_owner(owner) if owner else 'unreadable lock file'}); it did not finish")

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


def release_for(directory: str, owner_pid: int, name: str = LOCK_NAME) -> bool:
    """Remove ``directory``'s lock if ``owner_pid`` of this host holds it (a script's lock taken with
    ``tfspk-lock-dir``); True if removed."""
    lock = DirLock(directory, owner_pid=owner_pid, name=name)
    owner = lock.read_owner()
    if owner and owner.get("pid") == owner_pid and owner.get("host") == socket.gethostname():
        lock.held = True
        lock.release()
        return True
    return False
