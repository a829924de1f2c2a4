#!/usr/bin/env bash
# Fine-tuning on new speakers against training from scratch, over several seeds (RESULTS.md, "Fine-tuning
# on new speakers"). The demo's training speakers (data/train_fbank_no_sil, stage 2) are split into two
# disjoint halves A and B (alternately in sorted order, so every corpus package is in both halves):
#   pre_a     the network trained from scratch on half A (the "pretrained" model)
#   scratch_b the same network and config trained from scratch on half B
#   tuned_b   pre_a fine-tuned on half B (init_from: network weights kept, a new head of half B's speakers
#             from their mean embeddings, conf/finetune.yaml) with the same number of steps and batches as
#             scratch_b
#   tuned_rand_b  the same with a random new head (finetune.head=random)
# The --score-arms are scored on the demo's evaluation trials (speakers of neither half) with the demo's
# back-end trained on half B's embeddings (stages 4-6 of run.sh; pre_a too: the pretrained network
# without fine-tuning, only its back-end sees half B); the script prints each seed's EERs and mean +-
# sample std.
# e.g.: local/run_finetune_seeds.sh --seeds "1 2 3"

echo "$0 $@"
set -e -o pipefail

net=ecapa_tdnn            # conf/<net>.yaml: the network and training config of pre_a and scratch_b
system=amsoftmax          # conf/losses.txt label: the loss of every arm
finetune_config=conf/finetune.yaml   # the fine-tuning config of tuned_b (init_from is set here)
speakers_per_batch=20     # per arm: half of the demo's 40, as each half has half of its speakers
seeds="1 2 3"
stage=0
stop_stage=5
arms="pre_a scratch_b tuned_b"   # stages 1-3 train only these (of pre_a scratch_b tuned_b tuned_rand_b)
score_arms="scratch_b tuned_b"   # stages 4-5 score these (of pre_a scratch_b tuned_b tuned_rand_b)
data=data
exp=exp
nj=2
integer_options="stage stop_stage nj speakers_per_batch"
help_message="Usage: $0 [--net $net] [--system $system] [--finetune-config $finetune_config] [--seeds \"$seeds\"]
  [--speakers-per-batch $speakers_per_batch] [--stage $stage] [--stop-stage $stop_stage] [--data $data] [--exp $exp]
  [--arms \"$arms\"] [--score-arms \"$score_arms\"]
 Stages: 0 split the training speakers into halves A and B; 1 train pre_a; 2 train scratch_b;
 3 fine-tune pre_a on B (tuned_b, tuned_rand_b); 4 extract + score the --score-arms; 5 print mean +- std."

. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then
  echo "$help_message" >&2
  exit 1
fi
. utils/recipe_stages.sh   # check_seeds
check_seeds "$seeds"
for f in conf/$net.yaml "$finetune_config" conf/losses.txt; do
  [ -f "$f" ] || { echo "$0: missing $f" >&2; exit 1; }
done
system_line=$(awk -v s="$system" '!/^#/ && $1 == s' conf/losses.txt)
[ -n "$system_line" ] || { echo "$0: unknown --system '$system' (conf/losses.txt)" >&2; exit 1; }
loss=$(echo "$system_line" | awk '{print $2}')
loss_params=$(echo "$system_line" | awk '$3 != "-" {print $3}')
ft=$exp/finetune
# Both trained arms run every epoch of the schedule (no early stop), so they take the same number of steps.
same_steps=(--set schedule.max_reductions_without_improvement=1000 --set schedule.min_lr=0
            --set data.speakers_per_batch=$speakers_per_batch)

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  for f in $data/train_fbank_no_sil/feats.scp $data/train_fbank/feats.scp $data/eval_fbank/feats.scp $data/eval/trials; do
    [ -f "$f" ] || { echo "$0: missing $f; run run.sh --stop-stage 2 first" >&2; exit 1; }
  done
  mkdir -p $ft
  cut -d' ' -f1 $data/train_fbank_no_sil/spk2utt | awk 'NR % 2 == 1' > $ft/speakers_a
  cut -d' ' -f1 $data/train_fbank_no_sil/spk2utt | awk 'NR % 2 == 0' > $ft/speakers_b
  for half in a b; do
    utils/subset_data_dir.sh --spk-list $ft/speakers_$half $data/train_fbank_no_sil $data/ft_train_$half
    # The half's utterances with all frames + VAD, for the back-end's training embeddings.
    utils/subset_data_dir.sh --spk-list $ft/speakers_$half $data/train_fbank $data/ft_backend_$half
  done
  echo "$0: half A $(wc -l < $ft/speakers_a) speakers, half B $(wc -l < $ft/speakers_b) speakers"
fi

train_arm() {  # <arm> <seed> <data-dir> [extra tfspk-train options]
  local arm=$1 seed=$2 train_data=$3; shift 3
  local dir=$ft/${arm}_seed$seed
  if [ -f $dir/final/DONE ]; then echo "$0: $dir is trained"; return; fi
  echo "=== $0: train $arm, seed $seed ($(date -u +%H:%M:%S))"
  steps/train_xvector.sh --cmd "$cuda_cmd" --loss "$loss" ${loss_params:+--loss-params "$loss_params"} \
    "$@" --set seed=$seed "${same_steps[@]}" $train_data $dir
}

for s in $seeds; do
  if [ $stage -le 1 ] && [ $stop_stage -ge 1 ] && [[ " $arms " == *" pre_a "* ]]; then
    train_arm pre_a $s $data/ft_train_a --train-config conf/$net.yaml
  fi
  if [ $stage -le 2 ] && [ $stop_stage -ge 2 ] && [[ " $arms " == *" scratch_b "* ]]; then
    train_arm scratch_b $s $data/ft_train_b --train-config conf/$net.yaml
  fi
  if [ $stage -le 3 ] && [ $stop_stage -ge 3 ] && [[ " $arms " == *" tuned_b "* ]]; then
    [ -f $ft/pre_a_seed$s/final/DONE ] || { echo "$0: $ft/pre_a_seed$s is not trained (stage 1)" >&2; exit 1; }
    train_arm tuned_b $s $data/ft_train_b --train-config "$finetune_config" --set init_from=$ft/pre_a_seed$s
  fi
  if [ $stage -le 3 ] && [ $stop_stage -ge 3 ] && [[ " $arms " == *" tuned_rand_b "* ]]; then
    [ -f $ft/pre_a_seed$s/final/DONE ] || { echo "$0: $ft/pre_a_seed$s is not trained (stage 1)" >&2; exit 1; }
    train_arm tuned_rand_b $s $data/ft_train_b --train-config "$finetune_config" --set init_from=$ft/pre_a_seed$s \
      --set finetune.head=random
  fi
done

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  for s in $seeds; do
    for arm in $score_arms; do
      dir=$ft/${arm}_seed$s
      [ -f $dir/scores/results.txt ] && continue
      steps/extract_xvectors.sh --nj $nj --cmd "$train_cmd" $dir $data/ft_backend_b $dir/xvectors_train
      steps/extract_xvectors.sh --nj $nj --cmd "$train_cmd" $dir $data/eval_fbank $dir/xvectors_eval
      local/score_plda_cosine.sh --cmd "$train_cmd" --lda-dim max \
        $data/ft_backend_b $dir/xvectors_train $dir/xvectors_eval $data/eval/trials $dir/scores
      local/report.sh --title "demo, $arm, seed $s" $data/eval/trials $dir/scores > $dir/scores/results.txt
    done
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  for arm in $score_arms; do
    eers=$(for s in $seeds; do
      awk -v s="$s" '$1 == "plda" {p = $4} $1 == "cosine" {c = $4} END {print s, p, c}' $ft/${arm}_seed$s/scores/results.txt
    done)
    echo "$eers" | awk -v name="$arm" '{printf "%s seed %s: PLDA EER %.2f %%, cosine EER %.2f %%\n", name, $1, $2, $3}'
    echo "$eers" | awk '{print "plda", $2; print "cosine", $3}' | awk -f local/mean_std.awk | awk -v name="$arm" '
      {n = $2; mean[$1] = $3; std[$1] = $4}
      END {printf "%s over %d seeds: PLDA EER %.2f +- %.2f %%, cosine EER %.2f +- %.2f %% (mean +- sample std)\n",
                  name, n, mean["plda"], std["plda"], mean["cosine"], std["cosine"]}'
  done
fi
