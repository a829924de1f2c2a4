#!/usr/bin/env bash
# Choose the LDA dimension of the PLDA back-end on the dev trials, then score the evaluation trials
# once with the chosen dimension. Needs a system trained with run.sh --dev-speakers N (its nnet dir has
# xvectors_train_nodev, xvectors_dev and xvectors_eval). Prints the dev PLDA EER of every candidate,
# the choice (lowest dev EER; ties: the smaller dimension) and the evaluation results with it.
# e.g.: local/tune_lda_dim.sh --dims "16 24 32 43" exp/dev_base_seed777

echo "$0 $@"
set -e -o pipefail

dims="16 24 32 max"        # candidate LDA dimensions ('max': training speakers - 1)
data=data
cmd=run.pl
help_message="Usage: $0 [--dims \"$dims\"] [--data $data] <nnet-dir>
 Writes <nnet-dir>/scores_dev_lda<d>/ per candidate, <nnet-dir>/scores_lda_tuned/ (evaluation, chosen dim)
 and <nnet-dir>/lda_dim_chosen."

. "$(dirname "$0")/../utils/parse_options.sh" || exit 1
if [ $# -ne 1 ]; then
  echo "$help_message" >&2
  exit 1
fi
. ./path.sh   # run from the recipe dir (local/ and the venv's tools)
dir=$1
for f in "$dir/xvectors_train_nodev/xvector.scp" "$dir/xvectors_dev/xvector.scp" "$dir/xvectors_eval/xvector.scp" \
         "$data/train_nodev/utt2spk" "$data/dev/trials" "$data/eval/trials"; do
  if [ ! -f "$f" ]; then
    echo "$0: missing $f (train the system with run.sh --dev-speakers N)" >&2
    exit 1
  fi
done
[ -z "$dims" ] && { echo "$0: --dims is empty" >&2; exit 1; }

best=
best_eer=
for d in $dims; do
  out=$dir/scores_dev_lda$d
  local/score_plda_cosine.sh --cmd "$cmd" --lda-dim $d "$data/train_nodev" "$dir/xvectors_train_nodev" \
    "$dir/xvectors_dev" "$data/dev/trials" "$out" > "$out.log" 2>&1 || { cat "$out.log" >&2; exit 1; }
  eer=$(tfspk-score-report --names=plda "$data/dev/trials" "$out/plda_scores" 2>/dev/null | awk '$1 == "plda" {print $4}')
  echo "$0: LDA dim $d: dev PLDA EER $eer %"
  if [ -z "$best" ] || awk -v a="$eer" -v b="$best_eer" 'BEGIN {exit !(a < b)}'; then
    best=$d
    best_eer=$eer
  fi
done
echo "$best" > "$dir/lda_dim_chosen"
echo "$0: chosen on dev: LDA dim $best (dev PLDA EER $best_eer %); evaluation with it:"
local/score_plda_cosine.sh --cmd "$cmd" --lda-dim $best "$data/train_nodev" "$dir/xvectors_train_nodev" \
  "$dir/xvectors_eval" "$data/eval/trials" "$dir/scores_lda_tuned" > "$dir/scores_lda_tuned.log" 2>&1
local/report.sh "$data/eval/trials" "$dir/scores_lda_tuned" 2>/dev/null | tee "$dir/scores_lda_tuned/results.txt"
