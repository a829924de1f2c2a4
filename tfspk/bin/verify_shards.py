"""tfspk-verify-shards: check TFRecord shards against their shards.list (sizes, sha256, every record)."""
from tfspk import cli

USAGE = """tfspk-verify-shards [options] <shards.list|shard-dir>
 e.g.: tfspk-verify-shards exp/shards/train_no_sil"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Exit 1 naming the first missing, truncated or "
                                     "damaged shard of a shards.list written by tfspk-make-shards, or the first "
                                     "record that contradicts its header (dim, data size, NaN/Inf, count).")
    cli.add_bool(parser, "--checksum", True, "also compare every shard's sha256 (reads all of them)")
    cli.add_bool(parser, "--records", True, "also parse every record and check it against the list's header "
                 "(dim, data size, finite values) and the record count of each shard")
    args = parser.parse(argv, "shard_list")
    from tfspk.data import shards
    index = shards.read_shard_list(args.shard_list)
    if args.checksum:
        shards.verify_shards(index, records=False)
    if args.records:
        shards.check_records(index)
    checked = ["sizes"] + (["sha256"] if args.checksum else []) + (["records"] if args.records else [])
    cli.log(f"{len(index.shards)} shards, {index.num_utts} utterances of {index.num_classes} speakers: "
            f"{', '.join(checked)} match {index.list_path}")
    return 0


def main():
    cli.run_tool(_main)
