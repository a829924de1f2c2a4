"""Data-dir tools (tfspk.io.datadir and utils/*.sh, utils/*.pl) on clean and messy inputs.

Expected outputs are stated independently in each test: by set algebra on the inputs or by
hand-worked examples of Kaldi's algorithms (split_scp.pl, subset_scp.pl).
"""
import os
import time

import numpy as np
import pytest

from conftest import run
from tfspk.errors import ToolError
from tfspk.io import ark, datadir, table


def make_dir(path, files):
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_bytes(text.encode())
    return path


def read(path):
    return path.read_bytes().decode()


def clean_dir(tmp_path, name="data", speakers=("spkA", "spkB", "spkC"), per_spk=2, feats=True):
    utts = [(f"{s}-u{i}", s) for s in speakers for i in range(per_spk)]
    files = {"utt2spk": "".join(f"{u} {s}\n" for u, s in utts),
             "spk2utt": "".join(f"{s} {' '.join(u for u, t in utts if t == s)}\n" for s in speakers),
             "wav.scp": "".join(f"{u} /corpus/{u}.wav\n" for u, _ in utts),
             "utt2num_frames": "".join(f"{u} {100 + i}\n" for i, (u, _) in enumerate(utts))}
    data = make_dir(tmp_path / name, files)
    if feats:
        ark.write_archive(f"ark,scp:{data}/feats.ark,{data}/feats.scp",
                          [(u, np.full((3, 2), i, np.float32)) for i, (u, _) in enumerate(utts)])
    return data


# ------------------------------------------------------------------------------------- validate
def test_validate_accepts_a_clean_dir_without_text(tmp_path):
    data = clean_dir(tmp_path)
    assert datadir.validate_data_dir(data) == []


@pytest.mark.parametrize("name,text,message", [
    ("utt2spk", "spkA-u1 spkA\nspkA-u0 spkA\n", r"utt2spk:2: key 'spkA-u0' is not sorted"),
    ("utt2spk", "spkA-u0 spkA\nspkA-u0 spkA\n", r"utt2spk:2: duplicate key 'spkA-u0'"),
    ("wav.scp", "spkA-u0 a.wav\r\n", r"wav.scp:1: Windows line ending"),
    ("wav.scp", "spkA-u0 a.wav", r"wav.scp:1: last line has no newline"),
    ("spk2utt", "spkA spkA-u0\n", r"spk2utt and utt2spk do not match .*speaker 'spkA'"),
    ("spk2utt", "spkA spkA-u0 spkA-u1\nspkB spkB-u0 spkB-u1\nspkBB\n", r"spk2utt:3: key 'spkBB' has no value"),
    ("feats.scp", "spkA-u0 x.ark:0\nspkZ-u9 x.ark:5\n", r"utterance lists of utt2spk and feats.scp differ"),
    ("utt2num_frames", "spkA-u0 0\nspkA-u1 1\nspkB-u0 1\nspkB-u1 1\nspkC-u0 1\nspkC-u1 1\n", "has a number of frames of 0"),
    ("cmvn.scp", "spkA x\n", r"speaker lists of spk2utt and cmvn.scp differ: 2 only in spk2utt \(first: 'spkB'\)"),
])
def test_validate_names_the_problem(tmp_path, name, text, message):
    data = clean_dir(tmp_path)
    (data / name).write_bytes(text.encode())
    with pytest.raises(ToolError, match=message):
        datadir.validate_data_dir(data)


def test_validate_checks_trials(tmp_path):
    data = clean_dir(tmp_path)
    (data / "trials").write_text("spkA-u0 spkB-u1 nontarget\nspkA spkA-u1 target\n")
    assert datadir.validate_data_dir(data) == []
    (data / "trials").write_text("spkA-u0 spkB-u1 nontarget\nspkA-u0 nobody target\n")
    warnings = datadir.validate_data_dir(data)
    assert len(warnings) == 1 and "first: 'nobody' on line 2" in warnings[0]
    (data / "trials").write_text("spkA-u0 spkB-u1 maybe\n")
    with pytest.raises(ToolError, match="trials:1: label must be"):
        datadir.validate_data_dir(data)


def test_validate_missing_files_and_options(tmp_path):
    data = clean_dir(tmp_path, feats=False)
    with pytest.raises(ToolError, match="no such file .*feats.scp .*--no-feats"):
        datadir.validate_data_dir(data)
    datadir.validate_data_dir(data, no_feats=True)
    os.remove(data / "wav.scp")
    with pytest.raises(ToolError, match="no such file .*wav.scp .*--no-wav"):
        datadir.validate_data_dir(data, no_feats=True)
    datadir.validate_data_dir(data, no_feats=True, no_wav=True)
    os.remove(data / "spk2utt")
    with pytest.raises(ToolError, match="no such file .*spk2utt"):
        datadir.validate_data_dir(data, no_feats=True, no_wav=True)


def test_validate_speaker_sort_and_unreadable_features(tmp_path):
    data = make_dir(tmp_path / "d1", {"utt2spk": "a spk2\nb spk1\n", "spk2utt": "spk1 b\nspk2 a\n"})
    with pytest.raises(ToolError, match="utt2spk:1: utt2spk is not in sorted order when sorted first on speaker-id"):
        datadir.validate_data_dir(data, no_feats=True, no_wav=True)
    datadir.validate_data_dir(data, no_feats=True, no_wav=True, no_spk_sort=True)
    data = clean_dir(tmp_path, name="d2")
    os.remove(data / "feats.ark")
    with pytest.raises(ToolError, match=r"feats.scp:1 \('spkA-u0'\): cannot read .*no such file"):
        datadir.validate_data_dir(data)


# ------------------------------------------------------------------------------------------ fix
def test_fix_data_dir_on_a_messy_dir(tmp_path):
    original = {
        # unsorted, CRLF, trailing blanks, a duplicate; u5 has no features; u6 only here
        "utt2spk": "s2-u3 s2\r\ns1-u1 s1  \ns1-u2 s1\ns1-u1 s1\ns3-u5 s3\ns4-u6 s4\n",
        "spk2utt": "s1 s1-u1\nghost\n",                      # stale, with a speaker without utterances
        "feats.scp": "s1-u2 f.ark:20\ns1-u1 f.ark:10\ns2-u3 f.ark:30\ns4-u6 f.ark:60\nzz-u9 f.ark:90\n",
        "wav.scp": "s1-u1 cat a.wav |\ns1-u2 b.wav\ns2-u3 c.wav\ns3-u5 e.wav\ns4-u6 f.wav\n",
        "vad.scp": "s1-u1 v.ark:1\ns1-u2 v.ark:2\ns2-u3 v.ark:3\ns3-u5 v.ark:5\n",  # no s4-u6
        "cmvn.scp": "s1 c.ark:1\ns2 c.ark:2\ns3 c.ark:3\ns4 c.ark:4\ns9 c.ark:9\n",
    }
    data = make_dir(tmp_path / "data", original)
    report = datadir.fix_data_dir(data)
    # independent expectation: keys in all of utt2spk, feats.scp, wav.scp, vad.scp
    keep = sorted({"s2-u3", "s1-u1", "s1-u2", "s3-u5", "s4-u6"} & {"s1-u2", "s1-u1", "s2-u3", "s4-u6", "zz-u9"}
                  & {"s1-u1", "s1-u2", "s2-u3", "s3-u5", "s4-u6"} & {"s1-u1", "s1-u2", "s2-u3", "s3-u5"})
    assert keep == ["s1-u1", "s1-u2", "s2-u3"]
    assert read(data / "utt2spk") == "s1-u1 s1\ns1-u2 s1\ns2-u3 s2\n"
    assert read(data / "spk2utt") == "s1 s1-u1 s1-u2\ns2 s2-u3\n"
    assert read(data / "feats.scp") == "s1-u1 f.ark:10\ns1-u2 f.ark:20\ns2-u3 f.ark:30\n"
    assert read(data / "wav.scp") == "s1-u1 cat a.wav |\ns1-u2 b.wav\ns2-u3 c.wav\n"
    assert read(data / "cmvn.scp") == "s1 c.ark:1\ns2 c.ark:2\n"
    assert (report.kept, report.total) == (3, 5)
    assert any("utt2spk:4: dropped duplicate key 's1-u1'" in m for m in report.messages)
    assert "fix_data_dir.sh: kept 3 utterances out of 5" in report.messages
    for name, text in original.items():
        assert read(data / ".backup" / name) == text
    datadir.validate_data_dir(data, no_feats=True, check_feats_readable=False)


def test_fix_with_segments_filters_recordings(tmp_path):
    data = make_dir(tmp_path / "data", {
        "utt2spk": "r1-a spk\nr1-b spk\nr2-a spk\nr3-a spk\n",
        "segments": "r1-a r1 0 1.5\nr1-b r1 1.5 3\nr2-a r2 0 -1\nr3-a r3 2 1\n",   # r3-a is invalid
        "wav.scp": "r1 r1.wav\nr2 r2.wav\nr4 r4.wav\n",
        "reco2dur": "r1 3\nr2 4\nr4 5\n",
    })
    datadir.fix_data_dir(data, backup=False)
    assert read(data / "segments") == "r1-a r1 0 1.5\nr1-b r1 1.5 3\nr2-a r2 0 -1\n"
    assert read(data / "wav.scp") == "r1 r1.wav\nr2 r2.wav\n"
    assert read(data / "reco2dur") == "r1 3\nr2 4\n"
    assert not (data / ".backup").exists()


def test_fix_leaves_a_clean_dir_untouched(tmp_path):
    data = clean_dir(tmp_path)
    stamps = {name: os.stat(data / name).st_mtime_ns for name in os.listdir(data)}
    time.sleep(0.02)
    report = datadir.fix_data_dir(data)
    assert "fix_data_dir.sh: kept all 6 utterances." in report.messages
    assert {name: os.stat(data / name).st_mtime_ns for name in stamps} == stamps


def test_copy_script_does_not_require_what_the_source_lacks(tmp_path):
    clean_dir(tmp_path, feats=False)
    run("copy_data_dir.sh --utt-suffix -c data copy", cwd=tmp_path)
    assert read(tmp_path / "copy" / "utt2spk").startswith("spkA-u0-c spkA\n")
    proc = run("copy_data_dir.sh --validate-opts --bogus data copy2", check=False, cwd=tmp_path)
    assert proc.returncode == 1 and "unknown --validate-opts" in proc.stderr


def test_fix_refuses_when_nothing_remains_and_writes_nothing(tmp_path):
    data = make_dir(tmp_path / "data", {"utt2spk": "a s\n", "feats.scp": "b x:1\n"})
    with pytest.raises(ToolError, match="no utterances remained"):
        datadir.fix_data_dir(data)
    assert read(data / "utt2spk") == "a s\n" and not (data / "spk2utt").exists()


# ---------------------------------------------------------------------------------------- split
def test_split_per_speaker_follows_kaldi_balancing(tmp_path):
    counts = {"A": 5, "B": 1, "C": 1, "D": 1, "E": 4, "F": 4}
    utts = [(f"{s}-{i}", s) for s in counts for i in range(counts[s])]
    data = make_dir(tmp_path / "data", {
        "utt2spk": "".join(f"{u} {s}\n" for u, s in utts),
        "spk2utt": "".join(f"{s} {' '.join(u for u, t in utts if t == s)}\n" for s in counts),
        "vad.scp": "".join(f"{u} v.ark:{i}\n" for i, (u, _) in enumerate(utts)),
        "cmvn.scp": "".join(f"{s} c.ark:{i}\n" for i, s in enumerate(counts)),
    })
    target, _ = datadir.split_data(data, 3)
    assert target == str(data / "split3")
    # worked by hand from split_scp.pl: start [A B][C D][E F] = 6,2,8, then boundary moves
    # give [A][B C D][E F] -> [A][B C D E][F] -> [A B][C D E][F]
    expected = [["A", "B"], ["C", "D", "E"], ["F"]]
    for job, speakers in enumerate(expected, 1):
        split = data / "split3" / str(job)
        assert [line.split()[1] for line in read(split / "utt2spk").splitlines()] == \
            [s for s in speakers for _ in range(counts[s])]
        assert [line.split()[0] for line in read(split / "spk2utt").splitlines()] == speakers
        assert [line.split()[0] for line in read(split / "cmvn.scp").splitlines()] == speakers
        assert len(read(split / "vad.scp").splitlines()) == sum(counts[s] for s in speakers)
    with pytest.raises(ToolError, match="number of speakers 6 is less than 7"):
        datadir.split_data(data, 7)


def test_split_per_utt_and_up_to_date_check(tmp_path):
    data = clean_dir(tmp_path, speakers=("a", "b"), per_spk=5, feats=False)
    target, _ = datadir.split_data(data, 3, per_utt=True)
    assert target.endswith("split3utt")
    sizes = [len(read(data / "split3utt" / str(j) / "utt2spk").splitlines()) for j in (1, 2, 3)]
    assert sizes == [4, 3, 3]
    assert read(data / "split3utt" / "2" / "wav.scp").split()[0] == "a-u4"
    stamp = os.path.getmtime(data / "split3utt" / "1" / "utt2spk")
    time.sleep(0.02)
    datadir.split_data(data, 3, per_utt=True)
    assert os.path.getmtime(data / "split3utt" / "1" / "utt2spk") == stamp     # up to date: untouched
    new_time = stamp + 10
    os.utime(data / "utt2spk", (new_time, new_time))
    datadir.split_data(data, 3, per_utt=True)
    assert os.path.getmtime(data / "split3utt" / "1" / "utt2spk") > stamp
    assert not [p for p in os.listdir(data) if p.startswith(".split")]


def test_split_with_segments(tmp_path):
    data = make_dir(tmp_path / "data", {
        "utt2spk": "a-1 a\na-2 a\nb-1 b\n", "spk2utt": "a a-1 a-2\nb b-1\n",
        "segments": "a-1 rec1 0 1\na-2 rec2 0 1\nb-1 rec2 1 2\n",
        "wav.scp": "rec1 1.wav\nrec2 2.wav\n"})
    datadir.split_data(data, 2)
    assert read(data / "split2" / "1" / "wav.scp") == "rec1 1.wav\nrec2 2.wav\n"
    assert read(data / "split2" / "2" / "wav.scp") == "rec2 2.wav\n"
    assert read(data / "split2" / "2" / "segments") == "b-1 rec2 1 2\n"


# --------------------------------------------------------------------------- subset, copy, combine
def test_subset_modes(tmp_path):
    data = clean_dir(tmp_path, speakers=("a",), per_spk=10, feats=False)
    datadir.subset_data_dir(data, tmp_path / "even", num_utt=3)
    # subset_scp.pl's recursive halving of 10 lines for 3 picks lines 4, 6, 9 (0-based), by hand
    assert [l.split()[0] for l in read(tmp_path / "even" / "utt2spk").splitlines()] == ["a-u4", "a-u6", "a-u9"]
    datadir.subset_data_dir(data, tmp_path / "first", num_utt=2, mode="first")
    assert read(tmp_path / "first" / "utt2spk") == "a-u0 a\na-u1 a\n"
    datadir.subset_data_dir(data, tmp_path / "short", num_utt=2, mode="shortest")
    assert read(tmp_path / "short" / "utt2num_frames") == "a-u0 100\na-u1 101\n"
    feats = clean_dir(tmp_path, name="feats", speakers=("a",), per_spk=3)
    os.remove(feats / "utt2num_frames")
    ark.write_archive(f"ark,scp:{feats}/f.ark,{feats}/feats.scp",
                      [("a-u0", np.zeros((5, 2))), ("a-u1", np.zeros((2, 2))), ("a-u2", np.zeros((9, 2)))])
    datadir.subset_data_dir(feats, tmp_path / "short2", num_utt=2, mode="shortest")
    assert read(tmp_path / "short2" / "utt2spk") == "a-u0 a\na-u1 a\n"
    (tmp_path / "list").write_text("a-u7\nnot-there\na-u2 extra fields\n")
    warnings = datadir.subset_data_dir(data, tmp_path / "ulist", utt_list=tmp_path / "list")
    assert read(tmp_path / "ulist" / "utt2spk") == "a-u2 a\na-u7 a\n"
    assert read(tmp_path / "ulist" / "spk2utt") == "a a-u2 a-u7\n"
    assert "not-there" in warnings[0]
    with pytest.raises(ToolError, match="requested 11 utterances but .* has only 10"):
        datadir.subset_data_dir(data, tmp_path / "x", num_utt=11)


def test_subset_per_speaker_and_speaker_list(tmp_path):
    data = clean_dir(tmp_path, speakers=("a", "b"), per_spk=7, feats=False)
    datadir.subset_data_dir(data, tmp_path / "ps", num_utt=3, mode="per-spk")
    # Kaldi's awk: skip = 2 (3*3 <= 7), take positions 0, 2, 4 of each speaker
    assert read(tmp_path / "ps" / "spk2utt") == "a a-u0 a-u2 a-u4\nb b-u0 b-u2 b-u4\n"
    datadir.subset_data_dir(data, tmp_path / "spk2", num_utt=8, mode="speakers")
    assert len(read(tmp_path / "spk2" / "utt2spk").splitlines()) == 14       # 8 > 7: both speakers
    datadir.subset_data_dir(data, tmp_path / "spk1", num_utt=5, mode="speakers")
    assert len(set(read(tmp_path / "spk1" / "spk2utt").split()[::8])) == 1  # one whole speaker
    assert len(read(tmp_path / "spk1" / "utt2spk").splitlines()) == 7
    (tmp_path / "spk").write_text("b\n")
    datadir.subset_data_dir(data, tmp_path / "sl", spk_list=tmp_path / "spk")
    assert set(read(tmp_path / "sl" / "utt2spk").split()) == {f"b-u{i}" for i in range(7)} | {"b"}


def test_copy_with_prefixes_and_suffixes(tmp_path):
    data = clean_dir(tmp_path, speakers=("s1", "s2"), per_spk=1)
    datadir.copy_data_dir(data, tmp_path / "copy", utt_prefix="p-", spk_prefix="p-", utt_suffix="-x", spk_suffix="")
    copy = tmp_path / "copy"
    assert read(copy / "utt2spk") == "p-s1-u0-x p-s1\np-s2-u0-x p-s2\n"
    assert read(copy / "spk2utt") == "p-s1 p-s1-u0-x\np-s2 p-s2-u0-x\n"
    assert read(copy / "wav.scp") == "p-s1-u0-x /corpus/s1-u0.wav\np-s2-u0-x /corpus/s2-u0.wav\n"
    assert [l.split()[0] for l in read(copy / "feats.scp").splitlines()] == ["p-s1-u0-x", "p-s2-u0-x"]
    datadir.validate_data_dir(copy)
    # a suffix that changes the sort order is re-sorted
    datadir.copy_data_dir(data, tmp_path / "c2", utt_prefix="", spk_prefix="", utt_suffix="", spk_suffix="")
    assert read(tmp_path / "c2" / "utt2spk") == read(data / "utt2spk")


def test_file_system_errors_are_reported(tmp_path):
    data = clean_dir(tmp_path, feats=False)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ToolError, match="afile"):
        datadir.copy_data_dir(data, tmp_path / "afile")


def test_combine(tmp_path):
    one = clean_dir(tmp_path, name="one", speakers=("a",), per_spk=2)
    two = clean_dir(tmp_path, name="two", speakers=("b",), per_spk=1, feats=False)
    messages = datadir.combine_data(tmp_path / "all", [two, one])
    combined = tmp_path / "all"
    assert read(combined / "utt2spk") == "a-u0 a\na-u1 a\nb-u0 b\n"
    assert read(combined / "spk2utt") == "a a-u0 a-u1\nb b-u0\n"
    assert not (combined / "feats.scp").exists()
    assert any("not combining feats.scp" in m for m in messages)
    datadir.validate_data_dir(combined, no_feats=True)
    (two / "wav.scp").write_text("b-u0 /other.wav\n")
    three = make_dir(tmp_path / "three", {"utt2spk": "b-u0 b\n", "wav.scp": "b-u0 /corpus/b-u0.wav\n"})
    with pytest.raises(ToolError, match="key 'b-u0' of wav.scp has different values"):
        datadir.combine_data(tmp_path / "bad", [two, three])


# ------------------------------------------------------------------------------ scripts (shell)
def test_scripts_usage_and_exit_codes(tmp_path):
    for script in ("split_data.sh", "fix_data_dir.sh", "validate_data_dir.sh", "combine_data.sh",
                   "copy_data_dir.sh", "subset_data_dir.sh"):
        proc = run(script, check=False, cwd=tmp_path)
        assert proc.returncode == 1, script
        assert "Usage" in proc.stdout + proc.stderr, script
    proc = run("fix_data_dir.sh nowhere", check=False, cwd=tmp_path)
    assert proc.returncode == 1 and "no such directory nowhere" in proc.stderr
    assert proc.stdout.startswith(f"{run('command -v fix_data_dir.sh').stdout.strip()} nowhere")


def test_scripts_end_to_end(tmp_path):
    data = clean_dir(tmp_path)
    (data / "utt2spk").write_text(read(data / "utt2spk").replace("spkA-u0 spkA\n", "") + "spkA-u0 spkA\n")
    proc = run("validate_data_dir.sh data", check=False, cwd=tmp_path)
    assert proc.returncode == 1 and "utt2spk:6: key 'spkA-u0' is not sorted" in proc.stderr
    run("fix_data_dir.sh data && validate_data_dir.sh data", cwd=tmp_path)
    run("split_data.sh data 2 && split_data.sh --per-utt data 4", cwd=tmp_path)
    assert sorted(os.listdir(data / "split2")) == ["1", "2"] and (data / "split4utt" / "4" / "feats.scp").exists()
    proc = run("split_data.sh data 9", check=False, cwd=tmp_path)
    assert proc.returncode == 1 and "number of speakers 3 is less than 9" in proc.stderr
    run("subset_data_dir.sh --first data 2 sub && copy_data_dir.sh --utt-prefix x- --spk-prefix x- sub cp "
        "&& combine_data.sh comb data cp", cwd=tmp_path)
    assert len(read(tmp_path / "comb" / "utt2spk").splitlines()) == 8
    proc = run("copy_data_dir.sh --bogus 1 data y", check=False, cwd=tmp_path)
    assert proc.returncode == 1 and "invalid option --bogus" in proc.stderr


# ------------------------------------------------------------------------------- scripts (.pl)
def test_filter_scp_pl(tmp_path):
    (tmp_path / "ids").write_text("u2 whatever\nu9\n")
    (tmp_path / "in.scp").write_text("u3 c\nu2 b\nu1 a\n")
    assert run(f"filter_scp.pl {tmp_path}/ids {tmp_path}/in.scp").stdout == "u2 b\n"
    assert run(f"filter_scp.pl --exclude {tmp_path}/ids {tmp_path}/in.scp").stdout == "u3 c\nu1 a\n"
    (tmp_path / "trials").write_text("e1 u2 target\ne2 u3 nontarget\n")
    assert run(f"filter_scp.pl -f 2 {tmp_path}/ids < {tmp_path}/trials").stdout == "e1 u2 target\n"
    proc = run(f"filter_scp.pl {tmp_path}/missing {tmp_path}/in.scp", check=False)
    assert proc.returncode == 1 and "missing" in proc.stderr
    assert run("filter_scp.pl", check=False).returncode == 1


def test_utt2spk_spk2utt_pl_round_trip(tmp_path):
    # Kaldi's scripts keep input order (speakers by first appearance)
    (tmp_path / "utt2spk").write_text("z-1 z\na-1 a\nz-2 z\n")
    spk2utt = run(f"utt2spk_to_spk2utt.pl {tmp_path}/utt2spk").stdout
    assert spk2utt == "z z-1 z-2\na a-1\n"
    assert run("spk2utt_to_utt2spk.pl", input_text=spk2utt).stdout == "z-1 z\nz-2 z\na-1 a\n"
    proc = run("utt2spk_to_spk2utt.pl", input_text="a b c\n", check=False)
    assert proc.returncode == 1 and "line 1" in proc.stderr
