"""Import trained speaker-embedding models of other toolkits into finished tfspk experiment dirs.

One module per source format, each registering its sources (:func:`register_source`); ``tfspk-import-model``
finds them by name. A source turns a checkpoint file into an :class:`ImportedModel` (a registered
network with its params, every weight mapped, the front end the source toolkit uses at inference);
:func:`write_experiment` is the one function that writes an experiment dir from it. Details and the
mapping of each format: docs/import.md.
"""
from tfspk.importers.registry import (SOURCES, ImportedModel, Source, get_source, register_source,  # noqa: F401
                                      source_names_listing)

# One import line per source module (registering is a side effect of importing), one module per format:
# torch_zip.py reads PyTorch checkpoints for the PyTorch sources.
from tfspk.importers import wespeaker  # noqa: F401,E402  (wespeaker_resnet, wespeaker_ecapa_tdnn)
from tfspk.importers import speechbrain  # noqa: F401,E402  (speechbrain_ecapa_tdnn)
from tfspk.importers import kaldi_nnet3  # noqa: F401,E402  (kaldi_nnet3)
