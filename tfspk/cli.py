"""Plumbing shared by every ``tfspk-*`` command: Kaldi-style options, logging, exits.

Kaldi conventions kept here:
* options are ``--name=value`` or ``--name value``; booleans take ``true``/``false``
  (a bare ``--flag`` means true);
* ``--config FILE`` reads options from a file (one ``--name=value`` per line, ``#``
  comments), and options on the command line override it;
* the command line is echoed to stderr when the tool starts;
* messages go to stderr as ``LOG (prog) ...``, ``WARNING (prog) ...`` and
  ``ERROR (prog) ...``; errors exit with status 1.
"""
import argparse
import errno
import gc
import importlib.abc
import io
import logging
import os
import re
import shlex
import sys
import traceback

from tfspk.errors import ToolError
from tfspk.params import KALDI_FALSE, KALDI_TRUE

_PROG = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "tfspk"


def kaldi_bool(text):
    """Parse a Kaldi boolean option value (``true``/``false``/``t``/``f``/``1``/``0``, any case)."""
    value = str(text).strip().lower()
    if value in KALDI_TRUE:
        return True
    if value in KALDI_FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")


def add_bool(parser, name, default, help_text):
    """Add a Kaldi boolean option: ``--name=true|false`` or a bare ``--name``."""
    parser.add_argument(name, type=kaldi_bool, default=default, metavar="true|false",
                        help=f"{help_text} (default: {str(default).lower()})")
    parser.__dict__.setdefault("bool_options", set()).add(name)


def add_binary(parser, default=True, what="output"):
    """Kaldi's ``--binary``: write ``what`` in Kaldi's binary format (else as text)."""
    add_bool(parser, "--binary", default, f"write {what} in binary mode")


class KaldiArgumentParser(argparse.ArgumentParser):
    """argparse with Kaldi's ``--config`` files and error exit status 1."""

    def __init__(self, usage_text, description=None, **kwargs):
        super().__init__(prog=_PROG, usage=usage_text, description=description,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         allow_abbrev=False, **kwargs)
        self.add_argument("--config", metavar="FILE",
                          help="read options from FILE (--name=value per line); the command line overrides it")
        self.add_argument("--verbose", type=int, default=0, help="verbosity level (default: 0)")

    def parse_args(self, args=None, namespace=None):
        argv = _expand_config(list(sys.argv[1:] if args is None else args), self)
        return super().parse_args(self._bare_flags_to_true(argv), namespace)

    def parse(self, argv, *positionals):
        """Add the positional arguments ``positionals`` (in this order, one value each: the ``<...>`` of the
        usage line) and parse ``argv``."""
        for name in positionals:
            self.add_argument(name)
        return self.parse_args(argv)

    def _bare_flags_to_true(self, argv):
        """A bare boolean ``--flag`` means true (Kaldi); it never swallows a positional argument."""
        bools = getattr(self, "bool_options", set())
        out = []
        for i, arg in enumerate(argv):
            following = argv[i + 1] if i + 1 < len(argv) else None
            if arg in bools and (following is None or following.lower() not in ("true", "false")):
                arg += "=true"
            out.append(arg)
        return out

    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write(f"ERROR ({self.prog}) {message}\n")
        sys.exit(1)


def _expand_config(argv, parser):
    """Insert the options of every ``--config FILE`` before the command-line options."""
    from_config, rest = [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config" or arg.startswith("--config="):
            if arg == "--config":
                if i + 1 >= len(argv):
                    parser.error("--config needs a file name")
                path, i = argv[i + 1], i + 2
            else:
                path, i = arg.split("=", 1)[1], i + 1
            from_config.extend(read_config_file(path, parser))
        else:
            rest.append(arg)
            i += 1
    return from_config + rest


def read_config_file(path, parser=None):
    """Read a Kaldi config file: ``--name=value`` per line, blank lines and ``#`` comments ignored."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.readlines()
    except OSError as err:
        message = f"cannot read config file '{path}': {err.strerror}"
        if parser is None:
            raise ToolError(message) from None
        parser.error(message)
    options = []
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if not line.startswith("--"):
            message = f"{path}:{number}: expected --name=value, got '{line}'"
            if parser is None:
                raise ToolError(message)
            parser.error(message)
        name = line.split("=", 1)[0]
        if parser is not None and name not in parser._option_string_actions:
            parser.error(f"{path}:{number}: unknown option '{name}' for this program (see --help)")
        options.append(line)
    return options


def log(message):
    sys.stderr.write(f"LOG ({_PROG}) {message}\n")


def warn(message):
    sys.stderr.write(f"WARNING ({_PROG}) {message}\n")


def run_tool(main, argv=None):
    """Run ``main(argv)`` as a command: echo the command line, turn errors into exit 1.

    :class:`ToolError` prints its message only. Any other exception is a tfspk bug: it
    prints a one-line summary and, with ``TFSPK_DEBUG=1``, the traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    sys.stderr.write(" ".join(shlex.quote(a) for a in [_PROG] + argv) + "\n")
    try:
        status = main(argv)
    except ToolError as err:
        sys.stderr.write(f"ERROR ({_PROG}) {err}\n")
        _exit(1)
    except KeyboardInterrupt:
        sys.stderr.write(f"ERROR ({_PROG}) interrupted\n")
        _exit(130)
    except BrokenPipeError:
        sys.exit(141)
    except Exception as err:  # pylint: disable=broad-except
        message = os_fault_message(err)
        if message is not None:
            sys.stderr.write(f"ERROR ({_PROG}) {message}\n")
            _exit(1)
        if os.environ.get("TFSPK_DEBUG") == "1":
            traceback.print_exc()
        sys.stderr.write(f"ERROR ({_PROG}) internal error {type(err).__name__}: {err} "
                         "(set TFSPK_DEBUG=1 for the traceback; please report it)\n")
        _exit(2)
    _exit(status or 0)


# errno values that mean the output cannot be written where it was asked for (a fault of the file system or
# of the path the user gave, not of tfspk)
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.EFBIG}
# TensorFlow's exceptions that its file system layer raises for OS faults; each is mapped only when its
# message names a path or an OS reason (a ResourceExhaustedError "OOM when allocating" stays a bug report).
_TF_IO_ERRORS = ("ResourceExhaustedError", "NotFoundError", "PermissionDeniedError", "DataLossError",
                 "FailedPreconditionError", "AlreadyExistsError", "UnavailableError")
_OS_REASONS = ("No space left on device", "Disk quota exceeded", "Read-only file system", "Permission denied",
               "Not a directory", "Is a directory", "File exists", "No such file or directory",
               "Input/output error", "File too large", "Operation not permitted")
_TF_PATH = re.compile(r"(?:^|[\s'\"(=])(?P<path>(?:/|\.{1,2}/|[\w.-]+/)[^\s;,'\")]*)")


def os_fault_message(err: BaseException) -> str | None:
    """The one-line message for an ordinary OS fault met by a tool, or None if ``err`` is not one.

    Python's ``OSError`` (with the path it names) and TensorFlow's file-system exceptions
    (ResourceExhausted, NotFound, PermissionDenied, DataLoss, FailedPrecondition on files) become the same
    ``cannot write <path>: <reason>`` (``cannot read`` for a missing file, ``I/O error on`` when the
    direction is unknown); :func:`run_tool` prints it as an ERROR with exit status 1 for every tool.
    """
    if isinstance(err, OSError) and not isinstance(err, BrokenPipeError):
        path = err.filename if err.filename is not None else ""
        reason = err.strerror or str(err)
        if err.errno == errno.EEXIST and path and os.path.exists(path) and not os.path.isdir(path):
            reason = "a file of that name exists where a directory is needed"
        if not path:
            return f"I/O error: {reason}" if err.errno is not None else None
        if err.errno == errno.ENOENT:
            return f"cannot read {path}: {reason} (or its directory does not exist)"
        verb = "cannot write" if err.errno in _WRITE_ERRNOS else "I/O error on"
        return f"{verb} {path}: {reason}"
    tf = sys.modules.get("tensorflow")
    errors = getattr(tf, "errors", None)
    if errors is None or not isinstance(err, getattr(errors, "OpError", ())) or type(err).__name__ not in _TF_IO_ERRORS:
        return None
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\].*", "", (err.message or str(err)).strip())
    text = (text.splitlines() or [""])[0]
    reason = next((phrase for phrase in _OS_REASONS if phrase.lower() in text.lower()), None)
    match = _TF_PATH.search(text)
    if reason is None and (match is None or ";" not in text):
        return None
    path = match.group("path").rstrip(":") if match else ""
    reason = reason or text.rsplit(";", 1)[1].strip()
    if type(err).__name__ == "DataLossError":
        return f"cannot read {path or 'a file'}: damaged or truncated ({text})"
    if type(err).__name__ == "NotFoundError" and reason == "No such file or directory":
        return f"cannot read {path}: {reason} (or its directory does not exist)" if path else f"I/O error: {text}"
    return f"cannot write {path}: {reason}" if path else f"I/O error: {text}"


def _is_console_script():
    """True in a process started as a ``tfspk-*`` console script (not a tool run inside another program)."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    return _PROG.startswith("tfspk-") and os.path.basename(main_file) == _PROG


def _exit(status):
    """``sys.exit(status)``; a console script that loaded TensorFlow ends with ``os._exit`` instead.

    The interpreter's teardown of TensorFlow and Keras costs about a second of CPU per process after the
    work is done, and a recipe starts such a process per job and stage. Every tool closes what it writes
    before returning; as a safety net, any file object still open is flushed first. A tool with child
    processes still running (a forked data pool) exits normally, so that they are shut down.
    """
    processes = sys.modules.get("multiprocessing")
    if ("tensorflow" not in sys.modules or not _is_console_script()
            or (processes is not None and processes.active_children())):
        sys.exit(status)
    logging.shutdown()
    for obj in gc.get_objects():
        if isinstance(obj, io.IOBase):
            try:
                if not obj.closed and obj.writable():
                    obj.flush()
            except (OSError, ValueError):
                pass   # a broken pipe or a detached stream: nothing left to save
    os._exit(status)


# ---------------------------------------------------------------- start-up of the TensorFlow tools
# Keras 3 probes two optional integrations while it imports itself: its scikit-learn wrappers import sklearn
# (and with it most of scipy) and its image-gallery plots import matplotlib.pyplot. Where they are installed
# (matplotlib with the plot extra for DET plots, scikit-learn with the test extra), every tool that loads
# TensorFlow paid ~1.3 s of CPU (of ~6 s) for integrations no tool uses. The finder below makes those two probes fail as they do where
# the packages are absent (Keras catches the ImportError); any later import, tfspk's own included, works.
_KERAS_OPTIONAL = ("sklearn", "matplotlib")


class _HideOptionalPackagesFromKeras(importlib.abc.MetaPathFinder):
    """Refuses ``sklearn`` and ``matplotlib`` to modules of Keras while the ``keras`` package initialises."""

    def find_spec(self, name, path=None, target=None):
        if name in _KERAS_OPTIONAL and _initialising("keras") and _importer().partition(".")[0] == "keras":
            raise ModuleNotFoundError(f"{name} is not offered to Keras's optional integrations (tfspk.cli)",
                                      name=name)
        return None


def _initialising(package: str) -> bool:
    spec = getattr(sys.modules.get(package), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def _importer() -> str:
    """``__name__`` of the module whose code runs the current import (import machinery frames skipped)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen_importlib")):
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame is not None else ""


def hide_optional_packages_from_keras() -> None:
    """Install the finder (once) ahead of the standard ones; tfspk.bin does it for every console script."""
    if not any(isinstance(finder, _HideOptionalPackagesFromKeras) for finder in sys.meta_path):
        sys.meta_path.insert(0, _HideOptionalPackagesFromKeras())


# ---------------------------------------------------------------- progress of long jobs
def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (Kaldi logs and ``time`` print elapsed times this way)."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Overall progress of a job of ``total`` units (steps, utterances) as one line: done/total, percent,
    rate, elapsed time and ETA. ``total=None``: unknown (no percent, no ETA).

    The rate counts only the units done by this process (``start``: units already done before it, as
    after a resume), over the wall time since construction; ETA = units left / rate.
    ``due(done)`` says whether a line is wanted: every ``every`` units, or when ``interval`` seconds have
    passed since the last line, and always at the end.
    """

    def __init__(self, total, unit: str, start: int = 0, every: int = 0, interval: float = 60.0,
                 clock=None):
        import time
        self.total = None if total is None else int(total)
        self.unit = unit
        self.start = int(start)
        self.every = int(every)
        self.interval = float(interval)
        self.clock = clock or time.monotonic
        self.started = self.clock()
        self.last_line = self.started

    def due(self, done: int) -> bool:
        if (self.total is not None and done >= self.total) or (self.every and done % self.every == 0):
            return True
        return self.clock() - self.last_line >= self.interval

    def line(self, done: int) -> str:
        now = self.clock()
        self.last_line = now
        elapsed = now - self.started
        rate = (done - self.start) / elapsed if elapsed > 0 else 0.0
        if self.total is None:
            parts = [f"{done} {self.unit}"]
        else:
            percent = 100.0 * done / self.total if self.total else 100.0
            parts = [f"{done}/{self.total} {self.unit} ({percent:.0f}%)"]
        parts.append(f"{rate:.3g} {self.unit}/s")
        parts.append(f"elapsed {format_duration(elapsed)}")
        if self.total is not None:
            left = max(self.total - done, 0)
            parts.append("ETA " + (format_duration(left / rate) if rate > 0 else "unknown") if left else "ETA 0:00:00")
        return ", ".join(parts)


# ---------------------------------------------------------------- TensorFlow's CUDA probe on CPU-only machines
# A TensorFlow build with CUDA support probes the driver when it first lists its devices, and on a machine
# without an NVIDIA GPU logs "E ... failed call to cuInit: ..." at ERROR level (so TF_CPP_MIN_LOG_LEVEL=2 keeps
# it) into every job log. Only there, the tools list the devices once right after TensorFlow is imported with
# stderr captured, and write back what TensorFlow said without the lines of _CUDA_ABSENT; any other message
# passes, and on a machine with a GPU nothing is touched.
_CUDA_ABSENT = ("failed call to cuInit", "Could not find cuda drivers on your machine")


def gpu_device_present() -> bool:
    """True if the machine has an NVIDIA device node (Linux, WSL's /dev/dxg) or the user picked GPUs."""
    import glob
    return bool(glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/dxg")
                or os.environ.get("TFSPK_ASSUME_GPU") == "1")


def without_cuda_absent_lines(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not any(s in line for s in _CUDA_ABSENT))


def _list_devices_quietly(tensorflow_module) -> None:
    import tempfile
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            tensorflow_module.config.list_physical_devices()   # physical devices only: no runtime set-up yet
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        sys.stderr.write(without_cuda_absent_lines(capture.read().decode("utf-8", "replace")))
        sys.stderr.flush()


class _AfterImportLoader(importlib.abc.Loader):
    """Runs ``after(module)`` once the wrapped loader has executed the module."""

    def __init__(self, loader, after):
        self._loader, self._after = loader, after

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._after(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _QuietCudaProbe(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _AfterImportLoader(spec.loader, _list_devices_quietly)
                return spec
        return None


def quiet_cuda_probe_without_gpu() -> None:
    """Install the finder (once, before TensorFlow is imported) when no GPU is present; tfspk.bin does it."""
    if "tensorflow" in sys.modules or gpu_device_present():
        return
    if not any(isinstance(finder, _QuietCudaProbe) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietCudaProbe())


# ---------------------------------------------------------------- optional dependencies (setup.py extras)
def require_extra(module: str, extra: str, purpose: str):
    """Import ``module`` of the ``extra`` of setup.py; a ToolError naming the extra and how to install it if absent."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ToolError(f"{purpose} needs the Python package '{module}', which is not installed: it comes with "
                        f"tfspk's '{extra}' extra (pip install 'tfspk[{extra}]'; in a checkout: "
                        f"tools/setup_env.sh --extras {extra})") from None
