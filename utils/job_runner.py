"""Kaldi-compatible job runners: the one implementation behind run.pl, queue.pl and slurm.pl.

Command line (the same for all three, as Kaldi's utils/run.pl, queue.pl and slurm.pl)::

    run.pl [options] [VAR=START:END] <log-file> <command> [<args>...]

``VAR`` (usually ``JOB``) is replaced, as plain text, by each task id in the log-file name and in
the command; one task runs per id. The command words are joined into one bash command line with
Kaldi's quoting rule (a word without white space is kept as is, so ``\\|`` and ``\\>`` reach bash as
operators; a word with white space is double-quoted, or single-quoted if it holds a double quote),
and run by bash with ``set -o pipefail``. Its stdout and stderr go to the log file, which starts
with ``# <command>`` / ``# Started at <date>`` and ends with ``# Accounting: time=S threads=T``
and ``# Ended (code N) at <date>, elapsed time S seconds``.

Options: ``--max-jobs-run N`` (``-tc N``), ``--num-threads N`` (``-pe smp N``), ``--mem M``,
``--gpu G``, ``--time T``, ``--config FILE``, any other ``--name value`` (only the cluster runners
use it, through their config file), ``-V`` (qsub only), ``-sync y`` (ignored: runners always wait)
and any other ``-flag value`` (passed verbatim to qsub/sbatch; ignored by run.pl). Options and ``VAR=...`` may
come in any order before the log file.

Signals: SIGHUP, SIGINT, SIGTERM, or the death of the calling script, stop every job (run.pl:
SIGTERM, then SIGKILL, to each job's process group; slurm.pl/queue.pl: scancel/qdel of the array
job), say so in the job logs, and make the runner exit 128 + signal (docs/runners.md, "Signals").
run.pl's tasks also die with the runner when it gets no chance to act (``kill -9`` of a step's process
group): each task runs under a guardian process (``job_runner.py --guard-task``) that watches a pipe
only the runner holds open and stops the task's process group when it reads EOF.

Stdlib only and Python >= 3.6, so the runners work with any system python3 on a cluster node,
without the tfspk virtualenv.
"""
import concurrent.futures
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

RANGE_PATTERN = re.compile(r"^([A-Za-z_]\w*)=(\d+)(?::(\d+))?$")
# Anything of the form NAME=... made of digits and range punctuation is meant as a job range.
RANGE_LIKE_PATTERN = re.compile(r"^[A-Za-z_]\w*=(.*:.*|[-+\d.,]*)$")
MAX_LISTED_FAILURES = 10


class RunnerError(Exception):
    """A user-facing error: the runner prints ``<runner>: <message>`` and exits 1."""


class Interrupted(Exception):
    """The runner got SIGHUP, SIGINT or SIGTERM (or its parent process died): stop every job.

    Raised in the main thread by the signal handler installed by :func:`install_signal_handlers`.
    """

    def __init__(self, signum, reason):
        super().__init__(reason)
        self.signum = signum
        self.reason = reason

    @property
    def exit_code(self):
        return 128 + self.signum  # the shell's convention for "killed by signal N"


def usage(runner):
    return (f"usage: {runner} [options] [JOB=1:N] <log-file> <command> [<args>...]\n"
            f"  e.g. {runner} JOB=1:4 exp/log/foo.JOB.log my-prog --opt JOB \\| sort\n"
            "options: --max-jobs-run N  --num-threads N  --mem 4G  --gpu 0|1  --time T  --config FILE")


class JobSpec:
    """A parsed runner command line."""

    def __init__(self, runner):
        self.runner = runner
        self.options = {}          # long options, name with underscores -> value (string)
        self.scheduler_flags = []  # single-dash options given verbatim for qsub/sbatch
        self.gridengine_flags = []  # -V and -pe ENV N: meaningful to qsub only
        self.var = None            # e.g. "JOB"
        self.start = 1
        self.end = 1
        self.log_template = ""
        self.command = ""          # one bash command line, VAR not yet substituted

    @property
    def task_ids(self):
        return range(self.start, self.end + 1)

    @property
    def num_threads(self):
        return int(self.options.get("num_threads", 1))

    @property
    def max_jobs_run(self):
        value = self.options.get("max_jobs_run")
        return None if value is None else int(value)

    def substitute(self, text, task_id):
        """Kaldi substitutes the variable as plain text (``s/JOB/3/g``)."""
        return text if self.var is None else text.replace(self.var, str(task_id))

    def log_path(self, task_id):
        return self.substitute(self.log_template, task_id)

    def command_for(self, task_id):
        return self.substitute(self.command, task_id)

    def log_glob(self):
        return self.log_template if self.var is None else self.log_template.replace(self.var, "*")


def quote_word(word):
    """Kaldi's quoting of one command word (see the module docstring)."""
    if word and not re.search(r"\s", word):
        return word
    if '"' in word:
        return "'" + word + "'"
    return '"' + word + '"'


def _positive_int(runner, option, value, allow_zero=False):
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0 or (number == 0 and not allow_zero):
        expected = "a non-negative integer" if allow_zero else "a positive integer"
        raise RunnerError(f"invalid value '{value}' for {option}: expected {expected}")
    return str(number)


def _set_option(spec, name, value):
    """Record a long option after validating the ones whose meaning the runners share."""
    flag = "--" + name.replace("_", "-")
    if name in ("max_jobs_run", "num_threads"):
        value = _positive_int(spec.runner, flag, value)
        if name == "max_jobs_run" and "max_jobs_run" in spec.options:
            # Kaldi: given several times (cmd.sh and the script), the smallest limit wins.
            value = str(min(int(value), int(spec.options["max_jobs_run"])))
    elif name == "gpu":
        value = _positive_int(spec.runner, flag, value, allow_zero=True)
    spec.options[name] = value


def _parse_range(spec, arg):
    match = RANGE_PATTERN.match(arg)
    if match is None:
        raise RunnerError(f"malformed job range '{arg}': expected NAME=START:END (e.g. JOB=1:4) "
                          "or NAME=ID with 1 <= START <= END")
    if spec.var is not None:
        raise RunnerError(f"two job ranges given ({spec.var}=... and '{arg}'); expected one")
    start = int(match.group(2))
    end = int(match.group(3)) if match.group(3) is not None else start
    if start < 1 or start > end:
        raise RunnerError(f"invalid job range '{arg}': expected 1 <= START <= END "
                          "(task ids start at 1, as GridEngine and Slurm arrays need)")
    spec.var, spec.start, spec.end = match.group(1), start, end


def parse_command_line(runner, argv):
    """Parse ``[options] [VAR=S:E] <log> <command...>`` into a :class:`JobSpec`."""
    spec = JobSpec(runner)
    args = list(argv)
    while args:
        arg = args[0]
        if arg.startswith("--") and len(arg) > 2:
            if "=" in arg:
                name, value = arg[2:].split("=", 1)
                del args[0]
            else:
                if len(args) < 2:
                    raise RunnerError(f"option {arg} needs a value\n{usage(runner)}")
                name, value = arg[2:], args[1]
                del args[:2]
            _set_option(spec, name.replace("-", "_"), value)
        elif arg == "-V":
            spec.gridengine_flags.append(arg)
            del args[0]
        elif arg == "-pe" and len(args) >= 3:  # GridEngine parallel environment: -pe smp 4
            spec.gridengine_flags += args[:3]
            _set_option(spec, "num_threads", args[2])
            del args[:3]
        elif arg.startswith("-") and len(arg) > 1:
            if len(args) < 2:
                raise RunnerError(f"option {arg} needs a value\n{usage(runner)}")
            value = args[1]
            if arg == "-tc":
                _set_option(spec, "max_jobs_run", value)
            elif arg != "-sync":  # the runners always wait for their jobs
                spec.scheduler_flags += [arg, value]
            del args[:2]
        elif RANGE_PATTERN.match(arg) or RANGE_LIKE_PATTERN.match(arg):
            _parse_range(spec, arg)
            del args[0]
        else:
            break
    if len(args) < 2:
        raise RunnerError(f"expected a log file and a command\n{usage(runner)}")
    spec.log_template = args[0]
    spec.command = " ".join(quote_word(word) for word in args[1:])
    if spec.var is not None and spec.end > spec.start and spec.var not in spec.log_template:
        raise RunnerError(f"you are running {spec.end - spec.start + 1} jobs ({spec.var}={spec.start}:"
                          f"{spec.end}) but all would write the one log file {spec.log_template}; "
                          f"put {spec.var} in the log-file name")
    return spec


def make_log_dir(log_path):
    directory = os.path.dirname(log_path) or "."
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as err:
        raise RunnerError(f"cannot create log directory {directory}: {err.strerror}") from None
    if not os.access(directory, os.W_OK):
        raise RunnerError(f"log directory {directory} is not writable")


def date_string():
    return time.strftime("%a %b %d %H:%M:%S %Z %Y")


def failure_message(spec, failed_ids):
    """Kaldi's message (``2 / 4 failed, log is in x.*.log``) plus the failed logs by name."""
    if not failed_ids:
        return None
    num_jobs = len(spec.task_ids)
    if num_jobs == 1:
        message = f"{spec.runner}: job failed, log is in {spec.log_path(spec.start)}"
        if spec.var is None and "JOB" in spec.log_template:
            message += f"\n{spec.runner}: probably you forgot to put JOB=1:$nj in your script"
        return message
    listed = [spec.log_path(task_id) for task_id in sorted(failed_ids)[:MAX_LISTED_FAILURES]]
    more = " ..." if len(failed_ids) > MAX_LISTED_FAILURES else ""
    return (f"{spec.runner}: {len(failed_ids)} / {num_jobs} failed, log is in {spec.log_glob()}\n"
            f"{spec.runner}: failed logs: {' '.join(listed)}{more}")


# ----------------------------------------------------------------------------------------------
# Local execution (run.pl)

def default_max_jobs(spec):
    """Kaldi run.pl's default: one job per CPU (per GPU with --gpu), all at once when few more."""
    if int(spec.options.get("gpu", 0)) > 0:
        try:
            listing = subprocess.run(["nvidia-smi", "-L"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, universal_newlines=True).stdout
            num_gpus = sum(1 for line in listing.splitlines() if line.strip())
        except OSError:
            num_gpus = 0
        if num_gpus == 0:
            sys.stderr.write(f"{spec.runner}: warning: cannot count GPUs with nvidia-smi; running one job at a time\n")
        return max(num_gpus, 1)
    try:
        num_cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        num_cpus = os.cpu_count() or 1
    num_jobs = len(spec.task_ids)
    if num_cpus < num_jobs < 1.4 * num_cpus:
        return num_jobs  # avoid a short tail of leftover jobs
    return num_cpus


class LocalRunner:
    """Runs the tasks as local bash processes, at most ``max_jobs_run`` at a time."""

    def __init__(self, spec):
        self.spec = spec
        self.processes = set()
        self.lock = threading.Lock()
        self.stopping = False
        self.stop_reason = None   # e.g. "received SIGHUP", written into the logs of the stopped jobs
        self.lifeline = None      # (read fd, write fd): EOF on the read end tells the tasks the runner died

    def run_task(self, task_id):
        """Run one task; return its exit code (0 = success, 130 = not started: stopping)."""
        spec = self.spec
        if self.stopping:
            return 130  # leave an older log of this task alone
        log_path = spec.log_path(task_id)
        command = spec.command_for(task_id)
        try:
            log = open(log_path, "w")
        except OSError as err:
            sys.stderr.write(f"{spec.runner}: cannot write log file {log_path}: {err.strerror}\n")
            return 1
        with log:
            log.write(f"# {command}\n# Started at {date_string()}\n#\n")
            log.flush()
            started = time.time()
            code = self._run_process(command, log)
            elapsed = int(round(time.time() - started))
            if self.stop_reason is not None and code != 0:
                log.write(f"# {spec.runner}: {self.stop_reason}; stopped this job (its whole process group)\n")
            ended = f"code {code}" if code >= 0 else f"code {128 - code}; signal {-code}"
            log.write(f"# Accounting: time={elapsed} threads={spec.num_threads}\n"
                      f"# Ended ({ended}) at {date_string()}, elapsed time {elapsed} seconds\n")
        return code if code >= 0 else 128 - code

    def _run_process(self, command, log):
        """Run the command under bash with its output in ``log``; Popen's return code.

        The task is started by a guardian (:func:`guard_task`) that holds the read end of the runner's
        lifeline pipe: if the runner dies, even by SIGKILL, the guardian stops the task's process group.
        """
        with self.lock:
            if self.stopping:
                return 130
            if self.lifeline is None:
                self.lifeline = os.pipe()   # the write end stays in this process only (not inheritable)
            # Own process group, so that stop() reaches every process of a pipeline.
            process = subprocess.Popen(guard_command(self.lifeline[0], self.spec.runner,
                                                     ["bash", "-c", "set -o pipefail\n" + command]),
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True, pass_fds=(self.lifeline[0],))
            self.processes.add(process)
        code = process.wait()
        with self.lock:
            self.processes.discard(process)
        return code

    kill_grace = float(os.environ.get("TFSPK_RUNNER_KILL_GRACE", "5"))

    def stop(self, reason):
        """Stop every running job: SIGTERM to its process group, SIGKILL after ``kill_grace`` s.

        Each job runs in its own session (so a Ctrl-C at the terminal reaches the runner only, and
        the runner decides); killing the group reaches every process of a pipeline and anything
        the job started in the background.
        """
        with self.lock:
            self.stopping = True
            self.stop_reason = reason
            groups = [process.pid for process in self.processes]
        self._signal_groups(groups, signal.SIGTERM)
        deadline = time.time() + self.kill_grace
        while time.time() < deadline:
            with self.lock:
                if not self.processes:
                    break
            time.sleep(0.05)
        # Also after the leader exited: a background process of the job may still hold its group.
        self._signal_groups(groups, signal.SIGKILL)
        return len(groups)

    @staticmethod
    def _signal_groups(groups, signum):
        for group in groups:
            try:
                os.killpg(group, signum)
            except OSError:
                pass  # the group is gone already

    def run(self):
        spec = self.spec
        for task_id in spec.task_ids:
            make_log_dir(spec.log_path(task_id))
        max_jobs = spec.max_jobs_run or default_max_jobs(spec)
        failed = []
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(max_jobs, len(spec.task_ids)))
        try:
            futures = {pool.submit(self.run_task, task_id): task_id for task_id in spec.task_ids}
            for future in concurrent.futures.as_completed(futures):
                try:
                    code = future.result()
                except OSError as err:
                    sys.stderr.write(f"{spec.runner}: cannot run job {futures[future]}: {err}\n")
                    code = 1
                if code != 0:
                    failed.append(futures[future])
        except Interrupted as interruption:
            with _deferred_signals():  # a second Ctrl-C must not cut the clean-up short
                num_stopped = self.stop(interruption.reason)
                pool.shutdown(wait=True)
            interruption.reason += f"; stopped {num_stopped} running job(s), see their logs"
            raise
        pool.shutdown(wait=True)
        return failed


def guard_command(lifeline_fd, runner, argv):
    """The command line that runs ``argv`` under :func:`guard_task` (this file run by this Python)."""
    return [sys.executable, os.path.realpath(__file__), "--guard-task", str(lifeline_fd), runner, "--"] + list(argv)


def guard_task(lifeline_fd, runner, argv, grace=None):
    """Run ``argv`` as a child in this process group (the task's: the runner started this process as a
    session leader) and return its status: the exit code, or minus the signal that ended it.

    A thread waits on ``lifeline_fd``, the read end of a pipe whose write end only the runner holds: EOF
    means the runner is gone however it died (``kill -9`` of a step's process group included), and then
    the task's whole group gets SIGTERM, and SIGKILL after ``grace`` s, with a line in the job's log.
    The runner's own SIGTERM to the group (its stop()) is survived here, so that the task's status is
    reported as the task's.
    """
    grace = float(os.environ.get("TFSPK_RUNNER_KILL_GRACE", "5")) if grace is None else grace
    signal.signal(signal.SIGTERM, lambda signum, frame: None)   # a handler, not SIG_IGN: not inherited
    started = time.time()
    child = subprocess.Popen(argv)
    orphaned = threading.Event()

    def watch():
        while True:
            try:
                if os.read(lifeline_fd, 1):
                    continue
            except InterruptedError:
                continue
            except OSError:
                pass
            break
        orphaned.set()
        sys.stdout.write(f"# {runner}: the runner exited (killed?); stopped this job (its whole process group)\n")
        sys.stdout.flush()
        os.killpg(0, signal.SIGTERM)
        deadline = time.time() + grace
        while time.time() < deadline and child.poll() is None:
            time.sleep(0.05)
        code = child.poll()
        code = -signal.SIGKILL if code is None else code
        ended = f"code {code}" if code >= 0 else f"code {128 - code}; signal {-code}"
        elapsed = int(round(time.time() - started))
        sys.stdout.write(f"# Ended ({ended}) at {date_string()}, elapsed time {elapsed} seconds\n")
        sys.stdout.flush()
        os.killpg(0, signal.SIGKILL)    # what the task left in the background; this process too

    threading.Thread(target=watch, daemon=True).start()
    code = child.wait()
    if orphaned.is_set():
        time.sleep(grace + 10)          # the watcher ends this process
    return code


def _guard_main(argv):
    """``job_runner.py --guard-task FD RUNNER -- COMMAND...``: exit as the command did (same signal)."""
    code = guard_task(int(argv[0]), argv[1], argv[3:])
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        time.sleep(1)   # the signal ends the process; never reached for SIGTERM/SIGKILL
    os._exit(code if code >= 0 else 128 - code)


# ----------------------------------------------------------------------------------------------
# Cluster execution (queue.pl, slurm.pl)

class ClusterConfig:
    """Kaldi's queue.conf/slurm.conf format.

    ``command <submit command and fixed flags>``; ``option NAME=* <flags with $0>`` (value
    substituted); ``option NAME=VALUE [<flags>]`` (used for exactly that value, overriding the
    ``*`` line); ``default NAME=VALUE`` (value used when the option is not given). ``#`` starts a
    comment.
    """

    def __init__(self, text, source):
        self.source = source
        self.command = None
        self.templates = {}   # name -> flag words, "$0" in them standing for the value
        self.exact = {}       # (name, value) -> flag words
        self.defaults = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if line:
                self._parse_line(line, raw, f"{source}:{number}")
        if self.command is None:
            raise RunnerError(f"{source}: no 'command ...' line (e.g. 'command sbatch --export=PATH')")

    def _parse_line(self, line, raw, where):
        keyword, rest = (line.split(None, 1) + [""])[:2]
        match = re.match(r"^([A-Za-z_]\w*)=(\S+)\s*(.*)$", rest)
        try:
            if keyword == "command" and rest:
                self.command = shlex.split(rest)
            elif keyword == "option" and match:
                name, value, flags = match.groups()
                if value != "*":
                    self.exact[(name, value)] = shlex.split(flags)
                elif "$0" in flags:
                    self.templates[name] = shlex.split(flags)
                else:
                    raise RunnerError(f"{where}: 'option {name}=*' needs flags containing $0, got '{raw}'")
            elif keyword == "default" and match and not match.group(3):
                self.defaults[match.group(1)] = match.group(2)
            else:
                raise RunnerError(f"{where}: cannot parse '{raw}' (expected 'command ...', 'option NAME=* "
                                  "FLAGS-WITH-$0', 'option NAME=VALUE [FLAGS]' or 'default NAME=VALUE')")
        except ValueError as err:  # shlex: unbalanced quotes
            raise RunnerError(f"{where}: cannot split '{raw}' into words: {err}") from None

    def flags_for(self, options, skip=()):
        """Scheduler flags for the runner options; returns (flags, names not in the config).

        The value replaces ``$0`` inside the already split words, so it is never re-split.
        """
        values = dict(self.defaults)
        values.update(options)
        flags, unknown = [], []
        for name in sorted(values):
            if name in skip:
                continue
            value = values[name]
            if (name, value) in self.exact:
                flags += self.exact[(name, value)]
            elif name in self.templates:
                flags += [word.replace("$0", value) for word in self.templates[name]]
            else:
                unknown.append(name)
        return flags, unknown


class Scheduler:
    """What differs between GridEngine and Slurm."""
    name = ""
    task_id_variable = ""
    default_config = ""
    config_path = ""
    handles_max_jobs_in_array = False
    accepts_gridengine_flags = False

    def array_flags(self, spec):
        raise NotImplementedError

    def output_flags(self, queue_log):
        raise NotImplementedError

    def parse_job_id(self, output):
        match = re.search(r"(\d+)", output)
        return match.group(1) if match else None

    def status_command(self, job_id):
        raise NotImplementedError

    def job_gone(self, completed):
        raise NotImplementedError

    def cancel_command(self, job_id):
        raise NotImplementedError


class GridEngine(Scheduler):
    name = "GridEngine"
    task_id_variable = "SGE_TASK_ID"
    config_path = "conf/queue.conf"
    accepts_gridengine_flags = True
    default_config = """\
command qsub -v PATH -cwd -S /bin/bash -j y
option mem=* -l mem_free=$0,ram_free=$0
option mem=0
option num_threads=* -pe smp $0
option num_threads=1
option max_jobs_run=* -tc $0
default gpu=0
option gpu=0
option gpu=* -l gpu=$0
"""

    def array_flags(self, spec):
        return ["-t", f"{spec.start}:{spec.end}"]

    def output_flags(self, queue_log):
        return ["-o", queue_log]

    def parse_job_id(self, output):
        # "Your job-array 123.1-4:1 ("x.sh") has been submitted"
        match = re.search(r"[Yy]our job(?:-array)? (\d+)", output) or re.search(r"(\d+)", output)
        return match.group(1) if match else None

    def status_command(self, job_id):
        return ["qstat", "-j", job_id]

    def job_gone(self, completed):
        # "Following jobs do not exist"; any other failure (qmaster unreachable) proves nothing.
        return completed.returncode != 0 and "not exist" in completed.stdout + completed.stderr

    def cancel_command(self, job_id):
        return ["qdel", job_id]


class Slurm(Scheduler):
    name = "Slurm"
    task_id_variable = "SLURM_ARRAY_TASK_ID"
    config_path = "conf/slurm.conf"
    handles_max_jobs_in_array = True
    default_config = """\
command sbatch --export=PATH --ntasks=1
option time=* --time=$0
option mem=* --mem-per-cpu=$0
option mem=0
option num_threads=* --cpus-per-task=$0
option num_threads=1 --cpus-per-task=1
default gpu=0
option gpu=0
option gpu=* --gres=gpu:$0
"""

    def array_flags(self, spec):
        throttle = f"%{spec.max_jobs_run}" if spec.max_jobs_run else ""
        return [f"--array={spec.start}-{spec.end}{throttle}"]

    def output_flags(self, queue_log):
        # One file per task (%a): Slurm truncates the output file when a task starts.
        return ["--output=" + re.sub(r"\.log$", "", queue_log) + ".%a.log"]

    def status_command(self, job_id):
        return ["squeue", "--noheader", "--jobs", job_id]

    def job_gone(self, completed):
        # squeue lists nothing for a job that ended recently and rejects ids it has forgotten.
        listed_nothing = completed.returncode == 0 and not completed.stdout.strip()
        return listed_nothing or "Invalid job id" in completed.stderr

    def cancel_command(self, job_id):
        return ["scancel", job_id]


def load_config(spec, scheduler):
    path = spec.options.get("config")
    if path is not None:
        try:
            with open(path) as handle:
                return ClusterConfig(handle.read(), path)
        except OSError as err:
            raise RunnerError(f"cannot read config file {path} (given with --config): {err.strerror}") from None
    if os.path.isfile(scheduler.config_path):
        with open(scheduler.config_path) as handle:
            return ClusterConfig(handle.read(), scheduler.config_path)
    return ClusterConfig(scheduler.default_config, f"{spec.runner}'s built-in default config")


def queue_paths(spec):
    """``<logdir>/q/<name>.sh`` (``.JOB`` dropped from the name) and the scheduler's own log."""
    log_dir = os.path.dirname(spec.log_template) or "."
    base = os.path.basename(spec.log_template)
    if spec.var is not None:
        base = re.sub(r"\.?" + re.escape(spec.var), "", base, count=1) or "job"
    stem = re.sub(r"\.[A-Za-z]{1,5}$", "", base)
    queue_dir = os.path.join(os.path.abspath(log_dir), "q")  # absolute: the scheduler may start elsewhere
    return queue_dir, os.path.join(queue_dir, stem + ".sh"), os.path.join(queue_dir, stem + ".log")


def job_script(spec, scheduler, marker_prefix):
    """The bash script every array task runs; it picks its command by task id."""
    lines = [
        "#!/usr/bin/env bash",
        f"# Written by {spec.runner}: one array task per id {spec.start}..{spec.end}.",
        f"task_id=${{{scheduler.task_id_variable}:-{spec.start}}}",
        f'marker={shlex.quote(marker_prefix)}.$task_id',
        "# The done marker holds the exit code; written on any exit the shell sees (not on kill -9:",
        "# the runner then notices that the scheduler no longer lists the job).",
        """trap 'code=$?; echo "${ret:-$code}" > "$marker.tmp" && mv -f "$marker.tmp" "$marker"' EXIT""",
        f"cd {shlex.quote(os.getcwd())} || exit 1",
        f"export PATH={shlex.quote(os.environ.get('PATH', ''))}",
        "[ -f ./path.sh ] && . ./path.sh",
        "declare -a commands logs",
    ]
    for task_id in spec.task_ids:
        lines.append(f"commands[{task_id}]={shlex.quote(spec.command_for(task_id))}")
        lines.append(f"logs[{task_id}]={shlex.quote(spec.log_path(task_id))}")
    lines += [
        'command=${commands[$task_id]:-}',
        'log=${logs[$task_id]:-}',
        'if [ -z "$command" ]; then echo "$0: no command for task id $task_id" >&2; exit 1; fi',
        'mkdir -p "$(dirname "$log")"',
        '{ echo "# $command"; echo "# Running on $(hostname)"; echo "# Started at $(date)"; echo "#"; } > "$log"',
        'time1=$(date +%s)',
        '( set -o pipefail; eval "$command" ) >> "$log" 2>&1 < /dev/null',
        'ret=$?',
        'time2=$(date +%s)',
        f'echo "# Accounting: time=$((time2 - time1)) threads={spec.num_threads}" >> "$log"',
        'echo "# Ended (code $ret) at $(date), elapsed time $((time2 - time1)) seconds" >> "$log"',
        'exit $(( ret == 0 ? 0 : 1 ))',
    ]
    return "\n".join(lines) + "\n"


class ClusterRunner:
    """Submits one array job, then waits for each task's done marker (holding its exit code)."""

    poll_start = 0.1
    poll_max = float(os.environ.get("TFSPK_RUNNER_POLL_MAX", "10"))
    status_interval = float(os.environ.get("TFSPK_RUNNER_STATUS_INTERVAL", "60"))

    def __init__(self, spec, scheduler):
        self.spec = spec
        self.scheduler = scheduler
        self.job_id = None

    def submit_command(self, config, script, queue_log):
        spec = self.spec
        skip = {"config"}
        if self.scheduler.handles_max_jobs_in_array:
            skip.add("max_jobs_run")
        native_flags = []
        if self.scheduler.accepts_gridengine_flags:
            native_flags = spec.gridengine_flags
            if "-pe" in native_flags:
                skip.add("num_threads")  # the user's own -pe replaces the config's num_threads line
        flags, unknown = config.flags_for(spec.options, skip=skip)
        for name in unknown:
            sys.stderr.write(f"{spec.runner}: warning: ignoring --{name.replace('_', '-')} "
                             f"{spec.options.get(name, config.defaults.get(name))}: not described in {config.source}\n")
        return (config.command + flags + native_flags + spec.scheduler_flags + self.scheduler.output_flags(queue_log)
                + self.scheduler.array_flags(spec) + [script])

    def run(self):
        spec = self.spec
        config = load_config(spec, self.scheduler)
        for task_id in spec.task_ids:
            make_log_dir(spec.log_path(task_id))
        queue_dir, script, queue_log = queue_paths(spec)
        sync_dir = os.path.join(queue_dir, "sync")
        make_log_dir(os.path.join(sync_dir, "x"))
        marker_prefix = os.path.abspath(os.path.join(
            sync_dir, f"done.{os.path.basename(script)[:-3]}.{os.getpid()}.{int(time.time())}"))
        with open(script, "w") as handle:
            handle.write(job_script(spec, self.scheduler, marker_prefix))
        os.chmod(script, 0o755)
        command = self.submit_command(config, script, queue_log)
        try:
            with _deferred_signals():  # a signal during sbatch/qsub is handled once the job id is known
                self.job_id = self.submit(command, script, queue_log)
            codes = self.wait(marker_prefix)
        except Interrupted as interruption:
            with _deferred_signals():
                self.cancel(interruption.reason, marker_prefix)
            raise
        failed = [task_id for task_id in spec.task_ids if codes[task_id] != 0]
        for task_id in failed:
            if not os.path.exists(spec.log_path(task_id)):
                sys.stderr.write(f"{spec.runner}: task {task_id} failed before writing its log "
                                 f"{spec.log_path(task_id)}; see the job script {script} and the "
                                 f"scheduler's output in {queue_dir}\n")
        return failed

    def submit(self, command, script, queue_log):
        spec = self.spec
        printable = " ".join(shlex.quote(word) for word in command)
        with open(script, "a") as handle:
            handle.write(f"## submitted with:\n# {printable}\n")
        try:
            completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       universal_newlines=True)
        except OSError as err:
            raise RunnerError(f"cannot run the {self.scheduler.name} submit command '{command[0]}': "
                              f"{err.strerror}; command was: {printable}") from None
        output = (completed.stdout + completed.stderr).strip()
        with open(queue_log, "a") as handle:
            handle.write(f"# {printable}\n{output}\n")
        if completed.returncode != 0:
            raise RunnerError(f"submitting to {self.scheduler.name} failed ({command[0]} exited with status "
                              f"{completed.returncode}); its output:\n{output}\ncommand was: {printable}\n"
                              f"job script: {script}; logs would be {spec.log_glob()}")
        job_id = self.scheduler.parse_job_id(completed.stdout)
        if job_id is None:
            sys.stderr.write(f"{spec.runner}: warning: no job id in the output of {command[0]} "
                             f"('{completed.stdout.strip()}'); cannot notice tasks killed by the scheduler\n")
        return job_id

    def read_markers(self, marker_prefix, pending, codes):
        for task_id in list(pending):
            path = f"{marker_prefix}.{task_id}"
            if os.path.exists(path):
                with open(path) as handle:
                    text = handle.read().strip()
                codes[task_id] = int(text) if text.lstrip("-").isdigit() else 1
                pending.discard(task_id)
                os.remove(path)

    def job_gone(self):
        """True when the scheduler says the job no longer exists; False when unsure."""
        if self.job_id is None:
            return False
        try:
            completed = subprocess.run(self.scheduler.status_command(self.job_id), stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return self.scheduler.job_gone(completed)

    def wait(self, marker_prefix):
        """Poll the done markers; tasks whose job vanished without a marker count as failed."""
        pending = set(self.spec.task_ids)
        codes = {}
        delay = self.poll_start
        next_status_check = time.time() + self.status_interval
        gone_checks = 0
        while True:
            self.read_markers(marker_prefix, pending, codes)
            if not pending:
                return codes
            if time.time() >= next_status_check:
                next_status_check = time.time() + self.status_interval
                gone_checks = gone_checks + 1 if self.job_gone() else 0
                if gone_checks >= 2:  # two checks in a row: not a passing scheduler hiccup
                    self.read_markers(marker_prefix, pending, codes)
                    for task_id in sorted(pending):
                        sys.stderr.write(f"{self.spec.runner}: task {task_id} of job {self.job_id} left no done "
                                         f"marker and {self.scheduler.name} no longer lists the job (killed? out "
                                         f"of memory or time?); see {self.spec.log_path(task_id)}\n")
                        codes[task_id] = 1
                    return codes
            time.sleep(delay)
            delay = min(delay * 2, self.poll_max)

    def cancel(self, reason, marker_prefix):
        """Cancel the array job (scancel/qdel) and say so in the log of every unfinished task."""
        spec = self.spec
        if self.job_id is None:
            sys.stderr.write(f"{spec.runner}: {reason}; the job id is unknown, so the submitted job "
                             f"(script {queue_paths(spec)[1]}) could not be cancelled: cancel it by hand\n")
            return
        # Tasks that finished before the signal have their done marker; a cancelled task may write one.
        unfinished = [task_id for task_id in spec.task_ids if not os.path.exists(f"{marker_prefix}.{task_id}")]
        command = self.scheduler.cancel_command(self.job_id)
        sys.stderr.write(f"{spec.runner}: {reason}; cancelling job {self.job_id} ({' '.join(command)})\n")
        try:
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as err:
            sys.stderr.write(f"{spec.runner}: could not cancel job {self.job_id}: {err}\n")
        for task_id in unfinished:
            try:
                with open(spec.log_path(task_id), "a") as log:
                    log.write(f"# {spec.runner}: {reason}; cancelled job {self.job_id} "
                              f"({' '.join(command)})\n")
            except OSError:
                pass


SCHEDULERS = {"queue.pl": GridEngine, "slurm.pl": Slurm}


def main(runner, argv):
    """Entry point of run.pl / queue.pl / slurm.pl; returns the exit status."""
    if not argv or argv[0] in ("-h", "--help"):
        sys.stderr.write(usage(runner) + "\n")
        return 0 if argv else 1
    try:
        spec = parse_command_line(runner, argv)
        if runner in SCHEDULERS:
            failed = ClusterRunner(spec, SCHEDULERS[runner]()).run()
        else:
            failed = LocalRunner(spec).run()
    except RunnerError as err:
        sys.stderr.write(f"{runner}: {err}\n")
        return 1
    except Interrupted as interruption:
        sys.stderr.write(f"{runner}: interrupted: {interruption.reason}\n")
        return interruption.exit_code
    message = failure_message(spec, failed)
    if message:
        sys.stderr.write(message + "\n")
        return 1
    return 0


# ----------------------------------------------------------------------------------------------
# Signals: the jobs die with the runner (docs/runners.md, "Signals")

_signal_state = {"defer": 0, "pending": None, "fired": False, "parent_gone": False}


def _signal_name(signum):
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _on_signal(signum, frame):
    """Turn the first SIGHUP/SIGINT/SIGTERM into :class:`Interrupted` in the main thread."""
    state = _signal_state
    if state["fired"]:
        return  # already stopping; later signals change nothing
    reason = ("its parent process exited (the calling script was killed)" if state["parent_gone"]
              else f"received {_signal_name(signum)}")
    if state["defer"]:
        if state["pending"] is None:
            state["pending"] = Interrupted(signum, reason)
        return
    state["fired"] = True
    raise Interrupted(signum, reason)


class _deferred_signals:
    """Context manager: hold signals back (submission, clean-up); raise a held one on exit."""

    def __enter__(self):
        _signal_state["defer"] += 1

    def __exit__(self, kind, value, traceback):
        _signal_state["defer"] -= 1
        pending = _signal_state["pending"]
        if _signal_state["defer"] == 0 and pending is not None and kind is None:
            _signal_state["pending"] = None
            _signal_state["fired"] = True
            raise pending
        return False


def _watch_parent(parent_pid, interval=0.5):
    """When the calling script dies (e.g. ``kill`` of run.sh), bash does not pass the signal on
    to its foreground child: the runner is re-parented. Treat that like SIGTERM."""
    while True:
        time.sleep(interval)
        if os.getppid() != parent_pid:
            _signal_state["parent_gone"] = True
            os.kill(os.getpid(), signal.SIGTERM)
            return


def install_signal_handlers():
    """SIGHUP, SIGINT, SIGTERM stop the jobs; so does the death of the parent process.

    A SIGHUP that is ignored on entry (``nohup``) stays ignored: the caller asked to outlive the
    terminal.
    """
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signum == signal.SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
            continue
        signal.signal(signum, _on_signal)
    parent_pid = os.getppid()
    if parent_pid > 1:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def entry_point(runner):
    install_signal_handlers()
    sys.exit(main(runner, sys.argv[1:]))


if __name__ == "__main__" and sys.argv[1:2] == ["--guard-task"]:
    _guard_main(sys.argv[2:])
