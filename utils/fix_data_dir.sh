#!/usr/bin/env bash
# Make a data directory consistent: sort files (LC_ALL=C), drop duplicate keys and keep only
# the utterances present in utt2spk and every per-utterance file, then rebuild spk2utt.
# The original files are kept in <data-dir>/.backup. Kaldi's utils/fix_data_dir.sh
# interface; the work is done by tfspk-fix-data-dir (tfspk/io/datadir.py).
set -e -o pipefail

echo "$0 $@"

utt_extra_files=
spk_extra_files=
help_message="Usage: $0 [--utt-extra-files 'f1 f2'] [--spk-extra-files 'f1 f2'] <data-dir>
e.g.: $0 data/train
This script makes sure that the files in a data directory are correctly sorted and
filtered, for example removing utterances that have no features (if feats.scp is present)."

. "$(dirname "$0")/parse_options.sh"

if [ $# != 1 ]; then
  echo "$help_message" >&2
  exit 1
fi

data=$1
[ ! -d "$data" ] && echo "$0: no such directory $data" >&2 && exit 1
[ ! -f "$data/utt2spk" ] && echo "$0: no such file $data/utt2spk" >&2 && exit 1

command -v tfspk-fix-data-dir >/dev/null 2>&1 || { echo "$0: tfspk-fix-data-dir not found on PATH (activate the tfspk venv or source path.sh)" >&2; exit 1; }
tfspk-fix-data-dir --utt-extra-files="$utt_extra_files" --spk-extra-files="$spk_extra_files" "$data"
