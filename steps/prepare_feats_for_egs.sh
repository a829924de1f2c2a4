#!/usr/bin/env bash
# Features for x-vector training, as egs/voxceleb/v2's local/nnet3/xvector/prepare_feats_for_egs.sh
# followed by the recipe's length filter (its stage 5):
#   sliding CMN (window --cmn-window, centred, no variance normalisation by default)
#   -> keep voiced frames (vad.scp; --use-vad false: every frame, for a front end without VAD)
#   -> write features (compressed) and utt2num_frames
#   -> drop utterances with <= --min-len frames, then speakers with < --min-num-utts
#      utterances, and fix the data dir (both counts are logged; 0 disables a filter).
# <out-data> is built in a temporary directory and moved into place only when complete.
set -e -o pipefail

nj=4
cmd=run.pl
norm_vars=false
center=true
cmn_window=300
compress=true
min_len=400
min_num_utts=8
use_kaldi=false
use_vad=true

echo "$0 $@"  # Print the command line for logging.

if [ -f path.sh ]; then . ./path.sh; fi
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/internal/paths.sh"   # tfspk_steps, utils (on PATH)

help_message="Usage: $0 [options] <in-data-dir> <out-data-dir> <feat-dir>
 e.g.: $0 data/train data/train_no_sil exp/train_no_sil
Options:
  --nj <nj>                                        # number of parallel jobs (default: $nj)
  --cmd (utils/run.pl|utils/queue.pl <queue opts>) # how to run jobs (default: $cmd)
  --cmn-window <frames>                            # sliding CMN window (default: $cmn_window)
  --center <true|false>                            # centre the CMN window (default: $center)
  --norm-vars <true|false>                         # also normalise variances (default: $norm_vars)
  --compress <true|false>                          # store compressed matrices (default: $compress)
  --min-len <frames>                               # drop utterances with <= this many voiced frames (default: $min_len)
  --min-num-utts <n>                               # drop speakers with fewer utterances (default: $min_num_utts)
  --use-kaldi <true|false>                         # use Kaldi's binaries (must be on PATH) (default: $use_kaldi)
  --use-vad <true|false>                           # false: keep every frame, no vad.scp needed (default: $use_vad)"

. "$utils/parse_options.sh"
. "$tfspk_steps/internal/checks.sh"

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi

data_in=$1
data_out=$2
dir=$3

for value in "$nj" "$cmn_window" "$min_len" "$min_num_utts"; do
  if ! [[ "$value" =~ ^[0-9]+$ ]]; then
    echo "$0: --nj, --cmn-window, --min-len and --min-num-utts take non-negative integers, got '$value'" >&2
    exit 1
  fi
done
if [ "$nj" -eq 0 ]; then
  echo "$0: --nj must be a positive integer, got '$nj'" >&2
  exit 1
fi
case "$use_vad" in true|false) ;; *) echo "$0: --use-vad must be true or false, got '$use_vad'" >&2; exit 1 ;; esac
require_files "$data_in/feats.scp" "$data_in/utt2spk" "$data_in/spk2utt"
if $use_vad; then require_files "$data_in/vad.scp"; fi
if $use_kaldi; then
  require_kaldi_binaries apply-cmvn-sliding copy-feats $($use_vad && echo select-voiced-frames)
fi

name=$(basename "$data_in")
mkdir -p "$dir/log"
featdir=$(cd "$dir" && pwd)

# An earlier, complete output must not survive a failed run looking like this run's result.
back_up "$data_out" feats.scp

"$utils/split_data.sh" "$data_in" "$nj"
sdata_in=$data_in/split$nj

remove_stale_temporaries "$featdir" "xvector_feats_$(printf '%q' "$name").+([0-9]).@(ark|scp)"
remove_stale_temporaries "$featdir/log" "utt2num_frames.+([0-9])"
for n in $(seq "$nj"); do
  rm -f "$featdir/xvector_feats_$name.$n.ark" "$featdir/xvector_feats_$name.$n.scp" \
    "$featdir/log/utt2num_frames.$n"
done

output="ark,scp:$featdir/xvector_feats_$name.JOB.ark,$featdir/xvector_feats_$name.JOB.scp"
num_frames_opt="--write-num-frames=ark,t:$featdir/log/utt2num_frames.JOB"
cmvn_opts="--norm-vars=$norm_vars --center=$center --cmn-window=$cmn_window"
if ! $use_vad && $use_kaldi; then
  $cmd JOB=1:$nj "$dir/log/create_xvector_feats_$name.JOB.log" \
    apply-cmvn-sliding $cmvn_opts scp:$sdata_in/JOB/feats.scp ark:- \| \
    copy-feats --compress=$compress $num_frames_opt ark:- $output
elif ! $use_vad; then
  $cmd JOB=1:$nj "$dir/log/create_xvector_feats_$name.JOB.log" \
    tfspk-apply-cmvn-sliding $cmvn_opts scp:$sdata_in/JOB/feats.scp ark:- \| \
    tfspk-copy-feats --compress=$compress $num_frames_opt ark:- $output
elif $use_kaldi; then
  $cmd JOB=1:$nj "$dir/log/create_xvector_feats_$name.JOB.log" \
    apply-cmvn-sliding $cmvn_opts scp:$sdata_in/JOB/feats.scp ark:- \| \
    select-voiced-frames ark:- scp,s,cs:$sdata_in/JOB/vad.scp ark:- \| \
    copy-feats --compress=$compress $num_frames_opt ark:- $output
else
  $cmd JOB=1:$nj "$dir/log/create_xvector_feats_$name.JOB.log" \
    tfspk-apply-cmvn-sliding $cmvn_opts scp:$sdata_in/JOB/feats.scp ark:- \| \
    tfspk-select-voiced-frames --compress=$compress $num_frames_opt \
      ark:- scp,s,cs:$sdata_in/JOB/vad.scp $output
fi

# Build the output data dir next to its final place, then move it there.
mkdir -p "$(dirname "$data_out")"
staging=$(mktemp -d "$(dirname "$data_out")/.$(basename "$data_out").tmp.XXXXXX")
trap 'rm -rf "$staging"' EXIT
for f in utt2spk spk2utt wav.scp segments utt2lang; do
  if [ -f "$data_in/$f" ]; then cp "$data_in/$f" "$staging/$f"; fi
done
for n in $(seq "$nj"); do
  cat "$featdir/xvector_feats_$name.$n.scp"
done > "$staging/feats.scp"
for n in $(seq "$nj"); do
  cat "$featdir/log/utt2num_frames.$n"
done > "$staging/utt2num_frames"
rm -f "$featdir"/log/utt2num_frames.*

num_in=$(wc -l < "$data_in/utt2spk")
num_spk_in=$(wc -l < "$data_in/spk2utt")
num_voiced=$(wc -l < "$staging/feats.scp")
echo "$0: $((num_in - num_voiced)) of $num_in utterances had no voiced frames (or no VAD) and were left out" \
  "(see $dir/log/create_xvector_feats_$name.*.log)"

# Length filter (egs/voxceleb/v2 stage 5): utterances with more than min_len frames, then
# speakers with at least min_num_utts of them.
awk -v min_len="$min_len" '$2 > min_len { print $1, $2 }' "$staging/utt2num_frames" > "$staging/utt2num_frames.long"
num_long=$(wc -l < "$staging/utt2num_frames.long")
echo "$0: dropped $((num_voiced - num_long)) of $num_voiced utterances with <= $min_len voiced frames (--min-len)"
mv "$staging/utt2num_frames.long" "$staging/utt2num_frames"
"$utils/filter_scp.pl" "$staging/utt2num_frames" "$staging/utt2spk" > "$staging/utt2spk.new"
mv "$staging/utt2spk.new" "$staging/utt2spk"
"$utils/utt2spk_to_spk2utt.pl" "$staging/utt2spk" > "$staging/spk2utt"
awk -v min="$min_num_utts" 'NF - 1 >= min' "$staging/spk2utt" > "$staging/spk2utt.new"
num_spk_long=$(wc -l < "$staging/spk2utt")
num_spk_kept=$(wc -l < "$staging/spk2utt.new")
mv "$staging/spk2utt.new" "$staging/spk2utt"
"$utils/spk2utt_to_utt2spk.pl" "$staging/spk2utt" > "$staging/utt2spk"
num_kept=$(wc -l < "$staging/utt2spk")
echo "$0: dropped $((num_spk_long - num_spk_kept)) of $num_spk_long speakers with fewer than $min_num_utts" \
  "utterances (--min-num-utts), and with them $((num_long - num_kept)) utterances"
if [ "$num_kept" -eq 0 ]; then
  echo "$0: no utterance of $data_in is left (kept none of $num_in); lower --min-len ($min_len)" \
    "or --min-num-utts ($min_num_utts)" >&2
  exit 1
fi
"$utils/fix_data_dir.sh" "$staging" > "$dir/log/fix_data_dir_$name.log" 2>&1 || {
  cat "$dir/log/fix_data_dir_$name.log" >&2
  exit 1
}
rm -rf "$staging/.backup"

rm -rf "$data_out"
mv "$staging" "$data_out"
trap - EXIT
echo "$0: kept $num_kept of $num_in utterances and $num_spk_kept of $num_spk_in speakers in $data_out"
echo "$0: Succeeded creating xvector features for $name"
