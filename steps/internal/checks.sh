#!/usr/bin/env bash
# Input checks and output hand-over shared by the steps/ scripts (sourced; messages use the caller's $0).

# require_files <file>...: stop, naming the first file that does not exist.
require_files() {
  local f
  for f in "$@"; do
    if [ ! -f "$f" ]; then
      echo "$0: no such file $f" >&2
      exit 1
    fi
  done
}

# require_kaldi_binaries <binary>...: for --use-kaldi true, stop naming the first binary not on PATH.
require_kaldi_binaries() {
  local binary
  for binary in "$@"; do
    if ! command -v "$binary" > /dev/null; then
      echo "$0: --use-kaldi true, but Kaldi's $binary is not on PATH (source Kaldi's path.sh," \
        "or use --use-kaldi false for tfspk's tools)" >&2
      exit 1
    fi
  done
}

# back_up <dir> <file>: move an earlier <dir>/<file> to <dir>/.backup, so that a failed run cannot
# leave it looking like this run's output.
back_up() {
  if [ -f "$1/$2" ]; then
    mkdir -p "$1/.backup"
    echo "$0: moving $1/$2 to $1/.backup"
    mv "$1/$2" "$1/.backup"
  fi
}
