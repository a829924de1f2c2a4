#!/usr/bin/env bash
# Train an x-vector network with tfspk-train (TensorFlow) on Kaldi features.
#
# Reads <train-data-dir>/{feats.scp,utt2spk,utt2num_frames} (steps/prepare_feats_for_egs.sh output), or
# {wav.scp,utt2spk} with data.source audio (on-the-fly features and augmentation, docs/training.md);
# writes <exp-dir>/{config.yaml,features.yaml,spk2int,ckpt/,final/model.weights.h5,log/train.log,tb/}.
# features.yaml is the network's front end (features, post-processing, VAD, CMN) resolved from the config's
# features: section; extraction, tfspk-export, tfspk-embed and tfspk.Embedder read it (docs/features.md).
# Re-running the same command resumes from the last checkpoint (same global step).
#
# Options of this script: --cmd, --stage, --train-config (the YAML experiment config, passed to
# tfspk-train --train-config) and --config (Kaldi's meaning: a file of shell assignments for this
# script's variables, read by parse_options.sh). Every other option before the directories is passed
# to tfspk-train unchanged and in order (so a new tfspk-train option needs no edit here, and a repeated
# option such as --set a=1 --set b=2 reaches it twice). A --config file may set train_opts=(...).

set -e -o pipefail
echo "$0 $@"

cmd=                 # e.g. "run.pl" or "slurm.pl --gpu 1": run tfspk-train through a job runner
stage=0              # 0: check inputs; 1: train (resumes from <exp-dir>/ckpt if present)
train_config=        # YAML experiment config, passed to tfspk-train --train-config
train_opts=()        # tfspk-train options (repeatable; in a --config file: train_opts=(--lr 0.1 ...))
integer_options="stage"

help_message="Usage: $0 [options] [tfspk-train options] <train-data-dir> <exp-dir>
 e.g.: $0 --train-config conf/train.yaml --loss amsoftmax --margin 0.2 --aux ring,mhe \\
         --set optimizer.lr=0.02 --set data.min_frames=150 data/train_no_sil exp/xvector
Options of this script:
  --train-config <file.yaml>  # experiment config (YAML); see 'tfspk-train --print-config'
  --cmd <runner>              # e.g. run.pl, slurm.pl --gpu 1 (default: run directly)
  --stage <n>                 # 0: check inputs, 1: train
  --config <file>             # shell assignments for these options (Kaldi's --config)
Any other option (--name value or --name=value) goes to tfspk-train in order, e.g.:
  --loss <name> --loss-params <k=v,...> --margin <m> --aux <a,b> --num-epochs <n>
  --steps-per-epoch <n> --lr <lr> --seed <n> --strategy <s> --resume <true|false>
  --set <key=value>           # repeatable: any config key, e.g. --set optimizer.name=adam
See 'tfspk-train --help' for the full list."

# Split the options: this script's own go to parse_options.sh, the others to tfspk-train.
own_args=()
pass_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) own_args+=("$1"); shift; break ;;
    --help|-h) own_args+=("$1"); shift ;;
    --cmd=*|--stage=*|--train-config=*|--config=*) own_args+=("$1"); shift ;;
    --cmd|--stage|--train-config|--config)
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      own_args+=("$1" "$2"); shift 2 ;;
    --*=*) pass_args+=("$1"); shift ;;
    --*)
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value (tfspk-train options take one: --name value)" >&2; exit 1; }
      pass_args+=("$1" "$2"); shift 2 ;;
    *) break ;;
  esac
done
for arg in "${own_args[@]}"; do
  case "$arg" in
    *.yaml|*.yml|*.json)
      if [ "$prev" = --config ] || [[ "$arg" == --config=* ]]; then
        echo "$0: --config ${arg#--config=} looks like a YAML experiment config; use --train-config for it" \
          "(--config is Kaldi's file of shell assignments for this script)" >&2
        exit 1
      fi ;;
  esac
  prev=$arg
done
set -- "${own_args[@]}" "$@"

. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/internal/paths.sh"   # tfspk_steps, utils (on PATH)
. "$utils/parse_options.sh" || exit 1

. "$tfspk_steps/internal/checks.sh"
require_num_args 2 "<train-data-dir> <exp-dir>" "$@"
data=$1
dir=$2

if [ $stage -le 0 ]; then
  [ -d "$data" ] || { echo "$0: no such data directory $data" >&2; exit 1; }
  # data.source feats (default): feats.scp + utt2num_frames; data.source audio: a dir with wav.scp and no
  # feats.scp (tfspk-train checks the rest); shards: the config names the shard dir
  required="feats.scp utt2spk utt2num_frames"
  [ ! -f "$data/feats.scp" ] && [ -f "$data/wav.scp" ] && required="wav.scp utt2spk"
  for f in $required; do
    [ -f "$data/$f" ] || { echo "$0: expected file $data/$f to exist (the training data dir needs feats.scp, utt2spk, utt2num_frames; or wav.scp and utt2spk with data.source audio)" >&2; exit 1; }
  done
  if [ -n "$train_config" ] && [ ! -f "$train_config" ]; then
    echo "$0: expected config file $train_config (--train-config) to exist" >&2; exit 1
  fi
  command -v tfspk-train >/dev/null || { echo "$0: tfspk-train not found on PATH (activate the tfspk venv / path.sh)" >&2; exit 1; }
fi

opts=()
[ -n "$train_config" ] && opts+=(--train-config "$train_config")
opts+=("${train_opts[@]}" "${pass_args[@]}")   # the command line after the --config file

if [ $stage -le 1 ]; then
  mkdir -p "$dir/log"
  if [ -n "$cmd" ]; then
    echo "$0: training; the log is $dir/log/train.log (job output: $dir/log/tfspk-train.log)"
    # The job's output goes to its log: show the log's progress lines here while it runs. The job stays in the
    # foreground (Ctrl-C reaches it); the follower ends with this script at the latest (tail --pid).
    tail -n 0 -F --pid=$$ "$dir/log/train.log" 2>/dev/null | grep --line-buffered -e ' progress: ' -e ' done: ' &
    follower=$!
    status=0
    $cmd "$dir/log/tfspk-train.log" tfspk-train "${opts[@]}" "$data" "$dir" || status=$?
    sleep 1   # the log's last lines reach the terminal
    kill $follower 2>/dev/null || true
    if [ $status -ne 0 ]; then
      echo "$0: training failed (exit status $status); see $dir/log/tfspk-train.log" >&2
      exit $status
    fi
  else
    echo "$0: training; the log is $dir/log/train.log"
    tfspk-train "${opts[@]}" "$data" "$dir"
  fi
  [ -f "$dir/final/model.weights.h5" ] || { echo "$0: training produced no $dir/final/model.weights.h5" >&2; exit 1; }
  if [ -f "$dir/features.yaml" ]; then
    echo "$0: the front end is recorded in $dir/features.yaml"
  else
    echo "$0: no front end recorded (the config has no features.type): tfspk-export and tfspk-embed need one" >&2
  fi
  echo "$0: done; the model for extraction is $dir/final/model.weights.h5"
fi
