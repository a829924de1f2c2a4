#!/usr/bin/env bash
# Copy a data directory, optionally adding prefixes/suffixes to utterance and speaker ids
# in every file (recording ids are unchanged), then validate the copy. Kaldi's
# utils/copy_data_dir.sh interface; the work is done by tfspk-copy-data-dir.
set -e -o pipefail

echo "$0 $@"

spk_prefix=
utt_prefix=
spk_suffix=
utt_suffix=
validate_opts=   # should rarely be needed.
help_message="Usage: $0 [options] <srcdir> <destdir>
 e.g.: $0 --spk-prefix=1- --utt-prefix=1- data/train data/train_1
Options
   --spk-prefix=<prefix>     # Prefix for speaker ids, default empty
   --utt-prefix=<prefix>     # Prefix for utterance ids, default empty
   --spk-suffix=<suffix>     # Suffix for speaker ids, default empty
   --utt-suffix=<suffix>     # Suffix for utterance ids, default empty
   --validate-opts=<opts>    # Options for validate_data_dir.sh, e.g. '--no-feats'"

. "$(dirname "$0")/parse_options.sh"

if [ $# != 2 ]; then
  echo "$help_message" >&2
  exit 1
fi

srcdir=$1
destdir=$2
[ ! -d "$srcdir" ] && echo "$0: no such directory $srcdir" >&2 && exit 1
[ ! -f "$srcdir/utt2spk" ] && echo "$0: no such file $srcdir/utt2spk" >&2 && exit 1

command -v tfspk-copy-data-dir >/dev/null 2>&1 || { echo "$0: tfspk-copy-data-dir not found on PATH (activate the tfspk venv or source path.sh)" >&2; exit 1; }
tfspk-copy-data-dir --utt-prefix="$utt_prefix" --utt-suffix="$utt_suffix" \
  --spk-prefix="$spk_prefix" --spk-suffix="$spk_suffix" \
  --validate-opts="$validate_opts" "$srcdir" "$destdir"
