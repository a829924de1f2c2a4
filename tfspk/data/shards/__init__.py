"""Data dirs packed into TFRecord shards, read by tf.data natively (no Python in the hot path).

Packing (:func:`make_shards`, tool ``tfspk-make-shards``, script ``steps/make_shards.sh``) writes
``<dir>/shard-00000.tfrecord ...``, ``<dir>/spk2int`` and the index ``<dir>/shards.list``::

    # tfspk-shards kind=feats dtype=float32 dim=30 rate=0 num_classes=1211 num_utts=148642 seed=777
    shard-00000.tfrecord 1000 61234567 <sha256 of the file>
    ...

(``kind`` is ``feats`` or ``audio``; paths are relative to the list). The list is written last, so
a directory without it is not a complete set of shards. Every record is a ``tf.train.Example``:
``key`` (bytes), ``label`` (int64, the speaker index of ``spk2int``), ``length`` (frames, or
samples for audio), ``dim`` (feature dimension, 1 for audio) and ``data``: the row-major matrix
as little-endian ``float32``/``float16`` bytes (``--dtype``), or ``int16`` samples for audio.
Kaldi-compressed matrices are decoded when packed (float16 keeps 11 significant bits, finer
than Kaldi's 8-bit speech-feature compression). Utterances are shuffled across shards by the
seed, so reading shards in any order mixes speakers.

Reading (:func:`shard_dataset`): shard files are interleaved by parallel readers, records are
shuffled in a buffer and batched, then each batch is parsed with ``tf.io.parse_example`` and
cropped **on the serialized bytes** (``tf.strings.substr`` at ``offset * dim * bytes`` then one
``decode_raw``), so only the crop is decoded. All of it is TensorFlow ops: ``num_parallel_calls``
batches are processed in parallel without the GIL, and the dataset can be handed to the tf.data
service (``dataset.apply(tf.data.experimental.service.distribute(...))``) to be served across
hosts. Random access through scp offsets (:class:`tfspk.data.SpeakerBalancedSampler`) stays the
way for small corpora.

Shards are checked against what their list claims. Before reading, :func:`read_shard_list` compares
every file's size with the list (and :func:`verify_shards` the sha256 and every record). While reading,
every parsed record's own ``dim`` and data size are compared with the header (a cheap assertion on
fields parsed anyway), so shards of another dimension listed together, or a header that lies, stop the
reader at the first such record; :func:`shard_errors` turns that, and a corrupted record, into a
ToolError naming the shard (and the record).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re

import numpy as np

from tfspk.errors import ToolError
from tfspk.io.dirlock import DirLock

LIST_NAME = "shards.list"
HEADER_TAG = "# tfspk-shards"
DTYPES = {"float32": (np.dtype("<f4"), 4), "float16": (np.dtype("<f2"), 2), "int16": (np.dtype("<i2"), 2)}


@dataclasses.dataclass
class ShardInfo:
    path: str          # absolute path
    num_utts: int
    num_bytes: int
    sha256: str


@dataclasses.dataclass
class ShardIndex:
    """The contents of a ``shards.list``."""
    list_path: str
    kind: str           # 'feats' or 'audio'
    dtype: str          # 'float32', 'float16' (feats) or 'int16' (audio)
    dim: int            # feature dimension (1 for audio)
    rate: int           # sample rate for audio, 0 for features
    num_classes: int
    num_utts: int
    seed: int
    shards: list

    @property
    def paths(self) -> list[str]:
        return [shard.path for shard in self.shards]


# ----------------------------------------------------------------------------------------------
# packing

def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
                shards.append(ShardInfo(path, len(chunk), os.path.getsize(tmp), _file_sha256(tmp)))
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


# ----------------------------------------------------------------------------------------------
# index

def service_host_port(address: str) -> str | None:
    """``host:port`` of a tf.data service dispatcher address ``grpc://host:port`` or ``host:port``
    (``data.service``, ``tfspk-data-service --dispatcher``); None if it is not one."""
    match = re.fullmatch(r"(?:grpc://)?([^\s:/]+:[0-9]+)", address)
    return match.group(1) if match else None


def wait_for_service(address: str, timeout: float = 30.0, log=None, every: float = 5.0, what: str = "dispatcher") -> str:
    """Wait until the tf.data service ``address`` (``grpc://host:port`` or ``host:port``) accepts a
    connection; return its ``host:port``. ``log`` gets a progress line every ``every`` s; after
    ``timeout`` s a ToolError names the address and the last reason (TensorFlow itself would wait for
    good on a dead address)."""
    import socket
    import time
    host_port = service_host_port(address)
    if host_port is None:
        raise ToolError(f"expected a {what} address grpc://host:port or host:port, got '{address}'")
    host, port = host_port.rsplit(":", 1)
    every = min(every, max(timeout / 4, 0.5))    # a short deadline still shows that it waits
    started = time.monotonic()
    next_note = started + every
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=min(every, max(timeout, 0.1))):
                return host_port
        except OSError as err:
            reason = err.strerror or str(err) or type(err).__name__
        now = time.monotonic()
        if now - started >= timeout:
            raise ToolError(f"cannot reach the tf.data service {what} at grpc://{host_port} within {timeout:g} s: "
                            f"{reason} (is tfspk-data-service running there? the deadline is data.service_timeout "
                            f"/ --timeout)")
        if log and now >= next_note:
            log(f"waiting for the tf.data service {what} at grpc://{host_port} ({now - started:.0f} of {timeout:g} s: "
                f"{reason})")
            next_note = now + every
        time.sleep(min(0.5, max(0.0, started + timeout - now)))


def read_shard_list(path, check: bool = True) -> ShardIndex:
    """Read a ``shards.list`` (or the directory holding it). With ``check``, every shard must
    exist with the size the list gives (a truncated copy is a ToolError naming it)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, LIST_NAME)
    if not os.path.isfile(path):
        raise ToolError(f"shard list {path} not found (run steps/make_shards.sh; a directory without "
                        f"{LIST_NAME} was not packed completely)")
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    if not lines or not lines[0].startswith(HEADER_TAG):
        raise ToolError(f"{path}:1: expected a header '{HEADER_TAG} kind=... dtype=...'")
    header = {}
    for item in lines[0][len(HEADER_TAG):].split():
        name, _, value = item.partition("=")
        header[name] = value
    try:
        kind, dtype = header["kind"], header["dtype"]
        numbers = {name: int(header[name]) for name in ("dim", "rate", "num_classes", "num_utts", "seed")}
    except (KeyError, ValueError):
        raise ToolError(f"{path}:1: header lacks kind, dtype, dim, rate, num_classes, num_utts or seed: "
                        f"'{lines[0]}'") from None
    if kind not in ("feats", "audio") or dtype not in DTYPES:
        raise ToolError(f"{path}:1: unknown kind '{kind}' or dtype '{dtype}'")
    base = os.path.dirname(os.path.abspath(path))
    shards = []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split()
        if len(fields) != 4 or not fields[1].isdigit() or not fields[2].isdigit():
            raise ToolError(f"{path}:{number}: expected 'shard num_utts num_bytes sha256', got '{line}'")
        shard = ShardInfo(os.path.join(base, fields[0]), int(fields[1]), int(fields[2]), fields[3])
        if check:
            _check_size(shard, path)
        shards.append(shard)
    if not shards:
        raise ToolError(f"{path}: lists no shards")
    if sum(s.num_utts for s in shards) != numbers["num_utts"]:
        raise ToolError(f"{path}: shard counts add up to {sum(s.num_utts for s in shards)}, "
                        f"the header says num_utts={numbers['num_utts']}")
    return ShardIndex(path, kind, dtype, shards=shards, **numbers)


def _check_size(shard: ShardInfo, list_path: str) -> None:
    if not os.path.isfile(shard.path):
        raise ToolError(f"shard {shard.path} (listed in {list_path}) not found")
    size = os.path.getsize(shard.path)
    if size != shard.num_bytes:
        state = "truncated" if size < shard.num_bytes else "longer than listed"
        raise ToolError(f"shard {shard.path} is {state}: {size} bytes, {list_path} says {shard.num_bytes}")


def verify_shards(index, records: bool = True) -> None:
    """Check size and sha256 of every shard (reads them all) and, with ``records``, every record
    against the header (its ``dim``, its data size, and the number of records per shard); ToolError
    naming a damaged shard or the first record that contradicts the list."""
    if not isinstance(index, ShardIndex):
        index = read_shard_list(index)
    for shard in index.shards:
        _check_size(shard, index.list_path)
        if _file_sha256(shard.path) != shard.sha256:
            raise ToolError(f"shard {shard.path} is damaged: its sha256 differs from {index.list_path}")
    if records:
        check_records(index)


def check_records(index: ShardIndex) -> None:
    """Parse every record of every shard and check it against the header of ``index`` (its dim and data
    size), its feature values (finite), and each shard's record count against the list."""
    import tensorflow as tf
    spec = _features_spec()
    for shard in index.shards:
        count = 0
        dataset = _tagged_records(tf.constant(shard.path)).batch(256)
        for _, serialized in dataset:
            parsed = {name: value.numpy() for name, value in tf.io.parse_example(serialized, spec).items()}
            sizes = np.array([len(data) for data in parsed["data"]], np.int64)
            good = (parsed["dim"] == index.dim) & (sizes == parsed["length"] * index.dim * DTYPES[index.dtype][1])
            if not good.all():
                bad = int(np.argmin(good))
                raise ToolError(mismatch_message(
                    f"{_MISMATCH_TAG}] [{shard.path}] [{parsed['key'][bad].decode('utf-8', 'replace')}] "
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


# ----------------------------------------------------------------------------------------------
# reading

def _features_spec():
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
_MISMATCH_TAG = "tfspk-shard-record-mismatch"
_MISMATCH_PATTERN = re.compile(re.escape(_MISMATCH_TAG) + r"\] \[(.*?)\] \[(.*?)\] \[(-?\d+)\] \[(-?\d+)\] "
                               r"\[(\d+)\] \[(-?\d+)\]")


def _tagged_records(path):
    """``(shard path, serialized record)`` of one shard file: every record keeps the name of its shard,
    so that a bad one can be named."""
    import tensorflow as tf
    return tf.data.TFRecordDataset(path).map(lambda record: (path, record))


def _check_records(index: ShardIndex, paths, records):
    """An op failing (tagged :data:`_MISMATCH_TAG`) unless every parsed record of the batch holds what the
    list's header says: its own ``dim`` equals the header's, and ``data`` is ``length * dim`` values of
    the header's dtype. Cheap: integer comparisons on fields parse_example decoded anyway."""
    import tensorflow as tf
    dims, lengths = records["dim"], records["length"]
    sizes = tf.cast(tf.strings.length(records["data"]), tf.int64)
    expected = lengths * index.dim * DTYPES[index.dtype][1]
    good = tf.logical_and(tf.equal(dims, index.dim), tf.equal(sizes, expected))
    first_bad = tf.argmin(tf.cast(good, tf.int32))
    return tf.debugging.Assert(tf.reduce_all(good), [
        _MISMATCH_TAG, tf.gather(paths, first_bad), tf.gather(records["key"], first_bad),
        tf.gather(dims, first_bad), tf.gather(lengths, first_bad), tf.gather(sizes, first_bad),
        tf.constant(index.dim, tf.int64)], summarize=1)


def _tf_dtype(dtype: str):
    import tensorflow as tf
    return {"float32": tf.float32, "float16": tf.float16, "int16": tf.int16}[dtype]


def _as_index(shard_list) -> ShardIndex:
    return shard_list if isinstance(shard_list, ShardIndex) else read_shard_list(shard_list)


def shard_records(shard_list):
    """tf.data.Dataset of whole records in list order: ``{"key": string, "label": int32,
    "data": float32 [length, dim]}`` (audio: ``[length]`` on the int16 scale)."""
    import tensorflow as tf
    index = _as_index(shard_list)
    out_dtype = _tf_dtype(index.dtype)

    def parse(path, serialized):
        record = tf.io.parse_single_example(serialized, _features_spec())
        batched = {name: tf.expand_dims(value, 0) for name, value in record.items()}
        with tf.control_dependencies([_check_records(index, tf.expand_dims(path, 0), batched)]):
            data = tf.cast(tf.io.decode_raw(record["data"], out_dtype, little_endian=True), tf.float32)
        data = tf.reshape(data, [-1] if index.kind == "audio" else [-1, index.dim])
        return {"key": record["key"], "label": tf.cast(record["label"], tf.int32), "data": data}
    files = tf.data.Dataset.from_tensor_slices(index.paths)
    return files.flat_map(_tagged_records).map(parse)


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
    index = _as_index(shard_list)
    if not 0 < min_frames <= max_frames:
        raise ToolError(f"need 0 < min_frames <= max_frames, got {min_frames} and {max_frames}")
    if batch_size < 1:
        raise ToolError(f"batch_size must be >= 1, got {batch_size}")
    calls = tf.data.AUTOTUNE if num_parallel_calls is None else num_parallel_calls
    in_dtype = _tf_dtype(index.dtype)
    width = index.dim * DTYPES[index.dtype][1]          # bytes per frame
    spec = _features_spec()

    def crop(batch_number, batch):
        paths, serialized = batch
        records = tf.io.parse_example(serialized, spec)
        with tf.control_dependencies([_check_records(index, paths, records)]):
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
    records = files.interleave(_tagged_records, cycle_length=min(cycle_length, len(index.paths)),
                               num_parallel_calls=calls, deterministic=deterministic)
    if shuffle_buffer > 1:
        records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    batches = records.batch(batch_size, drop_remainder=True).enumerate()
    return batches.map(crop, num_parallel_calls=calls, deterministic=deterministic).prefetch(2).with_options(options)


def mismatch_message(text: str, list_path: str = "") -> str | None:
    """The ToolError text for a TensorFlow error message that holds the failed record check of
    :func:`_check_records` (None if it does not)."""
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
