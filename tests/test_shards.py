"""tfspk.data.shards: packing round-trips against the scp reader, crops, damaged shards, the tool."""
import os

import numpy as np
import pytest
import soundfile as sf

from test_data import FEAT_DIM, _utterance, make_data_dir
from tfspk.data import shards
from tfspk.errors import ToolError
from tfspk.io.ark import RandomAccessReader


def _records(list_path):
    return {r["key"].numpy().decode(): (r["data"].numpy(), int(r["label"].numpy()))
            for r in shards.shard_records(list_path)}


@pytest.mark.parametrize("compress", [False, True])
def test_feature_shards_round_trip_with_the_scp_reader(tmp_path, compress):
    info = make_data_dir(tmp_path / "data", compress=compress)
    index = shards.make_shards(tmp_path / "data", tmp_path / "sh", utts_per_shard=7, seed=3)
    assert len(index.shards) == 5 and [s.num_utts for s in index.shards] == [7, 7, 7, 7, 2]
    assert index.num_classes == 6 and index.dim == FEAT_DIM and index.kind == "feats"
    again = shards.read_shard_list(tmp_path / "sh")
    assert again.paths == index.paths and again.num_utts == 30
    reader = RandomAccessReader(tmp_path / "data" / "feats.scp")
    got = _records(index.list_path)
    assert sorted(got) == sorted(info)
    speakers = sorted({spk for spk, _, _ in info.values()})
    for utt, (data, label) in got.items():
        np.testing.assert_array_equal(data, reader[utt])          # bit-exact, compressed or not
        assert speakers[label] == info[utt][0]
    # the order is shuffled by the seed: not sorted, and the same for the same seed
    order = [r["key"].numpy().decode() for r in shards.shard_records(index.list_path)]
    assert order != sorted(order)
    shards.make_shards(tmp_path / "data", tmp_path / "sh2", utts_per_shard=7, seed=3)
    assert order == [r["key"].numpy().decode() for r in shards.shard_records(tmp_path / "sh2")]
    assert (tmp_path / "sh" / "spk2int").read_text().splitlines()[0] == "spk00 0"


def test_float16_storage_and_given_spk2int(tmp_path):
    make_data_dir(tmp_path / "data", num_speakers=3)
    (tmp_path / "spk2int").write_text("spk00 2\nspk01 0\nspk02 1\n")
    shards.make_shards(tmp_path / "data", tmp_path / "sh", dtype="float16", spk2int_path=str(tmp_path / "spk2int"))
    reader = RandomAccessReader(tmp_path / "data" / "feats.scp")
    for utt, (data, label) in _records(tmp_path / "sh").items():
        np.testing.assert_array_equal(data, reader[utt].astype(np.float16).astype(np.float32))
        assert label == {"spk00": 2, "spk01": 0, "spk02": 1}[utt[:5]]


def test_audio_shards_round_trip(tmp_path):
    data = tmp_path / "data"
    (data / "wav").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines, utt2spk, audio = [], [], {}
    for i in range(5):
        samples = rng.integers(-30000, 30000, 800 + 37 * i).astype(np.int16)
        path = data / "wav" / f"u{i}.wav"
        sf.write(path, samples, 8000, subtype="PCM_16")
        audio[f"u{i}"] = samples
        lines.append(f"u{i} {path}\n")
        utt2spk.append(f"u{i} s{i % 2}\n")
    (data / "wav.scp").write_text("".join(lines))
    (data / "utt2spk").write_text("".join(utt2spk))
    index = shards.make_shards(data, tmp_path / "sh", source="audio", utts_per_shard=2)
    assert index.kind == "audio" and index.rate == 8000 and index.dtype == "int16"
    for utt, (samples, label) in _records(index.list_path).items():
        np.testing.assert_array_equal(samples, audio[utt].astype(np.float32))
        assert label == int(utt[1:]) % 2
    feats, labels = next(iter(shards.shard_dataset(index.list_path, batch_size=3, min_frames=100, max_frames=200)))
    assert feats.shape[0] == 3 and 100 <= feats.shape[1] <= 200 and feats.ndim == 2


def test_shard_dataset_crops_are_consecutive_rows_of_the_labelled_utterance(tmp_path):
    info = make_data_dir(tmp_path / "data", lengths=[60 + 3 * i for i in range(30)])
    shards.make_shards(tmp_path / "data", tmp_path / "sh", utts_per_shard=4, seed=1)
    number2utt = {number: utt for utt, (_, number, _) in info.items()}
    speakers = sorted({spk for spk, _, _ in info.values()})
    lengths, offsets = set(), set()
    dataset = shards.shard_dataset(tmp_path / "sh", batch_size=5, min_frames=20, max_frames=50, seed=4,
                                   shuffle_buffer=10)
    batches = list(dataset.take(40))
    for feats, labels in batches:
        feats, labels = feats.numpy(), labels.numpy()
        assert feats.dtype == np.float32 and labels.dtype == np.int32
        assert feats.shape[0] == 5 and 20 <= feats.shape[1] <= 50 and feats.shape[2] == FEAT_DIM
        lengths.add(feats.shape[1])
        for row, label in zip(feats, labels):
            utt = number2utt[int(row[0, 0])]
            spk, number, frames = info[utt]
            start = int(row[0, 1])
            offsets.add(start)
            assert 0 <= start and start + feats.shape[1] <= frames
            np.testing.assert_array_equal(row, _utterance(number, frames)[start:start + feats.shape[1]])
            assert speakers[label] == spk
    assert len(lengths) > 10 and min(offsets) == 0 and max(offsets) > 20
    # the same seed gives the same stream (a new dataset: one object reshuffles per iteration)
    rebuilt = shards.shard_dataset(tmp_path / "sh", batch_size=5, min_frames=20, max_frames=50, seed=4,
                                   shuffle_buffer=10)
    for (a, la), (b, lb) in zip(batches[:10], rebuilt.take(10)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)


def test_truncated_shard_is_named(tmp_path):
    make_data_dir(tmp_path / "data")
    index = shards.make_shards(tmp_path / "data", tmp_path / "sh", utts_per_shard=10)
    victim = index.shards[1].path
    with open(victim, "r+b") as handle:
        handle.truncate(os.path.getsize(victim) - 100)
    with pytest.raises(ToolError, match=f"shard {victim} is truncated: .* bytes, .*shards.list says"):
        shards.read_shard_list(tmp_path / "sh")
    with pytest.raises(ToolError, match=f"shard {victim} is truncated"):
        shards.shard_dataset(tmp_path / "sh")
    # without the size check, reading hits the damage: shard_errors turns it into a ToolError
    unchecked = shards.read_shard_list(tmp_path / "sh", check=False)
    with pytest.raises(ToolError, match=f"shard {victim} is truncated.*; run tfspk-verify-shards"):
        with shards.shard_errors(unchecked.list_path):
            for _ in shards.shard_records(unchecked):
                pass


def test_damaged_and_missing_shards(tmp_path):
    make_data_dir(tmp_path / "data")
    index = shards.make_shards(tmp_path / "data", tmp_path / "sh", utts_per_shard=10)
    victim = index.shards[0].path
    raw = bytearray(open(victim, "rb").read())
    raw[200] ^= 0xFF
    open(victim, "wb").write(bytes(raw))
    shards.read_shard_list(tmp_path / "sh")                  # same size: only the checksum sees it
    with pytest.raises(ToolError, match=f"shard {victim} is damaged"):
        shards.verify_shards(tmp_path / "sh")
    os.remove(victim)
    with pytest.raises(ToolError, match=f"shard {victim} .* not found"):
        shards.read_shard_list(tmp_path / "sh")
    os.remove(tmp_path / "sh" / "shards.list")
    with pytest.raises(ToolError, match="shards.list not found"):
        shards.read_shard_list(tmp_path / "sh")


def test_bad_inputs(tmp_path):
    make_data_dir(tmp_path / "data")
    with pytest.raises(ToolError, match="wav.scp not found"):
        shards.make_shards(tmp_path / "data", tmp_path / "sh", source="audio")
    with pytest.raises(ToolError, match="does not exist"):
        shards.make_shards(tmp_path / "nope", tmp_path / "sh")
    (tmp_path / "spk2int").write_text("spk00 0\n")
    with pytest.raises(ToolError, match="speaker 'spk01' .* is not in"):
        shards.make_shards(tmp_path / "data", tmp_path / "sh", spk2int_path=str(tmp_path / "spk2int"))
    assert not (tmp_path / "sh" / "shards.list").exists()
    (tmp_path / "sh").mkdir(exist_ok=True)
    (tmp_path / "sh" / "shards.list").write_text("shard-00000.tfrecord 3 10 abc\n")
    with pytest.raises(ToolError, match="shards.list:1: expected a header"):
        shards.read_shard_list(tmp_path / "sh")


def test_tool_and_script(tmp_path, sh, tool):
    make_data_dir(tmp_path / "data")
    proc = sh(f"steps/make_shards.sh --utts-per-shard 8 --verify true {tmp_path}/data {tmp_path}/sh")
    assert "4 shards" in proc.stdout
    assert shards.read_shard_list(tmp_path / "sh").num_utts == 30
    bad = sh(f"steps/make_shards.sh --utts-per-shard 0 {tmp_path}/data {tmp_path}/sh2", check=False)
    assert bad.returncode == 1 and "--utts-per-shard takes a positive integer" in bad.stderr
    usage = sh("steps/make_shards.sh", check=False)
    assert usage.returncode == 1 and "Usage:" in usage.stderr
    shard = tmp_path / "sh" / "shard-00002.tfrecord"
    # the tools themselves in this process (a Python with TensorFlow costs seconds); the script in its own
    assert "4 shards, 30 utterances" in tool(f"tfspk-verify-shards {tmp_path}/sh").stderr
    with open(shard, "r+b") as handle:
        handle.truncate(50)
    check = tool(f"tfspk-verify-shards --checksum=false {tmp_path}/sh/shards.list", check=False)
    assert check.returncode == 1 and f"ERROR (tfspk-verify-shards) shard {shard} is truncated: 50 bytes" in check.stderr
    assert "Traceback" not in check.stderr
    (tmp_path / "sh" / "shards.list").unlink()
    made = tool(f"tfspk-make-shards --source=audio {tmp_path}/data {tmp_path}/sh3", check=False)
    assert made.returncode == 1 and f"ERROR (tfspk-make-shards) {tmp_path}/data/wav.scp not found" in made.stderr
    assert "Traceback" not in made.stderr


# ---------------------------------------------------------------- shards checked against what they claim

def _lie_about_dim(list_path, dim):
    text = open(list_path).read()
    header, rest = text.split("\n", 1)
    open(list_path, "w").write(" ".join(f"dim={dim}" if w.startswith("dim=") else w for w in header.split())
                               + "\n" + rest)


def test_a_header_that_lies_about_dim_is_caught_per_record(tmp_path, tool):
    """Records of FEAT_DIM (4) under a header saying dim=3: the reader and tfspk-verify-shards name the
    shard and the record (before: verify passed and the reader cut every row as 3-dim, silently)."""
    make_data_dir(tmp_path / "data")
    shards.make_shards(tmp_path / "data", tmp_path / "sh", utts_per_shard=10)
    list_path = str(tmp_path / "sh" / "shards.list")
    _lie_about_dim(list_path, 3)
    pattern = (rf"shard {tmp_path}/sh/shard-0000\d\.tfrecord: record 'spk\d\d-utt\d\d' holds 4-dimensional "
               rf"features, {list_path} says dim=3")
    with pytest.raises(ToolError, match=pattern):
        shards.verify_shards(list_path)
    with pytest.raises(ToolError, match=pattern):
        with shards.shard_errors(list_path):
            next(iter(shards.shard_dataset(list_path, batch_size=4, min_frames=2, max_frames=3)))
    with pytest.raises(ToolError, match=pattern):
        with shards.shard_errors(list_path):
            list(shards.shard_records(list_path))
    check = tool(f"tfspk-verify-shards {tmp_path}/sh", check=False)
    assert check.returncode == 1 and "holds 4-dimensional features" in check.stderr and "Traceback" not in check.stderr


def test_shards_of_mixed_dims_listed_together_name_shard_and_record(tmp_path):
    """A list whose second shard was packed from 5-dim features (appended by hand): the error names that
    shard and a record of it (before: 'internal error InvalidArgumentError: DecodeRaw ...')."""
    make_data_dir(tmp_path / "a")
    make_data_dir(tmp_path / "b", dim_of_archive={0: 5, 1: 5})
    first = shards.make_shards(tmp_path / "a", tmp_path / "sh", utts_per_shard=30)
    other = shards.make_shards(tmp_path / "b", tmp_path / "other", utts_per_shard=30)
    os.rename(other.shards[0].path, tmp_path / "sh" / "shard-00001.tfrecord")
    lines = open(first.list_path).read().replace("num_utts=30", "num_utts=60")
    info = other.shards[0]
    lines += f"shard-00001.tfrecord {info.num_utts} {info.num_bytes} {info.sha256}\n"
    open(first.list_path, "w").write(lines)
    pattern = rf"shard {tmp_path}/sh/shard-00001.tfrecord: record '.*' holds 5-dimensional features"
    with pytest.raises(ToolError, match=pattern):
        shards.verify_shards(first.list_path)
    with pytest.raises(ToolError, match=pattern):
        with shards.shard_errors(first.list_path):
            list(shards.shard_records(first.list_path))


def test_verify_counts_records_per_shard(tmp_path):
    make_data_dir(tmp_path / "data")
    index = shards.make_shards(tmp_path / "data", tmp_path / "sh", utts_per_shard=10)
    text = open(index.list_path).read().splitlines()
    fields = text[1].split()
    text[1] = " ".join([fields[0], "11", *fields[2:]])
    text[2] = " ".join([text[2].split()[0], str(int(text[2].split()[1]) - 1), *text[2].split()[2:]])
    open(index.list_path, "w").write("\n".join(text) + "\n")
    with pytest.raises(ToolError, match=rf"shard {index.shards[0].path} holds 10 records, .* says 11"):
        shards.verify_shards(index.list_path)


def test_corrupted_shard_in_training_is_named_in_the_log(tmp_path, tool):
    """tfspk-train over shards of which one is corrupted (same size, so only reading finds it): exit 1 with
    an ERROR naming the shard, and the line is in log/train.log (before: 'internal error DataLossError
    ... please report it', naming no shard, and nothing in the log)."""
    import sys
    sys.path.insert(0, os.path.dirname(__file__))
    from test_train import TINY, make_features
    data = make_features(str(tmp_path / "data"), min_len=60, max_len=80)
    index = shards.make_shards(data, str(tmp_path / "shards"), utts_per_shard=10, seed=3)
    victim = index.shards[2].path
    raw = bytearray(open(victim, "rb").read())
    for position in range(40, len(raw), 997):
        raw[position] ^= 0x55
    open(victim, "wb").write(bytes(raw))
    sets = " ".join(f"--set {kv}" for kv in TINY + ["data.source=shards", f"data.shards={tmp_path}/shards",
                                                      "schedule.num_epochs=1", "valid.num_utts=0"])
    proc = tool(f"tfspk-train {sets} {data} {tmp_path}/exp", check=False)
    assert proc.returncode == 1, proc.stderr
    assert f"ERROR (tfspk-train) shard {victim} is damaged" in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr
    assert f"shard {victim} is damaged" in (tmp_path / "exp" / "log" / "train.log").read_text()


def test_non_finite_frames_no_crop_may_touch_are_found_when_packing_and_verifying(tmp_path):
    """Training checks the crops it reads; packing and tfspk-verify-shards check every frame of every record."""
    import hashlib
    import struct
    import tensorflow as tf
    make_data_dir(tmp_path / "data")
    matrix = np.ones((50, 4), np.float32)
    matrix[47, 2] = np.nan            # Kaldi's binary matrix by hand: tfspk's writer refuses NaN
    header = b"spk00-utt00 \0BFM \x04" + struct.pack("<i", 50) + b"\x04" + struct.pack("<i", 4)
    (tmp_path / "nan.ark").write_bytes(header + matrix.tobytes())
    good = (tmp_path / "data" / "feats.scp").read_text()
    lines = good.splitlines()
    lines[0] = f"spk00-utt00 {tmp_path}/nan.ark:12"
    (tmp_path / "data" / "feats.scp").write_text("\n".join(lines) + "\n")
    with pytest.raises(ToolError, match=r"feats.scp: 'spk00-utt00' has non-finite values \(NaN or Inf\) in frame 47"):
        shards.make_shards(tmp_path / "data", tmp_path / "sh", utts_per_shard=10)
    # a shard that holds one anyway (written by other means): verification finds it
    (tmp_path / "data" / "feats.scp").write_text(good)
    index = shards.make_shards(tmp_path / "data", tmp_path / "sh", utts_per_shard=30)
    records = [(r["key"].numpy().decode(), int(r["label"]), r["data"].numpy()) for r in shards.shard_records(index)]
    with tf.io.TFRecordWriter(index.shards[0].path) as writer:
        for key, label, data in records:
            if key == "spk00-utt00":
                data = data.copy()
                data[47, 2] = np.inf
            writer.write(shards._example(key, label, data, "float32"))
    raw = open(index.shards[0].path, "rb").read()
    text = open(index.list_path).read().splitlines()
    text[1] = f"shard-00000.tfrecord 30 {len(raw)} {hashlib.sha256(raw).hexdigest()}"
    open(index.list_path, "w").write("\n".join(text) + "\n")
    with pytest.raises(ToolError, match=r"record 'spk00-utt00' has non-finite values \(NaN or Inf\) in frame 47"):
        shards.verify_shards(index.list_path)
