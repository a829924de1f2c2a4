"""Kaldi score files: ``enroll test score`` per line, as ivector-plda-scoring writes them."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from tfspk.errors import ToolError
from tfspk.io.util import without_gc
from tfspk.io.xfilename import read_text_lines


@without_gc
def read_scores(rxfilename: str) -> tuple[list[tuple[str, str]], np.ndarray]:
    """A Kaldi scores file ``enroll test score`` -> ``(pairs, float64 scores)``."""
    name, lines = read_text_lines(rxfilename)
    pairs, scores = [], []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        try:
            if len(fields) != 3:
                raise ValueError
            scores.append(float(fields[2]))
        except ValueError:
            raise ToolError(f"{name}:{number}: expected 'enroll test score', got '{line.strip()}'") from None
        pairs.append((fields[0], fields[1]))
    if not pairs:
        raise ToolError(f"{name}: no scores")
    values = np.array(scores, dtype=np.float64)
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ToolError(f"{name}:{bad + 1}: score for trial '{pairs[bad][0]} {pairs[bad][1]}' is not finite")
    return pairs, values


@without_gc
def format_scores(pairs: Sequence[tuple[str, str]], scores: np.ndarray) -> str:
    """``key1 key2 score`` lines, scores printed like Kaldi's text output (``%.7g``)."""
    # f"{x:.7g}" is tfspk.io.objects.format_number(x) (C printf %.7g), inlined for speed.
    return "".join([f"{e} {t} {s:.7g}\n" for (e, t), s in zip(pairs, scores.tolist())])
