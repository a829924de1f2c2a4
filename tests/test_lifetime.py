"""Input worker processes die with their trainer (tfspk.io.lifetime): after kill -9 of tfspk-train, none
of its worker processes is alive a few seconds later, for audio input and feats with readers: processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from test_train import TINY, make_features
from test_train_audio import AUDIO, audio_dir  # noqa: F401  (the module fixture)
from tfspk.io import lifetime


def _children(pid):
    """Pids of the live (not zombie) processes whose parent is ``pid``."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = open(f"/proc/{name}/stat").read()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(name))
    return found


def _alive(pid):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def _kill_trainer_and_count(sets, data_dir, exp_dir, num_workers, timeout=240):
    """Start tfspk-train, wait for its ``num_workers`` workers, kill -9 it; return (before, left after 5 s)."""
    args = [a for kv in sets for a in ("--set", kv)]
    log = open(f"{exp_dir}.stderr", "w")
    trainer = subprocess.Popen(["tfspk-train", *args, data_dir, exp_dir], stdout=log, stderr=subprocess.STDOUT)
    workers = []
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and trainer.poll() is None:
            workers = _children(trainer.pid)
            if len(workers) >= num_workers:
                time.sleep(1.0)    # let them be busy with batches, not only started
                workers = _children(trainer.pid)
                break
            time.sleep(0.2)
        assert len(workers) == num_workers, (workers, open(f"{exp_dir}.stderr").read())
        os.kill(trainer.pid, signal.SIGKILL)
        trainer.wait()
        deadline = time.time() + 5
        while time.time() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        return workers, [pid for pid in workers if _alive(pid)]
    finally:
        if trainer.poll() is None:
            trainer.kill()
        for pid in set(workers) | set(_children(trainer.pid)):   # a failed test leaves none behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_audio_workers_die_with_a_killed_trainer(audio_dir, tmp_path):  # noqa: F811
    """Before: the data.num_threads workers stayed, re-parented to init, for good."""
    data, conf = audio_dir
    sets = [kv for kv in AUDIO if not kv.startswith("data.num_threads")] + [
        f"features.conf={conf}", "data.num_threads=2", "schedule.num_epochs=1000"]
    before, left = _kill_trainer_and_count(sets, data, str(tmp_path / "exp"), 2)
    assert len(before) == 2 and left == []


def test_feats_reader_processes_die_with_a_killed_trainer(tmp_path):
    data = make_features(str(tmp_path / "data"), min_len=60, max_len=80)
    sets = TINY + ["data.readers=processes", "data.num_threads=3", "valid.num_utts=0", "schedule.num_epochs=1000"]
    before, left = _kill_trainer_and_count(sets, data, str(tmp_path / "exp"), 3)
    assert len(before) == 3 and left == []


def test_tie_to_parent_in_a_forked_grandchild():
    """A process forks a worker that calls tie_to_parent, then dies by SIGKILL: the worker exits."""
    code = ("import os, sys, time\n"
            "from tfspk.io.lifetime import tie_to_parent\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    tie_to_parent(interval=60)\n"     # the prctl signal, not the poll, must do it
            "    time.sleep(120); os._exit(0)\n"
            "print(pid, flush=True); time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    time.sleep(0.5)
    assert _alive(worker)
    parent.kill()
    parent.wait()
    deadline = time.time() + 3
    while time.time() < deadline and _alive(worker):
        time.sleep(0.05)
    alive = _alive(worker)
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert not alive
    assert lifetime.set_parent_death_signal(0) == sys.platform.startswith("linux")
