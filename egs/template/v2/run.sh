#!/usr/bin/env bash
# Train a speaker-verification system on your own recordings: a template to copy and edit.
#
#   cp -r egs/template/v2 egs/mycorpus/v2   (keep the steps/, utils/ and local/ symlinks, or use cp -a)
#   cd egs/mycorpus/v2 && ./run.sh --corpus /data/my_corpus
#
# --corpus is a folder of <speaker>/<utterance>.wav (or .flac), or a Kaldi data dir (wav.scp, utt2spk);
# local/prepare_data.sh turns it into data/all. Evaluation speakers are every --eval-every'th speaker of it
# (or all of --eval-corpus, prepared the same way); the others train the network. Set conf/mfcc.conf and
# conf/fbank.conf --sample-frequency to your audio's rate; conf/train.yaml chooses network, loss and schedule.
#
# Stages (--stage N --stop-stage M runs a part; each stage checks its inputs):
#   0  data/all from --corpus; split by speaker into data/train and data/eval; trials on data/eval
#   1  MFCC + energy VAD (and fbank when conf/train.yaml's features.type is fbank)
#   2  training examples: sliding CMN, voiced frames, drop short utterances and small speakers
#   3  train the network (exp/<name>; the terminal shows the training's progress lines)
#   4  extract embeddings of data/train and data/eval
#   5  back-end: mean, LDA, PLDA on data/train's embeddings; PLDA and cosine scores of the trials
#   6  EER / minDCF and a DET plot (exp/<name>/scores/results.txt, det.png)
#   7  export: exp/<name>/export, a model that takes audio (tfspk-embed, tfspk.Embedder; docs/export.md);
#      conf/export.conf picks the formats (SavedModel always; TFLite, ONNX)

set -e -o pipefail

stage=0
stop_stage=100
corpus=                 # folder of <speaker>/<utt>.wav, or a Kaldi data dir (stage 0)
eval_corpus=            # optional: evaluation speakers from here instead of a split of --corpus
eval_every=5            # without --eval-corpus: every N-th speaker (sorted) is an evaluation speaker
nj=2                    # parallel jobs for features and extraction
data=data
exp=exp
train_config=conf/train.yaml
name=                   # the experiment's name: exp/<name> (default: <network>_<loss> of the config)
loss=                   # override the config's loss, e.g. arcsoftmax ...
loss_params=            # ... and its parameters, e.g. m2=0.25
train_opts=()           # further steps/train_xvector.sh options, e.g. "--num-epochs 4" (repeatable; split at spaces)
set=()                  # config overrides, e.g. --set schedule.num_epochs=4 (repeatable)
min_len=50              # training utterances need more voiced frames than this
min_num_utts=5          # training speakers need at least this many utterances
lda_dim=max             # LDA dimension before PLDA; max = training speakers - 1
integer_options="stage stop_stage eval_every nj min_len min_num_utts"

help_message="Usage: $0 --corpus <dir> [options]
Trains, extracts, scores and exports a system on your data (see the comments at the top of $0).
Options (default):
  --corpus <dir>            folder of <speaker>/<utt>.wav, or a Kaldi data dir
  --eval-corpus <dir>       evaluation speakers from here (default: every --eval-every'th speaker of --corpus)
  --eval-every ($eval_every) --nj ($nj) --stage ($stage) --stop-stage ($stop_stage)
  --train-config ($train_config) --name (<network>_<loss>) --loss <name> --loss-params <k=v,...>
  --train-opts \"...\" (repeatable) --set key=value (repeatable)
  --min-len ($min_len) --min-num-utts ($min_num_utts) --lda-dim ($lda_dim)"

echo "$0 $@"
. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
. utils/recipe_stages.sh   # stage_banner, require, config_value
if [ $# -ne 0 ]; then
  echo "$help_message" >&2
  exit 1
fi
if [ ! -f "$train_config" ]; then
  echo "$0: no such config $train_config (--train-config)" >&2
  exit 1
fi
feat_type=$(config_value features type)   # config_value: utils/recipe_stages.sh
feat_type=${feat_type:-mfcc}
case $feat_type in
  mfcc) sfx= ;;
  fbank) sfx=_fbank ;;
  *) echo "$0: $train_config: features.type '$feat_type' is not one of mfcc, fbank" >&2; exit 1 ;;
esac
# --loss replaces the config's loss with its parameters (those belong to the config's loss); --loss-params
# then sets parameters one by one.
config_loss=$(config_value loss name)
loss_args=()
[ -n "$loss" ] && [ "$loss" != "$config_loss" ] && loss_args+=(--set "loss={name: $loss}")
[ -z "$loss" ] && loss=$config_loss
for kv in ${loss_params//,/ }; do loss_args+=(--set "loss.params.$kv"); done
[ -z "$name" ] && name=$(config_value nnet name)_${loss:-softmax}
nnet_dir=$exp/$name

# make_features <data-dir>: MFCC + energy VAD in <data-dir>, and the network's features in <data-dir>$sfx
# with the VAD of the MFCCs.
make_features() {
  local dir=$1
  steps/make_mfcc.sh --mfcc-config conf/mfcc.conf --nj $nj --cmd "$train_cmd" "$dir" "$exp/make_mfcc" mfcc
  utils/fix_data_dir.sh "$dir"
  steps/compute_vad_decision.sh --vad-config conf/vad.conf --nj $nj --cmd "$train_cmd" "$dir" "$exp/make_vad" mfcc
  utils/fix_data_dir.sh "$dir"
  if [ -n "$sfx" ]; then
    rm -rf "$dir$sfx"
    utils/copy_data_dir.sh "$dir" "$dir$sfx"
    rm -f "$dir$sfx/feats.scp" "$dir$sfx/vad.scp"
    steps/make_$feat_type.sh --$feat_type-config conf/$feat_type.conf --nj $nj --cmd "$train_cmd" \
      "$dir$sfx" "$exp/make_$feat_type" $feat_type
    cp "$dir/vad.scp" "$dir$sfx/vad.scp"
    utils/fix_data_dir.sh "$dir$sfx"
  fi
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  stage_banner 0 "data: $corpus -> $data/train, $data/eval, trials"
  if [ -z "$corpus" ]; then
    echo "$0: stage 0 needs --corpus <folder of <speaker>/<utt>.wav, or a Kaldi data dir>" >&2
    exit 1
  fi
  local/prepare_data.sh "$corpus" "$data/all"
  if [ -n "$eval_corpus" ]; then
    local/prepare_data.sh "$eval_corpus" "$data/eval"
    rm -rf "$data/train"
    utils/copy_data_dir.sh "$data/all" "$data/train"
  else
    awk -v n=$eval_every 'NR % n == 0 {print $1}' "$data/all/spk2utt" > "$data/eval_speakers"
    local/split_speakers.py "$data/all" "$data/eval_speakers" "$data/train" "$data/eval"
  fi
  local/make_trials.py "$data/eval" "$data/eval/trials"
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  stage_banner 1 "MFCC + energy VAD${sfx:+ + $feat_type}"
  require 0 "$data/train/wav.scp" "$data/eval/wav.scp"
  make_features "$data/train"
  make_features "$data/eval"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  stage_banner 2 "training examples (CMN, voiced frames, length filter)"
  require 1 "$data/train$sfx/feats.scp" "$data/train$sfx/vad.scp"
  steps/prepare_feats_for_egs.sh --nj $nj --cmd "$train_cmd" --min-len $min_len --min-num-utts $min_num_utts \
    "$data/train$sfx" "$data/train${sfx}_no_sil" "$exp/train${sfx}_no_sil"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  stage_banner 3 "train $name on $feat_type in $nnet_dir"
  require 2 "$data/train${sfx}_no_sil/feats.scp" "$data/train${sfx}_no_sil/utt2num_frames"
  # the front end this recipe computed, recorded by tfspk-train in $nnet_dir/features.yaml for extraction and
  # export (first, so that --train-opts and --set override it)
  train_args=(--set "features.type=$feat_type" --set "features.conf=conf/$feat_type.conf" --set "features.vad=true"
    --set "features.vad_conf=conf/vad.conf" --set "features.vad_mfcc_conf=conf/mfcc.conf")
  for opts in "${train_opts[@]}"; do train_args+=($opts); done   # each --train-opts is split at spaces
  for kv in "${set[@]}"; do train_args+=(--set "$kv"); done        # each --set stays one word
  steps/train_xvector.sh --cmd "$cuda_cmd" --train-config "$train_config" "${loss_args[@]}" "${train_args[@]}" \
    "$data/train${sfx}_no_sil" "$nnet_dir"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  stage_banner 4 "extract embeddings"
  require 3 "$nnet_dir/final/model.weights.h5" "$nnet_dir/config.yaml"
  steps/extract_xvectors.sh --nj $nj --cmd "$train_cmd" "$nnet_dir" "$data/train$sfx" "$nnet_dir/xvectors_train" \
    "$data/eval$sfx" "$nnet_dir/xvectors_eval"   # both in the same jobs: one start of TensorFlow each
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  stage_banner 5 "back-end: LDA + PLDA and cosine scoring"
  require 4 "$nnet_dir/xvectors_train/xvector.scp" "$nnet_dir/xvectors_eval/xvector.scp"
  require 0 "$data/eval/trials"
  local/score_plda_cosine.sh --cmd "$train_cmd" --lda-dim $lda_dim \
    "$data/train" "$nnet_dir/xvectors_train" "$nnet_dir/xvectors_eval" "$data/eval/trials" "$nnet_dir/scores"
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  stage_banner 6 "metrics and DET plot"
  require 5 "$nnet_dir/scores/plda_scores" "$nnet_dir/scores/cosine_scores"
  local/report.sh --title "$name" "$data/eval/trials" "$nnet_dir/scores" | tee "$nnet_dir/scores/results.txt"
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  stage_banner 7 "export: $nnet_dir/export (SavedModel, TFLite, ONNX; audio in, embedding out)"
  require 3 "$nnet_dir/final/model.weights.h5" "$nnet_dir/config.yaml"
  tfspk-export --config conf/export.conf "$nnet_dir" "$nnet_dir/export"   # front end: $nnet_dir/features.yaml
  echo "$0: use it: tfspk-embed --compare $nnet_dir/export a.wav b.wav (docs/export.md)"
fi
echo "$0: done ($(date -u +%H:%M:%S))"
