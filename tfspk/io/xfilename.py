"""Kaldi extended filenames: the one place where tfspk opens stdin/stdout, runs pipes and opens files.

Kaldi's ``util/kaldi-io.h`` classifies every input name (rxfilename) and output name (wxfilename)
before opening it; this module does the same and every reader and writer of tfspk goes through it:

==================  =====================================  ======================================
name                rxfilename (:class:`Input`)            wxfilename (:class:`Output`)
==================  =====================================  ======================================
``-`` or empty      standard input                         standard output
``cmd |``           output of ``cmd`` (bash)               error
``| cmd``           error                                  input of ``cmd`` (bash)
``file:123``        ``file`` from byte 123 (``offset``;    error (Kaldi ``kNoWxfilename``)
                    only where the caller allows it)
anything else       a file                                 a file, written atomically
==================  =====================================  ======================================

A pipe's exit status is checked in one place, :func:`check_exit_status`: a command that exits
non-zero is a :class:`~tfspk.errors.ToolError` naming the command, so a failing pipe never looks
like a short or empty input. Output files appear only when complete (:mod:`tfspk.io.atomic`);
existing non-regular files (``/dev/null``, FIFOs) are written in place.
"""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from typing import BinaryIO

from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_path

STANDARD, PIPE, OFFSET, FILE = "standard", "pipe", "offset", "file"
_OFFSET_RE = re.compile(r"^(.*):(\d+)$", re.S)
_SHELL = "/bin/bash"


def classify_rxfilename(name: str, allow_offset: bool = False) -> str:
    """Kaldi ``ClassifyRxfilename``: ``standard`` (``-``/empty), ``pipe`` (``cmd |``),
    ``offset`` (``file:123``, only if ``allow_offset``: elsewhere it is a plain file name) or ``file``."""
    if name in ("", "-"):
        return STANDARD
    if name.endswith("|"):
        return PIPE
    if allow_offset and _OFFSET_RE.match(name):
        return OFFSET
    return FILE


def classify_wxfilename(name: str) -> str:
    """Kaldi ``ClassifyWxfilename``: ``standard`` (``-``/empty), ``pipe`` (``| cmd``) or ``file``;
    ToolError for ``cmd |`` (an input pipe) given as an output."""
    if name in ("", "-"):
        return STANDARD
    if name.startswith("|"):
        return PIPE
    if name.rstrip().endswith("|"):
        raise ToolError(f"'{name}' is an input pipe ('command |'); an output pipe is written '| command'")
    return FILE


def split_offset(name: str) -> tuple[str, int]:
    """``file:123`` -> ``("file", 123)``."""
    match = _OFFSET_RE.match(name)
    if not match:
        raise ToolError(f"'{name}': expected 'file:byte-offset'")
    return match.group(1), int(match.group(2))


def pipe_command(name: str) -> str:
    """The command of ``cmd |`` or ``| cmd`` (ToolError if it is empty)."""
    command = name.strip()
    command = command[:-1] if command.endswith("|") else command[1:]
    command = command.strip()
    if not command:
        raise ToolError(f"empty command in '{name}'")
    return command


def check_exit_status(command: str, status: int, stderr: bytes | None = None, context: str = "") -> None:
    """THE check of a pipe's exit status: non-zero -> ToolError naming the command.

    ``stderr`` (if captured) adds the command's last message line; ``context`` adds what the
    reader was doing when the pipe failed."""
    if status == 0:
        return
    detail = (stderr or b"").decode("utf-8", "replace").strip().splitlines()
    message = f"command '{command}' failed with exit status {status}"
    if detail:
        message += f": {detail[-1]}"
    if context:
        message += f" ({context})"
    raise ToolError(message)


def open_file(path: str, mode: str = "rb", **kwargs):
    """Open a plain file (``kwargs`` as for :func:`open`); ToolError naming it if that fails."""
    try:
        return open(path, mode, **kwargs)
    except FileNotFoundError:
        raise ToolError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise ToolError(f"expected a file, found a directory: {path}") from None
    except OSError as err:
        raise ToolError(f"cannot open {path}: {err.strerror}") from None


# ----------------------------------------------------------------------------------------------
# input
class Input:
    """A readable binary stream for an rxfilename (Kaldi ``Input``), with ``name`` for messages.

    ``close()`` waits for a pipe's command and raises ToolError if it failed; standard input is
    never closed. With ``allow_offset``, ``file:123`` is opened and positioned at byte 123.
    Use as a context manager: on an exception the pipe is killed and its status is not checked,
    except that :meth:`close_after_error` lets a pipe's own failure explain a read error.
    """

    def __init__(self, rxfilename: str, allow_offset: bool = False, capture_stderr: bool = False):
        # capture_stderr is for read() (communicate): a streamed pipe with a full stderr pipe would block
        self.rxfilename = rxfilename
        self.kind = classify_rxfilename(rxfilename, allow_offset)
        self.proc = None
        self.command = None
        if self.kind == STANDARD:
            self.stream: BinaryIO = sys.stdin.buffer
            self.name = "standard input"
        elif self.kind == PIPE:
            self.command = pipe_command(rxfilename)
            self.name = f"command '{self.command}'"
            self.proc = subprocess.Popen(self.command, shell=True, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE if capture_stderr else None,
                                         executable=_SHELL)
            self.stream = self.proc.stdout
        elif self.kind == OFFSET:
            path, offset = split_offset(rxfilename)
            self.name = rxfilename
            self.stream = open_file(path, "rb")
            self.stream.seek(offset)
        else:
            self.name = rxfilename
            self.stream = open_file(rxfilename, "rb")

    def read(self) -> bytes:
        """Everything that is left (then :meth:`close`, which checks a pipe's exit status)."""
        if self.proc is not None:
            try:
                data, err = self.proc.communicate()
            except BaseException:
                self.close(check=False)
                raise
            proc, self.proc = self.proc, None
            check_exit_status(self.command, proc.returncode, err)
            return data
        try:
            return self.stream.read()
        finally:
            self.close()

    def close_after_error(self, error: ToolError):
        """Raise ``error``, or the command's own failure if the pipe's command exited non-zero."""
        if self.proc is None:
            self.close(check=False)
            raise error
        self.stream.close()
        try:
            status = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            status = self.proc.wait()
        self.proc = None
        check_exit_status(self.command, status, context=str(error))
        raise error

    def close(self, check: bool = True):
        if self.proc is not None:
            if not check:
                self.proc.kill()
            self.stream.close()
            err = self.proc.stderr.read() if self.proc.stderr is not None else None
            status = self.proc.wait()
            self.proc = None
            if check:
                check_exit_status(self.command, status, err)
        elif self.stream is not sys.stdin.buffer and not self.stream.closed:
            self.stream.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(check=exc_type is None)
        return False


def read_bytes(rxfilename: str, capture_stderr: bool = False) -> bytes:
    """All bytes of an rxfilename (Kaldi ``Input`` read to the end); a failing pipe is a ToolError."""
    return Input(rxfilename, capture_stderr=capture_stderr).read()


def read_text_lines(rxfilename: str) -> tuple[str, list[str]]:
    """``(name for messages, lines)`` of a text rxfilename, read as UTF-8 (``surrogateescape``)."""
    source = Input(rxfilename)
    name = source.name if source.kind != FILE else rxfilename
    return name, source.read().decode("utf-8", "surrogateescape").splitlines()


# ----------------------------------------------------------------------------------------------
# output
class Output:
    """A writable binary stream for a wxfilename (Kaldi ``Output``); ``name`` for messages.

    A file is written to a temporary name and appears only when :meth:`close` succeeds
    (``close(failed=True)`` or leaving the ``with`` block by an exception discards it);
    standard output is flushed, never closed; a ``| cmd`` pipe's exit status is checked.
    """

    def __init__(self, wxfilename: str):
        self.wxfilename = wxfilename
        self.kind = classify_wxfilename(wxfilename)
        self.proc = None
        self.command = None
        self._atomic = None
        self.path = None
        if self.kind == STANDARD:
            self.name = "standard output"
            sys.stdout.flush()          # text printed before must come first
            self.stream: BinaryIO = sys.stdout.buffer
        elif self.kind == PIPE:
            self.command = pipe_command(wxfilename)
            self.name = f"output pipe '{wxfilename}'"
            self.proc = subprocess.Popen(self.command, shell=True, stdin=subprocess.PIPE, executable=_SHELL)
            self.stream = self.proc.stdin
        else:
            self.name = self.path = wxfilename
            context = atomic_path(wxfilename)
            try:
                if os.path.isdir(wxfilename):
                    raise IsADirectoryError(21, "it is a directory", wxfilename)
                tmp = context.__enter__()
            except OSError as err:
                raise ToolError(f"cannot write {wxfilename}: {err.strerror}") from None
            try:
                self.stream = open(tmp, "wb")
            except OSError as err:
                _abandon(context)
                raise ToolError(f"cannot write {wxfilename}: {err.strerror}") from None
            self._atomic = context

    def write(self, data: bytes) -> None:
        try:
            self.stream.write(data)
        except BrokenPipeError:
            raise ToolError(f"{self.name} closed early") from None
        except OSError as err:
            raise ToolError(f"cannot write {self.name}: {err.strerror}") from None

    def close(self, failed: bool = False) -> None:
        """Finish the output: rename a file into place, wait for and check a pipe.

        With several outputs, call :meth:`finish` on each first and :meth:`commit` in the
        order they should appear (an archive before the scp that points into it)."""
        self.finish(failed)
        self.commit(failed)

    def finish(self, failed: bool = False) -> None:
        """Flush/close the stream and check a pipe (the file is not yet in place)."""
        stream, self.stream = getattr(self, "stream", None), None
        if stream is None:
            return
        error = None
        if stream is sys.stdout.buffer:
            try:
                stream.flush()
            except BrokenPipeError:
                error = ToolError(f"{self.name} closed early")
        else:
            try:
                stream.close()
            except BrokenPipeError:
                error = ToolError(f"{self.name} closed early")
            except OSError as err:
                error = ToolError(f"cannot write {self.name}: {err.strerror}")
        if self.proc is not None:
            status = self.proc.wait()
            self.proc = None
            if not failed and error is None:
                try:
                    check_exit_status(self.command, status, context="output pipe")
                except ToolError as err:
                    error = err
        if error is not None and not failed:
            self.commit(failed=True)
            raise error

    def commit(self, failed: bool = False) -> None:
        """Rename a finished file into place (or, if ``failed``, remove the temporary file)."""
        context, self._atomic = self._atomic, None
        if context is None:
            return
        if failed:
            _abandon(context)
            return
        try:
            context.__exit__(None, None, None)
        except OSError as err:
            raise ToolError(f"cannot write {err.filename or self.name}: {err.strerror}") from None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(failed=exc_type is not None)
        return False


def _abandon(context) -> None:
    """Leave an atomic_path context as failed: its temporary file is removed, nothing appears."""
    failure = RuntimeError("writer failed")
    with contextlib.suppress(RuntimeError):    # the context re-raises the failure it was given
        context.__exit__(RuntimeError, failure, None)


def write_bytes(wxfilename: str, data: bytes) -> None:
    """Write ``data`` to a wxfilename (a file appears atomically); a failing pipe is a ToolError."""
    with Output(wxfilename) as out:
        out.write(data)


def standard_input_text():
    """Standard input as a UTF-8 text stream (``surrogateescape``) that does not close the
    descriptor, for line filters that stream their input (utils/*.pl)."""
    return open(sys.stdin.fileno(), encoding="utf-8", errors="surrogateescape", closefd=False)


def standard_output_text():
    """Standard output as a UTF-8 text stream (``surrogateescape``) that does not close the descriptor."""
    return open(sys.stdout.fileno(), "w", encoding="utf-8", errors="surrogateescape", closefd=False)
