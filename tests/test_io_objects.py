"""tfspk.io.objects: the one Kaldi object codec (archives and whole object files share it)."""
import io
import struct

import numpy as np
import pytest

from tfspk.errors import ToolError
from tfspk.io import objects


def test_text_precision_is_a_parameter_of_the_one_writer():
    third = np.array([1 / 3, -2.5e-7], dtype=np.float32)
    values = third.tolist()
    # archives (precision None): %.9g for float, %.17g for double; model files: %.7g (Kaldi's precision)
    assert objects.text_object_bytes(third) == (" [ " + "".join("%.9g " % v for v in values) + "]\n").encode()
    assert objects.text_object_bytes(third.astype(np.float64)) == \
        (" [ " + "".join("%.17g " % v for v in values) + "]\n").encode()
    assert objects.text_object_bytes(third, 7) == b" [ 0.3333333 -2.5e-07 ]\n"
    assert objects.vector_bytes(third, binary=False, double=False) == objects.text_object_bytes(third, 7)
    matrix = np.array([[1, 2], [3, 4]], dtype=np.float32)
    assert objects.text_object_bytes(matrix) == b" [\n  1 2 \n  3 4 ]\n"
    assert objects.matrix_bytes(matrix, binary=False, double=True) == b" [\n  1 2 \n  3 4 ]\n"
    # empty matrices: archives always ' [ ]'; model files as Kaldi's Matrix::Write
    assert objects.text_object_bytes(np.zeros((0, 3), np.float32)) == b" [ ]\n"
    assert objects.text_object_bytes(np.zeros((0, 3), np.float32), 7) == b" []\n"
    assert objects.text_object_bytes(np.zeros((2, 0), np.float32), 7) == b" [ ]\n"


def test_binary_layout_is_kaldis():
    vector = np.array([1.5, -2.0], dtype=np.float64)
    expected = b"\0BDV " + b"\x04" + struct.pack("<i", 2) + vector.astype("<f8").tobytes()
    assert objects.binary_object_bytes(vector) == expected
    assert objects.binary_object_bytes(vector, double=False) == \
        b"\0BFV \x04" + struct.pack("<i", 2) + vector.astype("<f4").tobytes()
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert objects.binary_object_bytes(matrix) == \
        b"\0BFM \x04" + struct.pack("<i", 2) + b"\x04" + struct.pack("<i", 3) + matrix.tobytes()


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("double", [True, False])
def test_archive_and_file_readers_agree(tmp_path, binary, double):
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((3, 4))
    path = tmp_path / "m"
    objects.write_matrix(str(path), matrix, binary=binary, double=double)
    from_file = objects.read_matrix(str(path))
    from_stream = objects.read_object_from(io.BytesIO(path.read_bytes()), "m")
    assert from_file.dtype == np.float64 and from_file.shape == (3, 4)
    np.testing.assert_array_equal(from_stream.astype(np.float64), from_file.astype(from_stream.dtype))
    tolerance = 0 if binary and double else (1e-7 if binary else 5e-7)
    np.testing.assert_allclose(from_file, matrix if double or not binary else matrix.astype(np.float32),
                               rtol=tolerance, atol=1e-12)


def test_shared_errors():
    with pytest.raises(ToolError, match="m: truncated data"):
        objects.read_object_from(io.BytesIO(b"\0BFV \x04\x05\x00\x00\x00\x00"), "m")
    with pytest.raises(ToolError, match="x: corrupt text object .non-numeric"):
        objects.parse_text_body(" 1 y ", "x", np.float64, "vector")
    with pytest.raises(ToolError, match="x: text matrix rows have different lengths"):
        objects.parse_text_body("\n 1 2\n 3\n", "x", np.float32)
