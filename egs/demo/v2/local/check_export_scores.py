#!/usr/bin/env python3
"""Check that an export scores and decides as the recipe: the export's back-end on the recipe's own
evaluation embeddings (stage 4) against stage 5's score file, and its calibration on stage 7's test half
against stage 7's calibrated LLRs.

Usage: local/check_export_scores.py <export-dir> <xvector-rspecifier> <scores-file> [<trials-test> <llrs-test>]
e.g.: local/check_export_scores.py exp/ecapa_tdnn_nnet_aamsoftmax/export \\
        scp:exp/ecapa_tdnn_nnet_aamsoftmax/xvectors_eval/xvector.scp exp/ecapa_tdnn_nnet_aamsoftmax/scores/plda_scores

Prints the largest absolute and relative differences; exits 1 when a relative difference exceeds 1e-4
(the recipe's tools pass float32 vectors between them; the export scores in float64).
"""
import sys

import numpy as np


def read_scores(path):
    with open(path, encoding="utf-8") as handle:
        return [(f[0], f[1], float(f[2])) for f in (line.split() for line in handle) if f]


def compare(name, got, want):
    got, want = np.asarray(got), np.asarray(want)
    diff = np.abs(got - want)
    relative = diff / np.maximum(np.abs(want), 1.0)
    print(f"{name}: {len(want)} trials, max |export - recipe| {diff.max():.3g}, max relative {relative.max():.3g}")
    return relative.max() <= 1e-4


def main(argv):
    if len(argv) not in (3, 5):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 1
    print(sys.argv[0], " ".join(argv), file=sys.stderr)
    from tfspk.backend.tables import load_vectors
    from tfspk.export.embedder import Embedder
    embedder = Embedder(argv[0])
    keys, matrix = load_vectors(argv[1])
    row = {key: i for i, key in enumerate(keys)}
    recipe = read_scores(argv[2])
    table = embedder.scorer.score_matrix(matrix, matrix)   # every embedding against every other, [N, N]
    scores = table[[row[e] for e, _, _ in recipe], [row[t] for _, t, _ in recipe]]
    ok = compare(f"{embedder.scoring} scores vs {argv[2]}", scores, [s for _, _, s in recipe])
    if len(argv) == 5:
        if not embedder.calibration:
            print(f"{argv[0]} has no calibration", file=sys.stderr)
            return 1
        by_pair = {(e, t): s for (e, t, _), s in zip(recipe, scores)}
        with open(argv[3], encoding="utf-8") as handle:
            pairs = [tuple(line.split()[:2]) for line in handle if line.strip()]
        want = {(e, t): s for e, t, s in read_scores(argv[4])}
        ok &= compare(f"calibrated LLRs vs {argv[4]}", [embedder.llr(by_pair[p]) for p in pairs],
                      [want[p] for p in pairs])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
