"""tfspk.io.resample: polyphase conversion against scipy and against the analytic signal."""
import numpy as np
import pytest
from scipy.signal import resample_poly

from tfspk.errors import ToolError
from tfspk.io import resample as rs


def _tone(rate, seconds=1.0, freq=440.0):
    t = np.arange(int(rate * seconds)) / rate
    return (3000.0 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("source,target", [(16000, 8000), (44100, 8000), (8000, 16000), (22050, 16000)])
def test_resample_equals_scipy_polyphase_and_keeps_a_tone(source, target):
    tone = _tone(source)
    out = rs.resample(tone, source, target)
    assert out.dtype == np.float32
    assert len(out) == int(np.ceil(len(tone) * target / source))
    from math import gcd
    g = gcd(source, target)
    np.testing.assert_allclose(out, resample_poly(tone.astype(np.float64), target // g, source // g), atol=1e-2)
    # away from the filter's edge effects, the output is the same tone sampled at the new rate
    expected = _tone(target)[:len(out)]
    middle = slice(len(out) // 4, 3 * len(out) // 4)
    assert np.max(np.abs(out[middle] - expected[middle])) < 0.01 * 3000


def test_equal_rates_pass_through_and_bad_rates_are_named():
    tone = _tone(8000, 0.1)
    np.testing.assert_array_equal(rs.resample(tone, 8000, 8000.0), tone)
    with pytest.raises(ToolError, match="positive whole number"):
        rs.resample(tone, 8000.5, 16000)
    with pytest.raises(ToolError, match="positive whole number"):
        rs.resample(tone, 8000, 0)
    with pytest.raises(ToolError, match="1-D"):
        rs.resample(np.zeros((2, 3)), 8000, 16000)


def test_conform_rate_logs_once_and_can_refuse():
    messages = []
    rs._announced.clear()
    tone = _tone(16000, 0.1)
    assert rs.conform_rate(tone, 16000, 16000, log=messages.append) is tone
    a = rs.conform_rate(tone, 16000, 8000, where="utt1", log=messages.append)
    b = rs.conform_rate(tone, 16000, 8000, where="utt2", log=messages.append)
    np.testing.assert_array_equal(a, b)
    assert len([m for m in messages if "16000 Hz to 8000 Hz" in m]) == 1
    with pytest.raises(ToolError, match="utt3 has sample rate 16000 Hz but 8000 Hz is expected"):
        rs.conform_rate(tone, 16000, 8000, allow_resample=False, where="utt3")
