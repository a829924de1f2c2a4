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


def run_tool_here(command, check=True):
    """Run a ``tfspk-*`` tool in this process, as its console script would but without starting a Python
    (TensorFlow, once imported, stays loaded): the one way the tests run a tool in-process.

    ``command`` is a command line (``"tfspk-compute-eer scores trials"``, split as the shell would) or a
    list ``["tfspk-compute-eer", arg, ...]`` (arguments may be paths). The tool runs through
    ``cli.run_tool(tfspk.bin.<module>._main, argv)`` with its own standard output and error captured here,
    not by capsys, so module-scoped fixtures can use it too. Returns an object with ``returncode`` (the
    exit status), ``stdout`` and ``stderr`` (text; binary output written to ``sys.stdout.buffer``, e.g. to
    ``ark:-``, is decoded with ``surrogateescape``, so ``stdout.encode("utf-8", "surrogateescape")`` gives
    its bytes back). Its messages carry the tool's name (``ERROR (tfspk-...)``), as from its console script.
    With check=True a non-zero exit fails the test and shows the tool's stderr.
    """
    import contextlib
    import importlib
    import io
    import shlex
    import types
    from tfspk import cli

    name, *argv = shlex.split(command) if isinstance(command, str) else [str(word) for word in command]
    if not name.startswith("tfspk-"):
        raise ValueError(f"run_tool_here: {name!r} is not a tfspk-* tool name")
    module = importlib.import_module("tfspk.bin." + name.removeprefix("tfspk-").replace("-", "_"))
    # text streams over bytes, like the real ones: tools write Kaldi archives to sys.stdout.buffer
    stdout, stderr = (io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="", write_through=True)
                      for _ in range(2))
    program, cli._PROG = cli._PROG, name   # its messages name the tool, as its console script's do
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            cli.run_tool(module._main, argv)
        code = 0
    except SystemExit as stop:
        code = 0 if stop.code is None else stop.code
    finally:
        cli._PROG = program
    for stream in (stdout, stderr):
        stream.flush()
    out, err = (stream.buffer.getvalue().decode("utf-8", "surrogateescape") for stream in (stdout, stderr))
    if check and code != 0:
        pytest.fail(f"{shlex.join([name, *argv])} failed ({code}):\n{err}")
    return types.SimpleNamespace(returncode=code, stdout=out, stderr=err)


@pytest.fixture
def tool():
    """:func:`run_tool_here` as a fixture: ``tool("tfspk-compute-eer path")`` -> object with ``returncode``,
    ``stdout``, ``stderr``."""
    return run_tool_here


# ---------------------------------------------------------------- scheduling on the xdist workers
# tools/test.sh runs two workers with ``--dist loadfile``; the scheduler below (pytest_xdist_make_scheduler)
# keeps xdist's loadfile rule (a test file goes to one worker, so its module-scoped fixtures are made once)
# except for the slow tests of OWN_UNIT, which go out one by one, and hands the work units out costliest first
# (longest-processing-time-first). With whole files only, the two workers' loads differed by up to the
# costliest file (test_voxceleb_recipe.py: 4 recipe runs of 30-70 s each), and one worker sat idle at the end.
# The figures are worker-seconds of a two-worker run on the idle 2-core machine (tools/test.sh --durations=0;
# 2026-11-30, and 2026-12-07 for the files added since, from a run under load scaled to the idle one; the files
# trimmed on 2026-12-07 -- test_export, test_mixed_precision, test_nnet_networks, test_networks_tools,
# test_importers, test_train, test_docs_commands -- scaled by the ratio of their one-process durations after and
# before, measured in the same period; test_docs_commands again later that day for its sandbox's smaller
# ECAPA-TDNN: docs/export.md:17 0.45 and the sandbox 0.8 of their one-process durations, the other blocks
# within the load's noise, 0.8 for the file; the second trim of 2026-12-07 evening -- test_docs_commands,
# test_recipe_demo, test_voxceleb_recipe, test_export, test_resume, test_finetune, test_train,
# test_nnet_networks -- scaled by the ratio of their CPU times, children included, after and before; the files
# added late that evening, test_dropout and test_checkpoint_coverage, at half their one-process time under load;
# the third trim that night -- test_export, test_mixed_precision, test_nnet_networks, test_networks_tools,
# test_importers, test_recipe_demo, test_exp_dir_inference, the voxceleb non-TDNN systems -- scaled by the ratio
# of their CPU times after and before; and the fourth, the same night -- test_train_audio, test_trust, test_shards,
# the recipe runs (one extraction job for several sets), the exports (ONNX without per-pass copies) -- likewise;
# on 2026-12-08 the demo's end-to-end test, +25 % with its dev split, and test_speed_perturb_data, idle);
# only their order matters, and a unit not listed costs 0 (it goes after the listed ones, in collection order).

#: Slow test functions that share no module-scoped fixture or path with another test: each is a unit of its own
#: (all its parameters together: they may share a fixture or paths, e.g. the voxceleb recipe's two non-TDNN
#: systems share one run of stages 0-3), with its worker-seconds. The other tests of a file stay one unit, so a
#: module-scoped fixture is made once (e.g. test_recipe_demo.py's imported model in a demo copy).
OWN_UNIT = {"test_voxceleb_recipe.py::test_every_stage_runs_on_a_tiny_voxceleb": 55,
            "test_recipe_demo.py::test_demo_end_to_end_on_two_packages_beats_chance": 50,
            "test_voxceleb_recipe.py::test_a_non_tdnn_system_goes_through_run_sh": 31,
            "test_exp_dir_inference.py::test_an_exp_dir_of_tfspk_train_on_offline_features_records_its_features_section": 17,
            "test_exp_dir_inference.py::test_an_exp_dir_of_the_demo_recipe_exports_and_embeds": 18,
            "test_exp_dir_inference.py::test_an_exp_dir_of_tfspk_train_alone_exports_and_embeds": 11,
            "test_voxceleb_recipe.py::test_aug_online_trains_from_voiced_audio_with_the_musan_and_rirs_dirs": 15}

#: Worker-seconds of the files (their tests not in OWN_UNIT), those of more than a few seconds.
#: test_recipe_demo.py: its imported-model tests in a demo copy, which share a module-scoped import.
MODULE_COST = {"test_export.py": 140, "test_recipe_demo.py": 115, "test_importers.py": 115,
               "test_docs_commands.py": 99, "test_nnet_networks.py": 88, "test_resume.py": 90, "test_train.py": 83,
               "test_mixed_precision.py": 42, "test_networks_tools.py": 44, "test_trust.py": 33, "test_finetune.py": 40,
               "test_train_schedules.py": 30, "test_dropout.py": 40, "test_checkpoint_coverage.py": 15,
               "test_runners.py": 30, "test_train_audio.py": 11, "test_shards.py": 12, "test_losses_training.py": 20,
               "test_decision.py": 14, "test_import_kaldi.py": 12, "test_steps_features.py": 13, "test_faults.py": 11,
               "test_train_inputs.py": 10, "test_losses_numerics.py": 10, "test_script_usage.py": 9,
               "test_resample_input.py": 9, "test_cuda_noise.py": 8, "test_weak_inputs.py": 8,
               "test_feature_registry.py": 8, "test_data_service.py": 7, "test_output_locks.py": 7,
               "test_lifetime.py": 7, "test_cli.py": 6, "test_extract.py": 5, "test_voxceleb_recipe.py": 5,
               "test_speed_perturb_data.py": 6}


def work_unit(nodeid: str) -> str:
    """The scheduling unit of a test: its test function if in OWN_UNIT, else its file."""
    path, _, test = nodeid.partition("::")
    function = f"{path}::{test.split('[', 1)[0]}"
    return function if f"{Path(path).name}::{test.split('[', 1)[0]}" in OWN_UNIT else path


def unit_cost(unit: str) -> float:
    path, _, function = unit.partition("::")
    return OWN_UNIT[f"{Path(path).name}::{function}"] if function else MODULE_COST.get(Path(path).name, 0)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, order the tests costliest unit first: the scheduler hands the units out in the
    order the workers collected them. Tests keep their order within a file's unit (the sort is stable); a
    run in one process keeps the alphabetical order."""
    if not hasattr(config, "workerinput"):
        return
    items.sort(key=lambda item: -unit_cost(work_unit(item.nodeid)))


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with OWN_UNIT's tests as units of their own; other modes are xdist's."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class CostFirstScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return work_unit(nodeid)

    return CostFirstScheduling(config, log)
