#!/usr/bin/env bash
# Extract x-vectors of a data dir with a network trained by tfspk-train (Kaldi's
# sid/nnet3/xvector/extract_xvectors.sh interface). Raw features get the training-time preparation
# (the CMN of the network's front end, <nnet-dir>/features.yaml: sliding over its window, centred, no
# variance normalisation; then, if the front end has VAD on, voiced frames per vad.scp); chunks of --chunk-size frames are embedded and averaged weighted by their length.
# Writes <xvector-dir>/xvector.{N.ark,N.scp,scp}, spk_xvector.{ark,scp} (speaker means) and num_utts.ark.
# More <data-dir> <xvector-dir> pairs are extracted by the same jobs (job N runs one tfspk-extract for part N of
# every data dir: one start of TensorFlow instead of one per data dir); each <xvector-dir> gets what a run of its
# own would write, its log/extract.N.log being the job's log (of all the pairs).
set -e -o pipefail

echo "$0 $@"

nj=4
cmd=run.pl
chunk_size=-1          # frames per chunk; -1 = whole utterance
min_chunk_size=25      # shorter chunks are padded by repeating edge frames
pad_input=true         # false: no padding; an utterance below the network's minimum frames is an error
embedding_layer=a      # a: first segment layer's affine output (Kaldi's x-vector); b: last segment layer
use_gpu=no
cmn_window=            # sliding CMN window; '' = the front end's (<nnet-dir>/features.yaml; 300 without one)
use_vad=               # true: voiced frames per <data-dir>/vad.scp; false: every frame, no vad.scp;
                       # '' = the front end's (vad.apply of <nnet-dir>/features.yaml; true without one)
batch_size=32
allow_unfinished=false # true: use the model of a training that did not finish (no <nnet-dir>/final/DONE)
stage=0

help_message="Usage: $0 [options] <nnet-dir> <data-dir> <xvector-dir> [<data-dir> <xvector-dir> ...]
 e.g.: $0 --nj 8 --cmd run.pl exp/xvector_nnet data/test exp/xvectors_test
       $0 --nj 8 exp/xvector_nnet data/train exp/xvectors_train data/test exp/xvectors_test
Options:
  --nj <n>                 # number of parallel jobs (default: $nj)
  --cmd <runner>           # job runner, e.g. run.pl, queue.pl, slurm.pl (default: $cmd)
  --chunk-size <n>         # frames per chunk, -1 for whole utterances (default: $chunk_size)
  --min-chunk-size <n>     # pad shorter chunks to this many frames (default: $min_chunk_size)
  --pad-input <true|false> # false: no padding; too short an utterance is an error (default: $pad_input)
  --embedding-layer <a|b>  # which embedding to extract (default: $embedding_layer)
  --use-gpu <no|yes>       # run on a GPU (default: $use_gpu)
  --cmn-window <n>         # sliding CMN window (default: the one of <nnet-dir>/features.yaml)
  --use-vad <true|false>   # false: keep every frame, no <data-dir>/vad.scp (default: the VAD setting of <nnet-dir>/features.yaml)
  --batch-size <n>         # equal-length chunks per network run (default: $batch_size)
  --allow-unfinished <true|false> # use a model whose training did not finish, with a warning (default: $allow_unfinished)
  --stage <n>              # 0: extract, 1: combine, 2: speaker means (default: $stage)"

. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/internal/paths.sh"   # tfspk_steps, utils (on PATH)
. "$utils/parse_options.sh"
. "$tfspk_steps/internal/checks.sh"

if [ $# -lt 3 ] || [ $(($# % 2)) != 1 ]; then
  echo "$help_message" >&2
  exit 1
fi

srcdir=$1
shift
datas=()   # the pairs: datas[k] is extracted into dirs[k]
dirs=()
while [ $# -gt 0 ]; do
  for other in "${dirs[@]}"; do
    if [ "$(readlink -m "$other")" = "$(readlink -m "$2")" ]; then
      echo "$0: two data dirs are to be extracted into one <xvector-dir> $2" >&2
      exit 1
    fi
  done
  datas+=("$1")
  dirs+=("$2")
  shift 2
done

require_files "$srcdir/config.yaml" "$srcdir/final/model.weights.h5"
for data in "${datas[@]}"; do
  require_files "$data/feats.scp" "$data/utt2spk" "$data/spk2utt"
done
if [ -z "$use_vad" ]; then
  use_vad=true
  if [ -f "$srcdir/features.yaml" ]; then
    # vad.apply of the block-style YAML that tfspk.features.frontend.write_front_end writes
    use_vad=$(awk '/^vad:/ {in_vad = 1; next} in_vad && /^[^ #]/ {exit} in_vad && $1 == "apply:" {print $2; exit}' \
                "$srcdir/features.yaml")
    case "$use_vad" in
      true|false) echo "$0: VAD $([ "$use_vad" = true ] && echo on || echo off), as $srcdir/features.yaml says" ;;
      *) echo "$0: cannot read vad.apply (true|false) of $srcdir/features.yaml; pass --use-vad true|false" >&2
         exit 1 ;;
    esac
  fi
fi
case "$use_vad" in
  true) for data in "${datas[@]}"; do require_files "$data/vad.scp"; done ;;
  false) ;;
  *) echo "$0: --use-vad must be true or false, got '$use_vad'" >&2; exit 1;;
esac
case "$allow_unfinished" in
  true) [ -f "$srcdir/final/DONE" ] || echo "$0: WARNING: the training of $srcdir did not finish" \
          "(no $srcdir/final/DONE); using its model anyway (--allow-unfinished true)" >&2 ;;
  false) if [ ! -f "$srcdir/final/DONE" ]; then
           echo "$0: the training of $srcdir did not finish (no $srcdir/final/DONE), so its" \
             "final/model.weights.h5 is from an early epoch; re-run the training to finish it, or pass" \
             "--allow-unfinished true to use it" >&2
           exit 1
         fi ;;
  *) echo "$0: --allow-unfinished must be true or false, got '$allow_unfinished'" >&2; exit 1;;
esac
case "$embedding_layer" in a|b) ;; *) echo "$0: --embedding-layer must be a or b, got '$embedding_layer'" >&2; exit 1;; esac
case "$use_gpu" in
  no|false) gpu_opt= ;;
  yes|true|optional|wait) gpu_opt="--gpu 1" ;;
  *) echo "$0: --use-gpu must be no or yes, got '$use_gpu'" >&2; exit 1;;
esac

for dir in "${dirs[@]}"; do mkdir -p "$dir/log"; done
lock_output_dir "${dirs[@]}"   # one extraction per dir: a second one must not overwrite its outputs and logs

if [ $stage -le 0 ]; then
  tables=()   # tfspk-extract's <feats-rspecifier> <vad-rspecifier|none> <xvector-wspecifier> of each pair
  for k in "${!datas[@]}"; do
    data=${datas[$k]}
    dir=${dirs[$k]}
    sdata=$data/split$nj
    "$utils/split_data.sh" "$data" $nj
    # Hidden temporaries (tfspk.io.atomic) of killed jobs of an earlier run into this dir.
    remove_stale_temporaries "$dir" "xvector.+([0-9]).@(ark|scp)" "spk_xvector.@(ark|scp)" "num_utts.ark"
    echo "$0: extracting x-vectors of $data with $srcdir ($nj jobs; logs in $dir/log/extract.*.log)"
    vad_rspecifier=none
    $use_vad && vad_rspecifier="scp:$sdata/JOB/vad.scp"
    tables+=("scp:$sdata/JOB/feats.scp" "$vad_rspecifier" "ark,scp:$dir/xvector.JOB.ark,$dir/xvector.JOB.scp")
  done
  $cmd $gpu_opt JOB=1:$nj "${dirs[0]}/log/extract.JOB.log" \
    tfspk-extract --use-gpu=$use_gpu --chunk-size=$chunk_size --min-chunk-size=$min_chunk_size \
      --pad-input=$pad_input --embedding-layer=$embedding_layer ${cmn_window:+--cmn-window=$cmn_window} --batch-size=$batch_size \
      --allow-unfinished=$allow_unfinished \
      "$srcdir" "${tables[@]}"
  for dir in "${dirs[@]:1}"; do
    for j in $(seq $nj); do cp "${dirs[0]}/log/extract.$j.log" "$dir/log/extract.$j.log"; done
  done
fi

for k in "${!datas[@]}"; do
  data=${datas[$k]}
  dir=${dirs[$k]}
  if [ $stage -le 1 ]; then
    for j in $(seq $nj); do
      [ -f "$dir/xvector.$j.scp" ] || { echo "$0: job $j wrote no $dir/xvector.$j.scp" >&2; exit 1; }
      cat "$dir/xvector.$j.scp"
    done | LC_ALL=C sort > "$dir/xvector.scp.tmp"
    mv "$dir/xvector.scp.tmp" "$dir/xvector.scp"
    echo "$0: $(wc -l < "$dir/xvector.scp") x-vectors of $(wc -l < "$data/utt2spk") utterances in $dir/xvector.scp"
  fi

  if [ $stage -le 2 ]; then
    echo "$0: computing mean of x-vectors for each speaker"
    $cmd "$dir/log/speaker_mean.log" \
      tfspk-ivector-mean "ark:$data/spk2utt" "scp:$dir/xvector.scp" \
        "ark,scp:$dir/spk_xvector.ark,$dir/spk_xvector.scp" "ark,t:$dir/num_utts.ark"
  fi
done
