#!/usr/bin/env bash
# Compute, from the audio of a data dir, the features a trained or imported network expects: its front end as
# recorded in <nnet-dir>/features.yaml (tfspk-train, tfspk-import-model). tfspk-front-end-conf writes the front
# end as Kaldi config files into <data-dir>/conf/ (features.conf with --dither=0, as at inference; vad.conf and
# vad_mfcc.conf when it applies the energy VAD); steps/make_<type>.sh computes the features with them, audio
# at another rate resampled to the front end's (--allow-downsample/--allow-upsample); with the VAD,
# steps/compute_vad_decision.sh writes vad.scp from the MFCCs of vad_mfcc.conf (the features themselves
# when they are those MFCCs, else <data-dir>/<name>_vad_mfcc, a data dir of its own). Then
#   steps/extract_xvectors.sh <nnet-dir> <data-dir> <xvector-dir>
# embeds the data as the network's own toolkit would (its CMN and VAD setting from features.yaml too).
# The data dir's earlier feats.scp and vad.scp are moved to <data-dir>/.backup.
set -e -o pipefail

nj=4
cmd=run.pl
compress=true
resample=true          # false: audio at another rate than the front end's is an error

echo "$0 $@"  # Print the command line for logging.

. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/internal/paths.sh"   # tfspk_steps, utils (on PATH)

help_message="Usage: $0 [options] <nnet-dir> <data-dir> [<log-dir> [<feat-dir>]]
 e.g.: $0 --nj 4 exp/wespeaker_resnet34 data/eval_wespeaker_resnet34 exp/make_feats feats
Note: <log-dir> defaults to <data-dir>/log, and <feat-dir> defaults to <data-dir>/data.
Options:
  --nj <nj>                            # number of parallel jobs (default: $nj)
  --cmd <run.pl|queue.pl <queue opts>> # how to run jobs (default: $cmd)
  --compress <true|false>              # store compressed matrices (default: $compress)
  --resample <true|false>              # resample audio to the front end's rate (default: $resample)"

. "$utils/parse_options.sh"
. "$tfspk_steps/internal/checks.sh"

if [ $# -lt 2 ] || [ $# -gt 4 ]; then
  echo "$help_message" >&2
  exit 1
fi

nnet=$1
data=$2
logdir=${3:-$data/log}
featdir=${4:-$data/data}

require_files "$nnet/features.yaml" "$data/wav.scp" "$data/utt2spk"
case "$resample" in true|false) ;; *) echo "$0: --resample must be true or false, got '$resample'" >&2; exit 1 ;; esac
rate_opts=(--allow-downsample "$resample" --allow-upsample "$resample")

type=$(tfspk-front-end-conf "$nnet" "$data/conf")
if [ ! -f "$tfspk_steps/make_$type.sh" ]; then
  echo "$0: the front end of $nnet has features of type '$type', which no steps/make_$type.sh computes" >&2
  exit 1
fi
back_up "$data" vad.scp
"$tfspk_steps/make_$type.sh" --nj "$nj" --cmd "$cmd" --compress "$compress" "${rate_opts[@]}" \
  --"${type//_/-}"-config "$data/conf/features.conf" "$data" "$logdir" "$featdir"

if [ -f "$data/conf/vad.conf" ]; then
  vad_data=$data
  if [ "$type" != mfcc ] || ! cmp -s "$data/conf/features.conf" "$data/conf/vad_mfcc.conf"; then
    vad_data=$data/$(basename "$data")_vad_mfcc   # named after the data dir: its archives share <feat-dir>
    rm -rf "$vad_data"
    "$utils/copy_data_dir.sh" "$data" "$vad_data"
    rm -f "$vad_data/feats.scp" "$vad_data/vad.scp"
    "$tfspk_steps/make_mfcc.sh" --nj "$nj" --cmd "$cmd" --compress "$compress" "${rate_opts[@]}" \
      --mfcc-config "$data/conf/vad_mfcc.conf" "$vad_data" "$logdir" "$featdir"
  fi
  "$tfspk_steps/compute_vad_decision.sh" --nj "$nj" --cmd "$cmd" --vad-config "$data/conf/vad.conf" \
    "$vad_data" "$logdir" "$featdir"
  [ "$vad_data" = "$data" ] || cp "$vad_data/vad.scp" "$data/vad.scp"
fi
echo "$0: $type features$([ -f "$data/conf/vad.conf" ] && echo " and VAD") of the front end of $nnet in $data"
