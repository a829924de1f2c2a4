#!/usr/bin/env bash
# egs/voxceleb/v2 stage 5 filtering: drop utterances with <= --min-len frames (after VAD), then
# speakers with fewer than --min-num-utts utterances. Writes a filtered copy of the data dir.
echo "$0 $@"
set -e -o pipefail
min_len=400
min_num_utts=8
help_message="Usage: $0 [--min-len $min_len] [--min-num-utts $min_num_utts] <data-in> <data-out>
 e.g.: $0 data/train_combined_no_sil data/train_combined_no_sil_filtered
 <data-in> needs utt2num_frames (steps/prepare_feats_for_egs.sh writes it)."
. "$(dirname "$0")/../utils/parse_options.sh" || exit 1
if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
src=$1
dst=$2
for f in "$src/utt2num_frames" "$src/utt2spk" "$src/feats.scp"; do
  if [ ! -f "$f" ]; then
    echo "$0: missing $f (steps/prepare_feats_for_egs.sh makes it)" >&2
    exit 1
  fi
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/filter_train_data.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
awk -v min=$min_len '$2 > min {print $1}' "$src/utt2num_frames" > "$tmp/long_utts"
if [ ! -s "$tmp/long_utts" ]; then
  echo "$0: no utterance of $src has more than $min_len frames; lower --min-len" >&2
  exit 1
fi
tfspk-subset-data-dir --utt-list "$tmp/long_utts" "$src" "$tmp/long"
awk -v min=$min_num_utts 'NF - 1 >= min {print $1}' "$tmp/long/spk2utt" > "$tmp/speakers"
if [ ! -s "$tmp/speakers" ]; then
  echo "$0: no speaker of $src keeps $min_num_utts utterances longer than $min_len frames;" \
    "lower --min-num-utts or --min-len" >&2
  exit 1
fi
rm -rf "$dst"
tfspk-subset-data-dir --spk-list "$tmp/speakers" "$tmp/long" "$dst"
echo "$0: $dst: $(wc -l < "$dst/utt2spk") of $(wc -l < "$src/utt2spk") utterances," \
  "$(wc -l < "$dst/spk2utt") of $(wc -l < "$src/spk2utt") speakers (min-len $min_len, min-num-utts $min_num_utts)"
