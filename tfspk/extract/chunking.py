"""Kaldi ``nnet3-xvector-compute`` chunking: which frames each network run sees, and its weight.

For an utterance of T frames (Kaldi nnet3-xvector-compute.cc, ``--pad-input=true``):

* chunk length C = T if ``chunk_size == -1`` or T < chunk_size, else chunk_size;
* ceil(T / C) non-overlapping chunks start at 0, C, 2C, ...; the last one holds the remainder;
* a chunk of n < ``min_chunk_size`` frames is padded to ``min_chunk_size`` by repeating its first
  frame floor((min - n) / 2) times before it and its last frame for the rest after it (Kaldi's
  ``--pad-input=true``, the default; with ``--pad-input=false`` chunks run unpadded and one shorter than
  the network's ``min_frames()`` is an error naming the utterance, see the extractor);
* the utterance vector is sum_k n_k e_k / sum_k n_k, with n_k the *unpadded* chunk length and e_k the
  network output for chunk k.
"""
from __future__ import annotations

import math

import numpy as np

from tfspk.errors import ToolError


def check_chunk_options(chunk_size: int, min_chunk_size: int, receptive_field: int = 1) -> None:
    """ToolError for impossible options: chunk_size -1 or >= 1; the padded chunk must fill the network."""
    if chunk_size != -1 and chunk_size < 1:
        raise ToolError(f"--chunk-size must be -1 (whole utterance) or a positive number of frames, got {chunk_size}")
    if min_chunk_size < receptive_field:
        raise ToolError(f"--min-chunk-size={min_chunk_size} is below the network's receptive field of "
                        f"{receptive_field} frames (it uses no padding); use at least {receptive_field}")


def chunk_boundaries(num_frames: int, chunk_size: int) -> list[tuple[int, int]]:
    """[(start, length)] of the chunks of an utterance of ``num_frames`` frames (empty if 0 frames)."""
    if num_frames <= 0:
        return []
    length = num_frames if chunk_size == -1 or num_frames < chunk_size else chunk_size
    return [(k * length, min(length, num_frames - k * length)) for k in range(math.ceil(num_frames / length))]


def pad_chunk(chunk: np.ndarray, min_chunk_size: int) -> np.ndarray:
    """Repeat edge frames up to ``min_chunk_size`` rows (left gets floor of half the padding)."""
    rows = chunk.shape[0]
    if rows >= min_chunk_size:
        return chunk
    left = (min_chunk_size - rows) // 2
    index = np.clip(np.arange(min_chunk_size) - left, 0, rows - 1)
    return chunk[index]


def utterance_pieces(feats: np.ndarray, chunk_size: int, min_chunk_size: int,
                     pad_input: bool = True) -> list[tuple[np.ndarray, int]]:
    """[(network input [L, F], weight)]: the (padded, if ``pad_input``) chunks of ``feats`` and their unpadded lengths."""
    if not pad_input:
        return [(feats[start:start + length], length) for start, length in chunk_boundaries(feats.shape[0], chunk_size)]
    return [(pad_chunk(feats[start:start + length], min_chunk_size), length)
            for start, length in chunk_boundaries(feats.shape[0], chunk_size)]
