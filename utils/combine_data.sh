#!/usr/bin/env bash
# Combine data directories into one: files present in every source are concatenated,
# sorted and checked for conflicting keys. Kaldi's utils/combine_data.sh interface;
# the work is done by tfspk-combine-data (tfspk/io/datadir.py).
set -e -o pipefail

echo "$0 $@"

extra_files=   # space-separated list of extra per-utterance files to combine
help_message="Usage: $0 [--extra-files 'file1 file2'] <dest-data-dir> <src-data-dir1> <src-data-dir2> ...
Note: --extra-files is for additional files keyed by utterance."

. "$(dirname "$0")/parse_options.sh"

if [ $# -lt 2 ]; then
  echo "$help_message" >&2
  exit 1
fi

dest=$1
shift
for dir in "$@"; do
  [ ! -d "$dir" ] && echo "$0: no such directory $dir" >&2 && exit 1
  [ ! -f "$dir/utt2spk" ] && echo "$0: no such file $dir/utt2spk" >&2 && exit 1
done

command -v tfspk-combine-data >/dev/null 2>&1 || { echo "$0: tfspk-combine-data not found on PATH (activate the tfspk venv or source path.sh)" >&2; exit 1; }
tfspk-combine-data --extra-files="$extra_files" "$dest" "$@"
