#!/usr/bin/env bash
# Calibration of one trial list's PLDA and cosine scores [Brummer2006]: the list's speakers are split
# into a calibration half and a test half (steps/calibrate_scores.sh), and EER, minDCF, actDCF, Cllr
# and minCllr of the raw and calibrated scores of the test half are printed. A list with too few
# speakers to split (fewer than 4, or a half without target or non-target trials) is skipped with a
# warning.
# Output: <score-dir>/calibration/ (results.txt, det.png, plda.cal, cosine.cal, ...).
echo "$0 $@" >&2
set -e -o pipefail
target_prior=0.01
title="calibrated, test half"
min_trials_per_class=10
help_message="Usage: $0 [--target-prior <p>] [--title <t>] [--min-trials-per-class <n>] <utt2spk> <trials> <score-dir>
 Reads <score-dir>/{plda,cosine}_scores. Options: --target-prior ($target_prior) --title ($title)
 --min-trials-per-class ($min_trials_per_class; a list whose calibration half has fewer is skipped)"
. "$(dirname "$0")/../utils/parse_options.sh" || exit 1
if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
steps/calibrate_scores.sh --systems "plda cosine" --target-prior "$target_prior" --title "$title" \
  --min-trials-per-class "$min_trials_per_class" --skip-small true "$1" "$2" "$3" "$3/calibration"
