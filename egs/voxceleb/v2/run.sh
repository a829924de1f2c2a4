#!/usr/bin/env bash
# tfspk recipe for VoxCeleb (Kaldi egs/voxceleb/v2 with the [Liu2019] x-vector system and tfspk tools).
#
# Training data: VoxCeleb2 dev (+ VoxCeleb1 dev with --vox1-train true, the training set of [Liu2019]
# and of the Kaldi recipe), optionally augmented with RIRS_NOISES reverberation and MUSAN
# noise / music / babble. Evaluation: VoxCeleb1-O, -E, -H (cleaned lists veri_test2.txt,
# list_test_all2.txt, list_test_hard2.txt). -E and -H use every VoxCeleb1 speaker, so they are only
# scored when VoxCeleb1 is not part of the training data.
#
# Stages:
#   0  data dirs: data/voxceleb2_train, data/voxceleb1{,_train,_test} + trials, data/train
#   1  MFCC (16 kHz, 30-dim) + energy VAD for data/train and the evaluation data dir
#   2  augmentation (with --musan and --rirs-noises), by --aug:
#      offline (the default then; Kaldi's): reverb, noise, music, babble copies, a random subset of
#        --aug-subset utterances, their MFCCs, combined with the clean data -> data/train_combined
#      online: data dirs of the corpora for the trainer's Augmenter (local/make_aug_dirs.py:
#        data/musan_{noise,music,speech}, data/rirs = simulated small + medium rooms) and the training
#        audio as files (VoxCeleb2's ffmpeg pipes decoded to FLAC in --audio-dir) -> data/train_audio
#   3  training examples: sliding CMN, voiced frames, drop utterances <= --min-len frames and speakers
#      with < --min-num-utts utterances (--aug online: the same filter on vad.scp in stage 2)
#   4  train the x-vector network; with --aug online from audio (data.source audio): random crops of
#      the voiced audio (vad.scp of stage 1), augmented on the fly (reverberation, MUSAN noise 15:10:5:0 dB,
#      music 15:10:8:5 dB, babble of 3-7 speakers at 20:17:15:13 dB, Kaldi's SNRs; each with probability
#      --aug-prob, change any key with --set augment.<key>=...), the system's features computed on the fly
#      (conf/<type>.conf), sliding CMN (300 frames, centred) on each crop; docs/recipes.md
#   5  extract embeddings (training data for the back-end, evaluation data)
#   6  back-end (mean, LDA-200, PLDA) and PLDA + cosine scores for every trial list
#   7  EER / minDCF(0.01) / minDCF(0.001) and DET plots
#   8  calibration: per trial list, train on half of its speakers, actDCF / Cllr on the other half
#   9  (--lmft true) large-margin fine-tuning of the stage-4 network, extraction, scoring, results

set -e -o pipefail

stage=0
stop_stage=100
voxceleb1_root=            # VoxCeleb1: <root>/wav/idXXXXX/<video>/NNNNN.wav and the trial lists
voxceleb2_root=            # VoxCeleb2: <root>/dev/aac/idXXXXX/<video>/NNNNN.m4a
vox1_train=false           # add the VoxCeleb1 dev speakers to training (then only VoxCeleb1-O is scored)
trial_lists="O E H"        # which VoxCeleb1 trial lists to score
musan=                     # MUSAN dir (noise/ music/ speech/); with --rirs-noises enables stage 2
rirs_noises=               # RIRS_NOISES dir (simulated_rirs/{smallroom,mediumroom}/rir_list)
aug=                       # offline | online | none (default: offline with --musan and --rirs-noises, else none)
audio_dir=audio            # --aug online: where stage 2 writes the decoded VoxCeleb2 audio (FLAC, ~2x smaller than WAV)
aug_prob=0.2               # --aug online: probability of reverberation, and of each of noise / music / babble
aug_subset=1000000         # augmented utterances kept (Kaldi: 1M)
nj=40                      # parallel jobs of the data-parallel stages
data=data
exp=exp
mfcc_dir=                  # MFCC and VAD archives (default: mfcc/ for --data data, else <data>_mfcc)
system=tdnn                # conf/<system>.yaml: tdnn ([Liu2019]), ecapa_tdnn_c1024 ([Li2022AR]), resnet34
                           # ([Wang2023]), rescnn ([Zhou2020]); its features.type picks the features
train_config=              # default: conf/$system.yaml
loss=                      # swap the loss here (tfspk-train --help lists them; default: the config's)
loss_opts=()               # steps/train_xvector.sh options, e.g. "--margin 0.25 --aux ring" (repeatable; split at spaces)
set=()                     # config overrides for tfspk-train, e.g. --set optimizer.lr=0.02 (repeatable)
min_len=400
min_num_utts=8
lda_dim=200
calibration_min_trials=10  # stage 8: target and non-target trials the calibration half needs (fewer: skipped)
nnet_dir=                  # default: $exp/xvector_nnet_<loss> (tdnn), $exp/<system>_nnet[_<loss>] (others)
init_from=                 # an experiment dir (trained, or tfspk-import-model'ed, e.g. Kaldi's final.raw): stage 4
                           # fine-tunes its network (conf/finetune.yaml) into $exp/finetune_<its name>
lmft=false                 # stage 9: large-margin fine-tuning of $nnet_dir (init_from, longer crops, larger margin)
lmft_margin=0.35           # stage 9: the loss's margin (loss.params.margin; "" for losses without one)
lmft_frames=600            # stage 9: crop length in frames (both min and max)
lmft_epochs=5              # stage 9: epochs; all of them are averaged into the extraction model
lmft_lr=0.0005             # stage 9: initial LR, x0.95 per epoch (schedule.lr_policy=exponential)
lmft_set=()                # stage 9: more config overrides (repeatable), e.g. --lmft-set schedule.steps_per_epoch=2000
nnet_dir_lmft=             # stage 9: default ${nnet_dir}_lmft
integer_options="stage stop_stage aug_subset nj min_len min_num_utts lda_dim calibration_min_trials lmft_frames lmft_epochs"

help_message="Usage: $0 --voxceleb1-root <dir> [--voxceleb2-root <dir>] [options]
Options (default): --stage ($stage) --stop-stage ($stop_stage) --vox1-train ($vox1_train)
  --trial-lists \"$trial_lists\" --musan <dir> --rirs-noises <dir> --aug (offline|online|none) --audio-dir ($audio_dir)
  --aug-prob ($aug_prob) --aug-subset ($aug_subset) --nj ($nj)
  --system ($system: tdnn, ecapa_tdnn_c1024, resnet34, rescnn) --loss (the config's) --loss-opts \"...\" (repeatable) --set key=value (repeatable) --train-config (conf/<system>.yaml) --min-len ($min_len)
  --min-num-utts ($min_num_utts) --lda-dim ($lda_dim) --calibration-min-trials ($calibration_min_trials) --nnet-dir (exp/xvector_nnet_<loss>)
  --init-from <exp-dir> (stage 4 fine-tunes that network with conf/finetune.yaml instead of training one)
  --lmft ($lmft) --lmft-margin ($lmft_margin) --lmft-frames ($lmft_frames) --lmft-epochs ($lmft_epochs)
  --lmft-lr ($lmft_lr) --lmft-set key=value (repeatable) --nnet-dir-lmft (<nnet-dir>_lmft)"

echo "$0 $@"
. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
. utils/recipe_stages.sh   # stage_banner, require, config_value, resolve_front_end, use_init_from, archive_dir
[ -z "$mfcc_dir" ] && mfcc_dir=$(archive_dir mfcc)   # another --data: archive dirs of its own
if [ $# -ne 0 ]; then
  echo "$help_message" >&2
  exit 1
fi
use_init_from   # --init-from: a finished source exp dir, conf/finetune.yaml, init_from for tfspk-train
[ -z "$train_config" ] && train_config=conf/$system.yaml
if [ ! -f "$train_config" ]; then
  echo "$0: no $train_config; --system is one of: $(cd conf && ls *.yaml | grep -v '^train.yaml$' | sed 's/.yaml$//' | tr '\n' ' ')" >&2
  exit 1
fi
# feat_type, feat_conf, vad_conf, vad_mfcc_conf, sfx: the front end of the config's features: section
resolve_front_end "$train_config" "$init_from"
config_loss=$(config_value loss name)
if [ -z "$nnet_dir" ] && [ -n "$init_from" ]; then
  nnet_dir=$exp/finetune_$(basename "$init_from")
elif [ -z "$nnet_dir" ]; then
  if [ "$system" = tdnn ]; then nnet_dir=$exp/xvector_nnet_${loss:-${config_loss:-amsoftmax}}
  else nnet_dir=$exp/${system}_nnet${loss:+_$loss}; fi
fi

if $vox1_train; then
  for list in $trial_lists; do
    if [ "$list" != O ]; then
      echo "$0: VoxCeleb1-$list uses the VoxCeleb1 dev speakers, which --vox1-train true puts into training;" \
        "scoring VoxCeleb1-O only"
    fi
  done
  trial_lists=O
fi
for list in $trial_lists; do
  case $list in O|E|H) ;; *) echo "$0: unknown trial list '$list' (choose from O E H)" >&2; exit 1 ;; esac
done
# -E and -H cover all of VoxCeleb1; -O only its test speakers.
eval_set=voxceleb1_test
[ "$trial_lists" != O ] && eval_set=voxceleb1
trials_file() {  # trials_file <O|E|H>
  if [ "$1" = O ]; then echo "$data/voxceleb1_test/trials_O"; else echo "$data/voxceleb1/trials_$1"; fi
}
if [ -z "$aug" ]; then
  aug=none
  [ -n "$musan$rirs_noises" ] && aug=offline
fi
case $aug in
  offline|online)
    if [ -z "$musan" ] || [ -z "$rirs_noises" ]; then
      echo "$0: augmentation (--aug $aug) needs both --musan and --rirs-noises" >&2
      exit 1
    fi ;;
  none) ;;
  *) echo "$0: --aug is one of offline, online, none; got '$aug'" >&2; exit 1 ;;
esac
train_set=train
[ $aug = offline ] && train_set=train_combined
# The training data dir of stages 4 and 9, and, with --aug online, the tfspk-train settings that read it
# as audio (docs/training.md "Audio input and on-the-fly augmentation").
train_dir=$data/${train_set}${sfx}_no_sil
online_args=()
if [ $aug = online ]; then
  train_dir=$data/train_audio
  q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }   # a YAML single-quoted string
  online_args=(--set data.source=audio --set features.cmn=sliding --set features.vad=true
    --set valid.num_utts=0
    --set "augment={rir_dir: $(q "$data/rirs"), reverb_prob: $aug_prob,
      noise_dir: $(q "$data/musan_noise"), noise_prob: $aug_prob, noise_snrs: '15:10:5:0', noise_interval: 1.0,
      music_dir: $(q "$data/musan_music"), music_prob: $aug_prob, music_snrs: '15:10:8:5',
      babble_dir: $(q "$data/musan_speech"), babble_prob: $aug_prob, babble_snrs: '20:17:15:13',
      babble_speakers: '3:4:5:6:7'}")
  # The validation loss needs the feats path, so plateau halving would never fire: decay per epoch instead.
  lr_policy=$(awk '/^schedule:/ {f = 1; next} f && /^[^ #]/ {f = 0} f && $1 == "lr_policy:" {print $2}' "$train_config")
  if [ -z "$lr_policy" ] || [ "$lr_policy" = plateau ]; then
    echo "$0: --aug online: $train_config uses lr_policy plateau (needs a validation loss); training with" \
      "schedule.lr_policy=exponential (x lr_decay per epoch) instead"
    online_args+=(--set schedule.lr_policy=exponential)
  fi
fi

# make_feats <data-dir>: <data-dir>$sfx with the system's features and the VAD of <data-dir> (from its MFCCs).
make_feats() {
  [ -z "$sfx" ] && return 0
  rm -rf "$1$sfx"
  utils/copy_data_dir.sh "$1" "$1$sfx"
  rm -f "$1$sfx/feats.scp" "$1$sfx/vad.scp" "$1$sfx/cmvn.scp"
  steps/make_$feat_type.sh --${feat_type}-config "$feat_conf" --nj $nj --cmd "$train_cmd" \
    "$1$sfx" "$exp/make_$feat_type" "$(archive_dir $feat_type)"
  cp "$1/vad.scp" "$1$sfx/vad.scp"
  utils/fix_data_dir.sh "$1$sfx"
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  stage_banner 0 "data preparation"
  if [ -z "$voxceleb1_root" ]; then
    echo "$0: stage 0 needs --voxceleb1-root <dir> (with wav/idXXXXX/<video>/NNNNN.wav and veri_test2.txt)" >&2
    exit 1
  fi
  local/make_voxceleb1.py "$voxceleb1_root" "$data"
  sources=()
  if [ -n "$voxceleb2_root" ]; then
    local/make_voxceleb2.py "$voxceleb2_root" dev "$data/voxceleb2_train"
    sources+=("$data/voxceleb2_train")
  fi
  $vox1_train && sources+=("$data/voxceleb1_train")
  if [ ${#sources[@]} -eq 0 ]; then
    echo "$0: no training data: give --voxceleb2-root, or --vox1-train true" >&2
    exit 1
  fi
  utils/combine_data.sh "$data/train" "${sources[@]}"
  for list in $trial_lists; do
    if [ ! -f "$(trials_file $list)" ]; then
      echo "$0: no VoxCeleb1-$list trial list in $voxceleb1_root (see local/make_voxceleb1.py --help for the" \
        "file names); add it there or leave $list out of --trial-lists" >&2
      exit 1
    fi
  done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  stage_banner 1 "MFCC + energy VAD"
  require 0 "$data/train/wav.scp" "$data/$eval_set/wav.scp"
  for name in train $eval_set; do
    steps/make_mfcc.sh --mfcc-config "$vad_mfcc_conf" --nj $nj --cmd "$train_cmd" \
      "$data/$name" "$exp/make_mfcc" "$mfcc_dir"
    utils/fix_data_dir.sh "$data/$name"
    steps/compute_vad_decision.sh --vad-config "$vad_conf" --nj $nj --cmd "$train_cmd" \
      "$data/$name" "$exp/make_vad" "$mfcc_dir"
    utils/fix_data_dir.sh "$data/$name"
    make_feats "$data/$name"
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ] && [ $aug = offline ]; then
  stage_banner 2 "augmentation (reverb, noise, music, babble)"
  require 1 "$data/train/feats.scp" "$data/train/vad.scp"
  local/augment_data_dir.py --kind reverb --rirs-noises "$rirs_noises" "$data/train" "$data/train_reverb"
  for kind in noise music babble; do
    local/augment_data_dir.py --kind $kind --musan "$musan" "$data/train" "$data/train_$kind"
  done
  utils/combine_data.sh "$data/train_aug" "$data/train_reverb" "$data/train_noise" "$data/train_music" \
    "$data/train_babble"
  num_aug=$(wc -l < "$data/train_aug/utt2spk")
  if [ "$aug_subset" -lt "$num_aug" ]; then
    utils/subset_data_dir.sh "$data/train_aug" "$aug_subset" "$data/train_aug_subset"
  else
    rm -rf "$data/train_aug_subset"
    utils/copy_data_dir.sh "$data/train_aug" "$data/train_aug_subset"
  fi
  steps/make_mfcc.sh --mfcc-config "$vad_mfcc_conf" --nj $nj --cmd "$train_cmd" \
    "$data/train_aug_subset" "$exp/make_mfcc" "$mfcc_dir"
  utils/fix_data_dir.sh "$data/train_aug_subset"
  # The augmented copies keep the VAD decision of their clean utterance (as in Kaldi's recipe).
  awk '{utt = $1; sub(/-(reverb|noise|music|babble)$/, "", utt); print $1, utt}' \
    "$data/train_aug_subset/utt2spk" > "$data/train_aug_subset/utt2clean"
  awk 'NR == FNR {vad[$1] = $2; next} ($2 in vad) {print $1, vad[$2]}' \
    "$data/train/vad.scp" "$data/train_aug_subset/utt2clean" > "$data/train_aug_subset/vad.scp"
  utils/fix_data_dir.sh "$data/train_aug_subset"
  utils/combine_data.sh "$data/train_combined" "$data/train_aug_subset" "$data/train"
  if [ -n "$sfx" ]; then
    make_feats "$data/train_aug_subset"
    utils/combine_data.sh "$data/train_combined$sfx" "$data/train_aug_subset$sfx" "$data/train$sfx"
  fi
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ] && [ $aug = online ]; then
  stage_banner 2 "on-the-fly augmentation: MUSAN and RIRS_NOISES data dirs, the training audio as files"
  require 1 "$data/train/wav.scp" "$data/train/vad.scp"
  local/make_aug_dirs.py --musan "$musan" --rirs-noises "$rirs_noises" "$data"
  # stage 3's length filter, which --aug online skips: the voiced frames are counted from vad.scp
  local/filter_by_voiced_frames.py --min-len $min_len --min-num-utts $min_num_utts "$data/train" "$data/train_long"
  # crops are read with seeks, which pipes do not allow: decode them once (files are kept as they are)
  local/wav_scp_to_files.py --nj $nj "$data/train_long" "$audio_dir" "$data/train_audio"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ] && [ $aug != online ]; then
  stage_banner 3 "training examples"
  if [ $train_set = train_combined ]; then
    require 2 "$data/train_combined$sfx/feats.scp" "$data/train_combined$sfx/vad.scp"
  else
    require 1 "$data/train$sfx/feats.scp" "$data/train$sfx/vad.scp"
  fi
  steps/prepare_feats_for_egs.sh --nj $nj --cmd "$train_cmd" --min-len $min_len --min-num-utts $min_num_utts \
    "$data/$train_set$sfx" "$data/${train_set}${sfx}_no_sil" "$exp/${train_set}${sfx}_no_sil"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  stage_banner 4 "train the $system network (${loss:-$config_loss}, $feat_type features, augmentation: $aug) in $nnet_dir"
  if [ $aug = online ]; then
    require 2 "$train_dir/wav.scp" "$train_dir/vad.scp" "$data/musan_noise/wav.scp" "$data/rirs/wav.scp"
  else
    require 3 "$train_dir/feats.scp" "$train_dir/utt2num_frames"
  fi
  # the front end this recipe computed (also where the config has no features: section), recorded by tfspk-train
  train_args=(--set "features.type=$feat_type" --set "features.conf=$feat_conf" --set "features.vad_conf=$vad_conf"
    --set "features.vad_mfcc_conf=$vad_mfcc_conf")
  for opts in "${loss_opts[@]}"; do train_args+=($opts); done   # each --loss-opts is split at spaces
  train_args+=("${online_args[@]}")                             # before --set: the user's --set wins
  for kv in "${set[@]}"; do train_args+=(--set "$kv"); done      # each --set stays one word
  steps/train_xvector.sh --cmd "$cuda_cmd" --train-config "$train_config" ${loss:+--loss "$loss"} "${train_args[@]}" \
    "$train_dir" "$nnet_dir"
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  stage_banner 5 "extract embeddings"
  require 4 "$nnet_dir/final/model.weights.h5" "$nnet_dir/config.yaml"
  require 1 "$data/train$sfx/feats.scp" "$data/$eval_set$sfx/feats.scp"
  steps/extract_xvectors.sh --nj $nj --cmd "$train_cmd" "$nnet_dir" "$data/train$sfx" "$nnet_dir/xvectors_train" \
    "$data/$eval_set$sfx" "$nnet_dir/xvectors_$eval_set"   # both in the same jobs: one start of TensorFlow each
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  stage_banner 6 "back-end and scoring"
  require 5 "$nnet_dir/xvectors_train/xvector.scp" "$nnet_dir/xvectors_$eval_set/xvector.scp"
  for list in $trial_lists; do
    require 0 "$(trials_file $list)"
    # AS-norm with every training utterance as cohort (the demo's few thousand) would score each trial
    # vector against ~1M VoxCeleb2 embeddings: off here (a speaker-mean cohort would be the scalable one).
    local/score_plda_cosine.sh --cmd "$train_cmd" --lda-dim $lda_dim --asnorm false "$data/train" \
      "$nnet_dir/xvectors_train" "$nnet_dir/xvectors_$eval_set" "$(trials_file $list)" "$nnet_dir/scores_$list"
  done
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  stage_banner 7 "results"
  for list in $trial_lists; do
    require 6 "$nnet_dir/scores_$list/plda_scores"
    echo "VoxCeleb1-$list ($loss):"
    local/report.sh --title "VoxCeleb1-$list, $loss" "$(trials_file $list)" "$nnet_dir/scores_$list" \
      | tee "$nnet_dir/scores_$list/results.txt"
  done
fi
# ---- calibration: a self-contained stage at the end.
if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  stage_banner 8 "calibration on half of each list's speakers, actDCF / Cllr on the other half"
  for list in $trial_lists; do
    require 6 "$nnet_dir/scores_$list/plda_scores" "$nnet_dir/scores_$list/cosine_scores"
    require 0 "$(trials_file $list)" "$data/$eval_set/utt2spk"
    echo "VoxCeleb1-$list ($loss), calibrated:"
    local/calibrate_and_report.sh --title "VoxCeleb1-$list, $loss: calibrated, test half" \
      --min-trials-per-class $calibration_min_trials "$data/$eval_set/utt2spk" "$(trials_file $list)" "$nnet_dir/scores_$list"
  done
fi
# ---- large-margin fine-tuning: opt-in (--lmft true), a stage of its own.
# Starts from the stage-4 network and head (tfspk-train init_from), trains a few epochs on longer crops
# with a larger margin, a small exponentially decaying LR and no margin annealing, averages the last
# epochs (schedule.average_last) and scores like stages 5-7 into $nnet_dir_lmft.
if $lmft && [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  [ -z "$nnet_dir_lmft" ] && nnet_dir_lmft=${nnet_dir}_lmft
  stage_banner 9 "large-margin fine-tuning of $nnet_dir in $nnet_dir_lmft"
  require 4 "$nnet_dir/config.yaml" "$nnet_dir/spk2int"
  lmft_args=()
  for opts in "${loss_opts[@]}"; do lmft_args+=($opts); done   # stage 4's loss options, then the changes
  lmft_args+=("${online_args[@]}")
  lmft_args+=(--set "init_from=$nnet_dir"
             --set "data.min_frames=$lmft_frames" --set "data.max_frames=$lmft_frames"
             --set "schedule.num_epochs=$lmft_epochs" --set "schedule.lr_policy=exponential"
             --set "optimizer.lr=$lmft_lr" --set "schedule.average_last=$lmft_epochs")
  # a margin loss: the larger margin from the first step (no [Liu2019, eq. 8] annealing)
  [ -n "$lmft_margin" ] && lmft_args+=(--set "loss.params.margin=$lmft_margin" --set loss.params.anneal=false)
  for kv in "${set[@]}" "${lmft_set[@]}"; do lmft_args+=(--set "$kv"); done   # --lmft-set last: it wins
  steps/train_xvector.sh --cmd "$cuda_cmd" --train-config "$train_config" --loss "$loss" \
    "${lmft_args[@]}" "$train_dir" "$nnet_dir_lmft"
  steps/extract_xvectors.sh --nj $nj --cmd "$train_cmd" "$nnet_dir_lmft" "$data/train" \
    "$nnet_dir_lmft/xvectors_train" "$data/$eval_set" "$nnet_dir_lmft/xvectors_$eval_set"
  for list in $trial_lists; do
    local/score_plda_cosine.sh --cmd "$train_cmd" --lda-dim $lda_dim --asnorm false "$data/train" \
      "$nnet_dir_lmft/xvectors_train" "$nnet_dir_lmft/xvectors_$eval_set" "$(trials_file $list)" \
      "$nnet_dir_lmft/scores_$list"
    echo "VoxCeleb1-$list ($loss, large-margin fine-tuned):"
    local/report.sh --title "VoxCeleb1-$list, $loss, large-margin fine-tuned" "$(trials_file $list)" \
      "$nnet_dir_lmft/scores_$list" | tee "$nnet_dir_lmft/scores_$list/results.txt"
  done
fi
echo "$0: done ($(date -u +%H:%M:%S))"
