#!/usr/bin/env bash
# Pack a data dir into TFRecord shards for tf.data (tfspk-make-shards; see docs/augmentation.md):
#   <shard-dir>/shard-NNNNN.tfrecord  utterances in an order shuffled by --seed, --utts-per-shard each
#   <shard-dir>/spk2int                speaker -> label index
#   <shard-dir>/shards.list            index: utterances, bytes and sha256 per shard (written last)
# --source feats packs feats.scp (e.g. the output of prepare_feats_for_egs.sh), --source audio packs
# wav.scp (+ segments) as int16 for on-the-fly features and augmentation.
set -e -o pipefail

cmd=run.pl
source=feats
utts_per_shard=1000
seed=777
dtype=float32
spk2int=
verify=false

echo "$0 $@"  # Print the command line for logging.

if [ -f path.sh ]; then . ./path.sh; fi
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/internal/paths.sh"   # tfspk_steps, utils (on PATH)

help_message="Usage: $0 [options] <data-dir> <shard-dir>
 e.g.: $0 --utts-per-shard 1000 data/train_no_sil exp/shards/train_no_sil
Options:
  --cmd (utils/run.pl|utils/queue.pl <queue opts>) # how to run the job (default: $cmd)
  --source <feats|audio>                           # pack feats.scp or wav.scp (default: $source)
  --utts-per-shard <n>                             # utterances per shard (default: $utts_per_shard)
  --seed <n>                                       # seed of the utterance order (default: $seed)
  --dtype <float32|float16>                        # storage of feature values (default: $dtype)
  --spk2int <file>                                 # speaker indices (default: sorted speakers)
  --verify <true|false>                            # re-read the shards and check sha256 (default: $verify)"

. "$utils/parse_options.sh"
. "$tfspk_steps/internal/checks.sh"

if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi

data=$1
dir=$2

if ! [[ "$utts_per_shard" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: --utts-per-shard takes a positive integer, got '$utts_per_shard'" >&2
  exit 1
fi
case $source in
  feats) require_files "$data/feats.scp" "$data/utt2spk" ;;
  audio) require_files "$data/wav.scp" "$data/utt2spk" ;;
  *) echo "$0: --source must be feats or audio, got '$source'" >&2; exit 1 ;;
esac
[ -n "$spk2int" ] && require_files "$spk2int"

mkdir -p "$dir/log"
lock_output_dir "$dir"   # before the job log is written: a second run must not overwrite the first one's
spk2int_opt=
[ -n "$spk2int" ] && spk2int_opt="--spk2int=$spk2int"
if ! $cmd "$dir/log/make_shards.log" \
    tfspk-make-shards --source=$source --utts-per-shard=$utts_per_shard --seed=$seed --dtype=$dtype \
      --verify=$verify $spk2int_opt "$data" "$dir"; then
  echo "$0: packing $data failed:" >&2
  grep -h "ERROR" "$dir/log/make_shards.log" >&2 || tail -n 5 "$dir/log/make_shards.log" >&2
  exit 1
fi
report_job_warnings "$dir/log/make_shards.log" "$dir/log/make_shards.log"
echo "$0: $(grep -c tfrecord "$dir/shards.list") shards of $data in $dir (index $dir/shards.list)"
