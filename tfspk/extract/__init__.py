"""tfspk.extract: x-vector extraction with Kaldi chunking semantics (see docs/extraction.md)."""
from tfspk.extract.chunking import chunk_boundaries, check_chunk_options, pad_chunk, utterance_pieces
from tfspk.extract.extractor import EMBEDDING_LAYERS, XvectorExtractor, prepare_features
from tfspk.extract.run import extract_to_archive, load_extractor

__all__ = ["EMBEDDING_LAYERS", "XvectorExtractor", "check_chunk_options", "chunk_boundaries", "extract_to_archive",
           "load_extractor", "pad_chunk", "prepare_features", "utterance_pieces"]
