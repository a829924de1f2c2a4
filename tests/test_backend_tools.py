"""The back-end and metric command-line tools: Kaldi arguments, files and numbers, and bad input."""
import shutil

import numpy as np
import pytest

from tfspk.io import objects as kaldi_objects
from tfspk.io import ark
from conftest import run

DIM = 12


def write_vectors(path, items):
    with ark.ArchiveWriter(f"ark:{path}") as writer:
        for key, vector in items:
            writer.write(key, np.asarray(vector, dtype=np.float32))


def read_vectors(path):
    return dict(ark.read_rspecifier(f"ark:{path}"))


def read_scores(path):
    out = {}
    for line in open(path):
        e, t, s = line.split()
        out[(e, t)] = float(s)
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Train vectors of 30 speakers (6 utts each, one speaker with a single utt), test vectors, trials."""
    root = tmp_path_factory.mktemp("backend")
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((30, DIM)) * 2 + 1
    train, utt2spk = [], []
    for s in range(30):
        for i in range(1 if s == 29 else 6):
            key = f"spk{s:02d}-utt{i}"
            train.append((key, centres[s] + rng.standard_normal(DIM) * 0.7))
            utt2spk.append((key, f"spk{s:02d}"))
    write_vectors(root / "train.ark", train)
    (root / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utt2spk))
    spk2utt = {}
    for u, s in utt2spk:
        spk2utt.setdefault(s, []).append(u)
    (root / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in spk2utt.items()))
    test_centres = rng.standard_normal((5, DIM)) * 2 + 1
    test = [(f"t{s}-{i}", test_centres[s] + rng.standard_normal(DIM) * 0.7) for s in range(5) for i in range(3)]
    write_vectors(root / "test.ark", test)
    keys = [k for k, _ in test]
    lines = [f"{a} {b} {'target' if a[:2] == b[:2] else 'nontarget'}\n" for a in keys for b in keys if a < b]
    (root / "trials").write_text("".join(lines))
    return root


def test_recipe_pipeline_matches_the_formulas(data, tmp_path):
    """voxceleb v2 stages 9-11 with tfspk tools, each output checked against numpy."""
    d = data
    run(f"tfspk-ivector-mean ark:{d}/train.ark {tmp_path}/mean.vec")
    train = read_vectors(d / "train.ark")
    train_matrix = np.array([train[k] for k in train], dtype=np.float64)
    mean = kaldi_objects.read_vector(str(tmp_path / "mean.vec"))
    np.testing.assert_allclose(mean, train_matrix.mean(axis=0), rtol=1e-6)
    assert (tmp_path / "mean.vec").read_bytes().startswith(b" [ ")  # Kaldi's ivector-mean writes text

    run(f'tfspk-ivector-compute-lda --dim=6 --total-covariance-factor=0.0 '
        f'"ark:tfspk-ivector-subtract-global-mean ark:{d}/train.ark ark:- |" ark:{d}/utt2spk {tmp_path}/transform.mat')
    lda = kaldi_objects.read_matrix(str(tmp_path / "transform.mat"))
    assert lda.shape == (6, DIM + 1) and (tmp_path / "transform.mat").read_bytes()[:5] == b"\0BFM "

    chain = (f"tfspk-ivector-subtract-global-mean ark:{d}/train.ark ark:- | "
             f"tfspk-transform-vec {tmp_path}/transform.mat ark:- ark:- | tfspk-ivector-normalize-length ark:- ark:-")
    run(f"{chain} > {tmp_path}/train_lda.ark")
    got = read_vectors(tmp_path / "train_lda.ark")
    centered = train_matrix - train_matrix.mean(axis=0)
    projected = centered @ lda[:, :-1].T + lda[:, -1]
    expected = projected * np.sqrt(6) / np.linalg.norm(projected, axis=1, keepdims=True)
    np.testing.assert_allclose(np.array([got[k] for k in train]), expected, rtol=2e-5, atol=2e-6)

    run(f'tfspk-ivector-compute-plda ark:{d}/spk2utt "ark:{chain} |" {tmp_path}/plda')
    run(f"tfspk-ivector-copy-plda --binary=false {tmp_path}/plda {tmp_path}/plda.txt")
    text = (tmp_path / "plda.txt").read_bytes()
    assert text.startswith(b"<Plda>  [ ") and text.endswith(b" ]\n</Plda> ")
    mean_p, transform, psi = kaldi_objects.read_plda_parts(str(tmp_path / "plda"))
    assert np.all(np.diff(psi) <= 0)

    test_chain = (f"ark:tfspk-ivector-subtract-global-mean {tmp_path}/mean.vec ark:{d}/test.ark ark:- | "
                  f"tfspk-transform-vec {tmp_path}/transform.mat ark:- ark:- | tfspk-ivector-normalize-length ark:- ark:- |")
    run(f'tfspk-ivector-plda-scoring --normalize-length=true "tfspk-ivector-copy-plda --smoothing=0.0 '
        f'{tmp_path}/plda - |" "{test_chain}" "{test_chain}" "cut -d\' \' -f1,2 {d}/trials |" {tmp_path}/scores')
    scores = read_scores(tmp_path / "scores")
    assert len(scores) == len((d / "trials").read_text().splitlines())

    # Independent LLR: Kaldi's formula per trial, on vectors prepared with numpy.
    test = read_vectors(d / "test.ark")
    prepared = {}
    for key, x in test.items():
        y = lda[:, :-1] @ (x - mean) + lda[:, -1]
        y = y * np.sqrt(6) / np.linalg.norm(y)
        z = transform @ (y - mean_p)
        prepared[key] = z * np.sqrt(6 / np.sum(z ** 2 / (psi + 1)))
    for (e, t), score in list(scores.items())[:40]:
        u, v = prepared[e], prepared[t]
        m, var = psi / (psi + 1) * u, 1 + psi / (psi + 1)
        llr = (-0.5 * np.sum(np.log(var) + (v - m) ** 2 / var)
               + 0.5 * np.sum(np.log(1 + psi) + v ** 2 / (1 + psi)))
        assert score == pytest.approx(llr, rel=2e-5, abs=2e-5)
    line = (tmp_path / "scores").read_text().splitlines()[0].split()
    assert line[2] == "%.7g" % float(line[2])  # Kaldi text precision 7


def test_speaker_means_and_num_utts_in_plda_scoring(data, tmp_path, tool):
    d = data
    tool(f"tfspk-ivector-mean ark:{d}/spk2utt ark:{d}/train.ark ark:{tmp_path}/spk.ark ark,t:{tmp_path}/num_utts.ark")
    counts = dict(line.split() for line in open(tmp_path / "num_utts.ark"))
    assert counts["spk00"] == "6" and counts["spk29"] == "1" and len(counts) == 30
    train, spk = read_vectors(d / "train.ark"), read_vectors(tmp_path / "spk.ark")
    np.testing.assert_allclose(spk["spk03"], np.mean([train[f"spk03-utt{i}"] for i in range(6)], axis=0), rtol=1e-6)

    model = kaldi_objects.read_plda_parts
    tool(f"tfspk-ivector-compute-plda ark:{d}/spk2utt ark:{d}/train.ark {tmp_path}/plda")
    (tmp_path / "trials").write_text("spk03 spk03-utt1\nspk29 spk03-utt2\n")
    tool(f"tfspk-ivector-plda-scoring --normalize-length=false --num-utts=ark:{tmp_path}/num_utts.ark "
        f"{tmp_path}/plda ark:{tmp_path}/spk.ark ark:{d}/train.ark {tmp_path}/trials {tmp_path}/scores")
    mean_p, transform, psi = model(str(tmp_path / "plda"))
    for (e, t), score in read_scores(tmp_path / "scores").items():
        n = 6 if e == "spk03" else 1
        u, v = transform @ (spk[e] - mean_p), transform @ (train[t] - mean_p)
        m, var = n * psi / (n * psi + 1) * u, 1 + psi / (n * psi + 1)
        llr = -0.5 * np.sum(np.log(var) + (v - m) ** 2 / var) + 0.5 * np.sum(np.log(1 + psi) + v ** 2 / (1 + psi))
        assert score == pytest.approx(llr, rel=2e-5, abs=2e-5)


def test_dot_product_cosine_and_score_norm_tools(data, tmp_path, tool):
    d = data
    tool(f"tfspk-ivector-compute-dot-products {d}/trials ark:{d}/test.ark ark:{d}/test.ark {tmp_path}/dot")
    tool(f"tfspk-cosine-scoring {d}/trials ark:{d}/test.ark ark:{d}/test.ark {tmp_path}/cos")
    test = read_vectors(d / "test.ark")
    dots, cosines = read_scores(tmp_path / "dot"), read_scores(tmp_path / "cos")
    for (e, t), value in dots.items():
        u, v = test[e].astype(float), test[t].astype(float)
        assert value == pytest.approx(u @ v, rel=1e-6)
        assert cosines[(e, t)] == pytest.approx(u @ v / np.linalg.norm(u) / np.linalg.norm(v), rel=1e-6, abs=1e-7)
    tool(f"tfspk-score-norm --top-n=20 ark:{d}/test.ark ark:{d}/test.ark ark:{d}/train.ark {tmp_path}/cos {tmp_path}/asnorm")
    cohort = np.array(list(read_vectors(d / "train.ark").values()), dtype=float)
    cohort /= np.linalg.norm(cohort, axis=1, keepdims=True)

    def stats(x):
        top = np.sort(cohort @ (x / np.linalg.norm(x)))[-20:]
        return top.mean(), top.std()
    for (e, t), value in read_scores(tmp_path / "asnorm").items():
        (me, se), (mt, st) = stats(test[e].astype(float)), stats(test[t].astype(float))
        s = cosines[(e, t)]
        assert value == pytest.approx(0.5 * ((s - me) / se + (s - mt) / st), rel=1e-5, abs=1e-5)


def test_one_table_on_both_sides_is_read_once_with_the_scores_of_two_reads(data, tmp_path, tool):
    """The recipes give the same "ark:<pipeline> |" as both tables of a scoring: its pipeline runs once, and the
    scores are those of reading the table twice (two different rspecifiers of the same vectors)."""
    d = data
    tool(f"tfspk-ivector-compute-plda ark:{d}/spk2utt ark:{d}/train.ark {tmp_path}/plda")
    counted = f"ark:echo >> {tmp_path}/runs; cat {d}/test.ark |"
    twice = [f"ark:{d}/test.ark", f"ark:cat {d}/test.ark |"]
    for command, args in (("tfspk-ivector-plda-scoring", [f"{tmp_path}/plda"]), ("tfspk-cosine-scoring", []),
                          ("tfspk-score-norm", [])):
        for name, tables in (("once", [counted, counted]), ("twice", twice)):
            if command == "tfspk-score-norm":
                argv = [command, "--top-n=5", *tables, f"ark:{d}/train.ark", f"{tmp_path}/cos_twice", f"{tmp_path}/{name}"]
            elif command == "tfspk-cosine-scoring":
                argv = [command, f"{d}/trials", *tables, f"{tmp_path}/{name}"]
            else:
                argv = [command, *args, *tables, f"{d}/trials", f"{tmp_path}/{name}"]
            (tmp_path / "runs").write_text("")
            proc = tool(argv)
            if command == "tfspk-cosine-scoring":
                (tmp_path / f"cos_{name}").write_bytes((tmp_path / name).read_bytes())
            if name == "once":
                assert (tmp_path / "runs").read_text() == "\n", command
                assert "read once" in proc.stderr
        assert (tmp_path / "once").read_text() == (tmp_path / "twice").read_text(), command


def test_compute_eer_min_dcf_and_report_outputs(data, tmp_path, tool):
    d = data
    tool(f"tfspk-cosine-scoring {d}/trials ark:{d}/test.ark ark:{d}/test.ark {tmp_path}/cos")
    proc = run(f"paste -d' ' {d}/trials {tmp_path}/cos | awk '{{print $6, $3}}' | tfspk-compute-eer -")
    assert "Equal error rate is" in proc.stderr and "at threshold" in proc.stderr
    labels = [line.split()[2] == "target" for line in open(d / "trials")]
    scores = [float(line.split()[2]) for line in open(tmp_path / "cos")]
    t = np.sort(np.array([s for s, l in zip(scores, labels) if l], dtype=np.float32))
    f = np.sort(np.array([s for s, l in zip(scores, labels) if not l], dtype=np.float32))
    p = 0
    while p + 1 < len(t) and not f[max(len(f) - 1 - int(len(f) * p / len(t)), 0)] < t[p]:
        p += 1
    assert proc.stdout == "%.4g" % (100.0 * p / len(t))  # Kaldi prints no newline

    proc = tool(f"tfspk-compute-min-dcf --p-target 0.01 {tmp_path}/cos {d}/trials")
    value = float(proc.stdout)
    assert proc.stdout.endswith("\n") and len(proc.stdout.strip().split(".")[1]) == 4
    assert "minDCF is" in proc.stderr and "p-target=0.01" in proc.stderr
    assert 0 <= value <= 1

    proc = tool(f"tfspk-score-report --names=cos --det-plot={tmp_path}/det.png {d}/trials {tmp_path}/cos")
    header, row = proc.stdout.splitlines()[:2]
    assert header.split()[3:] == ["EER(%)", "minDCF(0.01)", "minDCF(0.001)", "minDCF08"]
    assert float(row.split()[3]) == pytest.approx(100.0 * p / len(t), abs=1e-4)
    assert float(row.split()[4]) == pytest.approx(value, abs=1e-4)
    assert (tmp_path / "det.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name, command, message", [
    ("trials_missing_all", "tfspk-ivector-compute-dot-products {t}/bad_trials ark:{d}/test.ark ark:{d}/test.ark {t}/out",
     "none of the 2 trials could be scored"),
    ("empty_trials", "tfspk-cosine-scoring {t}/empty ark:{d}/test.ark ark:{d}/test.ark {t}/out", "no trials"),
    ("nan_vector", "tfspk-ivector-normalize-length ark:{t}/nan.ark ark:{t}/out", "key 'b' contains NaN"),
    ("dim_mismatch", "tfspk-transform-vec {t}/small.mat ark:{d}/test.ark ark:{t}/out",
     "input vector has dimension 12 and transform has 4 columns"),
    ("mixed_dims", "tfspk-ivector-mean ark:{t}/mixed.ark {t}/out", "key 'b' has dimension 3, expected 2"),
    ("lda_dim", "tfspk-ivector-compute-lda --dim=20 ark:{d}/train.ark ark:{d}/utt2spk {t}/out",
     "--dim=20 is impossible"),
    ("plda_too_few", "tfspk-ivector-compute-plda ark:{t}/spk2utt_few ark:{d}/train.ark {t}/out",
     "Too little data to estimate PLDA"),
    ("plda_singletons", "tfspk-ivector-compute-plda ark:{t}/spk2utt_single ark:{d}/train.ark {t}/out",
     "No speakers with multiple utterances"),
    ("plda_dim", "tfspk-ivector-plda-scoring {t}/plda2 ark:{d}/test.ark ark:{d}/test.ark {d}/trials {t}/out",
     "the PLDA model has dimension 2"),
    ("eer_line", "tfspk-compute-eer {t}/bad_eer", "bad_eer:2: Invalid input line"),
    ("eer_no_targets", "tfspk-compute-eer {t}/no_targets", "No target scores seen"),
    ("mindcf_missing", "tfspk-compute-min-dcf {t}/extra_scores {d}/trials", "Missing entry for x and y"),
    ("corrupt_plda", "tfspk-ivector-copy-plda {t}/small.mat {t}/out", "expected token '<Plda>'"),
    ("missing_file", "tfspk-ivector-copy-plda {t}/nowhere {t}/out", "no such file"),
])
def test_bad_input_is_a_clear_error(data, tmp_path, tool, name, command, message):
    d, t = data, tmp_path
    (t / "bad_trials").write_text("nobody t0-1\nt0-1 nobody\n")
    (t / "empty").write_text("")
    write_nan_ark(t / "nan.ark")
    write_vectors(t / "mixed.ark", [("a", [1.0, 2.0]), ("b", [1.0, 2.0, 3.0])])
    kaldi_objects.write_matrix(str(t / "small.mat"), np.ones((2, 4)))
    (t / "spk2utt_few").write_text("spk00 spk00-utt0 spk00-utt1\n")
    (t / "spk2utt_single").write_text("spk00 spk00-utt0\nspk01 spk01-utt0\n")
    kaldi_objects.write_plda_parts(str(t / "plda2"), np.zeros(2), np.eye(2), np.ones(2))
    (t / "bad_eer").write_text("1.0 target\n2.0\n")
    (t / "no_targets").write_text("1.0 nontarget\n")
    (t / "extra_scores").write_text("x y 1.0\n")
    proc = tool(command.format(d=d, t=t), check=False)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (t / "out").exists()


def write_nan_ark(path):
    """ArchiveWriter refuses NaN, so write the binary layout directly (as a broken extractor might)."""
    import struct
    body = b""
    for key, values in (("a", [1.0, 2.0]), ("b", [float("nan"), 1.0])):
        body += key.encode() + b" \0BFV \x04" + struct.pack("<i", 2) + struct.pack("<2f", *values)
    path.write_bytes(body)


def test_missing_trial_keys_are_warned_counted_and_skipped(data, tmp_path, tool):
    d = data
    (tmp_path / "trials").write_text("t0-0 t0-1\nghost t0-1\nt0-0 t1-1 nontarget\n")
    proc = tool(f"tfspk-ivector-compute-dot-products {tmp_path}/trials ark:{d}/test.ark ark:{d}/test.ark {tmp_path}/out")
    assert "Key ghost not present in 1st table of ivectors." in proc.stderr
    assert "Processed 2 trials 1 had errors." in proc.stderr
    assert [line.split()[:2] for line in open(tmp_path / "out")] == [["t0-0", "t0-1"], ["t0-0", "t1-1"]]


@pytest.mark.kaldi
@pytest.mark.skipif(shutil.which("ivector-plda-scoring") is None, reason="Kaldi binaries not on PATH")
def test_kaldi_binaries_agree_with_tfspk(data, tmp_path):
    """Kaldi reads tfspk's model files and the reverse, and both score the same."""
    d = data
    run(f"ivector-compute-plda ark:{d}/spk2utt ark:{d}/train.ark {tmp_path}/plda_kaldi")
    run(f"tfspk-ivector-compute-plda ark:{d}/spk2utt ark:{d}/train.ark {tmp_path}/plda_tfspk")
    for model in ("plda_kaldi", "plda_tfspk"):
        run(f"ivector-plda-scoring {tmp_path}/{model} ark:{d}/test.ark ark:{d}/test.ark "
            f"'cut -d\" \" -f1,2 {d}/trials |' {tmp_path}/{model}.kaldi")
        run(f"tfspk-ivector-plda-scoring {tmp_path}/{model} ark:{d}/test.ark ark:{d}/test.ark "
            f"{d}/trials {tmp_path}/{model}.tfspk")
    reference = read_scores(tmp_path / "plda_kaldi.kaldi")
    for name in ("plda_kaldi.tfspk", "plda_tfspk.kaldi", "plda_tfspk.tfspk"):
        other = read_scores(tmp_path / name)
        for key, value in reference.items():
            assert other[key] == pytest.approx(value, rel=1e-4, abs=1e-4)
    run(f"ivector-compute-lda --dim=5 ark:{d}/train.ark ark:{d}/utt2spk {tmp_path}/lda_kaldi")
    run(f"tfspk-ivector-compute-lda --dim=5 ark:{d}/train.ark ark:{d}/utt2spk {tmp_path}/lda_tfspk")
    a = kaldi_objects.read_matrix(str(tmp_path / "lda_kaldi"))
    b = kaldi_objects.read_matrix(str(tmp_path / "lda_tfspk"))
    signs = np.sign(np.sum(a * b, axis=1))
    np.testing.assert_allclose(b, signs[:, None] * a, rtol=1e-3, atol=1e-4)


def test_score_norm_with_plda_cohort_scores(data, tmp_path, tool):
    d = data
    tool(f"tfspk-ivector-compute-plda ark:{d}/spk2utt ark:{d}/train.ark {tmp_path}/plda")
    tool(f"tfspk-ivector-plda-scoring --normalize-length=false {tmp_path}/plda ark:{d}/test.ark ark:{d}/test.ark "
         f"{d}/trials {tmp_path}/raw")
    tool(f"tfspk-score-norm --top-n=10 --normalize-length=false --plda={tmp_path}/plda ark:{d}/test.ark "
         f"ark:{d}/test.ark ark:{d}/train.ark {tmp_path}/raw {tmp_path}/norm")
    mean, transform, psi = kaldi_objects.read_plda_parts(str(tmp_path / "plda"))
    test = {k: transform @ (v - mean) for k, v in read_vectors(d / "test.ark").items()}
    cohort = [transform @ (v - mean) for v in read_vectors(d / "train.ark").values()]

    def llr(u, v):
        m, var = psi / (psi + 1) * u, 1 + psi / (psi + 1)
        return -0.5 * np.sum(np.log(var) + (v - m) ** 2 / var) + 0.5 * np.sum(np.log(1 + psi) + v ** 2 / (1 + psi))

    def stats(u):
        top = np.sort([llr(u, c) for c in cohort])[-10:]
        return top.mean(), top.std()
    raw = read_scores(tmp_path / "raw")
    for (e, t), value in list(read_scores(tmp_path / "norm").items())[:15]:
        (me, se), (mt, st) = stats(test[e]), stats(test[t])
        s = raw[(e, t)]
        assert value == pytest.approx(0.5 * ((s - me) / se + (s - mt) / st), rel=1e-5, abs=1e-5)


def test_int32_tables_and_binary_mean(data, tmp_path, tool):
    from tfspk.io import scalar_table as tables
    tables.write_int32_table(f"ark:{tmp_path}/n.ark", [("a", 3), ("b", 70000)])
    assert (tmp_path / "n.ark").read_bytes() == b"a \0B\x04\x03\x00\x00\x00b \0B\x04\x70\x11\x01\x00"
    assert tables.read_int32_table(f"ark:{tmp_path}/n.ark") == {"a": 3, "b": 70000}
    tables.write_int32_table(f"ark,t:{tmp_path}/t.ark", [("a", 3)])
    assert (tmp_path / "t.ark").read_text() == "a 3\n" and tables.read_int32_table(f"{tmp_path}/t.ark") == {"a": 3}
    tool(f"tfspk-ivector-mean --binary=true ark:{data}/test.ark {tmp_path}/mean.vec")
    assert (tmp_path / "mean.vec").read_bytes()[:5] == b"\0BDV "


def test_lda_skips_utterances_without_speaker_and_subtract_mean_options(data, tmp_path, tool):
    d = data
    lines = (d / "utt2spk").read_text().splitlines()
    (tmp_path / "utt2spk").write_text("\n".join(lines[1:]) + "\n")
    proc = tool(f"tfspk-ivector-compute-lda --dim=4 --binary=false ark:{d}/train.ark ark:{tmp_path}/utt2spk "
                f"{tmp_path}/lda.txt")
    assert f"utt2spk has no entry for utterance {lines[0].split()[0]}, skipping it." in proc.stderr
    assert "Read 174 utterances, 1 with errors." in proc.stderr
    assert (tmp_path / "lda.txt").read_text().startswith(" [\n  ")
    assert kaldi_objects.read_matrix(str(tmp_path / "lda.txt")).shape == (4, DIM + 1)
    tool(f"tfspk-ivector-subtract-global-mean --subtract-mean=false ark:{d}/test.ark ark,t:{tmp_path}/copy.txt")
    test, copy = read_vectors(d / "test.ark"), dict(ark.read_rspecifier(f"ark:{tmp_path}/copy.txt"))
    assert all(np.allclose(copy[k], test[k], rtol=1e-6) for k in test)
