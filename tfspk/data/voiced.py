"""Voiced audio: Kaldi's frame-level energy VAD (``compute-vad``) applied to the waveform, so that crops
of training audio can be drawn from its voiced samples only (the audio counterpart of
``select-voiced-frames``)."""
from __future__ import annotations

import dataclasses

import numpy as np

from tfspk.errors import ToolError


def voiced_runs(vad, num_samples: int, shift: int):
    """The voiced audio of an utterance, from its frame-level VAD (Kaldi ``compute-vad`` output).

    Frame ``f`` owns the samples ``[f * shift, (f + 1) * shift)`` (cut at ``num_samples``); the
    voiced audio is the concatenation, in order, of the blocks of the frames with ``vad > 0.5``
    (the threshold of ``select-voiced-frames``). Returned compactly as runs of consecutive voiced
    frames: ``(starts, offsets, num_voiced_samples)`` with ``starts[r]`` the first frame of run r
    and ``offsets[r]`` the number of voiced frames before it (int64 arrays), for
    :func:`voiced_positions`. ``num_voiced_samples = sum_f min(shift, max(0, num_samples - f shift))``
    over the voiced frames (only the trailing frames can be cut, so voiced sample ``v`` lies in
    voiced frame ``v // shift``).
    """
    voiced = np.asarray(vad).reshape(-1) > 0.5
    edges = np.flatnonzero(np.diff(np.concatenate(([False], voiced, [False])).astype(np.int8)))
    starts, ends = edges[0::2].astype(np.int64), edges[1::2].astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(ends - starts)[:-1])).astype(np.int64)
    frames = np.flatnonzero(voiced).astype(np.int64)
    total = int(np.clip(int(num_samples) - frames * shift, 0, shift).sum())
    return starts, offsets, total


def voiced_positions(runs, shift: int, start: int, length: int) -> np.ndarray:
    """Sample indices (in the utterance) of voiced samples ``start .. start + length - 1``.

    With ``runs = (starts, offsets, total)`` of :func:`voiced_runs`: voiced sample ``v`` is in voiced
    frame ``k = v // shift``, which is frame ``starts[r] + k - offsets[r]`` of the utterance for the
    run ``r`` with ``offsets[r] <= k < offsets[r + 1]``; its index is that frame times ``shift``
    plus ``v mod shift``. int64 ``[length]``, increasing.
    """
    starts, offsets, total = runs
    if start < 0 or length < 0 or start + length > total:
        raise ToolError(f"voiced samples [{start}, {start + length}) outside the {total} voiced samples")
    v = np.arange(start, start + length, dtype=np.int64)
    k = v // shift
    run = np.searchsorted(offsets, k, side="right") - 1
    return (starts[run] + k - offsets[run]) * shift + v % shift


def vad_frame_range(num_samples: int, frame) -> tuple[int, int]:
    """The VAD lengths accepted for audio of ``num_samples`` samples: Kaldi's frame count
    (:func:`tfspk.features.num_frames`) with snip-edges true and with snip-edges false (the VAD may come
    from MFCCs made with other options than the training features), each +-1 frame of rounding."""
    from tfspk.features import num_frames
    counts = [num_frames(num_samples, dataclasses.replace(frame, snip_edges=snip)) for snip in (True, False)]
    return max(min(counts) - 1, 0), max(counts) + 1
