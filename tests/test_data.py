"""tfspk.data: speaker-balanced sampling ([Liu2019, sec. 4.2]) and the input pipeline."""
import collections
import sys

import numpy as np
import pytest

from tfspk.data import (SpeakerBalancedSampler, TrialSet, iterate_batches, iterate_validation_batches,
                        make_dataset, read_spk2int, tool_errors, validation_batches, write_spk2int)
from tfspk.errors import ToolError
from tfspk.io.ark import ArchiveWriter, read_rspecifier

FEAT_DIM = 4


def _utterance(utt_number, frames, dim=FEAT_DIM):
    """Frame t of utterance u is [u, t, u + t, 1]: every row says where it came from."""
    t = np.arange(frames, dtype=np.float32)
    cols = [np.full(frames, utt_number, np.float32), t, utt_number + t, np.ones(frames, np.float32)]
    return np.stack(cols[:dim] + [t] * max(0, dim - 4), axis=1)


def make_data_dir(path, num_speakers=6, utts_per_speaker=5, lengths=None, num_archives=2, compress=False,
                  dim_of_archive=None, write_frames=True):
    """A data dir whose utterance k (sorted order) has ``lengths[k]`` frames; returns {utt: (spk, number)}."""
    path.mkdir(parents=True, exist_ok=True)
    utts = [(f"spk{s:02d}-utt{u:02d}", f"spk{s:02d}") for s in range(num_speakers) for u in range(utts_per_speaker)]
    rng = np.random.default_rng(0)
    lengths = lengths or list(rng.integers(30, 120, len(utts)))
    info, scp_lines = {}, []
    for archive in range(num_archives):
        dim = (dim_of_archive or {}).get(archive, FEAT_DIM)
        members = [(i, u) for i, u in enumerate(utts) if i % num_archives == archive]
        with ArchiveWriter(f"ark,scp:{path}/raw.{archive}.ark,{path}/raw.{archive}.scp", compress=compress) as w:
            for number, (utt, spk) in members:
                w.write(utt, _utterance(number, int(lengths[number]), dim))
                info[utt] = (spk, number, int(lengths[number]))
        scp_lines += (path / f"raw.{archive}.scp").read_text().splitlines()
    (path / "feats.scp").write_text("".join(line + "\n" for line in sorted(scp_lines)))
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utts)))
    if write_frames:
        (path / "utt2num_frames").write_text("".join(f"{u} {info[u][2]}\n" for u in sorted(info)))
    return info


def _check_batch(feats, labels, sampler, info, min_frames, max_frames):
    """Every row of the batch is a consecutive run of one utterance of the labelled speaker."""
    int2spk = {i: s for s, i in sampler.spk2int.items()}
    number2utt = {n: u for u, (_, n, _) in info.items()}
    assert feats.dtype == np.float32 and labels.dtype == np.int32
    batch, length, dim = feats.shape
    assert batch == sampler.num_speakers and dim == FEAT_DIM and min_frames <= length <= max_frames
    assert len(set(labels.tolist())) == batch  # distinct speakers
    used = []
    for row, label in zip(feats, labels):
        utt = number2utt[int(row[0, 0])]
        spk, _, frames = info[utt]
        start = int(row[0, 1])
        np.testing.assert_array_equal(row, _utterance(info[utt][1], frames)[start:start + length])
        assert int2spk[int(label)] == spk
        used.append(utt)
    return used


def test_batches_are_speaker_balanced_segments_of_the_right_utterances(tmp_path):
    info = make_data_dir(tmp_path / "d")
    sampler = SpeakerBalancedSampler(tmp_path / "d", num_speakers=4, min_frames=20, max_frames=40, seed=3,
                                     num_valid_utts=3)
    assert sampler.feat_dim == FEAT_DIM
    assert sampler.spk2int == {f"spk{s:02d}": s for s in range(6)}
    used = collections.Counter()
    for step in range(30):
        feats, labels = sampler.batch(step)
        used.update(_check_batch(feats, labels, sampler, info, 20, 40))
    assert not set(used) & set(sampler.valid_utts)
    assert len(sampler.valid_utts) == 3


def test_plan_draws_are_uniform(tmp_path):
    """Lengths uniform on [min, max]; speakers uniform; offsets cover [0, n - L]."""
    make_data_dir(tmp_path / "d", num_speakers=8, lengths=[100] * 40)
    sampler = SpeakerBalancedSampler(tmp_path / "d", num_speakers=2, min_frames=10, max_frames=13, seed=0,
                                     num_valid_utts=0)
    plans = [sampler.plan(step) for step in range(4000)]
    lengths = collections.Counter(p.length for p in plans)
    assert sorted(lengths) == [10, 11, 12, 13]
    assert all(abs(n / 4000 - 0.25) < 0.03 for n in lengths.values())
    speakers = np.bincount(np.concatenate([p.labels for p in plans]), minlength=8) / 8000
    np.testing.assert_allclose(speakers, 1 / 8, atol=0.02)
    short = [p.offsets for p in plans if p.length == 10]
    offsets = np.concatenate(short)
    assert offsets.min() == 0 and offsets.max() == 90


def test_segments_come_only_from_long_enough_utterances(tmp_path):
    # Speaker 0 has one long utterance; its short ones must never be used for long segments.
    lengths = [50, 12, 12, 12] + [60] * 12
    info = make_data_dir(tmp_path / "d", num_speakers=4, utts_per_speaker=4, lengths=lengths)
    sampler = SpeakerBalancedSampler(tmp_path / "d", num_speakers=4, min_frames=10, max_frames=40,
                                     num_valid_utts=0)
    for step in range(40):
        plan = sampler.plan(step)
        for utt, offset in zip(plan.utts, plan.offsets):
            assert offset + plan.length <= info[utt][2]
            if plan.length > 12:
                assert utt != "spk00-utt01"


def test_reproducible_and_resumable(tmp_path):
    make_data_dir(tmp_path / "d")
    opts = dict(num_speakers=3, min_frames=20, max_frames=30, num_valid_utts=2)
    first = SpeakerBalancedSampler(tmp_path / "d", seed=7, **opts)
    again = SpeakerBalancedSampler(tmp_path / "d", seed=7, **opts)
    other = SpeakerBalancedSampler(tmp_path / "d", seed=8, **opts)
    assert first.valid_utts == again.valid_utts
    with iterate_batches(first, start_step=0, num_steps=6, num_threads=3, prefetch=4) as run:
        from_zero = list(run)
    with iterate_batches(again, start_step=4, num_steps=2, num_threads=2) as run:
        resumed = list(run)
    for (fa, la), (fb, lb) in zip(from_zero[4:], resumed):
        np.testing.assert_array_equal(fa, fb)
        np.testing.assert_array_equal(la, lb)
    assert any(not np.array_equal(first.batch(s)[1], other.batch(s)[1]) for s in range(5))


def test_compressed_archives_read_by_offset(tmp_path):
    make_data_dir(tmp_path / "d", compress=True)
    sampler = SpeakerBalancedSampler(tmp_path / "d", num_speakers=3, min_frames=20, max_frames=30,
                                     num_valid_utts=0)
    whole = dict(read_rspecifier(f"scp:{tmp_path}/d/feats.scp"))
    plan = sampler.plan(5)
    feats, _ = sampler.load(plan)
    for row, utt, offset in zip(feats, plan.utts, plan.offsets):
        np.testing.assert_array_equal(row, whole[utt][offset:offset + plan.length])


def test_validation_batches_fixed_and_cover_held_out(tmp_path):
    info = make_data_dir(tmp_path / "d", utts_per_speaker=6)
    sampler = SpeakerBalancedSampler(tmp_path / "d", num_speakers=3, min_frames=20, max_frames=50,
                                     num_valid_utts=7)
    with iterate_validation_batches(sampler, batch_size=3) as run:
        batches = list(run)
    again = list(validation_batches(sampler, batch_size=3).as_numpy_iterator())
    assert [b[0].shape[0] for b in batches] == [3, 3, 1]
    seen = []
    for (feats, labels), (feats2, labels2) in zip(batches, again):
        np.testing.assert_array_equal(feats, feats2)
        np.testing.assert_array_equal(labels, labels2)
        for row, label in zip(feats, labels):
            utt = next(u for u, v in info.items() if v[1] == int(row[0, 0]))
            assert sampler.spk2int[info[utt][0]] == label
            seen.append(utt)
    assert sorted(seen) == sampler.valid_utts
    # each batch is cropped to min(max_frames, its shortest utterance)
    by_len = sorted(sampler.valid_utts, key=lambda u: (info[u][2], u))
    for index, (feats, _) in enumerate(batches):
        group = by_len[3 * index:3 * index + 3]
        assert feats.shape[1] == min(50, min(info[u][2] for u in group))


def test_make_dataset_matches_sampler_and_reraises_tool_errors(tmp_path):
    make_data_dir(tmp_path / "d")
    sampler = SpeakerBalancedSampler(tmp_path / "d", num_speakers=3, min_frames=20, max_frames=30,
                                     num_valid_utts=0)
    dataset = make_dataset(sampler, start_step=2, num_steps=3, num_threads=2)
    assert dataset.element_spec[0].shape.as_list() == [3, None, FEAT_DIM]
    for step, (feats, labels) in enumerate(dataset.as_numpy_iterator(), 2):
        want_feats, want_labels = sampler.batch(step)
        np.testing.assert_array_equal(feats, want_feats)
        np.testing.assert_array_equal(labels, want_labels)
    (tmp_path / "d" / "raw.0.ark").write_bytes(b"")  # archives vanish under the running trainer
    with pytest.raises(ToolError, match="beyond the end|raw.0.ark"):
        with tool_errors(sampler):
            for _ in make_dataset(sampler, num_steps=20, num_threads=2):
                pass


def test_spk2int_round_trip(tmp_path):
    write_spk2int(tmp_path / "spk2int", {"b": 1, "a": 0})
    assert (tmp_path / "spk2int").read_text() == "a 0\nb 1\n"
    assert read_spk2int(tmp_path / "spk2int") == {"a": 0, "b": 1}
    (tmp_path / "bad").write_text("a 0\nb 2\n")
    with pytest.raises(ToolError, match="0..1"):
        read_spk2int(tmp_path / "bad")


# ------------------------------------------------------------------------------------------- errors
def test_missing_utt2num_frames(tmp_path):
    make_data_dir(tmp_path / "d", write_frames=False)
    with pytest.raises(ToolError, match="utt2num_frames does not exist.*prepare_feats_for_egs"):
        SpeakerBalancedSampler(tmp_path / "d", num_speakers=2, min_frames=20, max_frames=30, num_valid_utts=0)


def test_key_mismatch_names_files_and_keys(tmp_path):
    make_data_dir(tmp_path / "d")
    lines = (tmp_path / "d" / "utt2spk").read_text().splitlines()
    (tmp_path / "d" / "utt2spk").write_text("\n".join(lines[1:] + ["spk99-x spk99"]) + "\n")
    with pytest.raises(ToolError, match=r"1 key\(s\) of .*feats.scp missing from .*utt2spk \('spk00-utt00'\).*"
                                        r"1 key\(s\) of .*utt2spk missing .*'spk99-x'"):
        SpeakerBalancedSampler(tmp_path / "d", num_speakers=2, min_frames=20, max_frames=30, num_valid_utts=0)


def test_archives_of_different_dimension_at_start(tmp_path):
    make_data_dir(tmp_path / "d", dim_of_archive={1: 5})
    with pytest.raises(ToolError, match="different dimensions: dim 4 in .*raw.0.ark.*dim 5 in .*raw.1.ark"):
        SpeakerBalancedSampler(tmp_path / "d", num_speakers=2, min_frames=20, max_frames=30, num_valid_utts=0)


def test_wrong_dimension_in_an_unchecked_archive_caught_per_batch(tmp_path):
    # 60 archives of one utterance each: the start-up check reads 50, the last one has 5 columns.
    make_data_dir(tmp_path / "d", num_speakers=6, utts_per_speaker=10, lengths=[60] * 60, num_archives=60,
                  dim_of_archive={59: 5})
    sampler = SpeakerBalancedSampler(tmp_path / "d", num_speakers=6, min_frames=20, max_frames=30,
                                     num_valid_utts=0)
    step = next(s for s in range(1000) if "spk05-utt09" in sampler.plan(s).utts)
    with pytest.raises(ToolError, match=r"'spk05-utt09' \(.*raw.59.ark:\d+\) has features of shape \(60 x 5\), "
                                        r"expected dimension 4"):
        sampler.batch(step)


def test_too_few_speakers_with_long_utterances(tmp_path):
    lengths = [100] * 10 + [30] * 20
    make_data_dir(tmp_path / "d", lengths=lengths)
    with pytest.raises(ToolError, match="only 2 speakers have a training utterance of at least max_frames=50 .*"
                                        "num_speakers=3 .*lower num_speakers or max_frames"):
        SpeakerBalancedSampler(tmp_path / "d", num_speakers=3, min_frames=20, max_frames=50, num_valid_utts=0)


def test_no_utterance_long_enough(tmp_path):
    make_data_dir(tmp_path / "d", lengths=[30] * 30)
    with pytest.raises(ToolError, match="no utterance has min_frames=200 frames .*longest has 30"):
        SpeakerBalancedSampler(tmp_path / "d", num_speakers=2)
    with pytest.raises(ToolError, match="only 0 speakers .*max_frames=400"):
        SpeakerBalancedSampler(tmp_path / "d", num_speakers=2, min_frames=20, num_valid_utts=0)


def test_too_many_validation_utterances(tmp_path):
    make_data_dir(tmp_path / "d", num_speakers=3, utts_per_speaker=2, lengths=[100] * 6)
    with pytest.raises(ToolError, match="only 3 utterances .*num_valid_utts=1000 asked; lower num_valid_utts$"):
        SpeakerBalancedSampler(tmp_path / "d", num_speakers=2, min_frames=20, max_frames=30)


@pytest.mark.parametrize("opts, message", [(dict(min_frames=50, max_frames=40), "larger than max_frames"),
                                           (dict(num_speakers=0), "num_speakers must be an integer >= 1"),
                                           (dict(seed=-1), "seed must be")])
def test_impossible_options(tmp_path, opts, message):
    make_data_dir(tmp_path / "d")
    options = dict(num_speakers=2, min_frames=20, max_frames=30, num_valid_utts=0)
    options.update(opts)
    with pytest.raises(ToolError, match=message):
        SpeakerBalancedSampler(tmp_path / "d", **options)


def test_trial_set(tmp_path):
    info = make_data_dir(tmp_path / "d", num_speakers=2, utts_per_speaker=2, lengths=[40, 50, 60, 70])
    (tmp_path / "d" / "trials").write_text("spk00-utt00 spk00-utt01 target\nspk00-utt00 spk01-utt00 nontarget\n")
    trials = TrialSet(tmp_path / "d", feat_dim=FEAT_DIM)
    assert trials.trials == [("spk00-utt00", "spk00-utt01"), ("spk00-utt00", "spk01-utt00")]
    assert trials.is_target.tolist() == [True, False]
    batches = list(trials.batches(batch_size=2, max_frames=45))
    assert [keys for keys, _ in batches] == [["spk00-utt00", "spk00-utt01"], ["spk01-utt00"]]
    keys, feats = batches[0]
    assert feats.shape == (2, 40, FEAT_DIM)
    start = (50 - 40) // 2
    np.testing.assert_array_equal(feats[1], _utterance(info["spk00-utt01"][1], 50)[start:start + 40])
    with pytest.raises(ToolError, match="dimension 4, the network expects 30"):
        TrialSet(tmp_path / "d", feat_dim=30)
    (tmp_path / "d" / "trials").write_text("spk00-utt00 nobody target\nspk00-utt00 spk01-utt00 nontarget\n")
    with pytest.raises(ToolError, match="1 utterance.*'nobody'"):
        TrialSet(tmp_path / "d")


@pytest.mark.parametrize("compress, method, dtype", [(False, "auto", np.float32), (True, "speech-feature", np.float32),
                                                      (True, "2byte-auto", np.float32), (False, "auto", np.float64)])
def test_segment_reader_equals_slice_of_whole_matrix(tmp_path, compress, method, dtype):
    from tfspk.data.segments import SegmentReader
    from tfspk.io.ark import RandomAccessReader
    rng = np.random.default_rng(4)
    mats = {f"u{i}": (rng.normal(size=(n, 7)) * 3).astype(dtype) for i, n in enumerate([50, 9, 120])}
    with ArchiveWriter(f"ark,scp:{tmp_path}/a.ark,{tmp_path}/a.scp", compress=compress,
                       compression_method=method) as writer:
        for key, mat in mats.items():
            writer.write(key, mat)
    reader = RandomAccessReader(tmp_path / "a.scp")
    segments = SegmentReader(reader)
    for key in mats:
        whole = reader[key]
        for offset, length in [(0, 5), (3, 6), (len(whole) - 4, 4), (len(whole) - 2, 5)]:
            rows, num_rows, num_cols = segments.read(key, offset, length)
            assert (num_rows, num_cols) == whole.shape and rows.dtype == np.float32
            np.testing.assert_array_equal(rows, whole[offset:offset + length].astype(np.float32))


def test_read_batch_equals_read_per_segment_for_every_format(tmp_path):
    """SegmentReader.read_batch (CM segments decoded together) gives read()'s rows and shapes for
    every segment of a batch mixing CM, FM, CM2 and double matrices, a matrix of another dimension
    and windows that run past the end (whose contents are undefined: only the shape is reported)."""
    from tfspk.data.segments import SegmentReader
    from tfspk.io.ark import RandomAccessReader
    rng = np.random.default_rng(8)
    mats = {}
    scp = []
    for i, (compress, method, dtype, rows, cols) in enumerate(
            [(True, "speech-feature", np.float32, 50, 7), (False, "auto", np.float32, 40, 7),
             (True, "speech-feature", np.float32, 64, 7), (True, "2byte-auto", np.float32, 30, 7),
             (False, "auto", np.float64, 33, 7), (True, "speech-feature", np.float32, 45, 5),
             (True, "speech-feature", np.float32, 20, 7)]):
        key = f"u{i}"
        mats[key] = (rng.normal(size=(rows, cols)) * rng.uniform(0.1, 30, cols) + rng.normal(0, 50, cols)).astype(dtype)
        with ArchiveWriter(f"ark,scp:{tmp_path}/a{i}.ark,{tmp_path}/a{i}.scp", compress=compress,
                           compression_method=method) as writer:
            writer.write(key, mats[key])
        scp.append((tmp_path / f"a{i}.scp").read_text())
    (tmp_path / "all.scp").write_text("".join(scp))
    reader = RandomAccessReader(tmp_path / "all.scp")
    segments = SegmentReader(reader)
    keys = ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u0", "u2"]
    offsets = np.array([3, 0, 40, 10, 2, 1, 5, 30, 0])
    length = 18        # u6 (20 rows) from 5 runs past the end; u5 has 5 columns
    feats, shapes = segments.read_batch(keys, offsets, length, 7)
    assert feats.shape == (len(keys), length, 7) and feats.dtype == np.float32
    for position, (key, offset) in enumerate(zip(keys, offsets)):
        rows, num_rows, num_cols = segments.read(key, int(offset), length)
        assert shapes[position] == (num_rows, num_cols) == reader[key].shape
        whole = reader[key].astype(np.float32)
        np.testing.assert_array_equal(rows, whole[offset:offset + length])
        if num_cols == 7 and num_rows >= offset + length:
            np.testing.assert_array_equal(feats[position], whole[offset:offset + length])
    assert shapes[5] == (45, 5) and shapes[6] == (20, 7)


def test_batch_load_equals_per_segment_reads_and_reports_the_first_bad_segment(tmp_path):
    """sampler.load (one read_batch) equals the stack of read_segment over many plans; with a NaN in
    one utterance and a short utterance in the same batch, the error names the first of the two."""
    make_data_dir(tmp_path / "d", compress=True, num_archives=3)
    sampler = SpeakerBalancedSampler(tmp_path / "d", num_speakers=4, min_frames=10, max_frames=30, num_valid_utts=3)
    plans = [sampler.plan(step) for step in range(30)] + sampler.validation_plans(2)
    for plan in plans:
        feats, labels = sampler.load(plan)
        expected = np.stack([sampler.read_segment(u, int(o), plan.length) for u, o in zip(plan.utts, plan.offsets)])
        np.testing.assert_array_equal(feats, expected)
        np.testing.assert_array_equal(labels, plan.labels)
    # a batch whose 2nd segment is non-finite and whose 3rd utterance is shorter than utt2num_frames says
    plan = sampler.plan(0)
    bad, short = plan.utts[1], plan.utts[2]
    sampler.segments.read_batch = _spoil(sampler.segments.read_batch, plan, bad, short)
    with pytest.raises(ToolError, match=rf"utterance '{bad}' .* non-finite values \(NaN or Inf\) in frame "
                                        rf"{int(plan.offsets[1]) + 2} "):
        sampler.load(plan)
    reordered = type(plan)((plan.utts[0], short, bad, plan.utts[3]), plan.offsets[[0, 2, 1, 3]], plan.length,
                           plan.labels)
    with pytest.raises(ToolError, match=rf"utterance '{short}' has 3 frames but utt2num_frames"):
        sampler.load(reordered)


def _spoil(read_batch, plan, bad, short):
    """Wrap read_batch: frame 2 of ``bad``'s segment becomes NaN; ``short`` reports 3 rows."""
    def spoiled(keys, offsets, length, dim):
        feats, shapes = read_batch(keys, offsets, length, dim)
        for position, key in enumerate(keys):
            if key == bad:
                feats[position, 2, 1] = np.nan
            if key == short:
                shapes[position] = (3, dim)
                feats[position] = np.nan   # undefined contents: must not be what is reported
        return feats, shapes
    return spoiled


def test_process_readers_give_the_thread_readers_batches_and_errors(tmp_path):
    """iterate_batches / make_dataset with processes=True: the same batches as sampler.batch, in step order,
    from any start step; a worker's ToolError reaches the caller as itself."""
    make_data_dir(tmp_path / "d", compress=True, num_archives=3)
    sampler = SpeakerBalancedSampler(tmp_path / "d", num_speakers=4, min_frames=10, max_frames=30, num_valid_utts=0)
    with iterate_batches(sampler, start_step=5, num_steps=12, num_threads=2, prefetch=3, processes=True) as batches:
        got = list(batches)
    assert len(got) == 12
    for step, (feats, labels) in enumerate(got, 5):
        expected_feats, expected_labels = sampler.batch(step)
        np.testing.assert_array_equal(feats, expected_feats)
        np.testing.assert_array_equal(labels, expected_labels)
    dataset = make_dataset(sampler, start_step=2, num_steps=3, num_threads=2, processes=True)
    for step, (feats, labels) in enumerate(dataset.as_numpy_iterator(), 2):
        np.testing.assert_array_equal(feats, sampler.batch(step)[0])
    # a wrong dimension found by a worker (60 one-utterance archives: the start-up check reads 50)
    make_data_dir(tmp_path / "e", num_speakers=6, utts_per_speaker=10, lengths=[60] * 60, num_archives=60,
                  dim_of_archive={59: 5})
    bad = SpeakerBalancedSampler(tmp_path / "e", num_speakers=6, min_frames=20, max_frames=30, num_valid_utts=0)
    step = next(s for s in range(1000) if "spk05-utt09" in bad.plan(s).utts)
    with pytest.raises(ToolError, match=r"'spk05-utt09' \(.*raw.59.ark:\d+\) has features of shape \(60 x 5\)"):
        with tool_errors(bad):
            for _ in make_dataset(bad, start_step=step, num_steps=2, num_threads=2, processes=True):
                pass


def _own_niceness(_):
    import os
    import threading
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
@pytest.mark.parametrize("processes", [False, True])
def test_worker_processes_run_nice_steps_below_the_caller_and_give_the_same_batches(tmp_path, processes):
    """OrderedPrefetcher(nice=n): each worker process runs at the caller's niceness + n (capped at 19);
    worker threads and the caller's threads keep the caller's; the batches are those of nice=0."""
    import os
    import threading
    from tfspk.data import OrderedPrefetcher
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    for nice in (0, 3, 19):
        with OrderedPrefetcher(range(4), _own_niceness, num_threads=2, prefetch=2, processes=processes,
                               nice=nice) as niceness:
            assert list(niceness) == [min(19, base + nice) if processes else base] * 4
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base
    make_data_dir(tmp_path / "d", compress=True, num_archives=2)
    sampler = SpeakerBalancedSampler(tmp_path / "d", num_speakers=4, min_frames=10, max_frames=30, num_valid_utts=0)
    batches = {}
    for nice in (0, 19):
        with iterate_batches(sampler, start_step=3, num_steps=4, num_threads=2, processes=processes,
                             nice=nice) as run:
            batches[nice] = list(run)
    for (feats, labels), (nice_feats, nice_labels) in zip(batches[0], batches[19]):
        np.testing.assert_array_equal(feats, nice_feats)
        np.testing.assert_array_equal(labels, nice_labels)
    for bad in (-1, 20):
        with pytest.raises(ToolError, match=f"nice must be 0..19, got {bad}"):
            OrderedPrefetcher(range(2), _own_niceness, nice=bad)


def test_forked_readers_do_not_move_the_parents_file_offsets(tmp_path):
    """An inherited descriptor shares its offset: a forked worker reading through the parent's open
    handles (RandomAccessReader, SegmentReader) would move the parent's offset. They open their own."""
    import multiprocessing
    import os
    make_data_dir(tmp_path / "d", compress=True, num_archives=1)
    sampler = SpeakerBalancedSampler(tmp_path / "d", num_speakers=4, min_frames=10, max_frames=30, num_valid_utts=0)
    first = sorted(sampler.reader.keys())[0]
    sampler.reader[first]                      # the parent's thread now holds open handles
    sampler.read_segment(first, 0, 10)
    handles = [sampler.reader._local.cache.handle] + list(sampler.segments._files._local.handles.values())
    before = [os.lseek(h.fileno(), 0, os.SEEK_CUR) for h in handles]
    with iterate_batches(sampler, num_steps=4, num_threads=1, prefetch=4, processes=True) as batches:
        list(batches)
    global _FORKED_SAMPLER
    _FORKED_SAMPLER = sampler
    with multiprocessing.get_context("fork").Pool(1) as pool:
        pool.map(_read_last_utterance, [0])
    assert [os.lseek(h.fileno(), 0, os.SEEK_CUR) for h in handles] == before


_FORKED_SAMPLER = None


def _read_last_utterance(_):
    sampler = _FORKED_SAMPLER
    last = sorted(sampler.reader.keys())[-1]
    sampler.reader[last]
    sampler.read_segment(last, 2, 5)


def test_repeat_short_tiles_short_utterances_and_uses_every_one(tmp_path):
    """repeat_short: an utterance of n < L frames gives rows[i mod n] (a numpy statement of the rule), every
    utterance and speaker is drawn, long utterances are plain segments; without it short ones never appear."""
    # Speaker 0 has only utterances shorter than every crop (5 and 7 frames); the others are long.
    lengths = [5, 7] + [60] * 6
    info = make_data_dir(tmp_path / "d", num_speakers=4, utts_per_speaker=2, lengths=lengths)
    opts = dict(num_speakers=4, min_frames=10, max_frames=20, seed=5, num_valid_utts=0)
    with pytest.raises(ToolError, match="only 3 speakers"):
        SpeakerBalancedSampler(tmp_path / "d", **opts)   # speaker 0 has no utterance of max_frames
    sampler = SpeakerBalancedSampler(tmp_path / "d", repeat_short=True, **opts)
    assert sampler.num_train_utts == 8 and sampler.num_classes == 4
    used = collections.Counter()
    for step in range(60):
        plan = sampler.plan(step)
        feats, labels = sampler.load(plan)
        assert feats.shape == (4, plan.length, FEAT_DIM)
        for row, utt, offset in zip(feats, plan.utts, plan.offsets):
            frames = info[utt][2]
            whole = _utterance(info[utt][1], frames)
            if frames < plan.length:
                assert offset == 0
                expected = np.concatenate([whole] * (plan.length // frames + 1))[:plan.length]
                np.testing.assert_array_equal(row, expected)
            else:
                assert offset + plan.length <= frames
                np.testing.assert_array_equal(row, whole[offset:offset + plan.length])
            used[utt] += 1
        assert sorted(labels.tolist()) == [0, 1, 2, 3]
    assert set(used) == set(info)   # every utterance, the short ones included
    # Resumable: the same plan and batch for a step, whatever was drawn before.
    again = SpeakerBalancedSampler(tmp_path / "d", repeat_short=True, **opts)
    np.testing.assert_array_equal(again.batch(17)[0], sampler.batch(17)[0])


def test_repeat_short_is_refused_for_audio_and_shards_inputs():
    from tfspk.train.config import build_config
    from tfspk.train.inputs import check_source_keys
    check_source_keys(build_config(overrides=["data.repeat_short=true"]))   # feats: accepted
    for source, extra in (("audio", []), ("shards", ["data.shards=x"])):
        with pytest.raises(ToolError, match="config key 'data.repeat_short'.*only data.source feats"):
            check_source_keys(build_config(overrides=[f"data.source={source}", *extra, "data.repeat_short=true"]))
