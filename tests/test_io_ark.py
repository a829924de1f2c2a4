"""tfspk.io.ark / compressed: archive round trips, pipes, offsets, compressed matrices, bad input.

Compressed matrices are checked against an independent scalar restatement of Kaldi's
compressed-matrix.cc (CopyFromMat / CopyToMat) written below, element by element.
"""
import os
import shutil
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest

from conftest import run
from tfspk.errors import ToolError
from tfspk.io import ark

f32 = np.float32


# ---------------------------------------------------------------- independent Kaldi reference
def ref_float_to_uint(mn, rng, v, levels):
    f = f32(f32(f32(v) - mn) / rng)
    f = min(max(f, f32(0)), f32(1))
    return int(float(f32(f * f32(levels))) + 0.499)


def ref_uint16_to_float(mn, rng, u):
    return f32(mn + f32(f32(rng * f32(1.52590218966964e-05)) * f32(u)))


def ref_char_to_float(p0, p25, p75, p100, c):
    if c <= 64:
        return f32(float(p0) + float(f32(f32(p25 - p0) * f32(c))) * (1 / 64.0))
    if c <= 192:
        return f32(float(p25) + float(f32(f32(p75 - p25) * f32(c - 64))) * (1 / 128.0))
    return f32(float(p75) + float(f32(f32(p100 - p75) * f32(c - 192))) * (1 / 63.0))


def ref_trunc_x86(x):
    """static_cast<int>(double) as x86 does it: NaN/inf/out-of-range give INT_MIN."""
    if x != x or not -2.0 ** 31 < x < 2.0 ** 31:
        return -2 ** 31
    return int(x)


def ref_float_to_char(p0, p25, p75, p100, v):
    with np.errstate(all="ignore"):
        if v < p25:
            q, lo, hi, levels, p, span = 0, 0, 64, 64, p0, f32(p25 - p0)
        elif v < p75:
            q, lo, hi, levels, p, span = 64, 64, 192, 128, p25, f32(p75 - p25)
        else:
            q, lo, hi, levels, p, span = 192, 192, 255, 63, p75, f32(p100 - p75)
        f = f32(f32(v - p) / span)
        return min(max(q + ref_trunc_x86(float(f32(f * f32(levels))) + 0.5), lo), hi)


def ref_compress_cm(mat):
    """Kaldi kSpeechFeature: bytes of the payload after the 'CM ' token."""
    mat = mat.astype(f32)
    rows, cols = mat.shape
    mn, mx = f32(mat.min()), f32(mat.max())
    if mn == mx:
        mx = f32(float(mn) + 1.0 + abs(float(mn)))
    rng = f32(mx - mn)
    out = struct.pack("<ffii", mn, rng, rows, cols)
    headers, data = b"", b""
    for c in range(cols):
        col = sorted(mat[:, c].tolist())
        if rows >= 5:
            q = rows // 4
            idx = [0, q, 3 * q, rows - 1]
        else:
            idx = [0, 1, 2, 3]
        p = []
        for i, j in enumerate(idx):
            if j < rows:
                u = ref_float_to_uint(mn, rng, col[j], 65535)
                if i:
                    u = max(u, p[-1] + 1)
                if i < 3:
                    u = min(u, 65532 + i)
            else:
                u = p[-1] + 1
            p.append(u)
        headers += struct.pack("<4H", *p)
        pf = [ref_uint16_to_float(mn, rng, u) for u in p]
        data += bytes(ref_float_to_char(*pf, f32(v)) for v in mat[:, c])
    return out + headers + data


def ref_decompress_cm(payload):
    mn, rng, rows, cols = struct.unpack("<ffii", payload[:16])
    mn, rng = f32(mn), f32(rng)
    out = np.zeros((rows, cols), dtype=f32)
    for c in range(cols):
        p = struct.unpack("<4H", payload[16 + 8 * c:24 + 8 * c])
        pf = [ref_uint16_to_float(mn, rng, u) for u in p]
        base = 16 + 8 * cols + rows * c
        for r in range(rows):
            out[r, c] = ref_char_to_float(*pf, payload[base + r])
    return out


def ref_compress_cm2(mat):
    mat = mat.astype(f32)
    mn, mx = f32(mat.min()), f32(mat.max())
    if mn == mx:
        mx = f32(float(mn) + 1.0 + abs(float(mn)))
    rng = f32(mx - mn)
    codes = [ref_float_to_uint(mn, rng, v, 65535) for v in mat.ravel()]
    return struct.pack("<ffii", mn, rng, *mat.shape) + struct.pack(f"<{len(codes)}H", *codes)


def features(rows, cols, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, cols)) * np.linspace(1, 8, cols) + np.arange(cols)).astype(f32)


# ---------------------------------------------------------------- plain round trips
def kaldi_io_module(monkeypatch):
    monkeypatch.setenv("KALDI_ROOT", "/")   # silence kaldi-io's import-time banner
    import kaldi_io
    return kaldi_io


def test_binary_round_trip_and_kaldi_io_agrees(tmp_path, monkeypatch):
    m = features(7, 3)
    items = {"a": m, "b": m.astype(np.float64) * 3, "c": m[0], "d": m[1].astype(np.float64),
             "e": np.zeros((0, 0), f32)}
    ark.write_archive(f"ark,scp:{tmp_path}/x.ark,{tmp_path}/x.scp", items.items())
    got = dict(ark.read_rspecifier(f"ark:{tmp_path}/x.ark"))
    assert list(got) == list(items)
    for key, value in items.items():
        assert got[key].dtype == value.dtype and np.array_equal(got[key], value)
    kio = kaldi_io_module(monkeypatch)
    fd = open(tmp_path / "x.ark", "rb")
    assert kio.read_key(fd) == "a"
    assert np.array_equal(kio.read_mat(fd), m)
    assert kio.read_key(fd) == "b" and np.array_equal(kio.read_mat(fd), m.astype(np.float64) * 3)
    assert kio.read_key(fd) == "c" and np.array_equal(kio.read_vec_flt(fd), m[0])
    fd.close()
    # our reader on an archive kaldi-io wrote
    with open(tmp_path / "k.ark", "wb") as handle:
        kio.write_mat(handle, m, key="k1")
        kio.write_vec_flt(handle, m[2], key="k2")
    got = dict(ark.read_rspecifier(f"ark:{tmp_path}/k.ark"))
    assert np.array_equal(got["k1"], m) and np.array_equal(got["k2"], m[2])


def test_scp_offsets_are_byte_offsets_and_random_access(tmp_path):
    items = [(f"u{i}", features(5 + i, 4, seed=i)) for i in range(6)]
    ark.write_archive(f"ark,scp:{tmp_path}/x.ark,{tmp_path}/x.scp", items)
    raw = (tmp_path / "x.ark").read_bytes()
    lines = (tmp_path / "x.scp").read_text().splitlines()
    for (key, mat), line in zip(items, lines):
        k, loc = line.split()
        offset = int(loc.rsplit(":", 1)[1])
        assert k == key and loc.startswith(f"{tmp_path}/x.ark:")
        assert raw[offset - len(key) - 1:offset] == key.encode() + b" "
        rows, cols = struct.unpack("<xixi", raw[offset + 5:offset + 15])
        assert (rows, cols) == mat.shape
    reader = ark.RandomAccessReader(tmp_path / "x.scp")
    assert len(reader) == 6 and "u3" in reader and "zz" not in reader
    assert np.array_equal(reader["u4"], items[4][1]) and np.array_equal(reader["u1"], items[1][1])
    assert np.array_equal(ark.read_object(lines[2].split()[1]), items[2][1])
    with pytest.raises(ToolError, match="key 'zz' not found in .*x.scp"):
        reader["zz"]
    results = {}

    def worker(key):
        for _ in range(20):
            results[key] = reader[key]
    threads = [threading.Thread(target=worker, args=(k,)) for k, _ in items]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(np.array_equal(results[k], v) for k, v in items)


def test_random_access_reads_only_its_object(tmp_path):
    items = [(f"u{i}", features(4, 3, seed=i)) for i in range(3)]
    ark.write_archive(f"ark,scp:{tmp_path}/x.ark,{tmp_path}/x.scp", items)
    raw = bytearray((tmp_path / "x.ark").read_bytes())
    second = int((tmp_path / "x.scp").read_text().splitlines()[1].rsplit(":", 1)[1])
    raw[:second - 3] = b"\xff" * (second - 3)            # wreck everything before u1's object
    (tmp_path / "x.ark").write_bytes(bytes(raw))
    reader = ark.RandomAccessReader(tmp_path / "x.scp")
    assert np.array_equal(reader["u1"], items[1][1]) and np.array_equal(reader["u2"], items[2][1])
    with pytest.raises(ToolError, match="x.ark:[0-9]+, key 'u0': corrupt data"):
        reader["u0"]


def test_scp_values_may_be_pipes(tmp_path):
    items = [(f"u{i}", features(4, 3, seed=i)) for i in range(3)]
    ark.write_archive(f"ark,scp:{tmp_path}/x.ark,{tmp_path}/x.scp", items)
    offset = int((tmp_path / "x.scp").read_text().splitlines()[1].rsplit(":", 1)[1])
    # the command prints u1's object followed by the rest of the archive: only the first is read
    (tmp_path / "p.scp").write_text(f"u1 tail -c +{offset + 1} {tmp_path}/x.ark |\nu2 false |\n")
    reader = ark.RandomAccessReader(tmp_path / "p.scp")
    assert np.array_equal(reader["u1"], items[1][1])
    with pytest.raises(ToolError, match="command 'false' failed"):
        reader["u2"]


def test_scp_range_reads_rows(tmp_path):
    m = features(10, 3)
    ark.write_archive(f"ark,scp:{tmp_path}/x.ark,{tmp_path}/x.scp", [("u", m)])
    loc = (tmp_path / "x.scp").read_text().split()[1]
    assert np.array_equal(ark.read_object(loc + "[2:4]"), m[2:5])
    assert np.array_equal(ark.read_object(loc + "[2:4,1:2]"), m[2:5, 1:3])


def test_text_archives(tmp_path, monkeypatch):
    m = features(3, 4)
    ark.write_archive(f"ark,t:{tmp_path}/t.ark", [("m", m), ("v", m[1])])
    text = (tmp_path / "t.ark").read_text()
    assert text.startswith("m  [\n  ") and "\nv  [ " in text
    got = dict(ark.read_rspecifier(f"ark:{tmp_path}/t.ark"))
    assert np.array_equal(got["m"], m) and np.array_equal(got["v"], m[1])
    kio = kaldi_io_module(monkeypatch)
    assert np.array_equal(dict(kio.read_mat_ark(str(tmp_path / "t.ark")))["m"], m)
    # hand-written Kaldi text as copy-matrix prints it
    (tmp_path / "h.ark").write_text("x  [\n  1 2.5 \n  -3 4e-2 ]\ny  [ 1 2 3 ]\n")
    got = dict(ark.read_rspecifier(f"ark:{tmp_path}/h.ark"))
    assert np.array_equal(got["x"], np.array([[1, 2.5], [-3, 0.04]], f32))
    assert np.array_equal(got["y"], np.array([1, 2, 3], f32))
    # rows may start right after '[' (Kaldi's text reader accepts it); CRLF tolerated
    (tmp_path / "r.ark").write_bytes(b"x [ 1 2\r\n 3 4 ]\r\ny [ ]\n")
    got = dict(ark.read_rspecifier(f"ark:{tmp_path}/r.ark"))
    assert np.array_equal(got["x"], np.array([[1, 2], [3, 4]], f32)) and got["y"].size == 0
    (tmp_path / "bad.ark").write_bytes(b"x [ 1 2\n 3 ]\n")
    with pytest.raises(ToolError, match="bad.ark, key 'x': text matrix rows have different lengths"):
        list(ark.read_rspecifier(f"ark:{tmp_path}/bad.ark"))
    (tmp_path / "bad2.ark").write_bytes(b"x [ 1 zz ]\n")
    with pytest.raises(ToolError, match="bad2.ark, key 'x': corrupt text object"):
        list(ark.read_rspecifier(f"ark:{tmp_path}/bad2.ark"))


def test_pipes_in_and_out(tmp_path):
    m = features(4, 2)
    ark.write_archive(f"ark:| cat > {tmp_path}/p.ark", [("a", m)])
    got = list(ark.read_rspecifier(f"ark:cat {tmp_path}/p.ark |"))
    assert got[0][0] == "a" and np.array_equal(got[0][1], m)
    # ark:- on both sides through a subprocess
    code = ("import sys, numpy as np; from tfspk.io import ark;"
            "w = ark.ArchiveWriter('ark:-');"
            "[w.write(k, np.full((2, 3), i, np.float32)) for i, k in enumerate(['x', 'y'])]; w.close()")
    produced = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    reader = ("import sys; from tfspk.io import ark;"
              "print(' '.join(f'{k}:{v.sum():g}' for k, v in ark.read_rspecifier('ark:-')))")
    out = subprocess.run([sys.executable, "-c", reader], input=produced, capture_output=True, check=True)
    assert out.stdout.decode().split() == ["x:0", "y:6"]


def test_failing_pipes_are_errors(tmp_path):
    with pytest.raises(ToolError, match="command 'false' failed with exit status 1"):
        list(ark.read_rspecifier("ark:false |"))
    m = features(3, 2)
    ark.write_archive(f"ark:{tmp_path}/x.ark", [("a", m)])
    with pytest.raises(ToolError, match="exit status 3"):
        list(ark.read_rspecifier(f"ark:cat {tmp_path}/x.ark; exit 3 |"))
    with pytest.raises(ToolError, match="exit status 1"):
        ark.write_archive("ark:| cat > /dev/null; false", [("a", m)])


# ---------------------------------------------------------------- compressed matrices
@pytest.mark.parametrize("rows,cols,seed", [(50, 7, 1), (9, 3, 2), (13, 2, 3), (200, 30, 4)])
def test_cm_writer_is_byte_exact_with_kaldi_algorithm(tmp_path, rows, cols, seed):
    m = features(rows, cols, seed)
    m[rows // 2, 0] = m[0, 0]          # ties
    ark.write_archive(f"ark:{tmp_path}/c.ark", [("u", m)], compress=True)
    raw = (tmp_path / "c.ark").read_bytes()
    assert raw[:7] == b"u \0BCM "
    assert raw[7:] == ref_compress_cm(m)
    decoded = dict(ark.read_rspecifier(f"ark:{tmp_path}/c.ark"))["u"]
    expected = ref_decompress_cm(raw[7:])
    assert decoded.dtype == f32 and np.array_equal(decoded, expected)
    # error bound: each value lies within one code step of its column's interpolation interval
    rng = float(m.max() - m.min())
    assert np.max(np.abs(decoded - m)) <= rng / 63 + rng / 65535 * 2


def test_cm_small_and_constant_columns(tmp_path):
    near_constant = (1000 + np.random.default_rng(3).standard_normal((20, 3)) * 1e-3).astype(f32)
    zero_span = np.full((12, 3), 5e4, f32)      # percentiles collapse to one float: 0/0 in FloatToChar
    zero_span[4, 1] += 0.01
    for m in [np.full((12, 3), 2.5, f32), features(3, 4)[:3], np.zeros((1, 4), f32), near_constant, zero_span]:
        payload = __import__("tfspk.io.compressed", fromlist=["x"]).compress(m, "speech-feature")
        assert payload[:3] == b"CM " and payload[3:] == ref_compress_cm(m)
        import io as _io
        back = ark.read_object_from(_io.BytesIO(b"\0B" + payload), "test")
        assert np.array_equal(back, ref_decompress_cm(payload[3:]))


def test_auto_method_uses_cm2_for_few_rows(tmp_path):
    m = features(8, 5)
    ark.write_archive(f"ark:{tmp_path}/c.ark", [("u", m)], compress=True)
    raw = (tmp_path / "c.ark").read_bytes()
    assert raw[:8] == b"u \0BCM2 " and raw[8:] == ref_compress_cm2(m)
    mn, rng = struct.unpack("<ff", raw[8:16])
    codes = np.frombuffer(raw[24:], "<u2").reshape(m.shape)
    increment = f32(float(f32(rng)) / 65535.0)
    expected = (f32(mn) + codes.astype(f32) * increment).astype(f32)
    got = dict(ark.read_rspecifier(f"ark:{tmp_path}/c.ark"))["u"]
    assert np.array_equal(got, expected)
    assert np.max(np.abs(got - m)) <= rng / 65535


def test_cm3_read(tmp_path):
    codes = np.array([[0, 255, 7], [128, 1, 2]], np.uint8)
    payload = b"\0BCM3 " + struct.pack("<ffii", -1.0, 4.0, 2, 3) + codes.tobytes()
    (tmp_path / "c.ark").write_bytes(b"k " + payload)
    got = dict(ark.read_rspecifier(f"ark:{tmp_path}/c.ark"))["k"]
    increment = f32(4.0 / 255.0)
    assert np.array_equal(got, (f32(-1) + codes.astype(f32) * increment).astype(f32))


# ---------------------------------------------------------------- bad archives
def test_truncated_and_corrupt_archives_name_file_and_key(tmp_path):
    m = features(6, 4)
    ark.write_archive(f"ark,scp:{tmp_path}/x.ark,{tmp_path}/x.scp", [("good", m), ("cut", m)])
    raw = (tmp_path / "x.ark").read_bytes()
    (tmp_path / "t.ark").write_bytes(raw[:-10])
    with pytest.raises(ToolError, match=r"t.ark, key 'cut': truncated data"):
        list(ark.read_rspecifier(f"ark:{tmp_path}/t.ark"))
    (tmp_path / "g.ark").write_bytes(raw[:len(raw) // 2].replace(b"FM ", b"XY ", 2))
    with pytest.raises(ToolError, match=r"g.ark, key 'good': unsupported object type 'XY'"):
        list(ark.read_rspecifier(f"ark:{tmp_path}/g.ark"))
    (tmp_path / "n.ark").write_bytes(b"hello world, this is not an archive\n")
    with pytest.raises(ToolError, match=r"n.ark, key 'hello': corrupt data"):
        list(ark.read_rspecifier(f"ark:{tmp_path}/n.ark"))
    (tmp_path / "bad.scp").write_text(f"good {tmp_path}/x.ark:999999\n")
    with pytest.raises(ToolError, match="beyond the end of the file.*key 'good'"):
        list(ark.read_rspecifier(f"scp:{tmp_path}/bad.scp"))
    with pytest.raises(ToolError, match="no such file: .*missing.ark"):
        list(ark.read_rspecifier(f"ark:{tmp_path}/missing.ark"))


def test_bad_specifiers_and_failed_writer_leaves_nothing(tmp_path):
    for spec in ["foo:x", "x.ark", "ark:", "ark,zz:x"]:
        with pytest.raises(ToolError, match="invalid rspecifier"):
            ark.read_rspecifier(spec)
    with pytest.raises(ToolError, match="invalid wspecifier"):
        ark.ArchiveWriter(f"ark,scp:{tmp_path}/only.ark")
    with pytest.raises(RuntimeError):
        with ark.ArchiveWriter(f"ark,scp:{tmp_path}/y.ark,{tmp_path}/y.scp") as writer:
            writer.write("a", features(2, 2))
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    (tmp_path / "adir").mkdir()
    with pytest.raises(ToolError, match="cannot write .*adir"):
        ark.ArchiveWriter(f"ark,scp:{tmp_path}/w.ark,{tmp_path}/adir")
    assert sorted(os.listdir(tmp_path)) == ["adir"]
    os.rmdir(tmp_path / "adir")
    with ark.ArchiveWriter(f"ark:{tmp_path}/z.ark") as writer:
        with pytest.raises(ToolError, match="duplicate key 'a'"):
            writer.write("a", np.zeros(2)) or writer.write("a", np.zeros(2))
        with pytest.raises(ToolError, match="NaN"):
            writer.write("b", np.array([np.nan]))
        with pytest.raises(ToolError, match="invalid key"):
            writer.write("has space", np.zeros(2))


def test_text_output_of_compressed_matrix_is_its_decompressed_value(tmp_path):
    m = features(12, 3)
    ark.write_archive(f"ark,t:{tmp_path}/t.ark", [("u", m)], compress=True)
    ark.write_archive(f"ark:{tmp_path}/b.ark", [("u", m)], compress=True)
    raw = (tmp_path / "b.ark").read_bytes()
    text_value = dict(ark.read_rspecifier(f"ark:{tmp_path}/t.ark"))["u"]
    assert np.array_equal(text_value, ref_decompress_cm(raw[7:]))


def test_random_access_accepts_scp_rspecifier(tmp_path):
    ark.write_archive(f"ark,scp:{tmp_path}/x.ark,{tmp_path}/x.scp", [("a", features(2, 2))])
    assert np.array_equal(ark.RandomAccessReader(f"scp:{tmp_path}/x.scp")["a"], features(2, 2))
    with pytest.raises(ToolError, match="random access needs an scp"):
        ark.RandomAccessReader(f"ark:{tmp_path}/x.ark")


def test_compressed_bytes_equal_kaldi_native_io(tmp_path):
    """Kaldi's own CompressedMatrix code (as packaged in kaldi-native-io), when installed."""
    kni = pytest.importorskip("kaldi_native_io")
    from tfspk.io import compressed
    methods = {"auto": kni.CompressionMethod.kAutomaticMethod, "speech-feature": kni.CompressionMethod.kSpeechFeature,
               "2byte-auto": kni.CompressionMethod.kTwoByteAuto, "1byte-auto": kni.CompressionMethod.kOneByteAuto}
    rng = np.random.default_rng(7)
    for trial in range(40):
        m = (rng.standard_normal((int(rng.integers(1, 40)), int(rng.integers(1, 8))))
             * rng.uniform(0.01, 50) + rng.uniform(-20, 20)).astype(f32)
        for name, method in methods.items():
            with kni.CompressedMatrixWriter(f"ark:{tmp_path}/k.ark") as writer:
                writer.write("u", m, method)
            reference = (tmp_path / "k.ark").read_bytes()
            assert reference[4:] == compressed.compress(m, name), (trial, name)
            reader = kni.RandomAccessFloatMatrixReader(f"ark:{tmp_path}/k.ark")   # keep alive: views its memory
            decoded = np.array(reader["u"], copy=True)
            reader.close()
            assert np.array_equal(decoded, dict(ark.read_rspecifier(f"ark:{tmp_path}/k.ark"))["u"])


@pytest.mark.kaldi
@pytest.mark.skipif(shutil.which("copy-feats") is None, reason="Kaldi binaries not on PATH")
def test_kaldi_copy_feats_agrees(tmp_path):
    """With Kaldi installed: copy-feats --compress=true gives our bytes, and reads our archives."""
    m = features(30, 5)
    ark.write_archive(f"ark:{tmp_path}/plain.ark", [("u", m)])
    run(f"copy-feats --compress=true ark:{tmp_path}/plain.ark ark:{tmp_path}/kaldi.ark")
    ark.write_archive(f"ark:{tmp_path}/ours.ark", [("u", m)], compress=True)
    assert (tmp_path / "kaldi.ark").read_bytes() == (tmp_path / "ours.ark").read_bytes()
    run(f"copy-feats ark:{tmp_path}/ours.ark ark,t:{tmp_path}/k.txt")
    assert np.array_equal(dict(ark.read_rspecifier(f"ark:{tmp_path}/k.txt"))["u"],
                          dict(ark.read_rspecifier(f"ark:{tmp_path}/ours.ark"))["u"])


def test_permissive_option(tmp_path, capsys):
    items = [(f"u{i}", features(3, 2, seed=i)) for i in range(3)]
    ark.write_archive(f"ark,scp:{tmp_path}/x.ark,{tmp_path}/x.scp", items)
    lines = (tmp_path / "x.scp").read_text().splitlines()
    (tmp_path / "bad.scp").write_text(f"{lines[0]}\nzz {tmp_path}/gone.ark:5\n{lines[2]}\n")
    with pytest.raises(ToolError, match="no such file"):
        list(ark.read_rspecifier(f"scp:{tmp_path}/bad.scp"))
    assert [k for k, _ in ark.read_rspecifier(f"scp,p:{tmp_path}/bad.scp")] == ["u0", "u2"]
    assert "skipping 'zz'" in capsys.readouterr().err
    raw = (tmp_path / "x.ark").read_bytes()
    (tmp_path / "cut.ark").write_bytes(raw[:-5])
    assert [k for k, _ in ark.read_rspecifier(f"ark,p:{tmp_path}/cut.ark")] == ["u0", "u1"]
    assert "stopping at a read error" in capsys.readouterr().err



def _percentile_cases():
    """[N, 4] float32 sorted percentiles: ordinary, equal (zero spans), spans below 2^-100 and subnormal
    (the float32 shortcut must not be taken), huge, negative, and mixed with a tiny span in one batch."""
    rng = np.random.default_rng(11)
    ordinary = np.sort(rng.normal(0, 5, (40, 4)), axis=1)
    special = [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 3.0, 3.0], [-2.5, -2.5, -2.5, 7.0],
               [1e-30, 1e-30 + 2e-37, 1e-30 + 4e-37, 1e-30 + 6e-37], [0.0, 1e-44, 2e-44, 3e-44],
               [-3e38, -1e38, 1e38, 3e38], [-1e-3, -1e-7, 1e-7, 1e-3], [123.456, 123.457, 123.458, 200.0]]
    return np.concatenate([ordinary, np.array(special)]).astype(f32)


@pytest.mark.parametrize("subset", ["all", "ordinary"])
def test_char_to_float_tables_equal_kaldi_scalar_formula(subset):
    """Every byte code of every column equals the scalar CharToFloat above, bit for bit (float32 fast
    path for the 1/64 and 1/128 pieces, double for 1/63 and for tiny spans)."""
    from tfspk.io.compressed import char_to_float_tables
    pct = _percentile_cases()
    if subset == "ordinary":        # a batch without tiny spans takes the float32 path for two pieces
        pct = pct[:40]
    tables = char_to_float_tables(pct)
    assert tables.dtype == f32 and tables.shape == (len(pct), 256)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = np.array([[ref_char_to_float(*p, c) for c in range(256)] for p in pct], dtype=f32)
    np.testing.assert_array_equal(tables.view(np.uint32), expected.view(np.uint32))
