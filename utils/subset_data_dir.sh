#!/usr/bin/env bash
# Make a subset of a data directory: N utterances spread evenly (default), the first or
# last N, up to N per speaker, the N shortest, or the utterances/speakers of a list.
# Kaldi's utils/subset_data_dir.sh interface; the work is done by tfspk-subset-data-dir.
set -e -o pipefail

echo "$0 $@"

usage() {
  exec >&2  # the usage goes to stderr (Kaldi)
  echo "Usage:"
  echo "  $0 [--speakers|--first|--last|--per-spk|--shortest] <srcdir> <num-utt> <destdir>"
  echo "  $0 --utt-list <utterance-list-file> <srcdir> <destdir>"
  echo "  $0 --spk-list <speaker-list-file> <srcdir> <destdir>"
  echo "By default it picks <num-utt> utterances evenly spread through the data;"
  echo "--per-spk picks up to <num-utt> utterances per speaker; --speakers picks whole speakers"
  echo "(seeded random order) until there are at least <num-utt> utterances."
  exit 1
}

mode=
list_opt=()
while [ $# -gt 0 ]; do
  case "$1" in
    --speakers|--first|--last|--per-spk|--shortest) mode=$1; shift ;;
    --utt-list|--spk-list)
      [ $# -lt 2 ] && usage
      list_opt=("$1" "$2")
      [ ! -f "$2" ] && echo "$0: no such file $2" >&2 && exit 1
      shift 2 ;;
    --*) echo "$0: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done

if [ ${#list_opt[@]} -gt 0 ]; then
  [ $# -ne 2 ] && usage
  srcdir=$1
else
  [ $# -ne 3 ] && usage
  srcdir=$1
fi
[ ! -d "$srcdir" ] && echo "$0: no such directory $srcdir" >&2 && exit 1
[ ! -f "$srcdir/utt2spk" ] && echo "$0: no such file $srcdir/utt2spk" >&2 && exit 1

command -v tfspk-subset-data-dir >/dev/null 2>&1 || { echo "$0: tfspk-subset-data-dir not found on PATH (activate the tfspk venv or source path.sh)" >&2; exit 1; }
tfspk-subset-data-dir ${mode:+$mode} "${list_opt[@]}" "$@"
