#!/usr/bin/env bash
# Make a Kaldi data dir (wav.scp, utt2spk, spk2utt, utt2lang) from your recordings, for run.sh stage 0.
#
# <source> is either
#   a folder of <speaker>/<utterance>.wav (also .flac; any depth below <speaker>/): utterance ids become
#     <speaker>-<path below speaker, '/' -> '-', no extension>, so they sort by speaker as Kaldi wants; or
#   an existing Kaldi data dir (wav.scp + utt2spk, optionally segments, spk2utt, utt2lang, ...): copied.
# utt2lang (used by local/make_trials.py) is written as 'und' where the source has none.
# Speaker and utterance names may not contain whitespace.
echo "$0 $@"
set -e -o pipefail
help_message="Usage: $0 <source: folder of <speaker>/<utt>.wav, or a Kaldi data dir> <data-dir-out>
 e.g.: $0 /data/my_corpus data/all"
. "$(dirname "$0")/../utils/parse_options.sh" || exit 1
if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
src=$1
dir=$2
export LC_ALL=C
if [ ! -d "$src" ]; then
  echo "$0: no such directory: $src" >&2
  exit 1
fi
if [ -f "$src/wav.scp" ]; then
  [ -f "$src/utt2spk" ] || { echo "$0: $src has wav.scp but no utt2spk: not a Kaldi data dir" >&2; exit 1; }
  rm -rf "$dir"
  utils/copy_data_dir.sh "$src" "$dir"
  [ -f "$src/segments" ] && cp "$src/segments" "$dir/segments"
  [ -f "$src/utt2lang" ] && cp "$src/utt2lang" "$dir/utt2lang"
else
  src=$(cd "$src" && pwd)
  rm -rf "$dir"
  mkdir -p "$dir"
  find -L "$src" -mindepth 2 -type f \( -iname '*.wav' -o -iname '*.flac' \) | sort > "$dir/.files"
  if [ ! -s "$dir/.files" ]; then
    echo "$0: no <speaker>/<utterance>.wav (or .flac) files under $src" >&2
    exit 1
  fi
  if grep -q '[[:space:]]' "$dir/.files"; then
    echo "$0: file names with whitespace under $src, e.g. '$(grep -m 1 '[[:space:]]' "$dir/.files")';" \
      "Kaldi tables cannot hold them: rename the files" >&2
    exit 1
  fi
  # <src>/<spk>/<a>/<b>.wav -> utt <spk>-<a>-<b>, speaker <spk>
  awk -v root="$src/" '{
      rel = substr($0, length(root) + 1); spk = rel; sub(/\/.*/, "", spk)
      utt = rel; sub(/\.[^.\/]*$/, "", utt); gsub(/\//, "-", utt)
      print utt, $0 > wav; print utt, spk > u2s
    }' wav="$dir/wav.scp.unsorted" u2s="$dir/utt2spk.unsorted" "$dir/.files"
  sort -k1,1 -u "$dir/wav.scp.unsorted" > "$dir/wav.scp"
  sort -k1,1 -u "$dir/utt2spk.unsorted" > "$dir/utt2spk"
  if [ "$(wc -l < "$dir/wav.scp")" -ne "$(wc -l < "$dir/.files")" ]; then
    echo "$0: two files under $src map to the same utterance id (e.g. a.wav and a.flac)" >&2
    exit 1
  fi
  rm -f "$dir/.files" "$dir/wav.scp.unsorted" "$dir/utt2spk.unsorted"
  utils/utt2spk_to_spk2utt.pl "$dir/utt2spk" > "$dir/spk2utt"
fi
[ -f "$dir/utt2lang" ] || awk '{print $1, "und"}' "$dir/utt2spk" > "$dir/utt2lang"
utils/fix_data_dir.sh "$dir"
utils/validate_data_dir.sh --no-feats --no-text "$dir"
echo "$0: $dir: $(wc -l < "$dir/utt2spk") utterances of $(wc -l < "$dir/spk2utt") speakers"
