"""tfspk-lock-dir: take (or release) the lock of an output dir for a script (tfspk.io.dirlock)."""
import os

from tfspk import cli
from tfspk.errors import ToolError

USAGE = """tfspk-lock-dir [options] <dir>
 e.g.: tfspk-lock-dir --owner-pid=$$ --what=$0 exp/xvectors_train            # in a step script
       tfspk-lock-dir --release --owner-pid=$$ exp/xvectors_train"""

DESCRIPTION = """Creates <dir>/.lock for the process --owner-pid (default: the calling shell), the lock tfspk-train
takes on its experiment dir: exit 1 naming the owner if a live process holds it; a lock whose owner is gone
(killed) is taken over with a message. With --release, removes the lock if --owner-pid holds it. A step
script locks its output dir for as long as it runs, so two runs into one dir cannot overwrite each other's
outputs and logs (steps/internal/checks.sh: lock_output_dir)."""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    parser.add_argument("--owner-pid", type=int, default=0, help="pid of the lock's owner (default: the parent process)")
    parser.add_argument("--what", default="", help="the owner's name in messages (default: its command name)")
    parser.add_argument("--command", default="", help="the owner's command line, recorded in the lock")
    cli.add_bool(parser, "--release", False, "remove the lock held by --owner-pid instead of taking it")
    args = parser.parse(argv, "dir")
    from tfspk.io import dirlock
    owner = args.owner_pid or os.getppid()
    if owner < 1:
        raise ToolError(f"--owner-pid must be a process id, got {args.owner_pid}")
    if args.release:
        dirlock.release_for(args.dir, owner)
        return 0
    if dirlock.process_start_time(owner) is None and os.path.isdir("/proc/self"):
        raise ToolError(f"--owner-pid {owner}: no such process")
    what = args.what or os.path.basename(_command_name(owner)) or "process"
    dirlock.DirLock(args.dir, command=args.command, log=cli.log, what=what, activity="written",
                    kind="output dir", owner_pid=owner).acquire()
    return 0


def _command_name(pid):
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def main():
    cli.run_tool(_main)
