"""Plausible ranges of augmentation settings that the option parsers check (beside their own syntax).

Signal-to-noise ratios: the noise of an SNR of -200 dB is 10^20 times the speech power (nothing of the
speaker is left), one of +400 dB is 10^-40 of it (no augmentation at all). A value outside
:data:`SNR_RANGE_DB` is a typo (a missing colon, a sign), so it is an error, as a speed factor outside
[0.5, 2] or a probability outside [0, 1] is. The bounds cover every recipe setting known (Kaldi's
x-vector recipes use 0..20 dB; low-SNR studies go down to -10 dB).
"""
from __future__ import annotations

from tfspk.errors import ToolError

SNR_RANGE_DB = (-20.0, 60.0)


def check_snrs(values, text, what: str) -> list:
    """``values`` (the parsed list of ``text``) if every SNR is in :data:`SNR_RANGE_DB`; else a ToolError
    naming ``what``, the value and the range."""
    low, high = SNR_RANGE_DB
    for value in values:
        if not low <= value <= high:
            raise ToolError(f"{what}: SNR {value:g} dB is outside [{low:g}, {high:g}] dB (in {text!r})")
    return list(values)
