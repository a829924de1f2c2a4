"""tfspk.extract: Kaldi nnet3-xvector-compute chunking, batching, tfspk-extract and extract_xvectors.sh."""
import math

import numpy as np
import pytest
import yaml

from tfspk.errors import ToolError
from tfspk.extract import XvectorExtractor, chunk_boundaries, pad_chunk, prepare_features, utterance_pieces
from tfspk.io.ark import ArchiveWriter, read_rspecifier
from tfspk.nnet import build_xvector

FEAT_DIM = 5
NNET = dict(arch="tdnn", frame_dim=8, pooling_dim=12, embedding_dim=6)


@pytest.fixture(scope="module")
def model():
    net = build_xvector(feat_dim=FEAT_DIM, **NNET)
    rng = np.random.default_rng(0)
    for layer in net.layers:  # non-trivial BN statistics so both embeddings carry information
        if layer.name.endswith("_bn"):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.3, beta.shape),
                               rng.normal(0, 0.3, mean.shape), rng.uniform(0.5, 2.0, var.shape)])
    return net


# ------------------------------------------------------------------ chunking, restated independently
def _np_chunks(num_frames, chunk_size):
    """Kaldi: C = T if chunk_size == -1 or T < chunk_size else chunk_size; chunk k = frames [kC, min(T, (k+1)C))."""
    if num_frames == 0:
        return []
    size = num_frames if chunk_size == -1 or num_frames < chunk_size else chunk_size
    owner = np.arange(num_frames) // size  # chunk index of every frame
    return [(int(np.flatnonzero(owner == k)[0]), int(np.sum(owner == k))) for k in range(owner[-1] + 1)]


@pytest.mark.parametrize("chunk_size", [-1, 1, 7, 25, 100])
def test_chunk_boundaries_match_kaldi(chunk_size):
    for frames in range(0, 130):
        assert chunk_boundaries(frames, chunk_size) == _np_chunks(frames, chunk_size), frames


def test_chunk_golden_cases():
    assert chunk_boundaries(250, 100) == [(0, 100), (100, 100), (200, 50)]
    assert chunk_boundaries(60, 100) == [(0, 60)]            # shorter than a chunk: one chunk of all
    assert chunk_boundaries(60, -1) == [(0, 60)]
    assert len(chunk_boundaries(201, 100)) == math.ceil(201 / 100) == 3


def test_pad_chunk_repeats_edge_frames():
    chunk = np.arange(3)[:, None] * np.ones((1, 2)) + 10  # rows 10, 11, 12
    padded = pad_chunk(chunk, 8)
    # left = floor((8 - 3) / 2) = 2 copies of the first row, right = 3 copies of the last row
    want = np.concatenate([np.repeat(chunk[:1], 2, 0), chunk, np.repeat(chunk[-1:], 3, 0)])
    np.testing.assert_array_equal(padded, want)
    np.testing.assert_array_equal(padded[:, 0], [10, 10, 10, 11, 12, 12, 12, 12])
    assert pad_chunk(chunk, 3) is chunk
    one = pad_chunk(chunk[:1], 25)
    assert one.shape == (25, 2) and np.all(one == 10)


def test_pieces_and_weights():
    feats = np.random.default_rng(1).normal(size=(57, FEAT_DIM)).astype(np.float32)
    pieces = utterance_pieces(feats, chunk_size=25, min_chunk_size=20)
    assert [w for _, w in pieces] == [25, 25, 7]
    np.testing.assert_array_equal(pieces[1][0], feats[25:50])
    last = pieces[2][0]
    assert last.shape == (20, FEAT_DIM)  # 7 frames padded: 6 before, 7 after
    np.testing.assert_array_equal(last[:6], np.repeat(feats[50:51], 6, 0))
    np.testing.assert_array_equal(last[6:13], feats[50:57])
    np.testing.assert_array_equal(last[13:], np.repeat(feats[56:57], 7, 0))


# ------------------------------------------------------------------------------- the extractor
def _np_utterance_vector(model, feats, chunk_size, min_chunk, layer="embedding_a"):
    """sum_k n_k e_k / sum_k n_k over chunks, each chunk run alone (padded as Kaldi) -- restated."""
    num = feats.shape[0]
    size = num if chunk_size == -1 or num < chunk_size else chunk_size
    total, weight = 0.0, 0
    for start in range(0, num, size):
        chunk = feats[start:start + size]
        n = len(chunk)
        if n < min_chunk:
            left = (min_chunk - n) // 2
            chunk = np.concatenate([np.repeat(chunk[:1], left, 0), chunk,
                                    np.repeat(chunk[-1:], min_chunk - n - left, 0)])
        total = total + n * model(chunk[None], training=False)[layer].numpy()[0].astype(np.float64)
        weight += n
    return total / weight


@pytest.mark.parametrize("chunk_size, layer", [(-1, "a"), (30, "a"), (30, "b")])
def test_extract_one_matches_numpy_statement(model, chunk_size, layer):
    extractor = XvectorExtractor(model, FEAT_DIM, embedding_layer=layer, chunk_size=chunk_size, min_chunk_size=25)
    feats = np.random.default_rng(2).normal(size=(77, FEAT_DIM)).astype(np.float32)
    want = _np_utterance_vector(model, feats, chunk_size, 25, f"embedding_{layer}")
    np.testing.assert_allclose(extractor.extract_one("u", feats), want, rtol=1e-5, atol=1e-5)


def test_short_utterance_is_padded_not_refused(model):
    extractor = XvectorExtractor(model, FEAT_DIM, min_chunk_size=25)
    feats = np.random.default_rng(3).normal(size=(4, FEAT_DIM)).astype(np.float32)  # < receptive field 15
    want = _np_utterance_vector(model, feats, -1, 25)
    np.testing.assert_allclose(extractor.extract_one("short", feats), want, rtol=1e-5, atol=1e-5)


def test_batched_extraction_equals_one_by_one(model):
    rng = np.random.default_rng(4)
    lengths = [90, 30, 61, 90, 17, 30, 120, 5, 90, 33]
    utts = [(f"u{i}", rng.normal(size=(n, FEAT_DIM)).astype(np.float32)) for i, n in enumerate(lengths)]
    for max_buffered in (10, 10_000):  # flushing early and batching fully must agree
        extractor = XvectorExtractor(model, FEAT_DIM, chunk_size=30, min_chunk_size=25, batch_size=4,
                                     max_buffered_frames=max_buffered)
        batched = list(extractor.extract(iter(utts)))
        assert [u for u, _ in batched] == [u for u, _ in utts]
        for (utt, vector), (_, feats) in zip(batched, utts):
            np.testing.assert_allclose(vector, extractor.extract_one(utt, feats), rtol=1e-5, atol=1e-5)


def test_dimension_mismatch_names_utterance_and_dims(model):
    extractor = XvectorExtractor(model, FEAT_DIM, source="the network of exp/config.yaml")
    bad = [("good", np.zeros((40, FEAT_DIM), np.float32)), ("bad-utt", np.zeros((40, 7), np.float32))]
    with pytest.raises(ToolError, match="'bad-utt' has features of dimension 7, but the network of exp/config.yaml "
                                        "was trained on dimension 5"):
        list(extractor.extract(iter(bad)))


@pytest.mark.parametrize("opts, message", [(dict(min_chunk_size=10), "below the network's receptive field of 15"),
                                           (dict(chunk_size=0), "--chunk-size must be -1"),
                                           (dict(embedding_layer="c"), "--embedding-layer must be one of a, b")])
def test_impossible_options(model, opts, message):
    with pytest.raises(ToolError, match=message):
        XvectorExtractor(model, FEAT_DIM, **opts)


def _np_sliding_cmn_centered(feats, window=300):
    """kaldi.md "Sliding CMN": window [t-150, t+150) shifted inside [0, T); row minus window mean."""
    num = len(feats)
    out = np.empty_like(feats, dtype=np.float64)
    for t in range(num):
        start = t - window // 2
        end = start + window
        if start < 0:
            end -= start
            start = 0
        if end > num:
            start = max(start - (end - num), 0)
            end = num
        out[t] = feats[t] - feats[start:end].mean(0)
    return out


def test_prepare_features_is_cmn_then_voiced_frames():
    rng = np.random.default_rng(5)
    feats = (rng.normal(size=(420, FEAT_DIM)) + 3).astype(np.float32)
    vad = (rng.random(420) > 0.4).astype(np.float32)
    got = prepare_features(feats, vad, "u")
    want = _np_sliding_cmn_centered(feats.astype(np.float64))[vad > 0.5]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------ tool and shell step
def _make_exp_dir(path, model):
    """An experiment dir per docs/INTERFACES.md (tfspk.train): config.yaml + final/model.weights.h5."""
    (path / "final").mkdir(parents=True)
    nnet = {"name": NNET["arch"], "params": {k: v for k, v in NNET.items() if k != "arch"}}
    (path / "config.yaml").write_text(yaml.safe_dump({"feat_dim": FEAT_DIM, "num_classes": 3, "nnet": nnet}))
    model.save_weights(str(path / "final" / "model.weights.h5"))
    (path / "final" / "DONE").write_text("finished: by the test fixture\n")  # training finished
    return path


def _make_raw_data(path, lengths, dim=FEAT_DIM, silent=()):
    path.mkdir(parents=True)
    rng = np.random.default_rng(6)
    feats, vads, utt2spk = {}, {}, {}
    for i, n in enumerate(lengths):
        utt = f"spk{i % 3}-u{i:02d}"
        feats[utt] = (rng.normal(size=(n, dim)) + rng.normal(size=dim)).astype(np.float32)
        vads[utt] = np.zeros(n, np.float32) if utt in silent else (rng.random(n) > 0.3).astype(np.float32)
        utt2spk[utt] = f"spk{i % 3}"
    with ArchiveWriter(f"ark,scp:{path}/feats.ark,{path}/feats.scp") as writer:
        for utt in sorted(feats):
            writer.write(utt, feats[utt])
    with ArchiveWriter(f"ark,scp:{path}/vad.ark,{path}/vad.scp") as writer:
        for utt in sorted(vads):
            writer.write(utt, vads[utt])
    (path / "utt2spk").write_text("".join(f"{u} {utt2spk[u]}\n" for u in sorted(utt2spk)))
    spk2utt = {}
    for utt in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    return feats, vads, spk2utt


def test_tool_writes_kaldi_vectors_and_refuses_wrong_dims(tmp_path, tool, model):
    # in this process (TensorFlow loaded once); extract_xvectors.sh below runs the console script
    exp = _make_exp_dir(tmp_path / "exp", model)
    feats, vads, _ = _make_raw_data(tmp_path / "data", [120, 40, 333, 80, 9], silent=("spk1-u01",))
    proc = tool(f"tfspk-extract --chunk-size=100 {exp} scp:{tmp_path}/data/feats.scp scp:{tmp_path}/data/vad.scp "
              f"ark,scp:{tmp_path}/xv.ark,{tmp_path}/xv.scp")
    assert "spk1-u01" in proc.stderr and "Done 4 utterances, failed for 1" in proc.stderr
    got = dict(read_rspecifier(f"scp:{tmp_path}/xv.scp"))
    assert sorted(got) == sorted(u for u in feats if u != "spk1-u01")
    for utt, vector in got.items():
        prepared = _np_sliding_cmn_centered(feats[utt].astype(np.float64))[vads[utt] > 0.5].astype(np.float32)
        assert vector.dtype == np.float32 and vector.shape == (6,)
        np.testing.assert_allclose(vector, _np_utterance_vector(model, prepared, 100, 25), rtol=1e-4, atol=1e-4)

    _make_raw_data(tmp_path / "wide", [50, 60], dim=7)
    bad = tool(f"tfspk-extract {exp} scp:{tmp_path}/wide/feats.scp scp:{tmp_path}/wide/vad.scp "
             f"ark,scp:{tmp_path}/bad.ark,{tmp_path}/bad.scp", check=False)
    assert bad.returncode == 1
    assert "'spk0-u00' has features of dimension 7" in bad.stderr and "trained on dimension 5" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "bad.scp").exists() and not (tmp_path / "bad.ark").exists()


def test_incomplete_experiment_dir(tmp_path, model):
    from tfspk.extract import load_extractor
    with pytest.raises(ToolError, match="does not exist"):
        load_extractor(str(tmp_path / "nothing"))
    exp = _make_exp_dir(tmp_path / "exp", model)
    (exp / "final" / "model.weights.h5").unlink()
    with pytest.raises(ToolError, match="missing .*model.weights.h5"):
        load_extractor(str(exp))


def test_extract_xvectors_sh_speaker_means(tmp_path, sh, model):
    exp = _make_exp_dir(tmp_path / "exp", model)
    _make_raw_data(tmp_path / "data", [120, 40, 333, 80, 90, 70])
    sh(f"extract_xvectors.sh --nj 2 --chunk-size 100 {exp} {tmp_path}/data {tmp_path}/xv", cwd=tmp_path)
    xv = tmp_path / "xv"
    utt_vectors = dict(read_rspecifier(f"scp:{xv}/xvector.scp"))
    assert len(utt_vectors) == 6
    parts = [dict(read_rspecifier(f"scp:{xv}/xvector.{j}.scp")) for j in (1, 2)]
    assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])
    assert set(parts[0]) | set(parts[1]) == set(utt_vectors)
    spk2utt = {line.split()[0]: line.split()[1:] for line in (tmp_path / "data" / "spk2utt").read_text().splitlines()}
    means = dict(read_rspecifier(f"scp:{xv}/spk_xvector.scp"))
    assert sorted(means) == sorted(spk2utt)
    for spk, utts in spk2utt.items():
        np.testing.assert_allclose(means[spk], np.mean([utt_vectors[u] for u in utts], axis=0), rtol=1e-5, atol=1e-6)
    num_utts = dict(line.split() for line in (xv / "num_utts.ark").read_text().splitlines())
    assert num_utts == {spk: str(len(utts)) for spk, utts in spk2utt.items()}
    fail = sh(f"extract_xvectors.sh {exp} {tmp_path}/nodata {tmp_path}/xv2", cwd=tmp_path, check=False)
    assert fail.returncode == 1 and f"no such file {tmp_path}/nodata/feats.scp" in fail.stdout + fail.stderr


def test_extract_xvectors_sh_extracts_several_data_dirs_in_the_same_jobs(tmp_path, sh, tool, model):
    """Two <data-dir> <xvector-dir> pairs in one call (one tfspk-extract a job): each dir gets what tfspk-extract
    writes for its part alone, its own speaker means and the job logs."""
    exp = _make_exp_dir(tmp_path / "exp", model)
    _make_raw_data(tmp_path / "a", [120, 40, 333, 80, 90, 70])
    _make_raw_data(tmp_path / "b", [50, 61, 200])
    proc = sh(f"extract_xvectors.sh --nj 2 --chunk-size 100 {exp} {tmp_path}/a {tmp_path}/xa {tmp_path}/b {tmp_path}/xb",
              cwd=tmp_path)
    assert proc.stdout.count("extracting x-vectors of") == 2
    for name, num_utts in (("a", 6), ("b", 3)):
        xv, data = tmp_path / f"x{name}", tmp_path / name
        got = dict(read_rspecifier(f"scp:{xv}/xvector.scp"))
        assert len(got) == num_utts
        for job in (1, 2):
            assert f"{data}/split2/{job}/feats.scp" in (xv / "log" / f"extract.{job}.log").read_text()
            alone = tmp_path / f"alone_{name}{job}"
            tool(f"tfspk-extract --chunk-size=100 {exp} scp:{data}/split2/{job}/feats.scp "
                 f"scp:{data}/split2/{job}/vad.scp ark,scp:{alone}.ark,{alone}.scp")
            expected = dict(read_rspecifier(f"scp:{alone}.scp"))
            part = dict(read_rspecifier(f"scp:{xv}/xvector.{job}.scp"))
            assert sorted(part) == sorted(expected)
            for utt in part:
                np.testing.assert_allclose(part[utt], expected[utt], rtol=1e-6, atol=1e-7)
        spk2utt = {line.split()[0]: line.split()[1:] for line in (data / "spk2utt").read_text().splitlines()}
        means = dict(read_rspecifier(f"scp:{xv}/spk_xvector.scp"))
        assert sorted(means) == sorted(spk2utt)
        for spk, utts in spk2utt.items():
            np.testing.assert_allclose(means[spk], np.mean([got[u] for u in utts], axis=0), rtol=1e-5, atol=1e-6)
    odd = sh(f"extract_xvectors.sh {exp} {tmp_path}/a {tmp_path}/xa {tmp_path}/b", cwd=tmp_path, check=False)
    assert odd.returncode == 1 and "Usage:" in odd.stderr
    same = sh(f"extract_xvectors.sh {exp} {tmp_path}/a {tmp_path}/xa {tmp_path}/b {tmp_path}/xa/", cwd=tmp_path,
              check=False)
    assert same.returncode == 1 and f"into one <xvector-dir> {tmp_path}/xa/" in same.stderr
