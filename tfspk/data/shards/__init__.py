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

One module per concern: :mod:`~tfspk.data.shards.index` (``shards.list`` and its checks against the
files' sizes), :mod:`~tfspk.data.shards.pack` (writing), :mod:`~tfspk.data.shards.read` (tf.data reading and
the per-record check), :mod:`~tfspk.data.shards.verify` (sha256, every record, read errors as ToolErrors),
:mod:`~tfspk.data.shards.service` (the tf.data service address). Their public names are imported here.
"""
from tfspk.data.shards.index import (DTYPES, HEADER_TAG, LIST_NAME, ShardIndex, ShardInfo,  # noqa: F401
                                     read_shard_list)
from tfspk.data.shards.read import mismatch_message, shard_dataset, shard_records  # noqa: F401
from tfspk.data.shards.verify import check_records, shard_errors, verify_shards  # noqa: F401
from tfspk.data.shards.pack import _example, make_shards, remove_stale_temporaries  # noqa: F401
from tfspk.data.shards.service import service_host_port, wait_for_service  # noqa: F401
