"""utils/run.pl, queue.pl, slurm.pl: Kaldi's job-runner command line, logs and failure reports.

The cluster runners are tested against fake ``sbatch``/``qsub`` scripts put first on PATH: they
parse the array range and run the generated job script once per task id in the background, with
SLURM_ARRAY_TASK_ID / SGE_TASK_ID set, the way the schedulers would.
"""
import os
import re
import time

import pytest

from conftest import REPO, run

UTILS = REPO / "utils"


def read(path):
    return path.read_text()


def assert_kaldi_log(text, command, code):
    """The log layout Kaldi's runners write."""
    lines = text.splitlines()
    assert lines[0] == f"# {command}"
    assert any(re.fullmatch(r"# Started at \w{3} \w{3} +\d+ \d\d:\d\d:\d\d .*\d{4}", line) for line in lines[1:3])
    assert re.fullmatch(r"# Accounting: time=\d+ threads=\d+", lines[-2])
    assert re.fullmatch(rf"# Ended \(code {code}\) at .*\d{{4}}, elapsed time \d+ seconds", lines[-1])


# ---------------------------------------------------------------------------------------------
# run.pl

def test_run_pl_substitutes_job_in_log_and_arguments(tmp_path):
    run(f"{UTILS}/run.pl JOB=1:3 exp/log/echo.JOB.log echo task JOB 'two words' \\| tr a-z A-Z", cwd=tmp_path)
    for job in (1, 2, 3):
        text = read(tmp_path / f"exp/log/echo.{job}.log")
        assert_kaldi_log(text, f'echo task {job} "two words" | tr a-z A-Z', 0)
        assert f"TASK {job} TWO WORDS\n" in text
    assert not (tmp_path / "exp/log/echo.4.log").exists()


def test_run_pl_other_variable_name_and_options_in_any_order(tmp_path):
    run(f"{UTILS}/run.pl --mem 4G TASK=2:3 --num-threads 2 --gpu 0 -l hostname=x --max-jobs-run 1 "
        "log/t.TASK.log echo TASK", cwd=tmp_path)
    text = read(tmp_path / "log/t.3.log")
    assert_kaldi_log(text, "echo 3", 0)
    assert "threads=2" in text
    assert not (tmp_path / "log/t.1.log").exists()


def test_run_pl_single_job_without_range(tmp_path):
    run(f"{UTILS}/run.pl single.log echo JOB", cwd=tmp_path)
    assert "\nJOB\n" in read(tmp_path / "single.log")  # no range: nothing substituted


def test_run_pl_kaldi_quoting_of_words_with_spaces_and_quotes(tmp_path):
    # A word with spaces is double-quoted (bash expands $ inside), one with a double quote single-quoted.
    run([str(UTILS / "run.pl"), "q.log", "printf", "%s,", "a b", 'say "hi"', "$HOME x", "|", "tr", ",", "/"],
        cwd=tmp_path, env={"HOME": "/home/me"})
    text = read(tmp_path / "q.log")
    assert text.splitlines()[0] == "# printf %s, \"a b\" 'say \"hi\"' \"$HOME x\" | tr , /"
    assert '\na b/say "hi"//home/me x/' in text


def test_run_pl_pipefail_and_exit_code_in_log(tmp_path):
    # The first stage of the pipeline fails: with pipefail the job fails with its code.
    proc = run([str(UTILS / "run.pl"), "p.log", "bash", "-c", "exit 3", "|", "cat"], cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert_kaldi_log(read(tmp_path / "p.log"), "bash -c \"exit 3\" | cat", 3)
    assert "run.pl: job failed, log is in p.log" in proc.stderr


def test_run_pl_names_failed_logs(tmp_path):
    proc = run(f"{UTILS}/run.pl JOB=1:4 exp/log/x.JOB.log test JOB -ne 2 '&&' test JOB -ne 4",
               cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "run.pl: 2 / 4 failed, log is in exp/log/x.*.log" in proc.stderr
    assert "failed logs: exp/log/x.2.log exp/log/x.4.log" in proc.stderr
    assert read(tmp_path / "exp/log/x.1.log").splitlines()[-1].startswith("# Ended (code 0)")
    assert read(tmp_path / "exp/log/x.4.log").splitlines()[-1].startswith("# Ended (code 1)")


def test_run_pl_max_jobs_run_limits_concurrency(tmp_path):
    # Each job records its start and end time; with a limit of 2 no three intervals overlap.
    command = "date +%s.%N > t.JOB.start ; sleep 0.3 ; date +%s.%N > t.JOB.end".split(" ")
    run([str(UTILS / "run.pl"), "--max-jobs-run", "2", "JOB=1:4", "log/s.JOB.log", *command], cwd=tmp_path)
    spans = [(float(read(tmp_path / f"t.{j}.start")), float(read(tmp_path / f"t.{j}.end"))) for j in range(1, 5)]
    most_at_once = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
    assert most_at_once == 2
    run([str(UTILS / "run.pl"), "JOB=1:4", "-tc", "1", "log/s.JOB.log", *command], cwd=tmp_path)
    spans = sorted((float(read(tmp_path / f"t.{j}.start")), float(read(tmp_path / f"t.{j}.end"))) for j in range(1, 5))
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(3))


@pytest.mark.parametrize("args, message", [
    ("JOB=3:1 log/x.JOB.log true", "invalid job range 'JOB=3:1'"),
    ("JOB=0:2 log/x.JOB.log true", "invalid job range 'JOB=0:2'"),
    ("JOB=a:b log/x.JOB.log true", "malformed job range 'JOB=a:b'"),
    ("JOB=1-4 log/x.JOB.log true", "malformed job range 'JOB=1-4'"),
    ("JOB=1:2 TASK=1:2 log/x.JOB.log true", "two job ranges"),
    ("JOB=1:3 log/one.log true", "all would write the one log file log/one.log"),
    ("--max-jobs-run 0 log/x.log true", "invalid value '0' for --max-jobs-run"),
    ("--num-threads two log/x.log true", "invalid value 'two' for --num-threads"),
    ("JOB=1:2 log/x.JOB.log", "expected a log file and a command"),
    ("--mem", "usage:"),
])
def test_run_pl_bad_command_lines(tmp_path, args, message):
    proc = run(f"{UTILS}/run.pl {args}", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert not (tmp_path / "log").exists()


def test_run_pl_log_dir_cannot_be_created(tmp_path):
    (tmp_path / "afile").write_text("not a directory")
    proc = run(f"{UTILS}/run.pl JOB=1:2 afile/log/x.JOB.log true", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "cannot create log directory afile/log" in proc.stderr


def test_run_pl_log_dir_not_writable(tmp_path):
    log_dir = tmp_path / "ro"
    log_dir.mkdir()
    log_dir.chmod(0o555)
    try:
        if os.access(log_dir, os.W_OK):
            pytest.skip("running as root: permissions do not stop writes")
        proc = run(f"{UTILS}/run.pl ro/x.log true", cwd=tmp_path, check=False)
        assert proc.returncode == 1 and "log directory ro is not writable" in proc.stderr
    finally:
        log_dir.chmod(0o755)


def test_run_pl_help_and_no_arguments():
    proc = run(f"{UTILS}/run.pl --help", check=False)
    assert proc.returncode == 0 and "usage: run.pl" in proc.stderr
    proc = run(f"{UTILS}/run.pl", check=False)
    assert proc.returncode == 1 and "usage: run.pl" in proc.stderr
