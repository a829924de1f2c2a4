"""tfspk: Kaldi-style speaker verification recipes with TensorFlow x-vectors and margin losses."""
__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ info/warning logs bury Kaldi-style logs (a few absl lines at import remain); users can
# still ask for it by setting TF_CPP_MIN_LOG_LEVEL themselves.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def __getattr__(name):
    # tfspk.Embedder is loaded on first use so that "import tfspk" does not import TensorFlow
    if name == "Embedder":
        from tfspk.export.embedder import Embedder
        return Embedder
    raise AttributeError(f"module 'tfspk' has no attribute '{name}'")
