"""tfspk.metrics: EER (Kaldi compute-eer), minDCF (Kaldi sid/compute_min_dcf.py), DET curves.

Modules: :mod:`~tfspk.metrics.detection` (the numbers), :mod:`~tfspk.metrics.det_plot` (DET PNG),
:mod:`~tfspk.metrics.scorefiles` (inputs of the tools), :mod:`~tfspk.metrics.commands` (the tools).
See docs/backend.md.
"""
