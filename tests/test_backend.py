"""The back-end's numerics against independent statements of the formulas (numpy/scipy written here)."""
import struct

import numpy as np
import pytest
import scipy.linalg
from scipy.stats import multivariate_normal

from tfspk.backend import lda, plda, scoring, vectors
from tfspk.io import objects as kaldi_objects
from tfspk.errors import ToolError


def labelled_vectors(rng, num_spk=30, per_spk=12, dim=8, mean_shift=2.0):
    """Vectors from speakers with distinct means: rows, speaker labels."""
    centres = rng.standard_normal((num_spk, dim)) * rng.uniform(0.5, 3.0, dim) + mean_shift
    rows = np.repeat(centres, per_spk, axis=0) + rng.standard_normal((num_spk * per_spk, dim)) @ np.diag(
        rng.uniform(0.3, 1.5, dim))
    speakers = np.repeat([f"s{i:03d}" for i in range(num_spk)], per_spk)
    return rows, speakers


def scatter_matrices(x, labels):
    """St, Sb, Sw exactly as kaldi.md states them, with plain loops."""
    centered = x - x.mean(axis=0)
    n = len(x)
    total = sum(np.outer(row, row) for row in centered) / n
    between = np.zeros_like(total)
    for speaker in set(labels):
        rows = centered[labels == speaker]
        mu = rows.mean(axis=0)
        between += len(rows) * np.outer(mu, mu)
    between /= n
    return total, between, total - between


# ---------------------------------------------------------------------------- LDA
def test_lda_rows_are_generalised_eigenvectors_of_sb_sw():
    rng = np.random.default_rng(0)
    x, labels = labelled_vectors(rng)
    dim = 5
    result = lda.compute_lda(x, labels, dim)
    total, between, within = scatter_matrices(x, labels)
    values, vecs = scipy.linalg.eigh(between, within)  # ascending; vecs^T Sw vecs = I
    expected = vecs[:, ::-1][:, :dim].T
    linear, offset = result.transform[:, :-1], result.transform[:, -1]
    signs = np.sign(np.sum(linear * expected, axis=1))
    np.testing.assert_allclose(linear, signs[:, None] * expected, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(result.eigenvalues[:dim], values[::-1][:dim], rtol=1e-8)
    np.testing.assert_allclose(offset, -linear @ x.mean(axis=0), rtol=1e-10)
    # Applied as transform-vec does, the projected within-class covariance is unit.
    projected = vectors.apply_transform(result.transform, x)
    _, _, projected_within = scatter_matrices(projected, labels)
    np.testing.assert_allclose(projected_within, np.eye(dim), atol=1e-9)


def test_lda_total_covariance_factor_one_whitens_total_covariance():
    rng = np.random.default_rng(1)
    x, labels = labelled_vectors(rng, dim=6)
    result = lda.compute_lda(x, labels, 4, total_covariance_factor=1.0)
    linear = result.transform[:, :-1]
    total, between, _ = scatter_matrices(x, labels)
    np.testing.assert_allclose(linear @ total @ linear.T, np.eye(4), atol=1e-9)
    projected_between = linear @ between @ linear.T
    np.testing.assert_allclose(projected_between, np.diag(np.diag(projected_between)), atol=1e-9)
    assert np.all(np.diff(np.diag(projected_between)) <= 1e-12)


def test_lda_keeps_single_utterance_speakers_in_the_statistics():
    rng = np.random.default_rng(2)
    x, labels = labelled_vectors(rng, num_spk=10, per_spk=5, dim=4)
    extra = rng.standard_normal((3, 4)) * 4
    x_all = np.vstack([x, extra])
    labels_all = np.concatenate([labels, ["solo1", "solo2", "solo3"]])
    result = lda.compute_lda(x_all, labels_all, 2)
    total, between, within = scatter_matrices(x_all, labels_all)
    expected = scipy.linalg.eigh(between, within)[1][:, ::-1][:, :2].T
    linear = result.transform[:, :-1]
    signs = np.sign(np.sum(linear * expected, axis=1))
    np.testing.assert_allclose(linear, signs[:, None] * expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("case, message", [
    ("dim_too_large", "--dim=9 is impossible"),
    ("one_utt_each", "no speaker has more than one utterance"),
    ("too_few", "Too little data for iVector dimension"),
])
def test_lda_errors_are_kaldi_like(case, message):
    rng = np.random.default_rng(3)
    x, labels = labelled_vectors(rng, num_spk=10, per_spk=4, dim=8)
    if case == "dim_too_large":
        args = (x, labels, 9)
    elif case == "one_utt_each":
        args = (x[:9], [f"s{i}" for i in range(9)], 2)
    else:
        args = (x[:6], labels[:6], 2)
    with pytest.raises(ToolError, match=message):
        lda.compute_lda(*args)


# ---------------------------------------------------------------------------- PLDA training
def random_spd(rng, dim, scale=1.0):
    a = rng.standard_normal((dim, dim))
    return scale * (a @ a.T / dim + 0.3 * np.eye(dim))


def sample_two_covariance(rng, between, within, mean, num_spk, per_spk):
    dim = len(mean)
    centres = rng.multivariate_normal(mean, between, num_spk)
    noise = rng.multivariate_normal(np.zeros(dim), within, num_spk * per_spk)
    return [centres[i] + noise[i * per_spk:(i + 1) * per_spk] for i in range(num_spk)]


def covariances_of(model):
    """Within and between covariances in the input space: T W T^T = I, T B T^T = diag(psi)."""
    inverse = np.linalg.inv(model.transform)
    return inverse @ inverse.T, inverse @ np.diag(model.psi) @ inverse.T


def test_plda_em_recovers_the_generating_covariances():
    rng = np.random.default_rng(4)
    dim = 4
    true_between, true_within = random_spd(rng, dim, 3.0), random_spd(rng, dim, 1.0)
    mean = rng.standard_normal(dim)
    num_spk, per_spk = 4000, 10
    groups = sample_two_covariance(rng, true_between, true_within, mean, num_spk, per_spk)
    model = plda.estimate_plda(plda.PldaStats.from_groups(groups), num_em_iters=10)
    within, between = covariances_of(model)
    # Sampling error of a covariance from m independent draws is about sqrt(2/m) relative:
    # between from 4000 speakers ~2.2%, within from 36000 residual dof ~0.7%. Allow ~3 sigma.
    rel = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(b)
    assert rel(within, true_within) < 0.025
    assert rel(between, true_between) < 0.07
    np.testing.assert_allclose(model.mean, mean, atol=4 * np.sqrt(np.max(np.diag(true_between)) / num_spk))
    assert np.all(np.diff(model.psi) <= 0) and np.all(model.psi >= 0)


def test_plda_em_iteration_matches_kaldi_per_speaker_updates():
    """One EM step against the per-speaker update of kaldi.md written as a plain loop."""
    rng = np.random.default_rng(5)
    dim = 3
    groups = [rng.standard_normal((n, dim)) + rng.standard_normal(dim) * 2 for n in rng.integers(1, 6, 25)]
    stats = plda.PldaStats.from_groups(groups)
    mu = np.mean([g.mean(axis=0) for g in groups], axis=0)
    within, between = random_spd(rng, dim), random_spd(rng, dim, 2.0)
    scatter = sum((g - g.mean(axis=0)).T @ (g - g.mean(axis=0)) for g in groups)
    w_stats, w_count = scatter.copy(), sum(len(g) for g in groups) - len(groups)
    b_stats, b_count = np.zeros((dim, dim)), 0
    for g in groups:
        n, m = len(g), g.mean(axis=0) - mu
        sigma = np.linalg.inv(np.linalg.inv(between) + n * np.linalg.inv(within))
        w = sigma @ (n * np.linalg.inv(within) @ m)
        b_stats += sigma + np.outer(w, w)
        b_count += 1
        w_stats += n * (sigma + np.outer(m - w, m - w))
        w_count += 1
    new_within, new_between = plda.em_iteration(stats, within, between, mu)
    np.testing.assert_allclose(new_within, w_stats / w_count, rtol=1e-10)
    np.testing.assert_allclose(new_between, b_stats / b_count, rtol=1e-10)


def test_plda_training_errors():
    rng = np.random.default_rng(6)
    singles = [rng.standard_normal((1, 3)) for _ in range(10)]
    with pytest.raises(ToolError, match="No speakers with multiple utterances"):
        plda.estimate_plda(plda.PldaStats.from_groups(singles))
    few = [rng.standard_normal((2, 5)), rng.standard_normal((2, 5))]
    with pytest.raises(ToolError, match="Too little data"):
        plda.estimate_plda(plda.PldaStats.from_groups(few))
    with pytest.raises(ToolError, match="No stats accumulated"):
        plda.PldaStats.from_groups([])


# ---------------------------------------------------------------------------- PLDA scoring
def random_plda(rng, dim):
    return plda.Plda(rng.standard_normal(dim), rng.standard_normal((dim, dim)) + 2 * np.eye(dim),
                     np.sort(rng.uniform(0.1, 5.0, dim))[::-1])


@pytest.mark.parametrize("num_enroll_utts", [1, 3])
def test_plda_llr_equals_joint_gaussian_likelihood_ratio(num_enroll_utts):
    """LLR = log N([u; v]; same speaker) - log N(u) - log N(v), in the input space, with
    cov(u) = B + W/n for an average of n enrolment vectors, cov(v) = B + W, cov(u, v) = B."""
    rng = np.random.default_rng(7)
    dim = 4
    model = random_plda(rng, dim)
    within, between = covariances_of(model)
    enroll = rng.standard_normal((3, dim)) * 2 + model.mean
    test = rng.standard_normal((5, dim)) * 2 + model.mean
    e_idx, t_idx = np.meshgrid(np.arange(3), np.arange(5), indexing="ij")
    e_idx, t_idx = e_idx.ravel(), t_idx.ravel()
    enroll_t, _ = model.transform_vectors(enroll, num_enroll_utts, normalize_length=False)
    test_t, _ = model.transform_vectors(test, 1, normalize_length=False)
    scores = model.log_likelihood_ratios(enroll_t, num_enroll_utts, test_t, e_idx, t_idx)
    cov_u = between + within / num_enroll_utts
    cov_v = between + within
    joint = np.block([[cov_u, between], [between, cov_v]])
    for k, (i, j) in enumerate(zip(e_idx, t_idx)):
        expected = (multivariate_normal.logpdf(np.concatenate([enroll[i], test[j]]),
                                               np.concatenate([model.mean, model.mean]), joint)
                    - multivariate_normal.logpdf(enroll[i], model.mean, cov_u)
                    - multivariate_normal.logpdf(test[j], model.mean, cov_v))
        assert scores[k] == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_plda_score_matrix_and_mixed_enrolment_counts_agree_with_pairwise():
    rng = np.random.default_rng(8)
    model = random_plda(rng, 5)
    enroll, test = rng.standard_normal((4, 5)), rng.standard_normal((6, 5))
    counts = np.array([1, 2, 2, 7])
    matrix = model.score_matrix(enroll, counts, test)
    for i in range(4):
        n = counts[i]
        mean = n * model.psi / (n * model.psi + 1) * enroll[i]
        var = 1 + model.psi / (n * model.psi + 1)
        for j in range(6):
            l1 = -0.5 * np.sum(np.log(var) + np.log(2 * np.pi) + (test[j] - mean) ** 2 / var)
            l0 = -0.5 * np.sum(np.log(1 + model.psi) + np.log(2 * np.pi) + test[j] ** 2 / (1 + model.psi))
            assert matrix[i, j] == pytest.approx(l1 - l0, rel=1e-10, abs=1e-10)
    e_idx, t_idx = rng.integers(0, 4, 50), rng.integers(0, 6, 50)
    np.testing.assert_allclose(model.log_likelihood_ratios(enroll, counts, test, e_idx, t_idx),
                               matrix[e_idx, t_idx], rtol=1e-12, atol=1e-12)


def test_plda_length_normalisation_factors():
    rng = np.random.default_rng(9)
    model = random_plda(rng, 6)
    x = rng.standard_normal((5, 6))
    y = (x - model.mean) @ model.transform.T
    for n in (1, 4):
        out, factors = model.transform_vectors(x, n)
        expected = np.sqrt(6 / np.sum(y ** 2 / (model.psi + 1.0 / n), axis=1))
        np.testing.assert_allclose(factors, expected, rtol=1e-12)
        np.testing.assert_allclose(out, y * expected[:, None], rtol=1e-12)
        # After normalisation the expected-covariance inner product equals the dimension.
        np.testing.assert_allclose(np.sum(out ** 2 / (model.psi + 1.0 / n), axis=1), 6.0, rtol=1e-12)
    out, factors = model.transform_vectors(x, 1, simple_length_norm=True)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.sqrt(6), rtol=1e-12)
    out, _ = model.transform_vectors(x, 1, normalize_length=False)
    np.testing.assert_allclose(out, y, rtol=1e-12)


def test_plda_smoothing_adds_between_to_within_covariance():
    rng = np.random.default_rng(10)
    model = random_plda(rng, 4)
    within, between = covariances_of(model)
    smoothed = model.smoothed(0.3)
    new_within, new_between = covariances_of(smoothed)
    np.testing.assert_allclose(new_within, within + 0.3 * between, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(new_between, between, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(smoothed.psi, model.psi / (1 + 0.3 * model.psi), rtol=1e-12)
    with pytest.raises(ToolError, match="smoothing"):
        model.smoothed(1.5)


# ---------------------------------------------------------------------------- Kaldi files
def test_plda_text_format_is_kaldis_byte_for_byte(tmp_path):
    model = plda.Plda(np.array([1.0, -2.5]), np.array([[1.0, 0.0], [0.123456789, 3e-8]]), np.array([3.0, 0.25]))
    path = str(tmp_path / "plda.txt")
    model.write(path, binary=False)
    expected = (b"<Plda>  [ 1 -2.5 ]\n [\n  1 0 \n  0.1234568 3e-08 ]\n [ 3 0.25 ]\n</Plda> ")
    assert open(path, "rb").read() == expected
    back = plda.Plda.read(path)
    np.testing.assert_allclose(back.transform, [[1.0, 0.0], [0.1234568, 3e-8]], rtol=0)


def test_plda_binary_format_is_kaldis_byte_for_byte(tmp_path):
    mean, transform, psi = np.array([1.0, 2.0]), np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, 0.25])
    path = str(tmp_path / "plda")
    plda.Plda(mean, transform, psi).write(path)
    int32 = lambda v: b"\x04" + struct.pack("<i", v)
    expected = (b"\0B<Plda> " + b"DV " + int32(2) + struct.pack("<2d", *mean)
                + b"DM " + int32(2) + int32(2) + struct.pack("<4d", *transform.ravel())
                + b"DV " + int32(2) + struct.pack("<2d", *psi) + b"</Plda> ")
    assert open(path, "rb").read() == expected
    back = plda.Plda.read(path)
    assert np.array_equal(back.mean, mean) and np.array_equal(back.transform, transform)
    assert np.array_equal(back.psi, psi)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("double", [True, False])
def test_vector_and_matrix_round_trips(tmp_path, binary, double):
    rng = np.random.default_rng(11)
    vec, mat = rng.standard_normal(7), rng.standard_normal((3, 5))
    vpath, mpath = str(tmp_path / "v"), str(tmp_path / "m")
    kaldi_objects.write_vector(vpath, vec, binary=binary, double=double)
    kaldi_objects.write_matrix(mpath, mat, binary=binary, double=double)
    tol = 0 if (binary and double) else (6e-8 if binary else 1e-6)
    np.testing.assert_allclose(kaldi_objects.read_vector(vpath), vec, rtol=tol, atol=0)
    np.testing.assert_allclose(kaldi_objects.read_matrix(mpath), mat, rtol=tol, atol=0)
    head = open(mpath, "rb").read(5)
    assert head == ((b"\0BDM " if double else b"\0BFM ") if binary else b" [\n  ")


def test_text_vector_layout_and_reading_kaldi_written_text(tmp_path):
    path = str(tmp_path / "mean.vec")
    kaldi_objects.write_vector(path, [0.5, -1, 1e-10, 1234567.8], binary=False, double=True)
    assert open(path).read() == " [ 0.5 -1 1e-10 1234568 ]\n"
    # As Kaldi writes a matrix in text: rows on their own lines, trailing spaces.
    with open(path, "w") as handle:
        handle.write(" [\n  1 2 3 \n  4 5 6 ]\n")
    assert kaldi_objects.read_matrix(path).tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"\0BFV \x04\x05\x00\x00\x00\x00\x00", "truncated"),
    (b" [\n  1 2 \n  3 ]\n", "rows of different lengths"),
    (b" [ 1 x 3 ]\n", "non-numeric"),
    (b"<Plda>  [ 1 2 ]\n [\n  1 0 ]\n [ 3 0.25 ]\n</Plda> ", "inconsistent PLDA model"),
    (b"<Nope> ", "expected token '<Plda>'"),
])
def test_corrupt_kaldi_objects_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "obj"
    path.write_bytes(content)
    reader = plda.Plda.read if b"Pl" in content or b"No" in content else (
        kaldi_objects.read_matrix if b"\n  " in content else kaldi_objects.read_vector)
    with pytest.raises(ToolError, match=message):
        reader(str(path))


# ---------------------------------------------------------------------------- vectors and scoring
def test_transform_vec_linear_affine_and_mismatch():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 3))
    linear = rng.standard_normal((2, 3))
    affine = np.hstack([linear, [[1.0], [-2.0]]])
    np.testing.assert_allclose(vectors.apply_transform(linear, x), np.array([linear @ r for r in x]))
    np.testing.assert_allclose(vectors.apply_transform(affine, x), np.array([linear @ r + [1, -2] for r in x]))
    with pytest.raises(ToolError, match="Dimension mismatch: input vector has dimension 3 and transform has 6"):
        vectors.apply_transform(np.zeros((2, 6)), x)


def test_length_normalisation_matches_formula_and_keeps_zero_vectors():
    x = np.array([[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    out, ratios = vectors.normalize_length(x)
    np.testing.assert_allclose(out[0], [3 / 2.5, 4 / 2.5, 0, 0])  # ||x|| = 5, sqrt(D) = 2
    assert np.array_equal(out[1], x[1]) and ratios[1] == 0
    np.testing.assert_allclose(out[2], x[2])
    out, _ = vectors.normalize_length(x, scaleup=False)
    np.testing.assert_allclose(out[0], [0.6, 0.8, 0, 0])


def test_nan_vector_error_names_the_key():
    with pytest.raises(ToolError, match="key 'b' contains NaN"):
        vectors.check_vectors(["a", "b"], np.array([[1.0, 2.0], [np.nan, 0.0]]), "ark:x")


@pytest.mark.parametrize("num_left, num_right, num_trials", [
    (10, 12, 100),     # dense: every pair nearly used
    (5, 400, 2000),    # grouped by the few enrolment vectors
    (300, 6, 2000),    # grouped by the few test vectors
    (500, 500, 600),   # sparse: gathered rows
])
def test_pair_dots_strategies_match_the_definition(num_left, num_right, num_trials):
    rng = np.random.default_rng(13)
    left, right = rng.standard_normal((num_left, 7)), rng.standard_normal((num_right, 7))
    li, ri = rng.integers(0, num_left, num_trials), rng.integers(0, num_right, num_trials)
    expected = np.array([left[i] @ right[j] for i, j in zip(li, ri)])
    np.testing.assert_allclose(scoring.pair_dots(left, right, li, ri), expected, rtol=1e-12, atol=1e-12)


def test_cosine_scores_formula():
    rng = np.random.default_rng(14)
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
    li, ri = np.array([0, 1, 2, 2]), np.array([3, 0, 1, 3])
    expected = [a[i] @ b[j] / (np.linalg.norm(a[i]) * np.linalg.norm(b[j])) for i, j in zip(li, ri)]
    np.testing.assert_allclose(scoring.cosine_scores(a, b, li, ri), expected, rtol=1e-12)


def test_resolve_trials_skips_and_counts_missing_keys():
    warnings = []
    kept, ei, ti, missing = scoring.resolve_trials(
        [("a", "x"), ("zz", "x"), ("b", "nope"), ("b", "y")], ["a", "b"], ["x", "y"], warnings.append)
    assert kept.tolist() == [0, 3] and ei.tolist() == [0, 1] and ti.tolist() == [0, 1] and missing == 2
    assert warnings == ["Key zz not present in training iVectors.", "Key nope not present in test iVectors."]


@pytest.mark.parametrize("top_n", [0, 3, 10])
def test_adaptive_snorm_formula(top_n):
    rng = np.random.default_rng(15)
    enroll_cohort, test_cohort = rng.standard_normal((3, 10)), rng.standard_normal((4, 10))
    raw = rng.standard_normal(5)
    ei, ti = np.array([0, 1, 2, 0, 1]), np.array([3, 2, 1, 0, 0])

    def stats(row):
        chosen = np.sort(row)[::-1][:top_n] if top_n else row
        return chosen.mean(), np.sqrt(np.mean((chosen - chosen.mean()) ** 2))
    expected = []
    for s, i, j in zip(raw, ei, ti):
        (me, se), (mt, st) = stats(enroll_cohort[i]), stats(test_cohort[j])
        expected.append(0.5 * ((s - me) / se + (s - mt) / st))
    got = scoring.adaptive_snorm(raw, scoring.top_n_statistics(enroll_cohort, top_n),
                                 scoring.top_n_statistics(test_cohort, top_n), ei, ti)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    blockwise = scoring.cohort_statistics(lambda a, b: enroll_cohort[a:b], 3, top_n, rows_per_block=2)
    np.testing.assert_allclose(blockwise, scoring.top_n_statistics(enroll_cohort, top_n))


def test_model_files_agree_with_the_kaldi_io_package(tmp_path, monkeypatch):
    """A second, independent Kaldi reader/writer (the kaldi-io package) on the same files."""
    monkeypatch.setenv("KALDI_ROOT", "/")  # silence kaldi-io's import-time banner
    import kaldi_io
    rng = np.random.default_rng(16)
    matrix, vector = rng.standard_normal((3, 4)), rng.standard_normal(5)
    for binary in (True, False):
        kaldi_objects.write_matrix(str(tmp_path / "m"), matrix, binary=binary)
        kaldi_objects.write_vector(str(tmp_path / "v"), vector, binary=binary, double=True)
        with open(tmp_path / "m", "rb") as handle:
            np.testing.assert_allclose(kaldi_io.read_mat(handle), matrix, rtol=1e-6)
        with open(tmp_path / "v", "rb") as handle:
            np.testing.assert_allclose(kaldi_io.read_vec_flt(handle), vector, rtol=1e-6)
    with open(tmp_path / "k", "wb") as handle:
        kaldi_io.write_mat(handle, matrix.astype(np.float32))
    np.testing.assert_array_equal(kaldi_objects.read_matrix(str(tmp_path / "k")), matrix.astype(np.float32))
