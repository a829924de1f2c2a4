"""Energy VAD, sliding CMN, voiced-frame selection and padding as TensorFlow ops, for the exported graphs.

The features themselves are the ``tensorflow`` side of the registered feature types
(:mod:`tfspk.features.registry`; Kaldi's in :mod:`tfspk.features.tf_kaldi`, re-exported here). Energy
VAD is Kaldi ``ComputeVadEnergy`` and sliding CMN Kaldi ``SlidingWindowCmnInternal`` (see :func:`vad_tf`,
:func:`sliding_cmn_tf`); only ops that the SavedModel, the TFLite converter (builtin ops) and tf2onnx
all handle.
"""
from __future__ import annotations

from tfspk.features.cmvn import window_bounds
from tfspk.features.tf_kaldi import (FLOAT_EPSILON, KaldiFeaturesTF, dft_basis, kaldi_mel_banks,  # noqa: F401
                                     mel_scale, mfcc_dct, min_samples_for_frames, num_frames_formula)


def vad_tf(feats, energy_threshold=5.0, energy_mean_scale=0.5, proportion_threshold=0.6, frames_context=0):
    """Kaldi ``ComputeVadEnergy`` (see tfspk.features.vad.compute_vad): bool ``[T]``.

    ``thr = energy_threshold + energy_mean_scale * mean(E)`` with ``E = feats[:, 0]``; frame t is voiced
    when at least ``proportion_threshold`` of the frames in ``[t - C, t + C]`` (clipped) have E > thr.
    """
    import tensorflow as tf
    energy = feats[:, 0]
    count = tf.shape(energy)[0]
    threshold = tf.constant(energy_threshold, tf.float32)
    if energy_mean_scale != 0.0:
        threshold = threshold + energy_mean_scale * tf.reduce_sum(energy) / tf.cast(tf.maximum(count, 1), tf.float32)
    above = tf.cast(energy > threshold, tf.int32)
    cumulative = tf.concat([tf.zeros([1], tf.int32), tf.cumsum(above)], axis=0)
    frames = tf.range(count)
    first = tf.maximum(frames - frames_context, 0)
    last = tf.minimum(frames + frames_context, count - 1)
    count_above = tf.gather(cumulative, last + 1) - tf.gather(cumulative, first)
    window = tf.cast(last - first + 1, tf.float32)
    return tf.cast(count_above, tf.float32) >= window * proportion_threshold


def sliding_cmn_tf(feats, cmn_window=300, center=True, min_cmn_window=100):
    """Kaldi ``apply-cmvn-sliding --norm-vars=false``: each row minus the mean of its window
    (window per tfspk.features.cmvn.sliding_windows). Window sums are differences of a cumulative
    sum taken after subtracting the utterance mean, which keeps float32 partial sums small."""
    import tensorflow as tf
    count = tf.shape(feats)[0]
    start, end = window_bounds(tf.range(count), count, cmn_window, center, min_cmn_window, tf)
    centred = feats - tf.reduce_mean(feats, axis=0, keepdims=True)
    cumulative = tf.concat([tf.zeros_like(feats[:1]), tf.cumsum(centred, axis=0)], axis=0)
    sums = tf.gather(cumulative, end) - tf.gather(cumulative, start)
    means = sums / tf.cast(tf.maximum(end - start, 1), tf.float32)[:, None]
    return centred - means


def select_frames_tf(feats, voiced):
    """Rows of ``feats`` where ``voiced`` (bool [T]) is true."""
    import tensorflow as tf
    return tf.gather(feats, tf.reshape(tf.where(voiced), [-1]))


def pad_to_min_chunk_tf(feats, min_chunk_size):
    """tfspk.extract.pad_chunk as ops: fewer than ``min_chunk_size`` rows are padded by repeating the first
    row ``(min - n) // 2`` times before and the last row after; no rows give one zero row repeated
    (the caller reports the utterance as unvoiced)."""
    import tensorflow as tf
    rows = tf.shape(feats)[0]
    length = tf.maximum(rows, min_chunk_size)
    left = (length - rows) // 2
    index = tf.clip_by_value(tf.range(length) - left, 0, tf.maximum(rows - 1, 0))
    # a zero row after the data: index 0 reaches it only when there are no rows
    source = tf.concat([feats, tf.zeros([1, tf.shape(feats)[1]], feats.dtype)], axis=0)
    return tf.gather(source, index)
