#!/usr/bin/env bash
# EER, minDCF(0.01), minDCF(0.001) of the PLDA and cosine scores of one trial list, and their DET plot.
echo "$0 $@" >&2
set -e -o pipefail
title=
help_message="Usage: $0 [--title <det-title>] <trials> <score-dir>
 Reads <score-dir>/plda_scores and <score-dir>/cosine_scores, writes <score-dir>/det.png and prints the table."
. "$(dirname "$0")/../utils/parse_options.sh" || exit 1
if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
trials=$1
dir=$2
for f in "$trials" "$dir/plda_scores" "$dir/cosine_scores"; do
  if [ ! -f "$f" ]; then
    echo "$0: missing input $f" >&2
    exit 1
  fi
done
# The optional back-ends of local/score_plda_cosine.sh, when their scores exist.
names=plda,cosine
files=("$dir/plda_scores" "$dir/cosine_scores")
for extra in raw_cosine cosine_asnorm; do
  if [ -f "$dir/${extra}_scores" ]; then names=$names,$extra; files+=("$dir/${extra}_scores"); fi
done
tfspk-score-report --names=$names --det-plot="$dir/det.png" ${title:+--det-title="$title"} \
  "$trials" "${files[@]}"
echo "DET plot: $dir/det.png"
