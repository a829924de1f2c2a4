"""tfspk.backend: everything between extracted embeddings and scores, numerically as Kaldi does it.

Modules: :mod:`~tfspk.backend.vectors` (mean, transform-vec, length norm),
:mod:`~tfspk.backend.lda` (ivector-compute-lda), :mod:`~tfspk.backend.plda` (two-covariance PLDA:
EM training, smoothing, batched LLR scoring), :mod:`~tfspk.backend.scoring` (batched pair dot
products, cosine, AS-norm), :mod:`~tfspk.backend.tables` (vector tables as matrices, scores files;
Kaldi object files, text/int32 tables and trials are read by :mod:`tfspk.io`), :mod:`~tfspk.backend.commands` (one function per command-line tool).
See docs/backend.md.
"""
