#!/usr/bin/env bash
# The network's training set of run.sh --speed-perturb (stage 2): <train-dir> (the prepared training examples,
# without the dev speakers when there is a dev split) and the prepared speed-perturbed copies (speakers
# sp<factor>-<speaker>, new classes), combined with utils/combine_data.sh (utt2num_frames too) into <dest-dir>.
# With --dev-speakers <list> (one speaker id per line, chosen among the unperturbed speakers), every copy of a
# listed speaker (sp<factor>-<speaker>) is left out, and a listed speaker still in <train-dir> is an error: no
# dev speaker reaches training in any form.
set -e -o pipefail

echo "$0 $@"

dev_speakers=   # file: the dev speakers to leave out of the copies
help_message="Usage: $0 [--dev-speakers <list>] <dest-dir> <train-dir> <perturbed-dir1> [<perturbed-dir2> ...]
 e.g.: $0 --dev-speakers data/dev_speakers.txt data/train_nodev_sp_fbank_no_sil data/train_nodev_fbank_no_sil \\
         data/train_sp0.9_fbank_no_sil data/train_sp1.1_fbank_no_sil"

utils=$(dirname "$0")/../utils
. "$utils/parse_options.sh"

if [ $# -lt 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
dest=$1
train=$2
shift 2
for dir in "$train" "$@"; do
  for f in utt2spk spk2utt feats.scp utt2num_frames; do
    [ -f "$dir/$f" ] || { echo "$0: no such file $dir/$f" >&2; exit 1; }
  done
done
if [ -n "$dev_speakers" ] && [ ! -f "$dev_speakers" ]; then
  echo "$0: no such file $dev_speakers" >&2
  exit 1
fi
for dir in "$@"; do
  bad=$(awk '$1 !~ /^sp[0-9.]+-/ {print $1; exit}' "$dir/spk2utt")
  if [ -n "$bad" ]; then
    echo "$0: $dir has speaker '$bad' without a speed prefix sp<factor>-: not a speed-perturbed copy" >&2
    exit 1
  fi
done

tmp=$(mktemp -d "$(dirname "$dest")/.tmp.$(basename "$dest").XXXXXX")
trap 'rm -rf "$tmp"' EXIT
parts=("$train")
if [ -n "$dev_speakers" ]; then
  dev_in_train=$(awk 'NR == FNR {dev[$1]; next} ($1 in dev) {print $1; exit}' "$dev_speakers" "$train/spk2utt")
  if [ -n "$dev_in_train" ]; then
    echo "$0: $train has the dev speaker '$dev_in_train' of $dev_speakers: give the training dir without them" >&2
    exit 1
  fi
  n=0
  for dir in "$@"; do
    n=$((n + 1))
    # a copy's speaker is left out when its base id (the id without the speed prefix sp<f>-) is a dev speaker
    awk 'NR == FNR {dev[$1]; next} {base = $1; sub(/^sp[0-9.]+-/, "", base)} !(base in dev) {print $1}' \
      "$dev_speakers" "$dir/spk2utt" > "$tmp/keep.$n"
    echo "$0: $dir: $(($(wc -l < "$dir/spk2utt") - $(wc -l < "$tmp/keep.$n"))) copies of dev speakers left out"
    "$utils"/subset_data_dir.sh --spk-list "$tmp/keep.$n" "$dir" "$tmp/part.$n"
    parts+=("$tmp/part.$n")
  done
else
  parts+=("$@")
fi
rm -rf "$dest"
"$utils"/combine_data.sh --extra-files utt2num_frames "$dest" "${parts[@]}"
echo "$0: $dest: $(wc -l < "$dest/spk2utt") speakers, $(wc -l < "$dest/utt2spk") utterances"
