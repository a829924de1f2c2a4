"""Outputs that never look complete unless they are: write to a temporary name, rename on success."""
import contextlib
import os
import tempfile


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds.

    An existing path that is not a regular file (``/dev/null``, a FIFO, ``/dev/stdout``) is
    yielded as is: renaming over it would replace the device itself (we may run as root).
    """
    if os.path.exists(path) and not os.path.isfile(path):
        yield path
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp.", suffix="." + os.path.basename(path), dir=directory)
    os.close(handle)
    # mkstemp creates 0600; outputs should get the permissions a plain open() would give.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """Open a temporary file for writing; it replaces ``path`` only when the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
