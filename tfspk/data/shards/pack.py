"""Packing a data dir (features or audio, with labels) into TFRecord shards and their ``shards.list``."""
from __future__ import annotations

import os
import re

import numpy as np

from tfspk.errors import ToolError
from tfspk.data.shards.index import DTYPES, HEADER_TAG, LIST_NAME, ShardIndex, ShardInfo, file_sha256
from tfspk.io.dirlock import DirLock


def _labels(data_dir: str, keys, spk2int_path: str | None):
    from tfspk.data.sampler import read_spk2int
    from tfspk.io.table import read_utt2spk
    utt2spk_path = os.path.join(data_dir, "utt2spk")
    if not os.path.isfile(utt2spk_path):
        raise ToolError(f"{utt2spk_path} not found (needed for the speaker labels)")
    utt2spk = read_utt2spk(utt2spk_path)
    if spk2int_path:
        if not os.path.isfile(spk2int_path):
            raise ToolError(f"spk2int file {spk2int_path} not found")
        spk2int = read_spk2int(spk2int_path)
    else:
        spk2int = {spk: index for index, spk in enumerate(sorted(set(utt2spk.values())))}
    labels = {}
    for key in keys:
        if key not in utt2spk:
            raise ToolError(f"utterance '{key}' has no speaker in {utt2spk_path}")
        speaker = utt2spk[key]
        if speaker not in spk2int:
            raise ToolError(f"speaker '{speaker}' of utterance '{key}' is not in {spk2int_path}")
        labels[key] = spk2int[speaker]
    return labels, spk2int


def _feature_loader(data_dir: str):
    from tfspk.io.ark import RandomAccessReader
    scp = os.path.join(data_dir, "feats.scp")
    if not os.path.isfile(scp):
        raise ToolError(f"{scp} not found (--source=feats packs features)")
    reader = RandomAccessReader(scp)
    return list(reader.keys()), lambda key: reader[key]


def _audio_loader(data_dir: str):
    from tfspk.io import audio
    scp = os.path.join(data_dir, "wav.scp")
    if not os.path.isfile(scp):
        raise ToolError(f"{scp} not found (--source=audio packs audio)")
    items = {item.utt: item for item in audio.keep_valid_segments(audio.data_dir_utterances(data_dir))}
    return list(items), lambda key: audio.read_utterance(items[key])


def _check_finite(array: np.ndarray, where: str) -> None:
    """Packing reads every value once: a NaN or Inf is found here, also in frames no crop would touch."""
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        raise ToolError(f"{where} has non-finite values (NaN or Inf) in frame {int(np.argmin(finite))} "
                        f"({int((~finite).sum())} bad frame(s)); fix or remove it")


def _example(key: str, label: int, array: np.ndarray, dtype: str) -> bytes:
    import tensorflow as tf
    np_dtype = DTYPES[dtype][0]
    if dtype == "int16":
        data = np.clip(np.rint(array), -32768, 32767).astype(np_dtype)
        length, dim = data.shape[0], 1
    else:
        data = np.ascontiguousarray(array, dtype=np_dtype)
        length, dim = data.shape
    feature = {
        "key": tf.train.Feature(bytes_list=tf.train.BytesList(value=[key.encode("utf-8")])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        "length": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(length)])),
        "dim": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(dim)])),
        "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data.tobytes()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def remove_stale_temporaries(out_dir: str, log=None) -> list[str]:
    """Remove the hidden temporaries (:mod:`tfspk.io.atomic` names them ``.tmp.<8 characters>.<name>``) of
    this dir's own outputs (shards, ``shards.list``, ``spk2int``) that a killed earlier run left; the
    caller holds the dir's lock, so no running packer owns them. Returns the removed paths."""
    pattern = re.compile(r"\.tmp\.[^.]{8}\.(shard-\d+\.tfrecord|" + re.escape(LIST_NAME) + r"|spk2int)")
    removed = []
    for name in sorted(os.listdir(out_dir)):
        if pattern.fullmatch(name):
            path = os.path.join(out_dir, name)
            os.remove(path)
            removed.append(path)
            if log:
                log(f"removed {path} (a temporary file left by an interrupted earlier run)")
    return removed


def make_shards(data_dir, out_dir, source: str = "feats", utts_per_shard: int = 1000, seed: int = 777,
                dtype: str = "float32", spk2int_path: str | None = None, log=None) -> ShardIndex:
    """Pack ``data_dir`` (``feats.scp`` or ``wav.scp`` [+ ``segments``], with ``utt2spk``) into
    TFRecord shards of ``utts_per_shard`` utterances in ``out_dir``, in an order shuffled by ``seed``.

    Labels come from ``spk2int_path`` (Kaldi-style ``speaker index``) or the sorted speakers of
    ``utt2spk``; ``out_dir/spk2int`` is written either way. Returns the written index.
    """
    from tfspk.data.sampler import write_spk2int
    from tfspk.io.atomic import atomic_open, atomic_path
    data_dir, out_dir = os.fspath(data_dir), os.fspath(out_dir)
    if source not in ("feats", "audio"):
        raise ToolError(f"source must be 'feats' or 'audio', got '{source}'")
    if source == "audio":
        dtype = "int16"
    elif dtype not in ("float32", "float16"):
        raise ToolError(f"dtype for features must be float32 or float16, got '{dtype}'")
    if utts_per_shard < 1:
        raise ToolError(f"utts_per_shard must be >= 1, got {utts_per_shard}")
    if not os.path.isdir(data_dir):
        raise ToolError(f"data dir '{data_dir}' does not exist")
    keys, load = (_feature_loader if source == "feats" else _audio_loader)(data_dir)
    if not keys:
        raise ToolError(f"data dir '{data_dir}' has no utterances")
    labels, spk2int = _labels(data_dir, keys, spk2int_path)
    order = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys))]
    import tensorflow as tf           # after the checks: bad input fails without the TF start-up
    os.makedirs(out_dir, exist_ok=True)
    # One packer per shard dir (the lock mechanism of every output dir); then the hidden temporaries a
    # killed earlier run left behind (whole shards, GBs at VoxCeleb scale) can be removed safely.
    with DirLock(out_dir, command=f"tfspk-make-shards {data_dir} {out_dir}", log=log, what="tfspk-make-shards",
                 activity="packed", kind="shard dir"):
        remove_stale_temporaries(out_dir, log)
        list_path = os.path.join(out_dir, LIST_NAME)
        if os.path.exists(list_path):
            os.remove(list_path)          # the old set is no longer complete once we start writing
        dim, rate, shards = None, 0, []
        for first in range(0, len(order), utts_per_shard):
            name = f"shard-{first // utts_per_shard:05d}.tfrecord"
            path = os.path.join(out_dir, name)
            chunk = order[first:first + utts_per_shard]
            with atomic_path(path) as tmp:
                with tf.io.TFRecordWriter(tmp) as writer:
                    for key in chunk:
                        if source == "feats":
                            array = load(key)
                            if array.ndim != 2:
                                raise ToolError(f"{data_dir}/feats.scp: '{key}' is not a matrix")
                            this_dim = array.shape[1]
                            _check_finite(array, f"{data_dir}/feats.scp: '{key}'")
                        else:
                            array, this_rate = load(key)
                            this_dim = 1
                            if rate and this_rate != rate:
                                raise ToolError(f"{data_dir}/wav.scp: '{key}' has rate {this_rate} Hz, "
                                                f"the others {rate} Hz")
                            rate = this_rate
                        if dim is not None and this_dim != dim:
                            raise ToolError(f"{data_dir}/feats.scp: '{key}' has dimension {this_dim}, "
                                            f"the others {dim}")
                        dim = this_dim
                        writer.write(_example(key, labels[key], array, dtype))
                shards.append(ShardInfo(path, len(chunk), os.path.getsize(tmp), file_sha256(tmp)))
            if log:
                log(f"wrote {path} ({len(chunk)} utterances)")
        write_spk2int(os.path.join(out_dir, "spk2int"), spk2int)
        index = ShardIndex(list_path, source, dtype, int(dim), int(rate), len(spk2int), len(order), int(seed), shards)
        with atomic_open(list_path) as handle:
            handle.write(f"{HEADER_TAG} kind={source} dtype={dtype} dim={dim} rate={rate} "
                         f"num_classes={len(spk2int)} num_utts={len(order)} seed={seed}\n")
            for shard in shards:
                handle.write(f"{os.path.basename(shard.path)} {shard.num_utts} {shard.num_bytes} {shard.sha256}\n")
    return index
