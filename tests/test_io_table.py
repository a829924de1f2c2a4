"""tfspk.io.table: Kaldi text tables, C-locale order, errors naming file:line."""
import subprocess

import pytest

from tfspk.errors import ToolError
from tfspk.io import table


def write(path, text):
    path.write_bytes(text.encode("utf-8"))
    return path


def test_read_table_splits_at_first_whitespace(tmp_path):
    path = write(tmp_path / "wav.scp", "a\tsox x.wav -t wav - |\nb  b.wav \n")
    assert table.read_table(path) == [("a", "sox x.wav -t wav - |"), ("b", "b.wav")]


def test_crlf_and_trailing_whitespace_are_stripped(tmp_path):
    path = write(tmp_path / "utt2spk", "u1 s1\r\nu2 s2 \t\r\n")
    assert table.read_utt2spk(path) == {"u1": "s1", "u2": "s2"}


@pytest.mark.parametrize("text,line,words", [
    ("b x\na y\n", 2, "not sorted"),
    ("a x\na y\n", 2, "duplicate key 'a'"),
    ("a x\n\nb y\n", 2, "empty line"),
    ("a x\nb\n", 2, "has no value"),
])
def test_bad_tables_name_file_and_line(tmp_path, text, line, words):
    path = write(tmp_path / "t", text)
    with pytest.raises(ToolError, match=f"{path}:{line}: .*{words}"):
        table.read_table(path)


def test_missing_file(tmp_path):
    with pytest.raises(ToolError, match="no such file: .*nothere"):
        table.read_table(tmp_path / "nothere")


def test_sort_order_is_c_locale(tmp_path):
    keys = ["b", "B", "a-1", "a_1", "a1", "A", "é", "z", "aa", "a"]
    path = tmp_path / "t"
    table.write_table(path, [(k, "v") for k in keys])
    written = [line.split()[0] for line in path.read_text().splitlines()]
    expected = subprocess.run(["sort"], input="\n".join(keys) + "\n", capture_output=True, text=True,
                              env={"LC_ALL": "C"}).stdout.split()
    assert written == expected
    table.read_table(path)  # and it reads back as sorted


def test_write_table_unwritable(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(ToolError, match="cannot write .*d: it is a directory"):
        table.write_table(tmp_path / "d", [("a", "1")])
    (tmp_path / "f").write_text("x")
    with pytest.raises(ToolError, match="cannot write .*f/t"):
        table.write_table(tmp_path / "f" / "t", [("a", "1")])


def test_write_table_refuses_duplicates(tmp_path):
    with pytest.raises(ToolError, match="duplicate key 'a'"):
        table.write_table(tmp_path / "t", [("a", "1"), ("a", "2")])
    assert not (tmp_path / "t").exists()


def test_spk2utt_round_trip_and_disagreement(tmp_path):
    utt2spk = {"s2-u1": "s2", "s1-u2": "s1", "s1-u1": "s1"}
    spk2utt = table.utt2spk_to_spk2utt(utt2spk)
    assert spk2utt == {"s1": ["s1-u1", "s1-u2"], "s2": ["s2-u1"]}
    assert list(spk2utt) == ["s1", "s2"]
    assert table.spk2utt_to_utt2spk(spk2utt) == dict(sorted(utt2spk.items()))
    path = write(tmp_path / "spk2utt", "s1 u1 u2\ns2 u2\n")
    with pytest.raises(ToolError, match="spk2utt:2: utterance 'u2'.*'s1'"):
        table.read_spk2utt(path)


def test_typed_readers(tmp_path):
    assert table.read_utt2num_frames(write(tmp_path / "n", "a 10\nb 0\n")) == {"a": 10, "b": 0}
    with pytest.raises(ToolError, match="n2:1: .*non-negative integer"):
        table.read_utt2num_frames(write(tmp_path / "n2", "a 1.5\n"))
    assert table.read_utt2dur(write(tmp_path / "d", "a 1.25\n")) == {"a": 1.25}
    with pytest.raises(ToolError, match="more than one speaker"):
        table.read_utt2spk(write(tmp_path / "u", "a s1 s2\n"))
    assert table.read_utt2word(write(tmp_path / "l", "a en\nb fr\n"), "lang", "language") == {"a": "en", "b": "fr"}
    with pytest.raises(ToolError, match=r"l2:2: expected 'utt lang', got 'b fr de' \(more than one language\)"):
        table.read_utt2word(write(tmp_path / "l2", "a en\nb fr de\n"), "lang", "language")


def test_trials(tmp_path):
    path = write(tmp_path / "trials", "e1 t2 target\ne1 t1 nontarget\n")
    assert table.read_trials(path) == [("e1", "t2", "target"), ("e1", "t1", "nontarget")]
    assert table.read_trials(write(tmp_path / "t2", "e t\n")) == [("e", "t", None)]
    with pytest.raises(ToolError, match="t3:1: label must be"):
        table.read_trials(write(tmp_path / "t3", "e t maybe\n"))
    with pytest.raises(ToolError, match="t4:2: some trials"):
        table.read_trials(write(tmp_path / "t4", "e t target\ne u\n"))
