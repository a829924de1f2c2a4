"""Embedding extraction with Kaldi ``nnet3-xvector-compute`` semantics (see :mod:`.chunking`).

Features go through the training-time preparation first (Kaldi's extract_xvectors.sh feature
pipe): ``apply-cmvn-sliding --norm-vars=false --center=true --cmn-window=300`` then
``select-voiced-frames``. Pieces (chunks) of equal length are run together in batches: the network
uses valid convolutions and pools over all frames, so padding pieces to a common length would change
the result; grouping by exact length does not.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.extract.chunking import check_chunk_options, utterance_pieces
from tfspk.features import apply_cmvn_sliding, select_voiced_frames

EMBEDDING_LAYERS = {"a": "embedding_a", "b": "embedding_b"}


def prepare_features(feats: np.ndarray, vad: np.ndarray | None, utt: str, cmn_window: int = 300,
                     center: bool = True, apply_cmn: bool = True) -> np.ndarray:
    """Sliding CMN (recipe: 300 frames, centred, no variance norm.) then voiced frames (vad > 0.5)."""
    if apply_cmn:
        feats = apply_cmvn_sliding(feats, cmn_window=cmn_window, center=center, norm_vars=False)
    if vad is not None:
        feats = select_voiced_frames(feats, vad, name=utt)
    return np.asarray(feats, dtype=np.float32)


@dataclass
class _Utterance:
    """An utterance whose pieces are (partly) waiting for the network."""
    utt: str
    weights: list
    outputs: list = field(default_factory=list)
    missing: int = 0


class XvectorExtractor:
    """Runs a trained x-vector network over utterances.

    ``embedding_layer``: ``a`` (first segment layer's affine output, Kaldi's x-vector) or ``b`` (last
    segment layer, the loss input). ``arch``: the registered network (a :class:`tfspk.nnet.Network` or its
    name; its ``min_frames()`` bounds ``min_chunk_size``). ``batch_size`` pieces of one length run together; at most
    ``max_buffered_frames`` input frames wait for a batch to fill. ``pad_input`` (Kaldi
    nnet3-xvector-compute ``--pad-input``, default true): chunks shorter than ``min_chunk_size`` are padded
    by repeating their edge frames; false runs them unpadded, and a chunk (a whole short utterance) with
    fewer frames than the network's ``min_frames()`` is a ToolError naming the utterance.
    """

    def __init__(self, model, feat_dim: int, arch="tdnn", embedding_layer: str = "a",
                 chunk_size: int = -1, min_chunk_size: int = 25, batch_size: int = 32,
                 max_buffered_frames: int = 200_000, source: str = "the network", pad_input: bool = True):
        import tensorflow as tf

        if embedding_layer not in EMBEDDING_LAYERS:
            raise ToolError(f"--embedding-layer must be one of {', '.join(EMBEDDING_LAYERS)}, got '{embedding_layer}'")
        if batch_size < 1:
            raise ToolError(f"--batch-size must be >= 1, got {batch_size}")
        from tfspk.nnet import Network, get_network
        network = arch if isinstance(arch, Network) else get_network(arch)
        # Unpadded chunks never reach min_chunk_size frames artificially, so only padding needs it >= min_frames.
        check_chunk_options(chunk_size, min_chunk_size, network.min_frames() if pad_input else 1)
        self.network, self.pad_input = network, bool(pad_input)
        self.feat_dim, self.chunk_size, self.min_chunk_size = feat_dim, chunk_size, min_chunk_size
        self.batch_size, self.max_buffered_frames, self.source = batch_size, max_buffered_frames, source
        output = EMBEDDING_LAYERS[embedding_layer]

        @tf.function(input_signature=[tf.TensorSpec([None, None, feat_dim], tf.float32)])
        def embed(batch):
            return model(batch, training=False)[output]

        self._embed = embed
        self.num_done = self.num_skipped = 0

    def _check_dim(self, utt: str, feats: np.ndarray) -> None:
        if feats.ndim != 2 or feats.shape[1] != self.feat_dim:
            got = feats.shape[1] if feats.ndim == 2 else f"shape {feats.shape}"
            raise ToolError(f"utterance '{utt}' has features of dimension {got}, but {self.source} was trained on "
                            f"dimension {self.feat_dim}")

    def _pieces(self, utt: str, feats: np.ndarray):
        pieces = utterance_pieces(feats, self.chunk_size, self.min_chunk_size, self.pad_input)
        if not self.pad_input:
            needed = self.network.min_frames()
            for piece, length in pieces:
                if length < needed:
                    whole = "" if length == feats.shape[0] else f" (a chunk of {length} of its {feats.shape[0]})"
                    raise ToolError(f"utterance '{utt}' has {length} (voiced) frames{whole}; the "
                                    f"'{self.network.network_name}' network needs at least {needed} "
                                    "(--pad-input=true pads it by repeating its edge frames)")
        return pieces

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        """Network outputs [B, D] for pieces [B, L, F] of one length L."""
        return self._embed(np.ascontiguousarray(batch, dtype=np.float32)).numpy()

    def extract_one(self, utt: str, feats: np.ndarray) -> np.ndarray | None:
        """One utterance, piece by piece (no batching); None if it has no frames."""
        self._check_dim(utt, feats)
        pieces = self._pieces(utt, feats)
        if not pieces:
            return None
        outputs = [self.embed_batch(piece[None])[0] for piece, _ in pieces]
        return _weighted_mean(outputs, [w for _, w in pieces])

    def extract(self, utterances: Iterable[tuple[str, np.ndarray]]) -> Iterator[tuple[str, np.ndarray]]:
        """(utt, vector) in input order; pieces of equal length across utterances share batches.

        Utterances without frames (nothing voiced) are warned about and skipped, as Kaldi's
        select-voiced-frames drops them.
        """
        waiting: collections.deque[_Utterance] = collections.deque()
        buckets: dict[int, list] = {}
        buffered = 0
        for utt, feats in utterances:
            self._check_dim(utt, feats)
            pieces = self._pieces(utt, feats)
            if not pieces:
                cli.warn(f"utterance '{utt}' has no (voiced) frames; no embedding written for it")
                self.num_skipped += 1
                continue
            record = _Utterance(utt, [w for _, w in pieces], [None] * len(pieces), len(pieces))
            waiting.append(record)
            for index, (piece, _) in enumerate(pieces):
                bucket = buckets.setdefault(piece.shape[0], [])
                bucket.append((record, index, piece))
                buffered += piece.shape[0]
                if len(bucket) == self.batch_size:
                    buffered -= self._run(buckets.pop(piece.shape[0]))
            if buffered > self.max_buffered_frames:
                buffered -= sum(self._run(bucket) for bucket in buckets.values())
                buckets.clear()
            yield from self._finished(waiting)
        for bucket in buckets.values():
            self._run(bucket)
        yield from self._finished(waiting)

    def _run(self, bucket) -> int:
        outputs = self.embed_batch(np.stack([piece for _, _, piece in bucket]))
        for (record, index, _), output in zip(bucket, outputs):
            record.outputs[index] = output
            record.missing -= 1
        return sum(piece.shape[0] for _, _, piece in bucket)

    def _finished(self, waiting):
        while waiting and waiting[0].missing == 0:
            record = waiting.popleft()
            self.num_done += 1
            yield record.utt, _weighted_mean(record.outputs, record.weights)


def _weighted_mean(outputs, weights) -> np.ndarray:
    """sum_k n_k e_k / sum_k n_k (accumulated in float64, written as float32)."""
    weights = np.asarray(weights, dtype=np.float64)
    stacked = np.asarray(outputs, dtype=np.float64)
    return (weights @ stacked / weights.sum()).astype(np.float32)
