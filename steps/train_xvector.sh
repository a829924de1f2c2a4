#!/usr/bin/env bash
# Train an x-vector network with tfspk-train (TensorFlow) on Kaldi features.
#
# Reads <train-data-dir>/{feats.scp,utt2spk,utt2num_frames} (steps/prepare_feats_for_egs.sh output);
# writes <exp-dir>/{config.yaml,spk2int,ckpt/,final/model.weights.h5,log/train.log,tb/}.
# Re-running the same command resumes from the last checkpoint (same global step).
#
# --config FILE.yaml is the experiment config (YAML, see `tfspk-train --print-config` and
# docs/training.md); it is passed to tfspk-train, not sourced. A --config file with any other
# extension is sourced as usual in Kaldi (shell variable assignments for this script's options).

set -e -o pipefail
echo "$0 $@"

cmd=                 # e.g. "run.pl" or "slurm.pl --gpu 1": run tfspk-train through a job runner
stage=0              # 0: check inputs; 1: train (resumes from <exp-dir>/ckpt if present)
train_config=        # YAML experiment config (same as --config FILE.yaml)
loss=                # main loss, e.g. softmax, amsoftmax, arcsoftmax, asoftmax
loss_params=         # e.g. "margin=0.2,scale=30"
margin=              # the loss's margin (shortcut for --loss-params margin=M)
aux=                 # auxiliary losses, e.g. ring,mhe
num_epochs=          # schedule.num_epochs
steps_per_epoch=     # schedule.steps_per_epoch
lr=                  # optimizer.lr
seed=                # seed
strategy=            # auto|one|mirrored|multiworker
resume=true          # false: ignore existing checkpoints and start over
set=                 # space-separated config overrides, e.g. "optimizer.lr=0.02 data.min_frames=150"
train_opts=          # any further options passed to tfspk-train verbatim

help_message="Usage: $0 [options] <train-data-dir> <exp-dir>
 e.g.: $0 --config conf/xvector.yaml --loss amsoftmax --margin 0.2 --aux ring,mhe data/train_no_sil exp/xvector
Options:
  --config <file.yaml>     # experiment config (YAML); see 'tfspk-train --print-config'
  --loss <name>            # main loss (softmax, amsoftmax, arcsoftmax, asoftmax, ...)
  --loss-params <k=v,...>  # loss parameters, e.g. 'margin=0.2,scale=30'
  --margin <m>             # margin of the loss
  --aux <a,b>              # auxiliary losses (ring, mhe)
  --num-epochs <n>         # maximum epochs (an epoch = schedule.steps_per_epoch steps)
  --steps-per-epoch <n>
  --lr <lr>                # initial learning rate
  --seed <n>
  --strategy <s>           # auto|one|mirrored|multiworker (tf.distribute)
  --resume <true|false>    # continue from the last checkpoint (default: true)
  --set '<k=v k=v>'        # any config key, e.g. 'optimizer.name=adam optimizer.lr=0.001'
  --train-opts '<opts>'    # extra tfspk-train options
  --cmd <runner>           # e.g. run.pl, slurm.pl --gpu 1 (default: run directly)
  --stage <n>              # 0: check inputs, 1: train"

# A YAML --config is the experiment config, not a shell file: take it out before parse_options.sh.
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config=*.yaml|--config=*.yml|--config=*.json) train_config=${1#--config=}; shift ;;
    --config)
      case "$2" in
        *.yaml|*.yml|*.json) train_config=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
      esac ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- "${args[@]}"

. "$(dirname "$0")/../utils/parse_options.sh" || exit 1

if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
dir=$2

if [ $stage -le 0 ]; then
  [ -d "$data" ] || { echo "$0: no such data directory $data" >&2; exit 1; }
  for f in feats.scp utt2spk utt2num_frames; do
    [ -f "$data/$f" ] || { echo "$0: expected file $data/$f to exist (the training data dir needs feats.scp, utt2spk, utt2num_frames)" >&2; exit 1; }
  done
  if [ -n "$train_config" ] && [ ! -f "$train_config" ]; then
    echo "$0: expected config file $train_config to exist" >&2; exit 1
  fi
  command -v tfspk-train >/dev/null || { echo "$0: tfspk-train not found on PATH (activate the tfspk venv / path.sh)" >&2; exit 1; }
fi

opts=()
[ -n "$train_config" ] && opts+=(--train-config "$train_config")
[ -n "$loss" ] && opts+=(--loss "$loss")
[ -n "$loss_params" ] && opts+=(--loss-params "$loss_params")
[ -n "$margin" ] && opts+=(--margin "$margin")
[ -n "$aux" ] && opts+=(--aux "$aux")
[ -n "$num_epochs" ] && opts+=(--num-epochs "$num_epochs")
[ -n "$steps_per_epoch" ] && opts+=(--steps-per-epoch "$steps_per_epoch")
[ -n "$lr" ] && opts+=(--lr "$lr")
[ -n "$seed" ] && opts+=(--seed "$seed")
[ -n "$strategy" ] && opts+=(--strategy "$strategy")
opts+=(--resume "$resume")
for kv in $set; do opts+=(--set "$kv"); done
# shellcheck disable=SC2206  # train_opts is a list of options by design
[ -n "$train_opts" ] && opts+=($train_opts)

if [ $stage -le 1 ]; then
  mkdir -p "$dir/log"
  if [ -n "$cmd" ]; then
    echo "$0: training; the log is $dir/log/train.log (job output: $dir/log/tfspk-train.log)"
    $cmd "$dir/log/tfspk-train.log" tfspk-train "${opts[@]}" "$data" "$dir"
  else
    echo "$0: training; the log is $dir/log/train.log"
    tfspk-train "${opts[@]}" "$data" "$dir"
  fi
  [ -f "$dir/final/model.weights.h5" ] || { echo "$0: training produced no $dir/final/model.weights.h5" >&2; exit 1; }
  echo "$0: done; the model for extraction is $dir/final/model.weights.h5"
fi
