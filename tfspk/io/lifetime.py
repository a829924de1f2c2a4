"""Worker processes that die with their parent.

A forked worker (the input pool of tfspk-train: audio features, or feats with ``data.readers:
processes``) blocks on its task queue while the parent is alive. When the parent is killed with
SIGKILL it cannot shut the pool down, and the worker would wait for good, re-parented to init,
holding its memory. :func:`tie_to_parent`, run first in each worker, makes it notice:

* on Linux, ``prctl(PR_SET_PDEATHSIG)`` asks the kernel for a signal (SIGUSR2) when the parent dies;
  the handler exits at once if the parent really is gone. (The kernel sends it when the parent's
  *thread* that forked the worker ends, which is why the handler checks ``getppid`` first.)
* everywhere, a daemon thread polls ``getppid()`` (every ``interval`` s) and exits the worker when it
  changed: the parent died (fork keeps it the parent until then).

So no worker outlives its trainer by more than about a second, and a resumed run starts its own pool.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1            # linux/prctl.h
PARENT_DEATH_SIGNAL = signal.SIGUSR2
EXIT_STATUS = 128 + signal.SIGKILL   # as if killed: the parent's death ended the worker, not its work


def set_parent_death_signal(signum: int) -> bool:
    """Linux: ask the kernel for ``signum`` when this process's parent dies; False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def tie_to_parent(nice: int = 0, interval: float = 1.0) -> int:
    """Make this (freshly forked) process exit when its parent dies; add ``nice`` to its niceness.

    Meant as the ``initializer`` of a process pool. Returns the parent's pid."""
    parent = os.getppid()
    if nice:
        os.nice(nice)

    def parent_gone(*_):
        if os.getppid() != parent:
            os._exit(EXIT_STATUS)

    if threading.current_thread() is threading.main_thread():
        signal.signal(PARENT_DEATH_SIGNAL, parent_gone)
        set_parent_death_signal(PARENT_DEATH_SIGNAL)
    parent_gone()          # it may have died before the signal was asked for

    def watch():
        while True:
            time.sleep(interval)
            parent_gone()
    threading.Thread(target=watch, name="tfspk-parent-watch", daemon=True).start()
    return parent
