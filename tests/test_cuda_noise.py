"""CPU-only runs print no CUDA error: TensorFlow's "failed call to cuInit" line is dropped from the tools'
stderr when the machine has no GPU; every other line TensorFlow writes is kept."""
import sys

import pytest

from conftest import run
from tfspk import cli

NOISE = ("E0000 00:00:1796623533.899517   20603 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
         "Failed call to cuInit: UNKNOWN ERROR (303)\n")
REAL = "E0000 00:00:1796623533.9 20603 some_kernel.cc:1] a real error\n"


def test_only_the_cuda_absent_lines_are_dropped():
    info = "I0000 00:00:1.0 1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\n"
    assert cli.without_cuda_absent_lines(NOISE + REAL + info + "plain text, no newline") == \
        REAL + "plain text, no newline"


def test_device_listing_replays_what_tensorflow_writes_except_the_noise():
    # TensorFlow stands in as a module whose device listing writes to file descriptor 2, as its C++ logging does.
    script = f"""
import os, types
from tfspk import cli
fake = types.SimpleNamespace(config=types.SimpleNamespace(
    list_physical_devices=lambda: os.write(2, {(NOISE + REAL).encode()!r})))
cli._list_devices_quietly(fake)
os.write(2, b"after\\n")
"""
    proc = run([sys.executable, "-c", script])
    assert proc.stderr == REAL + "after\n"


@pytest.mark.skipif(cli.gpu_device_present(), reason="this machine has a GPU: nothing is filtered there")
def test_a_tensorflow_tool_on_a_cpu_machine_prints_no_cuinit_error():
    code = "import tensorflow as tf; print(float(tf.reduce_sum(tf.ones([3]))))"
    bare = run([sys.executable, "-c", code])
    tool = run([sys.executable, "-c", "import tfspk.bin; " + code])
    assert tool.stdout.strip() == bare.stdout.strip() == "3.0"
    if "cuInit" not in bare.stderr:
        pytest.skip("this TensorFlow build does not probe CUDA here; nothing to hide")
    assert "cuInit" not in tool.stderr, tool.stderr
    assert " E0000 " not in " " + tool.stderr and not any(line.startswith("E0") for line in tool.stderr.splitlines())
