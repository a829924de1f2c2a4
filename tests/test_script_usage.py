"""Every script of steps/, utils/, egs/*/v2/local/ and tools/: the usage goes to stderr (Kaldi).

A script that needs arguments, run without any, prints its usage on stderr (nothing on stdout but
the echoed command line) and exits non-zero. A script whose arguments are all optional (the
recipes' run.sh, tools/) does the same for --help, with exit 0.
"""
import os
import stat

import pytest

from conftest import REPO, run

# Kaldi filters: without arguments they read stdin (as Kaldi's do), so there is no usage to show.
FILTERS = {"utils/spk2utt_to_utt2spk.pl", "utils/utt2spk_to_spk2utt.pl"}
# Every argument optional: --help shows the usage (run from the recipe dir where it is needed).
NO_REQUIRED_ARGS = {"egs/demo/v2/run.sh": "egs/demo/v2", "egs/voxceleb/v2/run.sh": "egs/voxceleb/v2",
                    "egs/template/v2/run.sh": "egs/template/v2",
                    "egs/demo/v2/local/run_all_losses.sh": "egs/demo/v2", "egs/demo/v2/local/run_seeds.sh": "egs/demo/v2",
                    "egs/demo/v2/local/run_finetune_seeds.sh": "egs/demo/v2",
                    "tools/demo.sh": ".",
                    "tools/setup_env.sh": "."}
NOT_COVERED = {"tools/test.sh"}   # its options are pytest's (tools/test.sh --help is pytest's help)
LIBRARY_MODULES = {"egs/voxceleb/v2/local/voxceleb_layout.py"}  # imported, not run: not executable
SOURCED = {"utils/job_runner.py", "utils/parse_options.sh", "utils/recipe_stages.sh"}   # sourced or imported


def scripts():
    found = []
    for folder in ["steps", "utils", "utils/data", "tools", "egs/demo/v2/local", "egs/voxceleb/v2/local", "egs/template/v2/local"]:
        for path in sorted((REPO / folder).iterdir()):
            if path.is_file() and path.suffix in (".sh", ".pl", ".py"):
                found.append(str(path.relative_to(REPO)))
    return found


def test_the_script_list_is_complete():
    listed = scripts()
    assert "steps/train_xvector.sh" in listed and "egs/demo/v2/local/score_plda_cosine.sh" in listed
    for name in listed:
        executable = os.stat(REPO / name).st_mode & stat.S_IXUSR
        if name in LIBRARY_MODULES or name in SOURCED:
            assert not executable, f"{name} is sourced/imported, not run"
        else:
            assert executable, f"{name} is not executable"


@pytest.mark.parametrize("name", [name for name in scripts()
                                  if name not in FILTERS | set(NO_REQUIRED_ARGS) | NOT_COVERED | LIBRARY_MODULES
                                  and name not in SOURCED])
def test_no_arguments_prints_the_usage_on_stderr(tmp_path, name):
    proc = run([str(REPO / name)], cwd=tmp_path, check=False, input_text="", timeout=120)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "usage" in proc.stderr.lower(), proc.stderr
    assert "usage" not in proc.stdout.lower(), proc.stdout
    assert "Traceback" not in proc.stderr and "line " not in proc.stderr.split("sage")[0]
    if name.endswith(".sh"):  # Kaldi's `echo "$0 $@"` first: the logs show how a script was called
        assert str(REPO / name) in [line.strip() for line in (proc.stdout + proc.stderr).splitlines()]


@pytest.mark.parametrize("name", sorted(NO_REQUIRED_ARGS))
def test_help_prints_the_usage_on_stderr(name):
    proc = run([str(REPO / name), "--help"], cwd=REPO / NO_REQUIRED_ARGS[name], check=False, input_text="")
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stderr.lower() and "usage" not in proc.stdout.lower()


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filters_read_stdin_without_arguments(name):
    proc = run([str(REPO / name)], input_text="a x\n" if "utt2spk_to" in name else "x a\n")
    assert proc.stdout.split() in (["x", "a"], ["a", "x"])
