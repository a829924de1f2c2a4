"""Ordinary OS faults (a full disk, a path through a file) are clear errors for every tool, never
"internal error ... please report it": tfspk.cli.os_fault_message, applied by cli.run_tool."""
from __future__ import annotations

import errno
import shlex
import subprocess

import pytest

from conftest import run
from tfspk import cli


def _mount_namespace_prefix():
    """``unshare`` arguments that give a command its own mount namespace, where it may mount a tmpfs:
    ``-rm`` (a user namespace too: works unprivileged where user namespaces are enabled, as in CI) or
    ``-m`` (root)."""
    for args in (["unshare", "-rm"], ["unshare", "-m"]):
        try:
            probe = subprocess.run(args + ["sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt"],
                                   capture_output=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return args
    return None


@pytest.fixture(scope="module")
def tiny_disk():
    """``tiny_disk(directory, size, command)``: a shell command line running ``command`` with a tmpfs of
    ``size`` (e.g. ``12k``) mounted on ``directory`` in a private mount namespace (the test machine's
    file systems are not touched). Skips where no mount namespace can be had."""
    prefix = _mount_namespace_prefix()
    if prefix is None:
        pytest.skip("no private mount namespace (unshare -rm / -m) to mount a small tmpfs in")

    def wrap(directory, size, command):
        inner = f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(directory))} && {command}"
        return " ".join(prefix) + " bash -c " + shlex.quote(inner)
    return wrap


def test_full_disk_under_make_shards_sh_is_a_clear_error(tmp_path, tiny_disk):
    """Before: 'internal error ResourceExhaustedError: ... please report it' from tfspk-make-shards."""
    from test_data import make_data_dir
    make_data_dir(tmp_path / "data")
    (tmp_path / "full").mkdir()
    proc = run(tiny_disk(tmp_path / "full", "12k", f"steps/make_shards.sh --utts-per-shard 10 {tmp_path}/data "
                                                     f"{tmp_path}/full/sh"), check=False)
    assert proc.returncode == 1, proc.stderr
    assert f"ERROR (tfspk-make-shards) cannot write {tmp_path}/full/sh/" in proc.stderr, proc.stderr
    assert ": No space left on device" in proc.stderr and "internal error" not in proc.stderr


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory):
    from test_export import MFCC_CONF, VAD_CONF, _make_exp
    return _make_exp(tmp_path_factory.mktemp("faults") / "exp", confs={"mfcc.conf": MFCC_CONF, "vad.conf": VAD_CONF})


def test_full_disk_under_export_is_a_clear_error(tmp_path, tiny_disk, exp_dir):
    (tmp_path / "full").mkdir()
    proc = run(tiny_disk(tmp_path / "full", "100k", f"tfspk-export --tflite=false --onnx=false {exp_dir} "
                                                      f"{tmp_path}/full/export"), check=False)
    assert proc.returncode == 1, proc.stderr
    assert f"ERROR (tfspk-export) cannot write {tmp_path}/full/" in proc.stderr, proc.stderr
    assert ": No space left on device" in proc.stderr and "internal error" not in proc.stderr


def test_export_path_whose_parent_is_a_file(tmp_path, exp_dir):
    """Before: 'internal error FileExistsError ... please report it'."""
    (tmp_path / "afile").write_text("x\n")
    proc = run(f"tfspk-export --tflite=false --onnx=false {exp_dir} {tmp_path}/afile/export", check=False)
    assert proc.returncode == 1
    assert (f"ERROR (tfspk-export) cannot write {tmp_path}/afile: a file of that name exists where a directory "
            "is needed") in proc.stderr, proc.stderr


def test_os_fault_message_maps_python_and_tensorflow_errors(tmp_path):
    tf = pytest.importorskip("tensorflow")
    full = OSError(errno.ENOSPC, "No space left on device", "/data/x.ark")
    assert cli.os_fault_message(full) == "cannot write /data/x.ark: No space left on device"
    missing = FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/feats.scp")
    assert cli.os_fault_message(missing).startswith("cannot read /data/feats.scp: No such file or directory")
    cases = {
        tf.errors.ResourceExhaustedError(None, None, "/out/.tmp.x.shard-00000.tfrecord; No space left on device"):
            "cannot write /out/.tmp.x.shard-00000.tfrecord: No space left on device",
        tf.errors.PermissionDeniedError(None, None, "/ro/model.pb; Permission denied"):
            "cannot write /ro/model.pb: Permission denied",
        tf.errors.FailedPreconditionError(None, None, "/out/a is not a directory; Not a directory"):
            "cannot write /out/a: Not a directory",
        tf.errors.NotFoundError(None, None, "/in/x.tfrecord; No such file or directory"):
            "cannot read /in/x.tfrecord: No such file or directory (or its directory does not exist)",
    }
    for error, message in cases.items():
        assert cli.os_fault_message(error) == message
    # not OS faults: stay "internal error" reports
    assert cli.os_fault_message(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")) is None
    assert cli.os_fault_message(tf.errors.InvalidArgumentError(None, None, "/x; Not a directory")) is None
    assert cli.os_fault_message(ValueError("x")) is None


def test_run_tool_prints_the_fault_for_every_tool(capsys):
    def main(argv):
        raise OSError(errno.EROFS, "Read-only file system", "/ro/out.txt")
    with pytest.raises(SystemExit) as exit_info:
        cli.run_tool(main, [])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "cannot write /ro/out.txt: Read-only file system" in err and "internal error" not in err
