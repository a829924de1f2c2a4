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
    command = "date +%s.%N > t.JOB.start ; sleep 0.2 ; date +%s.%N > t.JOB.end".split(" ")
    run([str(UTILS / "run.pl"), "--max-jobs-run", "2", "JOB=1:4", "log/s.JOB.log", *command], cwd=tmp_path)
    spans = [(float(read(tmp_path / f"t.{j}.start")), float(read(tmp_path / f"t.{j}.end"))) for j in range(1, 5)]
    most_at_once = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
    assert most_at_once <= 2  # (== 2 on an idle machine; a loaded one may start them apart)
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


def _start_runner(tmp_path, argv, num_started, env=None):
    """Start a runner (or a script calling it) in the background; wait for started.* markers."""
    import subprocess
    import signal
    # The runners keep an inherited "ignore SIGHUP" (nohup); the tests send SIGHUP on purpose, so the
    # runner starts with the default disposition whatever the test process itself was started under.
    process = subprocess.Popen(argv, cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, **(env or {})),
                               preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    deadline = time.time() + 20
    while len(list(tmp_path.glob("started.*"))) < num_started and time.time() < deadline:
        time.sleep(0.02)  # the jobs started (a loaded machine may take a while)
    assert len(list(tmp_path.glob("started.*"))) == num_started
    return process


# Each job: a marker, then a pipeline and a background process of its own, then a late marker.
SLOW_JOB = ["touch", "started.JOB", ";", "(", "sleep", "3", ";", "touch", "bg_late.JOB", ")", "&",
            "sleep", "3", "|", "cat", ";", "touch", "late.JOB"]


@pytest.mark.parametrize("signum, name", [(15, "SIGTERM"), (1, "SIGHUP"), (2, "SIGINT")])
def test_run_pl_signal_stops_every_process_of_the_jobs(tmp_path, signum, name):
    # Before: SIGHUP killed run.pl alone and the jobs (own sessions) ran on and wrote their output.
    process = _start_runner(tmp_path, [str(UTILS / "run.pl"), "JOB=1:2", "log/s.JOB.log"] + SLOW_JOB, 2)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 128 + signum
    assert f"run.pl: interrupted: received {name}; stopped 2 running job(s)" in stderr
    for task in (1, 2):
        lines = read(tmp_path / f"log/s.{task}.log").splitlines()
        assert f"# run.pl: received {name}; stopped this job (its whole process group)" in lines
        assert lines[-1].startswith("# Ended (code 143; signal 15)")
    time.sleep(3.5)
    assert not list(tmp_path.glob("*late.*"))  # neither the rest of the job nor its background process ran on


def test_run_pl_kills_jobs_that_ignore_sigterm(tmp_path):
    job = ["trap", "''", "TERM", ";", "touch", "started.JOB", ";", "sleep", "3", ";", "touch", "late.JOB"]
    process = _start_runner(tmp_path, [str(UTILS / "run.pl"), "JOB=1:1", "log/t.JOB.log"] + job, 1,
                            env={"TFSPK_RUNNER_KILL_GRACE": "0.5"})
    process.terminate()
    process.communicate(timeout=20)
    assert process.returncode == 143
    assert read(tmp_path / "log/t.1.log").splitlines()[-1].startswith("# Ended (code 137; signal 9)")
    time.sleep(3.5)
    assert not (tmp_path / "late.1").exists()


def test_run_pl_jobs_die_when_the_calling_script_is_killed(tmp_path):
    # kill of the recipe: bash dies without passing the signal on; run.pl notices it was orphaned.
    script = f"{UTILS}/run.pl JOB=1:2 log/p.JOB.log " + " ".join(
        word if word not in (";", "(", ")", "&", "|") else "\\" + word for word in SLOW_JOB)
    process = _start_runner(tmp_path, ["bash", "-c", script + "; echo never"], 2)
    process.kill()
    process.communicate(timeout=10)
    deadline = time.time() + 10
    while time.time() < deadline and "# Ended" not in read(tmp_path / "log/p.2.log"):
        time.sleep(0.1)
    lines = read(tmp_path / "log/p.2.log").splitlines()
    assert "# run.pl: its parent process exited (the calling script was killed); stopped this job " \
        "(its whole process group)" in lines
    time.sleep(3.5)
    assert not list(tmp_path.glob("*late.*"))


def test_run_pl_tasks_die_with_a_kill_9_of_the_steps_process_group(tmp_path):
    """kill -9 of a step's whole process group (script and run.pl: no handler runs) must not leave the
    tasks running (before: they ran on in their own sessions, with no end line in their logs)."""
    import signal
    import subprocess
    (tmp_path / "task.sh").write_text("echo $$ > started.$1\nexec sleep 300\n")
    step = subprocess.Popen(["bash", "-c", f"{UTILS}/run.pl JOB=1:2 log/k.JOB.log bash task.sh JOB; echo never"],
                            cwd=tmp_path, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while len(list(tmp_path.glob("started.*"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    tasks = [int(read(path).strip()) for path in sorted(tmp_path.glob("started.*"))]
    assert len(tasks) == 2 and all(_alive(pid) for pid in tasks)
    os.killpg(step.pid, signal.SIGKILL)
    step.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(pid) for pid in tasks):
        time.sleep(0.05)
    left = [pid for pid in tasks if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []
    deadline = time.time() + 5
    while time.time() < deadline and "# Ended" not in read(tmp_path / "log/k.2.log"):
        time.sleep(0.05)
    lines = read(tmp_path / "log/k.2.log").splitlines()
    assert "# run.pl: the runner exited (killed?); stopped this job (its whole process group)" in lines
    assert lines[-1].startswith("# Ended (code 143; signal 15)")


def _alive(pid):
    """True while ``pid`` runs (a zombie waiting for a parent that does not reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def test_run_pl_nohup_keeps_jobs_running_through_a_hangup(tmp_path):
    process = _start_runner(tmp_path, ["nohup", str(UTILS / "run.pl"), "JOB=1:1", "log/n.JOB.log",
                                       "touch", "started.JOB", ";", "sleep", "1", ";", "touch", "late.JOB"], 1)
    process.send_signal(1)
    process.communicate(timeout=20)
    assert process.returncode == 0 and (tmp_path / "late.1").exists()


def test_run_pl_help_and_no_arguments():
    proc = run(f"{UTILS}/run.pl --help", check=False)
    assert proc.returncode == 0 and "usage: run.pl" in proc.stderr
    proc = run(f"{UTILS}/run.pl", check=False)
    assert proc.returncode == 1 and "usage: run.pl" in proc.stderr


def test_run_pl_log_file_not_writable(tmp_path):
    # Works as root too: a directory where the log file should be cannot be opened for writing.
    (tmp_path / "log/x.2.log").mkdir(parents=True)
    proc = run(f"{UTILS}/run.pl JOB=1:2 log/x.JOB.log true", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "cannot write log file log/x.2.log" in proc.stderr
    assert "1 / 2 failed" in proc.stderr and "failed logs: log/x.2.log" in proc.stderr


# ---------------------------------------------------------------------------------------------
# slurm.pl and queue.pl against fake schedulers

FAKE_SBATCH = r"""#!/usr/bin/env bash
# Fake sbatch: record the arguments, run the job script once per array task in the background.
printf '%q ' "$@" >> "$FAKE_DIR/submissions"; echo >> "$FAKE_DIR/submissions"
if [ -n "${FAKE_SUBMIT_FAIL:-}" ]; then
  echo "sbatch: error: Batch job submission failed: Invalid account or account/partition combination" >&2
  exit 1
fi
array=
for arg in "$@"; do case "$arg" in --array=*) array=${arg#--array=} ;; esac; done
script=${!#}
range=${array%%\%*}
for ((task = ${range%-*}; task <= ${range#*-}; task++)); do
  [ "$task" = "${FAKE_SKIP_TASK:-}" ] && continue   # as if the scheduler killed this task
  SLURM_ARRAY_TASK_ID=$task bash "$script" < /dev/null > /dev/null 2>&1 &
  echo $! >> "$FAKE_DIR/pids"
done
echo "Submitted batch job 4242"
"""

FAKE_QSUB = r"""#!/usr/bin/env bash
# Fake qsub: record the arguments, run the job script once per array task in the background.
printf '%q ' "$@" >> "$FAKE_DIR/submissions"; echo >> "$FAKE_DIR/submissions"
[ -n "${FAKE_SUBMIT_FAIL:-}" ] && { echo "Unable to run job: denied: host is no submit host." >&2; exit 1; }
range=
while [ $# -gt 1 ]; do
  case "$1" in -t) range=$2; shift 2 ;; *) shift ;; esac
done
script=$1
for ((task = ${range%:*}; task <= ${range#*:}; task++)); do
  SGE_TASK_ID=$task bash "$script" < /dev/null > /dev/null 2>&1 &
  echo $! >> "$FAKE_DIR/pids"
done
echo "Your job-array 77.${range}:1 (\"$(basename "$script")\") has been submitted"
"""

# squeue that no longer lists any job (the job ended or was killed).
FAKE_SQUEUE = "#!/usr/bin/env bash\nexit 0\n"

# scancel / qdel: record the call and kill the tasks the fake submit command started.
FAKE_CANCEL = r"""#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$FAKE_DIR/cancelled"
[ -f "$FAKE_DIR/pids" ] && kill -TERM $(cat "$FAKE_DIR/pids") 2> /dev/null
exit 0
"""


@pytest.fixture
def fake_cluster(tmp_path):
    """A bin dir with fake sbatch/qsub/squeue first on PATH; returns (env, submissions file)."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("qsub", FAKE_QSUB), ("squeue", FAKE_SQUEUE),
                       ("scancel", FAKE_CANCEL), ("qdel", FAKE_CANCEL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_DIR": str(tmp_path),
           "TFSPK_RUNNER_POLL_MAX": "0.2"}
    return env, tmp_path / "submissions"


def submissions(path):
    """One line per submission: the arguments, shell-quoted (printf %q) and space-separated."""
    return [line.rstrip() for line in path.read_text().splitlines()]


@pytest.mark.parametrize("runner, task_variable", [("slurm.pl", "SLURM_ARRAY_TASK_ID"), ("queue.pl", "SGE_TASK_ID")])
def test_cluster_runner_success_logs_and_job_script(tmp_path, fake_cluster, runner, task_variable):
    env, submitted = fake_cluster
    run([str(UTILS / runner), "JOB=1:3", "exp/log/echo.JOB.log", "echo", "task", "JOB", "two words",
         "|", "tr", "a-z", "A-Z"], cwd=tmp_path, env=env)
    for job in (1, 2, 3):
        text = read(tmp_path / f"exp/log/echo.{job}.log")
        assert_kaldi_log(text, f'echo task {job} "two words" | tr a-z A-Z', 0)
        assert f"\nTASK {job} TWO WORDS\n" in text
    script = tmp_path / "exp/log/q/echo.sh"
    assert task_variable in read(script)
    assert len(submissions(submitted)) == 1 and submissions(submitted)[0].endswith(str(script))
    assert list((tmp_path / "exp/log/q/sync").iterdir()) == []  # done markers are cleaned up


def test_slurm_options_from_default_config_and_throttle(tmp_path, fake_cluster):
    env, submitted = fake_cluster
    run(f"{UTILS}/slurm.pl --max-jobs-run 2 --mem 4G --num-threads 3 --gpu 1 --time 1:00:00 "
        "JOB=1:4 log/t.JOB.log true", cwd=tmp_path, env=env)
    words = submissions(submitted)[0].split()
    assert words[0] == "--export=PATH"  # the fake records the arguments after the program name
    for flag in ("--array=1-4%2", "--mem-per-cpu=4G", "--cpus-per-task=3", "--gres=gpu:1", "--time=1:00:00",
                 f"--output={tmp_path}/log/q/t.%a.log"):
        assert flag in words, flag
    assert "threads=3" in read(tmp_path / "log/t.4.log")


def test_queue_options_from_default_config_and_throttle(tmp_path, fake_cluster):
    env, submitted = fake_cluster
    run(f"{UTILS}/queue.pl --max-jobs-run 2 --mem 4G --num-threads 3 -q all.q JOB=2:4 log/t.JOB.log true",
        cwd=tmp_path, env=env)
    line = submissions(submitted)[0]
    for flags in ("-tc 2", "-l mem_free=4G\\,ram_free=4G", "-pe smp 3", "-q all.q", "-t 2:4", f"-o {tmp_path}/log/q/t.log"):
        assert flags in line, flags
    assert "gpu" not in line  # default gpu=0 adds nothing
    assert not (tmp_path / "log/t.1.log").exists() and (tmp_path / "log/t.4.log").exists()


def test_cluster_runner_user_config_file(tmp_path, fake_cluster):
    env, submitted = fake_cluster
    conf = tmp_path / "conf/slurm.conf"
    conf.parent.mkdir()
    conf.write_text("command sbatch --partition=cpu   # comment\n"
                    "option\tmem=* --mem=$0 '--comment=mem $0'\noption mem=0\ndefault gpu=0\noption gpu=0\n"
                    "option gpu=* --partition=gpu --gres=gpu:$0\n")
    run(f"{UTILS}/slurm.pl --mem 2G JOB=1:2 log/c.JOB.log true", cwd=tmp_path, env=env)  # conf/slurm.conf found
    run(f"{UTILS}/slurm.pl --config {conf} --gpu 2 --num-threads 2 log/d.log true", cwd=tmp_path, env=env)
    first, second = submissions(submitted)
    assert first.startswith("--partition=cpu ") and "--mem=2G --comment=mem\\ 2G " in first and "--gres" not in first
    assert "--partition=gpu --gres=gpu:2" in second and "--array=1-1" in second
    assert "cpus-per-task" not in second  # num_threads is not described in this config


def test_cluster_runner_reports_failed_tasks(tmp_path, fake_cluster):
    env, _ = fake_cluster
    for runner in ("slurm.pl", "queue.pl"):
        proc = run([str(UTILS / runner), "JOB=1:4", f"log/{runner}.JOB.log", "test", "JOB", "-ne", "3"],
                   cwd=tmp_path, env=env, check=False)
        assert proc.returncode == 1
        assert f"{runner}: 1 / 4 failed, log is in log/{runner}.*.log" in proc.stderr
        assert f"failed logs: log/{runner}.3.log" in proc.stderr
        assert read(tmp_path / f"log/{runner}.3.log").splitlines()[-1].startswith("# Ended (code 1)")


def test_cluster_runner_submission_failure_is_clear(tmp_path, fake_cluster):
    env, _ = fake_cluster
    env["FAKE_SUBMIT_FAIL"] = "1"
    started = time.time()
    proc = run(f"{UTILS}/slurm.pl JOB=1:2 log/f.JOB.log true", cwd=tmp_path, env=env, check=False)
    assert proc.returncode == 1
    assert "slurm.pl: submitting to Slurm failed (sbatch exited with status 1)" in proc.stderr
    assert "Invalid account" in proc.stderr and "log/q/f.sh" in proc.stderr
    assert time.time() - started < 5  # did not wait for tasks that never started
    proc = run(f"{UTILS}/queue.pl log/f.log true", cwd=tmp_path, env=env, check=False)
    assert proc.returncode == 1 and "no submit host" in proc.stderr


def test_cluster_runner_notices_a_task_that_vanished(tmp_path, fake_cluster):
    env, _ = fake_cluster
    env.update(FAKE_SKIP_TASK="2", TFSPK_RUNNER_STATUS_INTERVAL="0.2")
    proc = run(f"{UTILS}/slurm.pl JOB=1:3 log/v.JOB.log true", cwd=tmp_path, env=env, check=False, timeout=20)
    assert proc.returncode == 1
    assert "task 2 of job 4242 left no done marker" in proc.stderr
    assert "1 / 3 failed" in proc.stderr and "failed logs: log/v.2.log" in proc.stderr


@pytest.mark.parametrize("config_text, message", [
    (None, "cannot read config file"),
    ("option mem=* --mem\ncommand sbatch\n", "needs flags containing $0"),
    ("option mem=* --mem=$0\n", "no 'command ...' line"),
    ("command sbatch\nbogus line\n", "cannot parse 'bogus line'"),
    ("command sbatch\noption mem=* --comment='a $0\n", "cannot split"),
])
def test_cluster_runner_bad_config(tmp_path, fake_cluster, config_text, message):
    env, submitted = fake_cluster
    conf = tmp_path / "bad.conf"
    if config_text is not None:
        conf.write_text(config_text)
    proc = run(f"{UTILS}/slurm.pl --config {conf} log/b.log true", cwd=tmp_path, env=env, check=False)
    assert proc.returncode == 1 and message in proc.stderr
    assert "bad.conf" in proc.stderr
    assert not submitted.exists()


def test_cluster_runner_warns_about_options_the_config_does_not_describe(tmp_path, fake_cluster):
    env, submitted = fake_cluster
    proc = run(f"{UTILS}/queue.pl --foo 3 log/w.log true", cwd=tmp_path, env=env)
    assert "ignoring --foo 3: not described in queue.pl's built-in default config" in proc.stderr
    assert "foo" not in submissions(submitted)[0]


def test_cluster_runner_task_failing_before_its_command(tmp_path, fake_cluster):
    # A broken path.sh ends the job script early; the done marker still records the failure.
    env, _ = fake_cluster
    (tmp_path / "path.sh").write_text("exit 3\n")
    started = time.time()
    proc = run(f"{UTILS}/queue.pl JOB=1:2 log/e.JOB.log true", cwd=tmp_path, env=env, check=False, timeout=20)
    assert proc.returncode == 1 and time.time() - started < 10
    assert "2 / 2 failed" in proc.stderr
    assert "task 1 failed before writing its log log/e.1.log" in proc.stderr


@pytest.mark.parametrize("runner", ["slurm.pl", "queue.pl"])
def test_shipped_example_config_is_the_built_in_default(tmp_path, fake_cluster, runner):
    # The documented utils/<scheduler>.conf must give the same submission as no config at all.
    env, submitted = fake_cluster
    example = UTILS / ("slurm.conf" if runner == "slurm.pl" else "queue.conf")
    options = "--mem 3G --num-threads 2 --gpu 1 --max-jobs-run 3 --time 2:00:00 JOB=1:2"
    run(f"{UTILS}/{runner} {options} log/a.JOB.log true", cwd=tmp_path, env=env)
    run(f"{UTILS}/{runner} --config {example} {options} log/a.JOB.log true", cwd=tmp_path, env=env)
    built_in, from_file = submissions(submitted)
    assert built_in == from_file


def test_gridengine_style_flags(tmp_path, fake_cluster):
    # -pe smp N: passed to qsub as given (instead of the config's num_threads line); for Slurm it
    # becomes --num-threads; -V means "export the environment" to qsub only (sbatch -V is --version).
    env, submitted = fake_cluster
    run(f"{UTILS}/queue.pl -V -pe mpi 4 log/g.log true", cwd=tmp_path, env=env)
    run(f"{UTILS}/slurm.pl -V -pe mpi 4 log/g.log true", cwd=tmp_path, env=env)
    queue_line, slurm_line = submissions(submitted)
    assert " -V -pe mpi 4 " in queue_line and "smp" not in queue_line
    assert "--cpus-per-task=4" in slurm_line and " -pe " not in slurm_line and " -V " not in slurm_line
    assert "threads=4" in read(tmp_path / "log/g.log")


def test_step_script_with_parse_options_and_cmd_option(tmp_path, fake_cluster):
    # How steps/ use both: options parsed, then "$cmd JOB=1:$nj log ..." with $cmd word-split.
    env, submitted = fake_cluster
    step = tmp_path / "step.sh"
    step.write_text(f"""#!/usr/bin/env bash
set -e -o pipefail
cmd=run.pl
nj=2
. {UTILS}/parse_options.sh
[ $# -eq 1 ] || {{ echo "usage: $0 [--cmd CMD] [--nj N] <dir>"; exit 1; }}
dir=$1
$cmd JOB=1:$nj $dir/log/part.JOB.log echo part JOB of $nj \\> $dir/part.JOB.txt
""")
    step.chmod(0o755)
    run([str(step), "--nj", "3", "exp/a"], cwd=tmp_path, env=env)
    run([str(step), "--cmd", "slurm.pl --mem 1G", "exp/b"], cwd=tmp_path, env=env)
    assert [read(tmp_path / f"exp/a/part.{j}.txt") for j in (1, 2, 3)] == [f"part {j} of 3\n" for j in (1, 2, 3)]
    assert read(tmp_path / "exp/b/part.2.txt") == "part 2 of 2\n"
    assert "--mem-per-cpu=1G" in submissions(submitted)[0]
    proc = run([str(step), "--cmd", "run.pl", "--nj", "2", "/dev/null/x"], cwd=tmp_path, env=env, check=False)
    assert proc.returncode == 1 and "cannot create log directory /dev/null/x/log" in proc.stderr


def test_cluster_runner_without_scheduler_installed(tmp_path):
    import shutil
    if shutil.which("sbatch"):
        pytest.skip("a real sbatch is installed here")
    proc = run(f"{UTILS}/slurm.pl JOB=1:2 log/n.JOB.log true", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "cannot run the Slurm submit command 'sbatch'" in proc.stderr


def test_run_pl_single_id_range(tmp_path):
    run(f"{UTILS}/run.pl JOB=5 log/x.JOB.log echo JOB", cwd=tmp_path)
    assert "\n5\n" in read(tmp_path / "log/x.5.log")


@pytest.mark.parametrize("num_cpus, num_jobs, expected", [
    (8, 4, 8), (8, 8, 8), (8, 11, 11), (8, 12, 8), (8, 100, 8), (2, 3, 2), (10, 13, 13), (1, 1, 1)])
def test_run_pl_default_max_jobs_is_kaldis_rule(monkeypatch, num_cpus, num_jobs, expected):
    # Kaldi run.pl: one job per CPU, but all jobs at once when they are more than the CPUs and
    # fewer than 1.4 times the CPUs.
    import importlib.util
    loader = importlib.util.spec_from_file_location("job_runner", UTILS / "job_runner.py")
    job_runner = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(job_runner)
    monkeypatch.setattr(job_runner.os, "sched_getaffinity", lambda pid: set(range(num_cpus)))
    spec = job_runner.parse_command_line("run.pl", [f"JOB=1:{num_jobs}", "x.JOB.log", "true"])
    assert job_runner.default_max_jobs(spec) == expected


@pytest.mark.parametrize("runner, cancel", [("slurm.pl", "scancel 4242"), ("queue.pl", "qdel 77")])
@pytest.mark.parametrize("signum, name", [(1, "SIGHUP"), (15, "SIGTERM")])
def test_cluster_runner_signal_cancels_the_array_job(tmp_path, fake_cluster, runner, cancel, signum, name):
    # Before: SIGHUP killed the runner and left the array job queued/running.
    env, _ = fake_cluster
    process = _start_runner(tmp_path, [str(UTILS / runner), "JOB=1:2", "log/c.JOB.log", "touch",
                                       str(tmp_path / "started.JOB"), ";", "sleep", "5"], 2, env=env)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 128 + signum
    assert f"{runner}: received {name}; cancelling job {cancel.split()[1]} ({cancel})" in stderr
    assert read(tmp_path / "cancelled").splitlines() == [cancel]
    for task in (1, 2):
        assert f"# {runner}: received {name}; cancelled job {cancel.split()[1]} ({cancel})" in \
            read(tmp_path / f"log/c.{task}.log")
