"""The small line filters behind utils/*.pl (filter_scp.pl, utt2spk_to_spk2utt.pl, spk2utt_to_utt2spk.pl)."""
from __future__ import annotations

from tfspk.errors import ToolError
from tfspk.io import xfilename

def filter_scp(id_lines, scp_lines, exclude=False, field_index=1):
    """Kaldi filter_scp.pl: lines of ``scp_lines`` whose field ``field_index`` (1-based; negative
    counts from the end) is (``exclude``: is not) the first field of a line of ``id_lines``.
    Input order is kept."""
    ids = set()
    for line in id_lines:
        fields = line.split()
        if fields:
            ids.add(fields[0])
    for line in scp_lines:
        fields = line.split()
        if not fields:
            continue
        try:
            value = fields[field_index - 1 if field_index > 0 else field_index]
        except IndexError:
            raise ToolError(f"line has fewer than {abs(field_index)} fields: '{line.rstrip()}'") from None
        if (value in ids) != exclude:
            yield line.rstrip("\r\n").rstrip() + "\n"


def utt2spk_lines_to_spk2utt(lines):
    """Kaldi utt2spk_to_spk2utt.pl: speakers in order of first appearance, utterances in input order."""
    order, members = [], {}
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ToolError(f"line {number}: expected 'utt spk', got '{line.rstrip()}'")
        utt, spk = fields
        if spk not in members:
            order.append(spk)
            members[spk] = []
        members[spk].append(utt)
    for spk in order:
        yield f"{spk} {' '.join(members[spk])}\n"


def spk2utt_lines_to_utt2spk(lines):
    """Kaldi spk2utt_to_utt2spk.pl: one ``utt spk`` line per utterance, in input order."""
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise ToolError(f"line {number}: speaker '{fields[0]}' has no utterances")
        for utt in fields[1:]:
            yield f"{utt} {fields[0]}\n"


def run_line_converter(convert, prog, paths):
    """Main of the .pl line converters: ``convert`` the lines of ``paths`` (or stdin) to stdout.

    Exits with ``prog: message`` on unreadable input or a ToolError, as Kaldi's scripts die.
    """
    import sys

    def lines():
        if not paths:
            yield from xfilename.standard_input_text()
        for path in paths:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                yield from handle
    try:
        with xfilename.standard_output_text() as out:
            out.writelines(convert(lines()))
    except BrokenPipeError:
        sys.exit(0)
    except OSError as err:
        sys.exit(f"{prog}: cannot read {err.filename}: {err.strerror}")
    except ToolError as err:
        sys.exit(f"{prog}: {err}")
