#!/usr/bin/env bash
# Train, extract and score one demo system with several training seeds and print the EERs of each
# seed and their mean +- standard deviation (sample std, n - 1) for every back-end (PLDA, centred cosine,
# raw cosine, AS-norm cosine) on the dev set (--dev-speakers N) and the evaluation set, so that
# differences between systems can be compared with the run-to-run noise. Reuses run.sh stages 0-2 (runs them first if missing).
# --noisy-eval true also runs run.sh stage 8 per seed and summarises its noisy copies of dev and eval alike.
# e.g.: local/run_seeds.sh --net ecapa_tdnn --seeds "1 2 3"
#       local/run_seeds.sh --net tdnn --system adaptive_rectangle --seeds "1 2 3"

echo "$0 $@"
set -e -o pipefail

net=tdnn                  # run.sh --net (conf/<net>.yaml)
system=aamsoftmax         # run.sh --system (conf/losses.txt)
aug=none                  # run.sh --aug (online|none)
train_config=             # run.sh --train-config (default: run.sh's)
name=                     # label of the nnet dirs: $exp/<name>_seed<S> (default: <net>[_aug]_nnet_<system>)
seeds="1 2 3"             # training seeds (tfspk-train --seed); the corpus and trials keep run.sh's seed
train_opts=()             # passed to run.sh (repeatable)
set=()                    # passed to run.sh: config overrides (repeatable)
reuse=true                # a seed whose scores/results.txt exists is not run again
init_from=                # run.sh --init-from: fine-tune this exp dir's network; {seed} is replaced by each seed
                          # (e.g. large-margin fine-tuning of a run_seeds.sh system: exp/<name>_seed{seed})
dev_speakers=0            # run.sh --dev-speakers: > 0 holds out that many training speakers as the dev set
                          # (made by run.sh stage 2 if missing) and reports dev beside eval
split_seed=777            # run.sh --seed for stages 2-8: which speakers form the dev split (and its trials, and
                          # the noisy copies' draws); another value is another dev split, in a --data dir of its own
                          # whose stages 0-1 are made (checks that a decision holds on other held-out speakers)
speed_perturb=            # run.sh --speed-perturb (e.g. "0.9 1.1"): train on speed-perturbed copies too (run.sh stage 1
                          # must have made them: ./run.sh --speed-perturb "0.9 1.1" --stop-stage 1)
noisy_eval=false          # true: run.sh stage 8 for each seed (once: reused like the training) and report its noisy
                          # condition (dev_noisy with --dev-speakers, eval_noisy) beside the clean sets
data=data
exp=exp
nj=2
integer_options="nj dev_speakers split_seed"
help_message="Usage: $0 [--net $net] [--system $system] [--aug online|none] [--train-config <yaml>] [--name <label>] [--seeds \"$seeds\"] [--train-opts \"...\"]... [--set k=v]... [--reuse true|false] [--dev-speakers N] [--split-seed S] [--speed-perturb \"<factors>\"] [--noisy-eval true|false] [--init-from <exp-dir, {seed} = the seed>]
 Runs run.sh --stage 3 (and stage 8 with --noisy-eval true) once per seed into \$exp/<name>_seed<S> and prints mean +- std of the EERs."

. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then
  echo "$help_message" >&2
  exit 1
fi
. utils/recipe_stages.sh   # check_seeds
check_seeds "$seeds"
run_args=()
for opts in "${train_opts[@]}"; do run_args+=(--train-opts "$opts"); done
for kv in "${set[@]}"; do run_args+=(--set "$kv"); done
run_args+=(--aug "$aug")
[ -n "$train_config" ] && run_args+=(--train-config "$train_config")
run_args+=(--dev-speakers $dev_speakers --seed $split_seed --speed-perturb "$speed_perturb")
# Stage 2 again when the dev split is not this one, or (--speed-perturb) when no combined training set of the
# perturbed copies was made for these factors and this split (e.g. the split was made without them).
stage2_needed=false
if [ "$dev_speakers" -gt 0 ]; then
  [ "$(cat "$data/dev/.done" 2>/dev/null)" = "speakers=$dev_speakers seed=$split_seed" ] || stage2_needed=true
  if [ -n "$speed_perturb" ] && ! grep -qxF "factors=$(echo $speed_perturb) dev_speakers=$dev_speakers seed=$split_seed" \
      "$data"/train_nodev_sp*_no_sil/.done 2>/dev/null; then
    stage2_needed=true
  fi
fi
if $stage2_needed; then
  ./run.sh --data "$data" --exp "$exp" --nj $nj --net "$net" --aug "$aug" ${train_config:+--train-config "$train_config"} \
    --dev-speakers $dev_speakers --seed $split_seed --speed-perturb "$speed_perturb" --stage 2 --stop-stage 2
fi
if [ -z "$name" ]; then
  name=${net}_nnet_$system
  [ "$aug" = online ] && name=${net}_aug_nnet_$system
fi

# The sets summarised (dev first when there is one) and their scores dirs in each seed's nnet dir.
sets=eval
[ "$dev_speakers" -gt 0 ] && sets="dev eval"
noisy_sets=
$noisy_eval && noisy_sets=$(for set_name in $sets; do printf '%s_noisy ' $set_name; done)
sets="$sets $noisy_sets"
scores_dir() {
  case $1 in
    eval) echo scores ;;
    dev) echo scores_dev ;;
    eval_noisy) echo scores_noisy ;;
    dev_noisy) echo scores_dev_noisy ;;
  esac
}

for s in $seeds; do
  dir=$exp/${name}_seed$s
  init_args=()
  [ -n "$init_from" ] && init_args=(--init-from "${init_from//\{seed\}/$s}")
  if $reuse && [ -f "$dir/scores/results.txt" ]; then
    echo "=== $0: seed $s: reusing $dir/scores/results.txt"
  else
    echo "=== $0: $net, $system, seed $s ($(date -u +%H:%M:%S))"
    rm -rf "$dir"
    ./run.sh "${init_args[@]}" --data "$data" --exp "$exp" --nj $nj --net "$net" --system "$system" --stage 3 --stop-stage 6 \
      --nnet-dir "$dir" --set seed=$s "${run_args[@]}"
  fi
  noisy_missing=false   # stage 8 once per seed, reused like the training
  for set_name in $noisy_sets; do
    [ -f "$dir/$(scores_dir $set_name)/results.txt" ] || noisy_missing=true
  done
  if $noisy_missing; then
    echo "=== $0: $net, $system, seed $s: stage 8 (noisy condition) ($(date -u +%H:%M:%S))"
    ./run.sh "${init_args[@]}" --data "$data" --exp "$exp" --nj $nj --net "$net" --system "$system" --stage 8 --stop-stage 8 \
      --nnet-dir "$dir" --set seed=$s "${run_args[@]}" --noisy-eval true
  fi
done

# Per set and back-end: the EER of each seed, then mean +- sample std.
for set_name in $sets; do
  scores=$(scores_dir $set_name)
  for s in $seeds; do
    awk '$2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ {print $1, $4}' "$exp/${name}_seed$s/$scores/results.txt"
  done | awk -f local/mean_std.awk | awk -v name="$name" -v set_name="$set_name" '
    {per = ""; for (i = 5; i <= NF; i++) per = per sprintf(" %.2f", $i)
     printf "%s %s %-13s EER %.2f +- %.2f %% over %d seeds (per seed:%s)\n", name, set_name, $1, $3, $4, $2, per}'
done
