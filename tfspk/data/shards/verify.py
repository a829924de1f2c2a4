"""Checking shards against their list: sizes and sha256, every record (:func:`verify_shards`,
``tfspk-verify-shards``), and the ToolError naming the shard for a read error (:func:`shard_errors`)."""
from __future__ import annotations

import os
import re

import numpy as np

from tfspk.errors import ToolError
from tfspk.data.shards.index import DTYPES, ShardIndex, check_shard_size, file_sha256, read_shard_list
from tfspk.data.shards.read import MISMATCH_TAG, mismatch_message, record_spec, tagged_records


def verify_shards(index, records: bool = True) -> None:
    """Check size and sha256 of every shard (reads them all) and, with ``records``, every record
    against the header (its ``dim``, its data size, and the number of records per shard); ToolError
    naming a damaged shard or the first record that contradicts the list."""
    if not isinstance(index, ShardIndex):
        index = read_shard_list(index)
    for shard in index.shards:
        check_shard_size(shard, index.list_path)
        if file_sha256(shard.path) != shard.sha256:
            raise ToolError(f"shard {shard.path} is damaged: its sha256 differs from {index.list_path}")
    if records:
        check_records(index)


def check_records(index: ShardIndex) -> None:
    """Parse every record of every shard and check it against the header of ``index`` (its dim and data
    size), its feature values (finite), and each shard's record count against the list."""
    import tensorflow as tf
    spec = record_spec()
    for shard in index.shards:
        count = 0
        dataset = tagged_records(tf.constant(shard.path)).batch(256)
        for _, serialized in dataset:
            parsed = {name: value.numpy() for name, value in tf.io.parse_example(serialized, spec).items()}
            sizes = np.array([len(data) for data in parsed["data"]], np.int64)
            good = (parsed["dim"] == index.dim) & (sizes == parsed["length"] * index.dim * DTYPES[index.dtype][1])
            if not good.all():
                bad = int(np.argmin(good))
                raise ToolError(mismatch_message(
                    f"{MISMATCH_TAG}] [{shard.path}] [{parsed['key'][bad].decode('utf-8', 'replace')}] "
                    f"[{parsed['dim'][bad]}] [{parsed['length'][bad]}] [{sizes[bad]}] [{index.dim}]", index.list_path))
            if index.kind == "feats":    # verification reads every value anyway: check they are finite
                np_dtype = DTYPES[index.dtype][0]
                for position, data in enumerate(parsed["data"]):
                    values = np.frombuffer(data, np_dtype).reshape(-1, index.dim)
                    finite = np.isfinite(values).all(axis=1)
                    if not finite.all():
                        key = parsed["key"][position].decode("utf-8", "replace")
                        raise ToolError(f"shard {shard.path}: record '{key}' has non-finite values (NaN or Inf) in "
                                        f"frame {int(np.argmin(finite))} ({int((~finite).sum())} bad frame(s))")
            count += len(sizes)
        if count != shard.num_utts:
            raise ToolError(f"shard {shard.path} holds {count} records, {index.list_path} says {shard.num_utts}")


def _list_path_of(source) -> str:
    if isinstance(source, ShardIndex):
        return source.list_path
    index = getattr(source, "index", None)     # the trainer's shard input (tfspk.train) holds its index
    if isinstance(index, ShardIndex):
        return index.list_path
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else ""


def _find_damaged(list_path: str) -> str:
    """Which shard of ``list_path`` is damaged (sizes, then sha256): 'shard X is ...' or ''."""
    try:
        verify_shards(read_shard_list(list_path, check=False), records=False)
    except ToolError as err:
        return str(err)
    return ""


def shard_errors(source=""):
    """Context manager: a tf.data read error of shards becomes a ToolError naming the shard.

    ``source`` is a shards.list path, a :class:`ShardIndex` or an input holding one as ``.index``
    (anything else: the guard does nothing). A record that contradicts the list (its ``dim``, or the
    size of its data) is named with its shard; a corrupted record (``DataLossError``, whose message
    names no file) is looked for by size and sha256 against the list, and that shard is named.
    """
    import contextlib
    import tensorflow as tf
    list_path = _list_path_of(source)

    @contextlib.contextmanager
    def guard():
        if not list_path:
            yield
            return
        try:
            yield
        except tf.errors.DataLossError as err:
            found = _find_damaged(list_path)
            detail = f"{found}" if found else f"a shard of {list_path} is damaged"
            text = re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\].*", "", (err.message or str(err)).strip())
            first = (text.splitlines() or [type(err).__name__])[0]
            raise ToolError(f"{detail} ({first}); run tfspk-verify-shards {list_path}") from None
        except tf.errors.InvalidArgumentError as err:
            message = mismatch_message(err.message or str(err), list_path)
            if message is None:
                raise
            raise ToolError(message) from None
    return guard()
