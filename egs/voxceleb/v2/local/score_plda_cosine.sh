#!/usr/bin/env bash
# Back-end of egs/voxceleb/v2 (stages 10-11) with tfspk tools: centre with the training mean,
# LDA (--total-covariance-factor=0), length-normalise, train PLDA (10 EM iterations) on the training
# embeddings, then score the trials with PLDA (ivector-plda-scoring --normalize-length=true) and with
# the cosine of the centred embeddings; also the raw cosine (no centring) and AS-norm of the centred cosine
# with the training utterances as cohort.
# Output: <score-dir>/plda_scores, cosine_scores, raw_cosine_scores, cosine_asnorm_scores ('<enroll> <test> <score>'); the
# back-end models (mean.vec, transform.mat, plda) are written next to the training embeddings.

echo "$0 $@"
set -e -o pipefail

cmd=run.pl
lda_dim=200
asnorm=true
asnorm_top_n=300
help_message="Usage: $0 [options] <train-data-dir> <train-xvector-dir> <eval-xvector-dir> <trials> <score-dir>
 e.g.: $0 --lda-dim 200 data/train exp/xvector_nnet/xvectors_train exp/xvector_nnet/xvectors_test \\
         data/test/trials exp/xvector_nnet/scores
Options: --cmd ($cmd) --lda-dim ($lda_dim; 'max': the number of training speakers - 1, every
          between-speaker direction the LDA can find) --asnorm ($asnorm; false: no cosine_asnorm_scores)
         --asnorm-top-n ($asnorm_top_n; AS-norm cohort scores kept)"

. "$(dirname "$0")/../utils/parse_options.sh" || exit 1
if [ $# -ne 5 ]; then
  echo "$help_message" >&2
  exit 1
fi
train_data=$1
train_xv=$2
eval_xv=$3
trials=$4
dir=$5

for f in "$train_data/utt2spk" "$train_data/spk2utt" "$train_xv/xvector.scp" "$eval_xv/xvector.scp" "$trials"; do
  if [ ! -f "$f" ]; then
    echo "$0: missing input $f" >&2
    exit 1
  fi
done
num_speakers=$(wc -l < "$train_data/spk2utt")
case $lda_dim in
  max) lda_dim=$((num_speakers - 1)); echo "$0: --lda-dim max: $lda_dim ($num_speakers training speakers)" ;;
  ''|*[!0-9]*|0) echo "$0: --lda-dim must be a positive integer or 'max', got '$lda_dim'" >&2; exit 1 ;;
esac
if [ "$lda_dim" -ge "$num_speakers" ]; then
  echo "$0: --lda-dim $lda_dim must be below the number of training speakers ($num_speakers in $train_data)" >&2
  exit 1
fi
mkdir -p "$dir/log" "$train_xv/log"

# PLDA is trained on the speakers of the training embeddings only (utterances extracted there).
awk 'NR == FNR {extracted[$1]; next} $1 in extracted' "$train_xv/xvector.scp" "$train_data/utt2spk" \
  > "$train_xv/utt2spk"
awk '{if ($2 != spk) {if (spk != "") print line; spk = $2; line = $2} line = line " " $1}
     END {if (spk != "") print line}' "$train_xv/utt2spk" > "$train_xv/spk2utt"

# The back-end models depend only on the training embeddings and --lda-dim: several trial lists share them.
stamp="lda_dim=$lda_dim"
if [ -f "$train_xv/plda" ] && [ "$train_xv/plda" -nt "$train_xv/xvector.scp" ] && \
   [ "$(cat "$train_xv/backend_opts" 2>/dev/null)" = "$stamp" ]; then
  echo "$0: reusing the back-end in $train_xv (mean.vec, transform.mat, plda)"
else
  rm -f "$train_xv/backend_opts"
  $cmd "$train_xv/log/compute_mean.log" \
    tfspk-ivector-mean "scp:$train_xv/xvector.scp" "$train_xv/mean.vec"

  $cmd "$train_xv/log/lda.log" \
    tfspk-ivector-compute-lda --total-covariance-factor=0.0 --dim=$lda_dim \
      "ark:tfspk-ivector-subtract-global-mean scp:$train_xv/xvector.scp ark:- |" \
      "ark:$train_xv/utt2spk" "$train_xv/transform.mat"

  $cmd "$train_xv/log/plda.log" \
    tfspk-ivector-compute-plda "ark:$train_xv/spk2utt" \
      "ark:tfspk-ivector-subtract-global-mean scp:$train_xv/xvector.scp ark:- | tfspk-transform-vec $train_xv/transform.mat ark:- ark:- | tfspk-ivector-normalize-length ark:- ark:- |" \
      "$train_xv/plda"
  echo "$stamp" > "$train_xv/backend_opts"
fi

eval_vectors="ark:tfspk-ivector-subtract-global-mean $train_xv/mean.vec scp:$eval_xv/xvector.scp ark:- | tfspk-transform-vec $train_xv/transform.mat ark:- ark:- | tfspk-ivector-normalize-length ark:- ark:- |"
$cmd "$dir/log/plda_scoring.log" \
  tfspk-ivector-plda-scoring --normalize-length=true \
    "tfspk-ivector-copy-plda --smoothing=0.0 $train_xv/plda - |" \
    "$eval_vectors" "$eval_vectors" "cut -d ' ' -f 1,2 $trials |" "$dir/plda_scores"

centred="ark:tfspk-ivector-subtract-global-mean $train_xv/mean.vec scp:$eval_xv/xvector.scp ark:- |"
$cmd "$dir/log/cosine_scoring.log" \
  tfspk-cosine-scoring "cut -d ' ' -f 1,2 $trials |" "$centred" "$centred" "$dir/cosine_scores"
# The embeddings alone, without anything learnt from the training embeddings: the raw cosine.
$cmd "$dir/log/raw_cosine_scoring.log" \
  tfspk-cosine-scoring "cut -d ' ' -f 1,2 $trials |" "scp:$eval_xv/xvector.scp" "scp:$eval_xv/xvector.scp" \
    "$dir/raw_cosine_scores"
# AS-norm of the centred cosine, the cohort being the centred training embeddings (one per utterance).
rm -f "$dir/cosine_asnorm_scores"
if [ "$asnorm" = true ]; then
  cohort="ark:tfspk-ivector-subtract-global-mean $train_xv/mean.vec scp:$train_xv/xvector.scp ark:- |"
  $cmd "$dir/log/cosine_asnorm.log" \
    tfspk-score-norm --top-n=$asnorm_top_n "$centred" "$centred" "$cohort" "$dir/cosine_scores" "$dir/cosine_asnorm_scores"
elif [ "$asnorm" != false ]; then
  echo "$0: --asnorm must be true or false, got '$asnorm'" >&2
  exit 1
fi
echo "$0: wrote $dir/plda_scores, $dir/cosine_scores (centred), $dir/raw_cosine_scores, $dir/cosine_asnorm_scores"
