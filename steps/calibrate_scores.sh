#!/usr/bin/env bash
# Calibrate scores on one half of the evaluation speakers and report on the other [Brummer2006].
#
# The speakers that occur in <trials> are sorted (LC_ALL=C) and dealt alternately into a calibration
# half (1st, 3rd, ...) and a test half (2nd, 4th, ...): deterministic, disjoint, and no trial is scored
# by a calibration trained on it. Only trials with both sides in one half are kept. For every system
# <score-dir>/<system>_scores is split accordingly; tfspk-calibrate trains a linear calibration on the
# calibration half, tfspk-apply-calibration maps the test half to LLRs, and tfspk-score-report
# --calibrated=true prints EER, minDCF, actDCF, Cllr and minCllr of the raw and the calibrated test
# scores (raw scores read as LLRs as they are).
#
# Output in <out-dir>: calibration_speakers, test_speakers, trials_calibration, trials_test,
# <system>.cal (models), <system>_scores_test (raw), <system>_llrs_test (calibrated), results.txt,
# det.png (actual operating points at p_target 0.01 marked with x).
set -e -o pipefail

echo "$0 $@"

systems="plda cosine"
target_prior=0.01      # effective prior of the calibration objective (the reported operating point)
calibrate_opts=        # more tfspk-calibrate options (all systems)
title="calibrated scores (test half)"
skip_small=false       # true: too few speakers or trials to split -> warn and exit 0 without results
min_trials_per_class=10  # the calibration half needs this many target and non-target trials (tfspk-calibrate's check)

help_message="Usage: $0 [options] <utt2spk> <trials> <score-dir> <out-dir>
 e.g.: $0 data/eval/utt2spk data/eval/trials exp/xvector_nnet/scores exp/xvector_nnet/scores/calibration
Options:
  --systems \"<name> ...\"   # reads <score-dir>/<name>_scores (default: \"$systems\")
  --target-prior <p>       # tfspk-calibrate --target-prior (default: $target_prior)
  --calibrate-opts \"...\"   # further tfspk-calibrate options (default: none)
  --min-trials-per-class <n> # target and non-target trials the calibration half needs (default: $min_trials_per_class)
  --title <text>           # DET plot title (default: \"$title\")
  --skip-small <true|false> # with fewer than 4 speakers, or a half lacking target or non-target
                           # trials, warn and exit 0 instead of failing (default: $skip_small)"

. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/internal/paths.sh"   # tfspk_steps, utils (on PATH)
. "$utils/parse_options.sh" || exit 1
. "$tfspk_steps/internal/checks.sh"
if [ $# -ne 4 ]; then
  echo "$help_message" >&2
  exit 1
fi
utt2spk=$1
trials=$2
score_dir=$3
dir=$4

require_files "$utt2spk" "$trials"
for system in $systems; do
  require_files "$score_dir/${system}_scores"
done
mkdir -p "$dir"
export LC_ALL=C

# Speakers of the trials, dealt alternately into the two halves.
awk 'NR == FNR {spk[$1] = $2; next}
     { for (i = 1; i <= 2; i++) {
         if (!($i in spk)) { printf("%s: key %s of the trials is not in %s\n", prog, $i, u2s) > "/dev/stderr"; exit 1 }
         print spk[$i] } }' prog="$0" u2s="$utt2spk" "$utt2spk" "$trials" | sort -u > "$dir/.speakers"
# too_small <message>: stop, or with --skip-small true warn and stop successfully.
too_small() {
  if [ "$skip_small" = true ]; then
    echo "$0: WARNING: $1; skipping calibration (--skip-small true)" >&2
    exit 0
  fi
  echo "$0: $1" >&2
  exit 1
}
num_speakers=$(wc -l < "$dir/.speakers")
if [ "$num_speakers" -lt 4 ]; then
  too_small "$trials has $num_speakers speakers; at least 4 are needed to split them in two halves"
fi
awk 'NR % 2 == 1' "$dir/.speakers" > "$dir/calibration_speakers"
awk 'NR % 2 == 0' "$dir/.speakers" > "$dir/test_speakers"
rm -f "$dir/.speakers"

# split_trials <speaker-list> <trials-out>: the trials whose both sides are speakers of the list.
split_trials() {
  awk 'FILENAME == ARGV[1] {half[$1]; next}
       FILENAME == ARGV[2] {if ($2 in half) keep[$1]; next}
       ($1 in keep) && ($2 in keep)' "$1" "$utt2spk" "$trials" > "$2"
}
split_trials "$dir/calibration_speakers" "$dir/trials_calibration"
split_trials "$dir/test_speakers" "$dir/trials_test"
for half in calibration test; do
  num_target=$(grep -c ' target$' "$dir/trials_$half" || true)
  num_nontarget=$(grep -c ' nontarget$' "$dir/trials_$half" || true)
  echo "$0: $half half: $(wc -l < "$dir/${half}_speakers") speakers, $num_target target and" \
    "$num_nontarget non-target trials"
  if [ "$num_target" -eq 0 ] || [ "$num_nontarget" -eq 0 ]; then
    too_small "the $half half of $trials has $num_target target and $num_nontarget non-target trials"
  fi
  if [ $half = calibration ] && { [ "$num_target" -lt "$min_trials_per_class" ] ||
                                  [ "$num_nontarget" -lt "$min_trials_per_class" ]; }; then
    too_small "the calibration half of $trials has $num_target target and $num_nontarget non-target trials, fewer than --min-trials-per-class $min_trials_per_class of each"
  fi
done

# keep_scored <trials> <scores> <out>: the score lines of the given trials.
keep_scored() {
  awk 'NR == FNR {keep[$1 " " $2]; next} ($1 " " $2) in keep' "$1" "$2" > "$3"
}
names=
files=
for system in $systems; do
  keep_scored "$dir/trials_calibration" "$score_dir/${system}_scores" "$dir/${system}_scores_calibration"
  keep_scored "$dir/trials_test" "$score_dir/${system}_scores" "$dir/${system}_scores_test"
  tfspk-calibrate --target-prior="$target_prior" --min-trials-per-class="$min_trials_per_class" $calibrate_opts \
    "$dir/trials_calibration" "$dir/${system}_scores_calibration" "$dir/$system.cal"
  tfspk-apply-calibration "$dir/$system.cal" "$dir/${system}_scores_test" "$dir/${system}_llrs_test"
  names="$names${names:+,}${system}_raw,${system}_calibrated"
  files="$files $dir/${system}_scores_test $dir/${system}_llrs_test"
done

tfspk-score-report --calibrated=true --names="$names" --det-plot="$dir/det.png" --det-title="$title" \
  "$dir/trials_test" $files > "$dir/results.txt.tmp"
mv "$dir/results.txt.tmp" "$dir/results.txt"
cat "$dir/results.txt"
echo "$0: calibration models $dir/*.cal; DET plot $dir/det.png"
