#!/usr/bin/env bash
# Check that a data directory is consistent: sorted unique keys, utt2spk/spk2utt agree,
# every file covers the same utterances/speakers/recordings. Kaldi's
# utils/validate_data_dir.sh interface (text is never required in tfspk);
# the work is done by tfspk-validate-data-dir (tfspk/io/datadir.py).
set -e -o pipefail

echo "$0 $@"

no_feats=false
no_wav=false
no_text=false
no_spk_sort=false

for x in 1 2 3 4; do
  case "$1" in
    --no-feats) no_feats=true; shift ;;
    --no-text) no_text=true; shift ;;
    --no-wav) no_wav=true; shift ;;
    --no-spk-sort) no_spk_sort=true; shift ;;
  esac
done

if [ $# -ne 1 ]; then
  exec >&2  # the usage goes to stderr (Kaldi)
  echo "Usage: $0 [--no-feats] [--no-text] [--no-wav] [--no-spk-sort] <data-dir>"
  echo "The --no-xxx options mean that the script does not require "
  echo "xxx.scp to be present, but it will check it if it is present."
  echo "(text is never required by tfspk; --no-text is accepted for compatibility.)"
  echo "--no-spk-sort means that the script does not require the utt2spk to be "
  echo "sorted by the speaker-id in addition to being sorted by utterance-id."
  echo "e.g.: $0 data/train"
  exit 1
fi

data=$1
[ ! -d "$data" ] && echo "$0: no such directory $data" >&2 && exit 1

command -v tfspk-validate-data-dir >/dev/null 2>&1 || { echo "$0: tfspk-validate-data-dir not found on PATH (activate the tfspk venv or source path.sh)" >&2; exit 1; }
tfspk-validate-data-dir --no-feats=$no_feats --no-wav=$no_wav --no-text=true \
  --no-spk-sort=$no_spk_sort "$data"
