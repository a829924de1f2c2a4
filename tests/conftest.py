"""Fixtures shared by the whole suite.

The suite must never need the developers' reference folder or the network: everything it reads is made here
or by the recipe's own corpus-fetch stage (e2e tests only).
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent

# Tools under test are found the way a recipe finds them: the venv's bin, then utils/ and steps/.
os.environ["PATH"] = os.pathsep.join(
    [str(Path(sys.executable).parent), str(REPO / "utils"), str(REPO / "steps"), os.environ.get("PATH", "")])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYTHONHASHSEED", "0")

# Under pytest-xdist (tools/test.sh runs two workers on the 2-core machine) each worker, and every tool it
# starts, computes on one thread: two TensorFlow processes with a pool per core each would run four busy
# threads on two cores. Set here, before any test imports TensorFlow, and through the environment so the
# subprocesses (tfspk-* tools, run.pl jobs) inherit it; explicit settings made by the caller win. The tests
# compare runs made under the same settings, or within tolerances, so the thread count changes no verdict.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS",
                  "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")


@pytest.fixture
def repo():
    return REPO


def run(cmd, cwd=None, check=True, env=None, input_text=None, timeout=600):
    """Run a command (list or shell string); return CompletedProcess with text stdout/stderr.

    With check=True a non-zero exit fails the test and shows both streams.
    """
    shell = isinstance(cmd, str)
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run(cmd, shell=shell, cwd=cwd, env=full_env, input=input_text, text=True,
                          capture_output=True, timeout=timeout, executable="/bin/bash" if shell else None)
    if check and proc.returncode != 0:
        pytest.fail(f"command failed ({proc.returncode}): {cmd}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


@pytest.fixture
def sh():
    """The ``run`` helper as a fixture: ``sh("cmd ...", cwd=tmp_path)``."""
    return run


def synth_speech(seconds, rate=16000, seed=0, f0=120.0):
    """Speech-like int16 audio: harmonic bursts with pauses, so energy VAD has work to do."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    voiced = (np.sin(2 * np.pi * 1.3 * t + rng.uniform(0, 6)) > -0.2).astype(float)
    signal = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 8))
    signal = signal * voiced + 0.01 * rng.standard_normal(n)
    return (signal / np.max(np.abs(signal)) * 12000).astype(np.int16)


@pytest.fixture
def make_wav(tmp_path):
    """Write a synthetic WAV file and return its path: ``make_wav("a.wav", seconds=2, rate=8000)``."""
    import soundfile as sf

    def _make(name, seconds=1.0, rate=16000, seed=0, f0=120.0):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), synth_speech(seconds, rate, seed, f0), rate, subtype="PCM_16")
        return path
    return _make


@pytest.fixture
def tool(capsys):
    """Run a tfspk tool in this process (as its console script would, minus the interpreter start):
    ``tool("tfspk-compute-eer path")`` -> object with ``returncode``, ``stdout``, ``stderr``."""
    import importlib
    import shlex
    import types
    from tfspk import cli

    def _run(command, check=True):
        name, *argv = shlex.split(command)
        module = importlib.import_module("tfspk.bin." + name.removeprefix("tfspk-").replace("-", "_"))
        capsys.readouterr()
        try:
            cli.run_tool(module._main, argv)
            code = 0
        except SystemExit as stop:
            code = stop.code
        out, err = capsys.readouterr()
        if check and code != 0:
            pytest.fail(f"{command} failed ({code}):\n{err}")
        return types.SimpleNamespace(returncode=code, stdout=out, stderr=err)
    return _run


# Worker-seconds per test module in a two-worker run (2026-11-30, tools/test.sh --durations=0 on the 2-core
# machine), the modules of more than 25 s. Only their order matters.
MODULE_COST = {"test_voxceleb_recipe.py": 290, "test_export.py": 225, "test_mixed_precision.py": 155,
               "test_nnet_networks.py": 145, "test_recipe_demo.py": 115, "test_resume.py": 110, "test_train.py": 90,
               "test_networks_tools.py": 75, "test_trust.py": 50, "test_train_schedules.py": 30,
               "test_runners.py": 30, "test_train_audio.py": 30,
               "test_docs_commands.py": 200}   # estimated (2026-12-07, on a machine at load 20: 875 s)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, hand out the costliest test modules first (longest-processing-time-first
    scheduling): ``--dist loadfile --no-loadscope-reorder`` (tools/test.sh) gives the workers whole modules
    in collection order; xdist's own order (most tests first) or the alphabetical one left the costliest
    module (test_voxceleb_recipe.py) for the end, running alone while the other worker sat idle. Tests keep
    their order within a module; a run in one process keeps the alphabetical order."""
    if not hasattr(config, "workerinput"):
        return
    items.sort(key=lambda item: -MODULE_COST.get(item.path.name, 0))   # stable: within a module as collected
