#!/usr/bin/env bash
# Split a data directory into <num-to-split> parts: <data-dir>/split<N>/{1..N}
# (per speaker, so that each speaker is in one part), or with --per-utt
# <data-dir>/split<N>utt/{1..N} ignoring speakers. Kaldi's utils/split_data.sh interface;
# the work is done by tfspk-split-data (tfspk/io/datadir.py).
set -e -o pipefail

echo "$0 $@"

per_utt=false
if [ "$1" == "--per-utt" ]; then
  per_utt=true
  shift
fi

if [ $# != 2 ]; then
  exec >&2  # the usage goes to stderr (Kaldi)
  echo "Usage: $0 [--per-utt] <data-dir> <num-to-split>"
  echo "This script will not split the data-dir if it detects that the output is newer than the input."
  echo "By default it splits per speaker (so each speaker is in only one split dir),"
  echo "but with the --per-utt option it will ignore the speaker information while splitting."
  exit 1
fi

data=$1
numsplit=$2

if ! [[ "$numsplit" =~ ^[0-9]+$ ]] || [ "$numsplit" -le 0 ]; then
  echo "$0: Invalid num-split argument $numsplit" >&2
  exit 1
fi
[ ! -d "$data" ] && echo "$0: no such directory $data" >&2 && exit 1
[ ! -f "$data/utt2spk" ] && echo "$0: no such file $data/utt2spk" >&2 && exit 1

command -v tfspk-split-data >/dev/null 2>&1 || { echo "$0: tfspk-split-data not found on PATH (activate the tfspk venv or source path.sh)" >&2; exit 1; }
tfspk-split-data --per-utt=$per_utt "$data" "$numsplit"
