"""Reading the text inputs of the metric tools: ``score target|nontarget`` lines (compute-eer) and
scores files matched against labelled trials (compute_min_dcf.py, score reports)."""
from __future__ import annotations

import numpy as np

from tfspk.io import scores as score_files
from tfspk.io.xfilename import read_text_lines
from tfspk.io.util import without_gc
from tfspk.errors import ToolError


@without_gc
def read_scores_with_labels(rxfilename: str, dtype=np.float32):
    """Kaldi compute-eer input: lines ``<score> target|nontarget`` -> ``(scores, is_target)``.

    Scores are parsed as float32 by default, as Kaldi's BaseFloat, so ties and thresholds match.
    """
    name, lines = read_text_lines(rxfilename)
    scores, labels = [], []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if len(fields) != 2:
            raise ToolError(f"{name}:{number}: Invalid input line (must have two fields): '{line}'")
        try:
            scores.append(float(fields[0]))
        except ValueError:
            raise ToolError(f"{name}:{number}: Invalid input line (first field must be float): '{line}'") from None
        if fields[1] not in ("target", "nontarget"):
            raise ToolError(f"{name}:{number}: Invalid input line (second field must be 'target' or "
                            f"'nontarget'): '{line}'")
        labels.append(fields[1] == "target")
    if not scores:
        raise ToolError(f"{name}: Empty input.")
    return np.array(scores, dtype=dtype), np.array(labels, dtype=bool)


def match_scores_to_trials(scores_rxfilename: str, labels: dict, warn=None):
    """Scores of a ``key1 key2 score`` file with their target flags from labelled trials.

    A scored pair missing from the trials is an error (as in compute_min_dcf.py); trials without a
    score are counted and reported through ``warn``. Returns ``(scores float64, is_target)``.
    """
    pairs, scores = score_files.read_scores(scores_rxfilename)
    is_target = np.empty(len(pairs), dtype=bool)
    for i, pair in enumerate(pairs):
        label = labels.get(pair)
        if label is None:
            raise ToolError(f"{scores_rxfilename}:{i + 1}: Missing entry for {pair[0]} and {pair[1]} "
                            "in the trials file")
        is_target[i] = label
    if len(set(pairs)) != len(pairs):
        raise ToolError(f"{scores_rxfilename}: some trials are scored more than once")
    unscored = len(labels) - len(pairs)
    if unscored and warn:
        warn(f"{scores_rxfilename}: {unscored} of {len(labels)} trials have no score and are left out")
    return scores, is_target
