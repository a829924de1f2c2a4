"""tfspk-make-shards: pack a data dir's features or audio into TFRecord shards (see docs/augmentation.md)."""
from tfspk import cli

USAGE = """tfspk-make-shards [options] <data-dir> <shard-dir>
 e.g.: tfspk-make-shards --utts-per-shard=1000 --seed=777 data/train_no_sil exp/shards/train_no_sil
       tfspk-make-shards --source=audio data/train exp/shards/train_audio"""

DESCRIPTION = """Write <shard-dir>/shard-NNNNN.tfrecord (utterances shuffled by --seed), <shard-dir>/spk2int
and the index <shard-dir>/shards.list (counts, sizes and sha256 per shard; written last).
Features come from feats.scp, audio from wav.scp (+ segments) as int16; labels from utt2spk via
--spk2int or the sorted speakers. tfspk.data.shards.shard_dataset() reads them with tf.data."""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    parser.add_argument("--source", choices=("feats", "audio"), default="feats",
                        help="pack feats.scp matrices or wav.scp audio (default: feats)")
    parser.add_argument("--utts-per-shard", type=int, default=1000, help="utterances per shard (default: 1000)")
    parser.add_argument("--seed", type=int, default=777, help="seed of the utterance order (default: 777)")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                        help="storage of feature values (default: float32; audio is always int16)")
    parser.add_argument("--spk2int", default="", help="speaker index file (default: sorted speakers of utt2spk)")
    cli.add_bool(parser, "--verify", False, "re-read the written shards and check their sha256")
    args = parser.parse(argv, "data_dir", "shard_dir")
    from tfspk.data import shards
    index = shards.make_shards(args.data_dir, args.shard_dir, source=args.source,
                               utts_per_shard=args.utts_per_shard, seed=args.seed, dtype=args.dtype,
                               spk2int_path=args.spk2int or None, log=cli.log)
    if args.verify:
        shards.verify_shards(index.list_path)
    cli.log(f"packed {index.num_utts} utterances of {index.num_classes} speakers into {len(index.shards)} "
            f"shards; index {index.list_path}")
    return 0


def main():
    cli.run_tool(_main)
