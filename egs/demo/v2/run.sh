#!/usr/bin/env bash
# tfspk demo recipe: speaker verification on real speech that any Debian/Ubuntu machine can fetch.
#
# The corpus is built from Debian packages that ship human voice recordings (telephone prompts, game
# dialogue, spoken letters and words; local/speakers.txt says which file is whose voice). Everything is
# resampled to 8 kHz, the speakers are split into disjoint training and evaluation sets
# (local/eval_speakers.txt), and the pipeline is the one of Kaldi's egs/voxceleb/v2 with tfspk tools:
# 30-dim MFCC + energy VAD (and 80-dim fbank for the default ECAPA-TDNN [Desplanques2020]; --net tdnn is
# the x-vector TDNN of [Liu2019] on the MFCCs) trained with a margin softmax loss -> embeddings
# -> mean + LDA + PLDA and cosine scoring -> EER / minDCF(0.01) / minDCF(0.001) and a DET plot.
#
# Stages (run.sh --stage N --stop-stage M runs a part; each stage checks its inputs):
#   0  fetch + unpack the packages, build data/all, split into data/train + data/eval, trials
#      (--aug online: + the augmentation set of 4 more packages and simulated RIRs, local/make_aug_set.sh)
#   1  MFCC + energy VAD for data/train and data/eval (+ fbank in data/{train,eval}_fbank if --net needs it)
#      (--speed-perturb "0.9 1.1": + speed-perturbed copies data/train_sp<f> with their features)
#      (--init-from an exp dir with a front end of its own: its features of data/train, from the audio)
#   2  training examples: sliding CMN, voiced frames only, drop short utterances / small speakers
#      (--speed-perturb: the same for each copy, combined with the training set in data/<train>_sp<sfx>_no_sil)
#      (--aug online: data/train_audio, the same utterances as audio + VAD for on-the-fly augmentation)
#   3  train the x-vector network ($exp/xvector_nnet)
#   4  extract embeddings for train and eval (--nnet-dir <imported exp dir> --stage 4: with that model's own
#      features, computed from the audio at its rate)
#   5  back-end: centre, LDA, PLDA (train embeddings); PLDA and cosine scores on the trials
#   6  EER / minDCF for both back-ends, DET plot
#   7  calibration: train on half of the evaluation speakers, report actDCF / Cllr on the other half
#   8  (--noisy-eval true) a second test condition: each evaluation utterance reverberated with new rooms
#      or mixed with babble of other evaluation speakers (local/make_noisy_eval.py), scored as in 4-6;
#      with --dev-speakers N also the dev set (babble of other dev speakers), scored into scores_dev_noisy/
#
# Whole demo on 2 CPU cores: see docs/recipes.md for measured times.

set -e -o pipefail

stage=0
stop_stage=100
corpus_dir=                # an unpacked copy (<dir>/<package>/...); default: download into $download_dir
download_dir=downloads     # where stage 0 unpacks the Debian packages (kept: a second run skips them)
packages=                  # space-separated subset of the packages in local/speakers.txt (default: all)
max_utts_per_speaker=100   # seeded subset per speaker: bounds the time and keeps big speakers from dominating
nj=2                       # parallel jobs for data prep, features, extraction
data=data
exp=exp
mfcc_dir=                  # MFCC and VAD archives (default: mfcc/ for --data data, else <data>_mfcc: the archives
                           # are named by set, e.g. raw_mfcc_eval_noisy, so two data dirs must not share them)
feat_dir=                  # archives of the network's features other than MFCC (default: the feature type, e.g.
                           # fbank/, for --data data, else <data>_<feature type>)
net=ecapa_tdnn             # the network: conf/<net>.yaml (tdnn, tdnn_fbank, ecapa_tdnn, resnet34); its
                           # features.type (mfcc or fbank) picks the features. Default: the best measured
                           # system within the 20-minute budget (RESULTS.md, docs/recipes.md)
aug=none                   # online: train from audio with on-the-fly speed perturbation, noise, music and
                           # reverberation (conf/<net>_aug.yaml, data/train_audio); none: from the offline
                           # features (conf/<net>.yaml; ecapa_tdnn: with SpecAugment). RESULTS.md compares augmentation with its control
                           # (conf/ecapa_tdnn_audio.yaml): it wins on stage 8's reverberant or babble-noise
                           # evaluation, not on the clean one the demo reports, so none is the default.
train_config=              # default: conf/$net.yaml (--aug none), conf/${net}_aug.yaml (--aug online)
system=aamsoftmax          # a label of conf/losses.txt: loss, its parameters and auxiliary losses (aamsoftmax:
                           # ArcSoftmax m2 = 0.2 at a fixed scale 30, chosen on the dev split, RESULTS.md)
loss=                      # or any loss name of tfspk.losses (overrides the system's loss) ...
loss_params=               # ... its parameters, e.g. "m2=0.3" (default: the system's) ...
aux=                       # ... and auxiliary losses, e.g. "ring,mhe" (default: the system's)
train_opts=()              # further steps/train_xvector.sh options, e.g. "--num-epochs 4" (repeatable; split at spaces)
set=()                     # config overrides for tfspk-train, e.g. --set optimizer.lr=0.02 (repeatable)
min_len=20                 # training utterances need more voiced frames than this (voxceleb: 400); 20 keeps
                           # every demo utterance for data.repeat_short (conf/ecapa_tdnn.yaml); the configs
                           # without it skip those shorter than data.min_frames (60) anyway
min_num_utts=5             # training speakers need at least this many utterances (voxceleb: 8)
lda_dim=max                # LDA dimension before PLDA; max = training speakers - 1 (voxceleb: 200 of 7205)
dev_speakers=0             # > 0: hold out this many training speakers (seeded) as a dev set with its own trials
                           # (data/dev); the network and back-end train on the others (data/train_nodev), the
                           # trainer logs the dev EER per epoch and stages 5-6 score dev and eval (scores_dev/)
speed_perturb=             # e.g. "0.9 1.1": the network also trains on speed-perturbed copies of data/train
                           # (utils/data/perturb_data_dir_speed.sh: data/train_sp<f>, ids sp<f>-*, each copy's
                           # speakers new classes as in Kaldi's perturb_data_dir_speed_3way.sh); the back-end
                           # stays on the unperturbed set. Empty: off. Offline features only (the audio source
                           # of --aug online perturbs speed on the fly: augment.speed_factors)
noisy_eval=false           # true: stage 8 scores the system on a copy of data/eval with reverberation or babble too
                           # (scores_noisy/), and with --dev-speakers N on such a copy of data/dev (scores_dev_noisy/)
nnet_dir=                  # default: $exp/xvector_nnet_<system> (net tdnn), $exp/<net>_nnet_<system> (others);
                           # from --stage 4 also an imported exp dir (tfspk-import-model; docs/import.md)
init_from=                 # an experiment dir (trained or tfspk-import-model'ed): stage 3 fine-tunes its network on
                           # data/train (conf/finetune.yaml: new head, own LR schedule; docs/training.md) into
                           # $exp/finetune_<its name>_<system>; the features are the source's
seed=777
integer_options="stage stop_stage max_utts_per_speaker nj min_len min_num_utts seed dev_speakers"

help_message="Usage: $0 [options]
Runs the demo end to end (or --stage N --stop-stage M). Options (default):
  --stage ($stage) --stop-stage ($stop_stage)
  --corpus-dir <dir>        use an unpacked copy of the packages instead of downloading
  --download-dir ($download_dir)   --packages \"pkg ...\" (all in local/speakers.txt)
  --max-utts-per-speaker ($max_utts_per_speaker) --nj ($nj)
  --net ($net: tdnn, tdnn_fbank, ecapa_tdnn, resnet34; conf/<net>.yaml)
  --aug ($aug; online = from audio with on-the-fly augmentation, conf/<net>_aug.yaml)
  --system ($system, see conf/losses.txt) or --loss <name> [--loss-params k=v,...] [--aux ring,mhe]
  --train-opts \"...\" (repeatable) --set key=value (repeatable) --train-config (conf/<net>.yaml or conf/<net>_aug.yaml)
  --nnet-dir (exp/xvector_nnet_<system> for tdnn, exp/<net>_nnet_<system> otherwise; _aug_nnet_ with --aug online;
             with --stage 4 an imported exp dir: its own features are computed from the audio)
  --init-from <exp-dir>     fine-tune that experiment's network on data/train (conf/finetune.yaml) instead of training one
  --min-len ($min_len) --min-num-utts ($min_num_utts) --lda-dim ($lda_dim)
  --dev-speakers ($dev_speakers; N > 0: N training speakers held out as a dev set, scored beside eval)
  --speed-perturb \"<factors>\" (${speed_perturb:-off}; e.g. \"0.9 1.1\": the network also trains on speed-perturbed
                            copies of data/train, new speakers sp<f>-*; the back-end stays on data/train)
  --noisy-eval ($noisy_eval; true: stage 8, the evaluation set, and the dev set with --dev-speakers, reverberated or with babble)"

echo "$0 $@"
. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
. utils/recipe_stages.sh   # stage_banner, require, config_value, resolve_front_end, use_init_from
if [ $# -ne 0 ]; then
  echo "$help_message" >&2
  exit 1
fi
for opts in "${train_opts[@]}"; do   # split at spaces below: a quote would leave a stray word
  case $opts in *[\"\']*) echo "$0: --train-opts \"$opts\": quotes are not honoured (the value is split at spaces" \
    "into:$(printf ' [%s]' $opts)); give a value with spaces with --set 'key=a b'" >&2; exit 1 ;; esac
done

# The system's loss, parameters and auxiliary losses come from conf/losses.txt. With --loss, the
# table's line for that loss (without auxiliary losses) gives the demo's parameters, e.g. the
# compressed margin annealing; --loss-params and --aux override them (the system is then named after
# its settings, so it gets its own nnet dir).
if [ -n "$loss" ]; then
  system_line=$(awk -v l="$loss" '!/^#/ && $2 == l && $4 == "-"' conf/losses.txt | head -n 1)
  system=$(echo "$system_line" | awk '{print $1}')
  [ -z "$system" ] && system=$loss
else
  system_line=$(awk -v s="$system" '!/^#/ && $1 == s' conf/losses.txt)
  if [ -z "$system_line" ]; then
    echo "$0: unknown --system '$system'; conf/losses.txt has: $(awk '!/^#/ && NF {printf "%s ", $1}' conf/losses.txt)" >&2
    exit 1
  fi
  loss=$(echo "$system_line" | awk '{print $2}')
fi
if [ -n "$loss_params$aux" ]; then
  system=$(echo "$loss${loss_params:+_$loss_params}${aux:+_$aux}" | tr ',=' '_-')
fi
[ -z "$loss_params" ] && loss_params=$(echo "$system_line" | awk '$3 != "-" {print $3}')
[ -z "$aux" ] && aux=$(echo "$system_line" | awk '$4 != "-" {print $4}')
use_init_from   # --init-from: a finished source exp dir, conf/finetune.yaml, init_from for tfspk-train
case $aug in
  online) [ -z "$train_config" ] && train_config=conf/${net}_aug.yaml ;;
  none) [ -z "$train_config" ] && train_config=conf/$net.yaml ;;
  *) echo "$0: --aug must be online or none, got '$aug'" >&2; exit 1 ;;
esac
if [ ! -f "$train_config" ]; then
  echo "$0: no $train_config; --net is one of: tdnn tdnn_fbank ecapa_tdnn resnet34" \
    "(--aug online has conf/<net>_aug.yaml for: $(ls conf/*_aug.yaml | sed 's#conf/##; s#_aug.yaml##' | tr '\n' ' '))" >&2
  exit 1
fi
# TensorFlow 2.21's oneDNN kernels corrupt the heap in ResNet training steps at the demo's small widths
# (docs/nnet.md); the plain kernels give the same results, a little slower.
case $net in resnet*) export TF_ENABLE_ONEDNN_OPTS=0 ;; esac
# data.source of the config: audio trains from data/train_audio (wav.scp + vad.scp), feats from the
# offline features of stage 2.
source_type=$(config_value data source)
source_type=${source_type:-feats}
# --speed-perturb: each factor a number in [0.5, 2] other than 1, written as the ids' prefix writes it (0.90 -> 0.9)
sp_factors=
for spf in $speed_perturb; do
  if ! awk -v f="$spf" 'BEGIN {exit !(f ~ /^[0-9]*\.?[0-9]+$/ && f + 0 >= 0.5 && f + 0 <= 2 && f + 0 != 1)}'; then
    echo "$0: --speed-perturb \"$speed_perturb\": '$spf' is not a speed factor in [0.5, 2] other than 1" >&2
    exit 1
  fi
  spf=$(awk -v f="$spf" 'BEGIN {printf "%g", f}')
  case " $sp_factors " in *" $spf "*) echo "$0: --speed-perturb \"$speed_perturb\": $spf is given twice" >&2; exit 1 ;; esac
  sp_factors="${sp_factors:+$sp_factors }$spf"
done
if [ -n "$sp_factors" ] && [ "$source_type" = audio ]; then
  echo "$0: --speed-perturb makes offline copies for training from features; $train_config trains from audio," \
    "which perturbs the speed on the fly (augment.speed_factors): use one or the other" >&2
  exit 1
fi
# feat_type, feat_conf, vad_conf, vad_mfcc_conf, sfx: the front end of the config's features: section
resolve_front_end "$train_config" "$init_from"
if [ -z "$nnet_dir" ] && [ -n "$init_from" ]; then
  nnet_dir=$exp/finetune_$(basename "$init_from")_$system
elif [ -z "$nnet_dir" ]; then
  if [ "$net" = tdnn ]; then nnet_dir=$exp/xvector_nnet_$system; else nnet_dir=$exp/${net}_nnet_$system; fi
  [ "$aug" = online ] && nnet_dir=${nnet_dir/_nnet_/_aug_nnet_}
fi
[ -z "$corpus_dir" ] && corpus_dir=$download_dir
[ -z "$mfcc_dir" ] && mfcc_dir=$(archive_dir mfcc)   # another --data: archive dirs of its own (recipe_stages.sh)
[ -z "$feat_dir" ] && feat_dir=$(archive_dir $feat_type)
# The speakers the network and back-end train on: all training speakers, or those left by the dev split.
trn=train
[ "$dev_speakers" -gt 0 ] && trn=train_nodev
[ -z "$packages" ] && packages=$(awk '!/^#/ && NF == 4 {print $1}' local/speakers.txt | sort -u | tr '\n' ' ')

# make_features <name>: MFCC + energy VAD for $data/<name>, and the network's features in
# $data/<name>$sfx with the VAD of the MFCCs (stages 1 and 8).
make_features() {
  local name=$1
  steps/make_mfcc.sh --mfcc-config "$vad_mfcc_conf" --nj $nj --cmd "$train_cmd" \
    "$data/$name" "$exp/make_mfcc" "$mfcc_dir"
  utils/fix_data_dir.sh "$data/$name"
  steps/compute_vad_decision.sh --vad-config "$vad_conf" --nj $nj --cmd "$train_cmd" \
    "$data/$name" "$exp/make_vad" "$mfcc_dir"
  utils/fix_data_dir.sh "$data/$name"
  if [ -n "$sfx" ] && [ -z "$init_sfx" ]; then   # --init-from's own features: nnet_features
    rm -rf "$data/$name$sfx"
    utils/copy_data_dir.sh "$data/$name" "$data/$name$sfx"
    rm -f "$data/$name$sfx/feats.scp" "$data/$name$sfx/vad.scp"
    steps/make_$feat_type.sh --$feat_type-config "$feat_conf" --nj $nj --cmd "$train_cmd" \
      "$data/$name$sfx" "$exp/make_$feat_type" "$feat_dir"
    cp "$data/$name/vad.scp" "$data/$name$sfx/vad.scp"
    utils/fix_data_dir.sh "$data/$name$sfx"
  fi
}

# check_dev_split: data/dev is the split of this --dev-speakers and --seed (stages 3 and 8).
check_dev_split() {
  require_marker 2 "$data/dev" "speakers=$dev_speakers seed=$seed"
}

# noisy_copy <name>: data/<name>_noisy, each utterance of data/<name> reverberated or with babble of the other
# speakers of data/<name> (local/make_noisy_eval.py), with its features (stage 8). Made once and shared by every
# system: its .done records the seed and, for dev, the split (data/dev/.done), so another split remakes it.
noisy_copy() {
  local name=$1 noisy=$1_noisy marker="seed=$seed"
  [ "$name" = dev ] && marker=$(cat "$data/dev/.done")
  if [ "$(cat "$data/$noisy/.done" 2>/dev/null)" != "$marker" ]; then
    rm -rf "$data/$noisy" "$data/$noisy$sfx" "$data/${noisy}_wav"
    local/make_noisy_eval.py --seed $seed "$data/$name" "$data/${noisy}_wav" "$data/$noisy"
    make_features $noisy
    echo "$marker" > "$data/$noisy/.done"
  elif [ -n "$sfx" ] && [ -z "$init_sfx" ] && [ ! -f "$data/$noisy$sfx/feats.scp" ]; then
    make_features $noisy
  fi
}

# A network with a front end of its own: imported (tfspk-import-model: another toolkit's features, rate, CMN and
# VAD), or recording in its features.yaml another feature type or sample rate than this recipe's. Stages 4 and 8
# do not feed it the recipe's features but compute its own from the audio of data/<name> (resampled to its
# rate; steps/make_front_end_feats.sh) into data/<name>_<nnet dir name>. own_front_end prints that suffix
# (nothing for a network of this recipe's front end). With an argument: of that experiment dir instead of $nnet_dir.
own_front_end() {
  local dir=${1:-$nnet_dir}
  local yaml=$dir/features.yaml rate nnet_rate
  [ -f "$yaml" ] || return 0
  rate=$(sed -n 's/^--sample-frequency=\([0-9.]*\).*/\1/p' "$feat_conf" | tail -n 1)
  nnet_rate=$(awk '$1 == "sample_rate:" {print $2; exit}' "$yaml")
  if grep -q '^imported:' "$dir/config.yaml" || [ "$(awk '$1 == "type:" {print $2; exit}' "$yaml")" != "$feat_type" ] ||
     awk -v a="${rate:-16000}" -v b="$nnet_rate" 'BEGIN {exit !(a + 0 != b + 0)}'; then
    echo "_$(basename "$dir")"
  fi
}
# nnet_features <name> <suffix> [<exp-dir>]: data/<name><suffix> with the features of the front end of <exp-dir>
# (default: $nnet_dir; archives in <exp-dir>/feats).
nnet_features() {
  local dir=${3:-$nnet_dir}
  rm -rf "$data/$1$2"
  utils/copy_data_dir.sh "$data/$1" "$data/$1$2"
  rm -f "$data/$1$2/feats.scp" "$data/$1$2/vad.scp"
  steps/make_front_end_feats.sh --nj $nj --cmd "$train_cmd" "$dir" "$data/$1$2" "$exp/make_front_end_feats" \
    "$dir/feats"
}

# --init-from a network with a front end of its own (own_front_end: imported, or another feature type or rate):
# it is fine-tuned on its own features, not on the recipe's. Stage 1 computes them from the audio of data/train
# into data/train$init_sfx (nnet_features; sfx becomes $init_sfx, so stages 2-3 take them), stage 2 prepares
# them with the CMN and VAD of its features.yaml (init_prep_opts), stage 3 lets tfspk-train record the source's
# front end in the new experiment (no features.* overrides), and stages 4-8 compute the fine-tuned network's
# features from the audio as for any network with a front end of its own.
init_sfx=
if [ -n "$init_from" ]; then
  init_sfx=$(own_front_end "$init_from")
  [ -n "$init_sfx" ] && sfx=$init_sfx
fi
# init_prep_opts: the steps/prepare_feats_for_egs.sh options of the CMN and VAD of $init_from/features.yaml:
# sliding CMN over its window, or crop (at inference the utterance's mean: a window longer than any utterance,
# tfspk.features.frontend.UTTERANCE_WINDOW); the energy VAD's voiced frames, or every frame.
init_prep_opts() {
  local yaml=$init_from/features.yaml mode window vad
  mode=$(awk '/^cmn:/ {f = 1; next} f && /^[^ #]/ {exit} f && $1 == "mode:" {print $2; exit}' "$yaml")
  window=$(awk '/^cmn:/ {f = 1; next} f && /^[^ #]/ {exit} f && $1 == "window:" {print $2; exit}' "$yaml")
  vad=$(awk '/^vad:/ {f = 1; next} f && /^[^ #]/ {exit} f && $1 == "apply:" {print $2; exit}' "$yaml")
  case "$mode" in
    sliding) ;;
    crop) window=1073741824 ;;
    *) echo "$0: --init-from $init_from: training features need CMN sliding or crop; $yaml has cmn mode '$mode'" >&2
       exit 1 ;;
  esac
  case "$vad" in true|false) ;; *) echo "$0: --init-from $init_from: cannot read vad.apply of $yaml" >&2; exit 1 ;; esac
  echo "--cmn-window $window --use-vad $vad"
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  stage_banner 0 "corpus: Debian packages -> data/train, data/eval, trials"
  if [ "$corpus_dir" = "$download_dir" ]; then
    local/fetch_packages.sh "$download_dir" $packages
  else
    for p in $packages; do
      if [ ! -d "$corpus_dir/$p" ]; then
        echo "$0: --corpus-dir $corpus_dir has no unpacked package $p (expected $corpus_dir/$p/usr/...)" >&2
        exit 1
      fi
    done
  fi
  local/make_demo_data.py --nj $nj --sample-rate 8000 --seed $seed \
    --max-utts-per-speaker $max_utts_per_speaker --packages "$packages" \
    local/speakers.txt "$corpus_dir" "$data/wav" "$data/all"
  local/split_speakers.py "$data/all" local/eval_speakers.txt "$data/train" "$data/eval"
  local/make_trials.py --seed $seed "$data/eval" "$data/eval/trials"
  if [ "$source_type" = audio ]; then  # the noise/music/RIR set of the config's augment: section
    local/make_aug_set.sh --rate 8000 --seed $seed "$download_dir" "$data/aug_wav" "$data"
  fi
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  stage_banner 1 "MFCC + energy VAD${sp_factors:+, speed-perturbed copies of data/train ($sp_factors)}"
  require 0 "$data/train/wav.scp" "$data/eval/wav.scp"
  # --speed-perturb: the copies' audio is made once per factor and data/train (the .done marker), their
  # features (below) whenever data/train's are.
  for spf in $sp_factors; do
    marker="factor=$spf train=$(cksum < "$data/train/wav.scp" | awk '{print $1 "-" $2}')"
    if [ "$(cat "$data/train_sp$spf/.done" 2>/dev/null)" != "$marker" ]; then
      echo "$0: speed $spf: $data/train -> $data/train_sp$spf (audio in $data/train_sp$spf/wav, ids sp$spf-*)"
      utils/data/perturb_data_dir_speed.sh "$spf" "$data/train" "$data/train_sp$spf"
      echo "$marker" > "$data/train_sp$spf/.done"
    fi
  done
  if [ -n "$init_sfx" ]; then   # the training features of --init-from's front end; stage 4 makes the rest
    echo "$0: $init_from has a front end of its own ($init_from/features.yaml): its features from the audio in $data/train$sfx"
    for name in train ${sp_factors:+$(printf 'train_sp%s ' $sp_factors)}; do
      nnet_features $name "$sfx" "$init_from"
    done
  else
    for name in train eval ${sp_factors:+$(printf 'train_sp%s ' $sp_factors)}; do
      make_features "$name"
    done
  fi
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  stage_banner 2 "training examples (CMN, voiced frames, length filter)"
  prep_opts=()
  if [ -n "$init_sfx" ]; then   # the CMN and VAD of --init-from's front end
    opts=$(init_prep_opts)
    prep_opts=($opts)
  fi
  require 1 "$data/train$sfx/feats.scp"
  [[ " ${prep_opts[*]} " == *" --use-vad false "* ]] || require 1 "$data/train$sfx/vad.scp"
  # CMN + voiced frames, then as egs/voxceleb/v2 stage 5: drop short utterances, then small speakers.
  steps/prepare_feats_for_egs.sh --nj $nj --cmd "$train_cmd" --min-len $min_len --min-num-utts $min_num_utts "${prep_opts[@]}" \
    "$data/train$sfx" "$data/train${sfx}_no_sil" "$exp/train${sfx}_no_sil"
  for spf in $sp_factors; do   # --speed-perturb: each copy on its own (its speakers are other classes)
    require 1 "$data/train_sp$spf$sfx/feats.scp"
    echo "$0: training examples of the speed-$spf copy: $data/train_sp$spf$sfx -> $data/train_sp$spf${sfx}_no_sil"
    steps/prepare_feats_for_egs.sh --nj $nj --cmd "$train_cmd" --min-len $min_len --min-num-utts $min_num_utts \
      "${prep_opts[@]}" "$data/train_sp$spf$sfx" "$data/train_sp$spf${sfx}_no_sil" "$exp/train_sp$spf${sfx}_no_sil"
  done
  if [ "$dev_speakers" -gt 0 ]; then
    # Dev split: seeded speakers of the length-filtered set, removed from every training-side dir; their
    # whole utterances (data/dev$sfx, VAD applied at extraction like eval) get their own trials.
    local/choose_dev_speakers.py --num-speakers $dev_speakers --seed $seed "$data/train${sfx}_no_sil" "$data/dev_speakers.txt"
    for d in "" $sfx ${sfx}_no_sil; do
      local/split_speakers.py "$data/train$d" "$data/dev_speakers.txt" "$data/train_nodev$d" "$data/dev$d"
    done
    local/make_trials.py --seed $seed "$data/dev" "$data/dev/trials"
    # The trainer's per-epoch dev EER reads the prepared (CMN, voiced) features: the trials among the
    # utterances the length filter kept.
    awk 'NR == FNR {kept[$1]; next} ($1 in kept) && ($2 in kept)' "$data/dev${sfx}_no_sil/utt2spk" \
      "$data/dev/trials" > "$data/dev${sfx}_no_sil/trials"
    echo "speakers=$dev_speakers seed=$seed" > "$data/dev/.done"
  fi
  if [ -n "$sp_factors" ]; then
    # --speed-perturb: the network's training set is data/${trn}${sfx}_no_sil and the copies' examples, without
    # the copies of the dev speakers (sp<f>-<dev speaker>; the dev speakers are chosen above among the unperturbed).
    echo "$0: the network's training set: $data/${trn}${sfx}_no_sil + the speed-perturbed copies -> $data/${trn}_sp${sfx}_no_sil"
    dev_opts=()
    [ "$dev_speakers" -gt 0 ] && dev_opts=(--dev-speakers "$data/dev_speakers.txt")
    copies=()
    for spf in $sp_factors; do copies+=("$data/train_sp$spf${sfx}_no_sil"); done
    local/combine_speed_perturbed.sh "${dev_opts[@]}" "$data/${trn}_sp${sfx}_no_sil" "$data/${trn}${sfx}_no_sil" \
      "${copies[@]}"
    echo "factors=$sp_factors dev_speakers=$dev_speakers seed=$seed" > "$data/${trn}_sp${sfx}_no_sil/.done"
  fi
  if [ "$source_type" = audio ]; then
    # The utterances kept above, as audio: the crops are cut from their voiced samples (vad.scp) on the fly.
    utils/subset_data_dir.sh --utt-list "$data/${trn}${sfx}_no_sil/utt2spk" "$data/train" "$data/${trn}_audio"
  fi
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  what="train the $net network on $feat_type"
  [ -n "$init_from" ] && what="fine-tune the network of $init_from on $([ -n "$init_sfx" ] && echo "its own features" || echo "$feat_type")"
  stage_banner 3 "$what ($system: $loss ${loss_params:-(defaults)} ${aux:++ $aux}) in $nnet_dir"
  train_dir=$data/${trn}${sfx}_no_sil
  # --speed-perturb: the network trains on the speed-perturbed copies too (stage 2); the back-end (stages 4-5:
  # xvectors_$trn, LDA and PLDA) stays on the unperturbed training set, as in Kaldi's egs/voxceleb/v2.
  if [ -n "$sp_factors" ]; then
    train_dir=$data/${trn}_sp${sfx}_no_sil
    require_marker 2 "$train_dir" "factors=$sp_factors dev_speakers=$dev_speakers seed=$seed"
  fi
  if [ "$source_type" = audio ]; then
    train_dir=$data/${trn}_audio
    require 2 "$train_dir/wav.scp" "$train_dir/vad.scp" "$data/aug_rirs/wav.scp"
  else
    require 2 "$train_dir/feats.scp" "$train_dir/utt2num_frames"
  fi
  # the front end this recipe computed (also where the config has no features: section), recorded by tfspk-train
  train_args=(--set "features.type=$feat_type" --set "features.conf=$feat_conf" --set "features.vad_conf=$vad_conf"
    --set "features.vad_mfcc_conf=$vad_mfcc_conf")
  [ -n "$init_sfx" ] && train_args=()   # fine-tuning with an empty features: section records the source's front end
  for opts in "${train_opts[@]}"; do train_args+=($opts); done   # each --train-opts is split at spaces
  for kv in "${set[@]}"; do train_args+=(--set "$kv"); done        # each --set stays one word
  if [ "$dev_speakers" -gt 0 ]; then   # the dev EER per epoch in the training log (the training curve of the dev set)
    require 2 "$data/dev${sfx}_no_sil/trials"
    check_dev_split
    train_args+=(--set "valid.eer_data=$data/dev${sfx}_no_sil")
  fi
  steps/train_xvector.sh --cmd "$cuda_cmd" --train-config "$train_config" --loss "$loss" \
    ${loss_params:+--loss-params "$loss_params"} ${aux:+--aux "$aux"} "${train_args[@]}" \
    "$train_dir" "$nnet_dir"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  stage_banner 4 "extract embeddings"
  require 3 "$nnet_dir/final/model.weights.h5" "$nnet_dir/config.yaml"
  names="$trn eval"
  own=$(own_front_end)
  if [ -n "$own" ]; then
    echo "$0: $nnet_dir has a front end of its own ($nnet_dir/features.yaml): its features from the audio in $data/<name>$own"
    [ "$dev_speakers" -gt 0 ] && names="$names dev" && require 2 "$data/dev/wav.scp"
    require 0 "$data/$trn/wav.scp" "$data/eval/wav.scp"
    for name in $names; do
      nnet_features $name $own
    done
  else
    own=$sfx
    require 1 "$data/train$sfx/feats.scp" "$data/eval$sfx/feats.scp" "$data/eval$sfx/vad.scp"
    [ "$dev_speakers" -gt 0 ] && names="$names dev" && require 2 "$data/dev$sfx/feats.scp"
  fi
  pairs=()   # <data-dir> <xvector-dir> of every set, extracted in the same jobs (one start of TensorFlow each)
  for name in $names; do pairs+=("$data/$name$own" "$nnet_dir/xvectors_$name"); done
  steps/extract_xvectors.sh --nj $nj --cmd "$train_cmd" "$nnet_dir" "${pairs[@]}"
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  stage_banner 5 "back-end: LDA + PLDA and cosine scoring"
  require 4 "$nnet_dir/xvectors_$trn/xvector.scp" "$nnet_dir/xvectors_eval/xvector.scp"
  require 0 "$data/eval/trials"
  if [ "$dev_speakers" -gt 0 ]; then
    require 4 "$nnet_dir/xvectors_dev/xvector.scp"
    local/score_plda_cosine.sh --cmd "$train_cmd" --lda-dim $lda_dim \
      "$data/$trn" "$nnet_dir/xvectors_$trn" "$nnet_dir/xvectors_dev" "$data/dev/trials" "$nnet_dir/scores_dev"
  fi
  local/score_plda_cosine.sh --cmd "$train_cmd" --lda-dim $lda_dim \
    "$data/$trn" "$nnet_dir/xvectors_$trn" "$nnet_dir/xvectors_eval" "$data/eval/trials" "$nnet_dir/scores"
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  stage_banner 6 "metrics and DET plot"
  require 5 "$nnet_dir/scores/plda_scores" "$nnet_dir/scores/cosine_scores"
  if [ "$dev_speakers" -gt 0 ]; then
    local/report.sh --title "demo (dev), $net, $system" "$data/dev/trials" "$nnet_dir/scores_dev" \
      | tee "$nnet_dir/scores_dev/results.txt"
  fi
  local/report.sh --title "demo, $net, $system" "$data/eval/trials" "$nnet_dir/scores" | tee "$nnet_dir/scores/results.txt"
fi
# ---- calibration: a self-contained stage at the end.
if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  stage_banner 7 "calibration on half of the evaluation speakers, actDCF / Cllr on the other half"
  require 5 "$nnet_dir/scores/plda_scores" "$nnet_dir/scores/cosine_scores"
  require 0 "$data/eval/utt2spk" "$data/eval/trials"
  local/calibrate_and_report.sh --title "demo, $system: calibrated, test half" "$data/eval" "$nnet_dir/scores"
fi
# ---- a second test condition (opt-in): each evaluation utterance reverberated or with babble of other speakers.
if [ $stage -le 8 ] && [ $stop_stage -ge 8 ] && [ "$noisy_eval" = true ]; then
  stage_banner 8 "noisy condition: data/eval$([ "$dev_speakers" -gt 0 ] && echo " and data/dev") reverberated (new rooms) or with babble, scored with the clean back-end"
  require 0 "$data/eval/wav.scp" "$data/eval/trials"
  require 4 "$nnet_dir/xvectors_$trn/xvector.scp" "$nnet_dir/config.yaml"
  names=eval
  if [ "$dev_speakers" -gt 0 ]; then   # dev first: the condition robustness decisions are made on
    names="dev eval"
    require 2 "$data/dev/wav.scp" "$data/dev/trials"
    check_dev_split
  fi
  own=$(own_front_end)
  pairs=()   # <data-dir> <xvector-dir> of every noisy set, extracted in the same jobs
  for name in $names; do
    noisy_copy $name
    [ -n "$own" ] && nnet_features ${name}_noisy $own
    pairs+=("$data/${name}_noisy${own:-$sfx}" "$nnet_dir/xvectors_${name}_noisy")
  done
  steps/extract_xvectors.sh --nj $nj --cmd "$train_cmd" "$nnet_dir" "${pairs[@]}"
  for name in $names; do
    scores=scores_noisy title="noisy evaluation"
    [ "$name" = dev ] && scores=scores_dev_noisy title="dev, noisy"
    local/score_plda_cosine.sh --cmd "$train_cmd" --lda-dim $lda_dim \
      "$data/$trn" "$nnet_dir/xvectors_$trn" "$nnet_dir/xvectors_${name}_noisy" "$data/${name}_noisy/trials" \
      "$nnet_dir/$scores"
    local/report.sh --title "demo ($title), $net, $system" "$data/${name}_noisy/trials" "$nnet_dir/$scores" \
      | tee "$nnet_dir/$scores/results.txt"
  done
fi
echo "$0: done ($(date -u +%H:%M:%S))"
