"""Weak inputs get a word: implausible augmentation SNRs, truncated audio counted per step, a stray word in
run.sh --train-opts named (tfspk.data.ranges, steps/internal/checks.sh report_job_warnings)."""
from __future__ import annotations

import pytest

from tfspk.data.augment import Augmenter
from tfspk.data.ranges import SNR_RANGE_DB
from tfspk.errors import ToolError


@pytest.mark.parametrize("key, text, bad", [("noise_snrs", "15:-200:400", "-200"), ("music_snrs", "5:80", "80"),
                                            ("babble_snrs", "-21", "-21")])
def test_snrs_are_range_checked_as_speed_factors_and_probabilities_are(key, text, bad):
    """Before: augment.noise_snrs=15:-200:400 was accepted (noise 10^20 times the speech)."""
    with pytest.raises(ToolError, match=rf"augment: {key}: SNR {bad} dB is outside \[-20, 60\] dB \(in '{text}'\)"):
        Augmenter({key: text}, sample_rate=8000)
    low, high = SNR_RANGE_DB
    Augmenter({key: f"{low:g}:{high:g}:0"}, sample_rate=8000)      # the bounds themselves are fine
    with pytest.raises(ToolError, match=r"speed_factors: 3 is outside \[0.5, 2\]"):   # the rule SNRs now follow
        Augmenter({"speed_factors": "1.0,3"}, sample_rate=8000)
