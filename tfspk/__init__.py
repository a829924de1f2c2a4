"""tfspk: Kaldi-style speaker verification recipes with TensorFlow x-vectors and margin losses."""
__version__ = "0.1.0"
