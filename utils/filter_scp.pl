#!/usr/bin/env python3
# Kaldi's utils/filter_scp.pl in Python (same name, arguments and output, so recipes work):
#   filter_scp.pl [--exclude] [-f <field>] <id-list> [<in.scp>] > <out.scp>
# Prints the lines of in.scp (or standard input) whose first field (or field <field>; a
# negative field counts from the end) is (with --exclude: is not) the first field of a line
# of id-list. Input order is kept.
# Why Python under a .pl name: recipes call utils/filter_scp.pl by name; Python keeps the
# logic in tfspk.io.datadir (tested once), needs no perl and starts fast (no numpy import).
# It imports tfspk from this checkout, so any python3 >= 3.9 works.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
from tfspk.errors import ToolError  # noqa: E402
from tfspk.io.datadir import filter_scp  # noqa: E402

USAGE = "Usage: filter_scp.pl [--exclude] [-f <field-to-filter-on>] id_list [in.scp] > out.scp\n"


def main(argv):
    exclude, field = False, 1
    while argv and argv[0] in ("--exclude", "-f"):
        if argv[0] == "--exclude":
            exclude, argv = True, argv[1:]
        else:
            if len(argv) < 2:
                sys.exit(USAGE)
            try:
                field = int(argv[1])
            except ValueError:
                sys.exit(f"filter_scp.pl: bad argument to -f option: {argv[1]}")
            if field == 0:
                sys.exit("filter_scp.pl: -f 0 is invalid (fields are 1-based)")
            argv = argv[2:]
    if len(argv) not in (1, 2):
        sys.stderr.write(USAGE)
        sys.exit(1)
    try:
        with open(argv[0], encoding="utf-8", errors="surrogateescape") as ids:
            id_lines = ids.readlines()
        scp = (open(argv[1], encoding="utf-8", errors="surrogateescape") if len(argv) == 2
               else open(sys.stdin.fileno(), encoding="utf-8", errors="surrogateescape", closefd=False))
        out = open(sys.stdout.fileno(), "w", encoding="utf-8", errors="surrogateescape", closefd=False)
        with scp, out:
            out.writelines(filter_scp(id_lines, scp, exclude=exclude, field_index=field))
    except OSError as err:
        sys.exit(f"filter_scp.pl: cannot open {err.filename}: {err.strerror}")
    except ToolError as err:
        sys.exit(f"filter_scp.pl: {err}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except BrokenPipeError:
        sys.exit(0)
