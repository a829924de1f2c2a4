"""Reading shards with tf.data: whole records (:func:`shard_records`) and seeded random crops cut on the
serialized bytes (:func:`shard_dataset`); every parsed record is checked against the list's header."""
from __future__ import annotations

import re

from tfspk.errors import ToolError
from tfspk.data.shards.index import DTYPES, ShardIndex, as_index


def record_spec():
    import tensorflow as tf
    return {
        "key": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "length": tf.io.FixedLenFeature([], tf.int64),
        "dim": tf.io.FixedLenFeature([], tf.int64),
        "data": tf.io.FixedLenFeature([], tf.string),
    }


# The tag of the assertion a record that contradicts its shards.list fails; shard_errors() finds it in
# TensorFlow's InvalidArgumentError and turns the message into a ToolError naming shard and record.
MISMATCH_TAG = "tfspk-shard-record-mismatch"
_MISMATCH_PATTERN = re.compile(re.escape(MISMATCH_TAG) + r"\] \[(.*?)\] \[(.*?)\] \[(-?\d+)\] \[(-?\d+)\] "
                               r"\[(\d+)\] \[(-?\d+)\]")


def tagged_records(path):
    """``(shard path, serialized record)`` of one shard file: every record keeps the name of its shard,
    so that a bad one can be named."""
    import tensorflow as tf
    return tf.data.TFRecordDataset(path).map(lambda record: (path, record))


def record_check_op(index: ShardIndex, paths, records):
    """An op failing (tagged :data:`MISMATCH_TAG`) unless every parsed record of the batch holds what the
    list's header says: its own ``dim`` equals the header's, and ``data`` is ``length * dim`` values of
    the header's dtype. Cheap: integer comparisons on fields parse_example decoded anyway."""
    import tensorflow as tf
    dims, lengths = records["dim"], records["length"]
    sizes = tf.cast(tf.strings.length(records["data"]), tf.int64)
    expected = lengths * index.dim * DTYPES[index.dtype][1]
    good = tf.logical_and(tf.equal(dims, index.dim), tf.equal(sizes, expected))
    first_bad = tf.argmin(tf.cast(good, tf.int32))
    return tf.debugging.Assert(tf.reduce_all(good), [
        MISMATCH_TAG, tf.gather(paths, first_bad), tf.gather(records["key"], first_bad),
        tf.gather(dims, first_bad), tf.gather(lengths, first_bad), tf.gather(sizes, first_bad),
        tf.constant(index.dim, tf.int64)], summarize=1)


def _tf_dtype(dtype: str):
    import tensorflow as tf
    return {"float32": tf.float32, "float16": tf.float16, "int16": tf.int16}[dtype]



def shard_records(shard_list):
    """tf.data.Dataset of whole records in list order: ``{"key": string, "label": int32,
    "data": float32 [length, dim]}`` (audio: ``[length]`` on the int16 scale)."""
    import tensorflow as tf
    index = as_index(shard_list)
    out_dtype = _tf_dtype(index.dtype)

    def parse(path, serialized):
        record = tf.io.parse_single_example(serialized, record_spec())
        batched = {name: tf.expand_dims(value, 0) for name, value in record.items()}
        with tf.control_dependencies([record_check_op(index, tf.expand_dims(path, 0), batched)]):
            data = tf.cast(tf.io.decode_raw(record["data"], out_dtype, little_endian=True), tf.float32)
        data = tf.reshape(data, [-1] if index.kind == "audio" else [-1, index.dim])
        return {"key": record["key"], "label": tf.cast(record["label"], tf.int32), "data": data}
    files = tf.data.Dataset.from_tensor_slices(index.paths)
    return files.flat_map(tagged_records).map(parse)


def shard_dataset(shard_list, batch_size: int = 64, min_frames: int = 200, max_frames: int = 400,
                  seed: int = 0, shuffle_buffer: int = 2000, repeat: bool = True, cycle_length: int = 4,
                  num_parallel_calls=None, deterministic: bool = True):
    """tf.data.Dataset of random crops ``(feats [B, L, dim] float32, labels [B] int32)`` (audio:
    ``[B, L]``) from the shards of ``shard_list`` (a ``shards.list``, its directory, or a ShardIndex).

    Per batch ``L ~ U{min_frames..max_frames}``, cut to the shortest utterance of the batch (pack
    utterances of at least ``max_frames``, e.g. after prepare_feats_for_egs' ``--min-len``), and a
    uniform offset per utterance; both from ``tf.random.stateless_uniform`` seeded by
    ``(seed, batch number)``. Shard order and the record shuffle are seeded too, so with
    ``deterministic`` the stream is a function of the seed; resume it with a checkpoint of the
    iterator (``tf.train.Checkpoint(data=iterator)``), which tf.data supports for every stage here.
    """
    import tensorflow as tf
    index = as_index(shard_list)
    if not 0 < min_frames <= max_frames:
        raise ToolError(f"need 0 < min_frames <= max_frames, got {min_frames} and {max_frames}")
    if batch_size < 1:
        raise ToolError(f"batch_size must be >= 1, got {batch_size}")
    calls = tf.data.AUTOTUNE if num_parallel_calls is None else num_parallel_calls
    in_dtype = _tf_dtype(index.dtype)
    width = index.dim * DTYPES[index.dtype][1]          # bytes per frame
    spec = record_spec()

    def crop(batch_number, batch):
        paths, serialized = batch
        records = tf.io.parse_example(serialized, spec)
        with tf.control_dependencies([record_check_op(index, paths, records)]):
            lengths = tf.identity(records["length"])
        seeds = tf.stack([tf.constant(seed, tf.int64), batch_number])
        drawn = tf.random.stateless_uniform([], seeds, min_frames, max_frames + 1, dtype=tf.int64)
        length = tf.minimum(drawn, tf.reduce_min(lengths))
        room = tf.cast(lengths - length + 1, tf.float32)
        u = tf.random.stateless_uniform(tf.shape(lengths), seeds + [0, 1 << 40], dtype=tf.float32)
        offsets = tf.minimum(tf.cast(u * room, tf.int64), lengths - length)
        pieces = tf.strings.substr(records["data"], offsets * width, tf.fill(tf.shape(offsets), length * width))
        values = tf.cast(tf.io.decode_raw(pieces, in_dtype, little_endian=True), tf.float32)
        shape = [-1, length] if index.kind == "audio" else [-1, length, index.dim]
        return tf.reshape(values, shape), tf.cast(records["label"], tf.int32)

    files = tf.data.Dataset.from_tensor_slices(index.paths)
    files = files.shuffle(len(index.paths), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        files = files.repeat()
    options = tf.data.Options()
    options.deterministic = deterministic
    records = files.interleave(tagged_records, cycle_length=min(cycle_length, len(index.paths)),
                               num_parallel_calls=calls, deterministic=deterministic)
    if shuffle_buffer > 1:
        records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    batches = records.batch(batch_size, drop_remainder=True).enumerate()
    return batches.map(crop, num_parallel_calls=calls, deterministic=deterministic).prefetch(2).with_options(options)


def mismatch_message(text: str, list_path: str = "") -> str | None:
    """The ToolError text for a TensorFlow error message that holds the failed record check of
    :func:`record_check_op` (None if it does not)."""
    match = _MISMATCH_PATTERN.search(text)
    if match is None:
        return None
    path, key, dim, length, size, header_dim = match.groups()
    where = f"shard {path}: record '{key}'"
    against = f"{list_path or 'its shards.list'} says dim={header_dim}"
    if int(dim) != int(header_dim):
        return (f"{where} holds {dim}-dimensional features, {against} (shards of another dimension "
                f"listed together? re-pack them with tfspk-make-shards)")
    return f"{where} has {size} bytes of data for {length} frames of dim {dim}: not what {against} gives"

