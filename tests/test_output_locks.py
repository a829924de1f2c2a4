"""Half-written results are cleaned and output dirs are locked (tfspk.io.dirlock, the one lock mechanism of
experiment, shard and extraction dirs): stale temporaries of a killed tfspk-make-shards are removed on
re-run, two packings or extractions into one dir cannot run at once, a lock of a killed run is taken over."""
from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from conftest import REPO
from test_data import make_data_dir
from test_extract import _make_exp_dir, _make_raw_data, model  # noqa: F401  (the module fixture)
from tfspk.data import shards
from tfspk.errors import ToolError
from tfspk.io.dirlock import DirLock


def _dead_pid():
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _stale_lock(directory, what):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, ".lock"), "w") as handle:
        json.dump({"host": socket.gethostname(), "pid": _dead_pid(), "start_time": "1", "started": "earlier",
                   "command": what}, handle)


def test_make_shards_rerun_removes_the_temporaries_of_a_killed_run(tmp_path):
    """A kill -9 of tfspk-make-shards leaves its lock and a hidden whole-shard temporary; the re-run takes the
    stale lock over and removes the temporary (before: it stayed for good)."""
    make_data_dir(tmp_path / "data")
    out = tmp_path / "sh"
    _stale_lock(out, "tfspk-make-shards killed")
    leftover = out / ".tmp.k9x_a1b2.shard-00000.tfrecord"
    leftover.write_bytes(b"x" * 4096)
    other = out / ".tmp.k9x_a1b2.notes.txt"          # not a temporary of this tool's outputs: kept
    other.write_text("mine\n")
    said = []
    shards.make_shards(tmp_path / "data", out, utts_per_shard=10, log=said.append)
    assert not leftover.exists() and other.exists() and not (out / ".lock").exists()
    assert any(f"removed {leftover}" in line for line in said)
    assert any("taking over the stale lock" in line and "tfspk-make-shards killed" in line for line in said)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".tmp.")) == [other.name]


def test_two_packings_into_one_dir_at_once(tmp_path):
    make_data_dir(tmp_path / "data")
    with DirLock(str(tmp_path / "sh"), command="tfspk-make-shards first", what="tfspk-make-shards",
                 activity="packed", kind="shard dir"):
        with pytest.raises(ToolError, match=rf"{tmp_path}/sh is being packed by another tfspk-make-shards "
                                            rf"\(pid {os.getpid()} .*tfspk-make-shards first; lock "):
            shards.make_shards(tmp_path / "data", tmp_path / "sh", utts_per_shard=10)
    assert not (tmp_path / "sh" / "shards.list").exists()


def test_two_extractions_into_one_dir_at_once(tmp_path, sh, model):  # noqa: F811
    """While a run of extract_xvectors.sh holds the dir (here: a process holding its lock as the script
    does), a second one stops naming it and writes nothing (before: both wrote, one log overwrote the
    other's); after a run the lock is gone; a killed run's lock is taken over."""
    exp = _make_exp_dir(tmp_path / "exp", model)
    _make_raw_data(tmp_path / "data", [120, 40, 333, 80])
    holder = subprocess.Popen(["sleep", "120"])
    try:
        sh(f"tfspk-lock-dir --owner-pid={holder.pid} --what=steps/extract_xvectors.sh {tmp_path}/xv")
        second = sh(f"extract_xvectors.sh --nj 2 {exp} {tmp_path}/data {tmp_path}/xv", cwd=tmp_path, check=False)
        assert second.returncode == 1
        assert (f"ERROR (tfspk-lock-dir) {tmp_path}/xv is being written by another "
                f"{REPO}/steps/extract_xvectors.sh (pid {holder.pid} on host") in second.stderr, second.stderr
        assert not list((tmp_path / "xv").glob("log/extract.*.log")) and not (tmp_path / "xv" / "xvector.scp").exists()
    finally:
        holder.kill()
        holder.wait()
    sh(f"tfspk-lock-dir --release --owner-pid={holder.pid} {tmp_path}/xv")
    assert not (tmp_path / "xv" / ".lock").exists()
    _stale_lock(tmp_path / "xv", "steps/extract_xvectors.sh killed")
    done = sh(f"extract_xvectors.sh --nj 2 {exp} {tmp_path}/data {tmp_path}/xv", cwd=tmp_path)
    assert "taking over the stale lock" in done.stderr
    assert (tmp_path / "xv" / "xvector.scp").exists() and not (tmp_path / "xv" / ".lock").exists()


def test_lock_dir_tool_bad_owner(tmp_path, sh):
    proc = sh(f"tfspk-lock-dir --owner-pid={_dead_pid()} {tmp_path}/d", check=False)
    assert proc.returncode == 1 and "no such process" in proc.stderr


def test_make_shards_sh_holds_its_dir_and_its_tool_works_under_that_lock(tmp_path, sh):
    """steps/make_shards.sh locks the dir before its job log is written (a second run must not overwrite the
    first run's log); tfspk-make-shards, run by it through run.pl, works under its ancestor's lock."""
    make_data_dir(tmp_path / "data")
    holder = subprocess.Popen(["sleep", "120"])
    try:
        sh(f"tfspk-lock-dir --owner-pid={holder.pid} --what=make_shards.sh {tmp_path}/sh")
        second = sh(f"steps/make_shards.sh --utts-per-shard 10 {tmp_path}/data {tmp_path}/sh", check=False)
        assert second.returncode == 1 and f"{tmp_path}/sh is being written by another" in second.stderr
        assert not (tmp_path / "sh" / "log" / "make_shards.log").exists()
    finally:
        holder.kill()
        holder.wait()
    done = sh(f"steps/make_shards.sh --utts-per-shard 10 {tmp_path}/data {tmp_path}/sh")
    assert "taking over the stale lock" in done.stderr and "3 shards" in done.stdout
    assert not (tmp_path / "sh" / ".lock").exists()
    assert shards.read_shard_list(tmp_path / "sh").num_utts == 30
