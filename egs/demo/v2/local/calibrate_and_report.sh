#!/usr/bin/env bash
# Calibration of the demo's PLDA and cosine scores [Brummer2006]: the evaluation speakers are split
# into a calibration half and a test half (steps/calibrate_scores.sh), and EER, minDCF, actDCF, Cllr
# and minCllr of the raw and calibrated scores of the test half are printed.
# Output: <score-dir>/calibration/ (results.txt, det.png, plda.cal, cosine.cal, ...).
# The objective's effective prior is 0.5 (Cllr, the [Brummer2006] default), not the reported operating
# point 0.01: with 11 calibration speakers the 0.01-weighted objective fits their few highest
# non-target scores, which do not carry over to the other 11 (docs/backend.md, measured per seed).
echo "$0 $@" >&2
set -e -o pipefail
target_prior=0.5
title="demo: calibrated, test half"
help_message="Usage: $0 [--target-prior <p>] [--title <t>] <eval-data-dir> <score-dir>
 Reads <eval-data-dir>/utt2spk, <eval-data-dir>/trials, <score-dir>/{plda,cosine}_scores.
 Options: --target-prior ($target_prior) --title ($title)"
. "$(dirname "$0")/../utils/parse_options.sh" || exit 1
if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
dir=$2
steps/calibrate_scores.sh --systems "plda cosine" --target-prior "$target_prior" \
  --title "$title" \
  "$data/utt2spk" "$data/trials" "$dir" "$dir/calibration"
