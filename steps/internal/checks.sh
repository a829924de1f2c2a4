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

# remove_stale_temporaries <dir> <name-pattern>...: remove the hidden temporaries that jobs of an
# earlier, interrupted run left in <dir>. tfspk's tools write every output through tfspk.io.atomic,
# which names the temporary .tmp.<8 random characters>.<output name> next to the output and renames it
# on success; a job killed by SIGKILL (or a lost node) cannot remove it. <name-pattern> is a bash
# extglob pattern for this step's own output names (e.g. 'raw_mfcc_train.+([0-9]).@(ark|scp)'), so
# the temporaries of other steps or data dirs sharing <dir> are left alone.
remove_stale_temporaries() {
  local dir=$1 pattern file
  shift
  local restore_extglob restore_nullglob
  restore_extglob=$(shopt -p extglob) || true   # status 1 when the option is off
  restore_nullglob=$(shopt -p nullglob) || true
  shopt -s extglob nullglob
  for pattern in "$@"; do
    # shellcheck disable=SC2086  # the pattern is a glob by design
    for file in "$dir"/.tmp.????????.$pattern; do
      echo "$0: removing $file (a temporary file left by an interrupted earlier run)"
      rm -f "$file"
    done
  done
  eval "$restore_extglob; $restore_nullglob"
}

# lock_output_dir <dir>...: take each <dir>'s lock (<dir>/.lock, tfspk.io.dirlock: the lock tfspk-train takes on
# its experiment dir) for this script, released when it exits; a second run into a <dir> while this one runs
# stops with an error naming it, instead of overwriting its outputs and logs. A lock left by a killed run
# is taken over (with a message). Replaces an EXIT trap of the caller: set yours after this call.
lock_output_dir() {
  local dir locked=
  for dir in "$@"; do
    tfspk-lock-dir --owner-pid=$$ --what="$0" --command="$0" "$dir" || exit 1
    locked="$locked tfspk-lock-dir --release --owner-pid=$$ $(printf '%q' "$dir") 2>/dev/null;"
    # shellcheck disable=SC2064  # expanded now on purpose
    trap "$locked" EXIT
  done
}

# report_job_warnings <log-glob> <log-file>...: say on stdout how many WARNING lines the jobs of this step
# wrote into their logs (as Kaldi's steps report the utterances that failed), how many of them are about
# truncated audio, and the first one; nothing when there are none. A warning must not stay hidden in a job
# log behind the step's "Succeeded" line.
report_job_warnings() {
  local glob=$1 count truncated first
  shift
  count=$(cat "$@" 2>/dev/null | grep -c '^WARNING (') || true
  [ "${count:-0}" -gt 0 ] || return 0
  truncated=$(cat "$@" 2>/dev/null | grep '^WARNING (' | grep -c 'Truncated file?') || true
  first=$(cat "$@" 2>/dev/null | grep -m 1 '^WARNING (')
  echo "$0: $count warning(s) in the job logs $glob, $truncated of them about truncated audio (read as far" \
    "as it goes); the first: $first"
}

# require_num_args <expected> <names> "$@": exit 1 with the usage ($help_message) unless exactly <expected>
# arguments are left after the options, naming the extra words: with options first, the extra ones are the
# leading words (e.g. the second half of an option value that a caller split at a space).
require_num_args() {
  local expected=$1 names=$2
  shift 2
  [ $# -eq "$expected" ] && return 0
  printf '%b\n' "${help_message:-Usage: $0 ... $names}" >&2
  if [ $# -gt "$expected" ]; then
    local extra=$(($# - expected)) word listed=
    for word in "${@:1:$extra}"; do listed+=" '$word'"; done
    echo "$0: expected $expected arguments ($names) after the options, got $#: stray word(s)$listed" \
      "(part of an option value split at a space? give such a value as one word, e.g. --set 'key=a b')" >&2
  else
    echo "$0: expected $expected arguments ($names) after the options, got $#" >&2
  fi
  exit 1
}
