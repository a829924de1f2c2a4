#!/usr/bin/env bash
# The body shared by steps/make_mfcc.sh, make_fbank.sh, make_spectrogram.sh and make_speechbrain_fbank.sh (Kaldi
# keeps copies; we keep one). It is sourced, not run: the caller sets `feat` (a feature type: mfcc|fbank|spectrogram|
# speechbrain_fbank), `feat_name` (for messages) and declares its config option variable `${feat}_config`, so `$0`,
# the options and the usage line stay Kaldi's. The tool is tfspk-compute-<feat with dashes>-feats.
feat_config_var=${feat}_config
feat_opt=${feat//_/-}   # the option --<feat_opt>-config and the tool's name
set -e -o pipefail

nj=4
cmd=run.pl
compress=true
write_utt2num_frames=true
write_utt2dur=true
use_kaldi=false
allow_downsample=false
allow_upsample=false

echo "$0 $@"  # Print the command line for logging.

if [ -f path.sh ]; then . ./path.sh; fi

help_message="Usage: $0 [options] <data-dir> [<log-dir> [<${feat}-dir>] ]
 e.g.: $0 data/train exp/make_${feat} ${feat}
Note: <log-dir> defaults to <data-dir>/log, and
      <${feat}-dir> defaults to <data-dir>/data.
Options:
  --${feat_opt}-config <config-file>       # config passed to compute-${feat_opt}-feats (default: ${!feat_config_var})
  --nj <nj>                            # number of parallel jobs (default: $nj)
  --cmd <run.pl|queue.pl <queue opts>> # how to run jobs (default: $cmd)
  --compress <true|false>              # store compressed matrices (default: $compress)
  --write-utt2num-frames <true|false>  # if true, write utt2num_frames (default: $write_utt2num_frames)
  --write-utt2dur <true|false>         # if true, write utt2dur (default: $write_utt2dur)
  --use-kaldi <true|false>             # use Kaldi's binaries (must be on PATH) (default: $use_kaldi)
  --allow-downsample <true|false>      # resample audio above --sample-frequency (default: $allow_downsample)
  --allow-upsample <true|false>        # resample audio below --sample-frequency (default: $allow_upsample)"

. "$utils/parse_options.sh"
. "$tfspk_steps/internal/checks.sh"
feat_config=${!feat_config_var}

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  echo "$help_message" >&2
  exit 1
fi

data=$1
logdir=${2:-$data/log}
featdir=${3:-$data/data}

require_files "$data/wav.scp" "$data/utt2spk" "$feat_config"
if ! [[ "$nj" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: --nj must be a positive integer, got '$nj'" >&2
  exit 1
fi
# Kaldi's frame options (compute-*-feats --allow-downsample/--allow-upsample; false = a rate mismatch is an
# error); passed only when true, so that the feature config may set them too
rate_opts=
if $allow_downsample; then rate_opts="--allow-downsample=true"; fi
if $allow_upsample; then rate_opts="$rate_opts --allow-upsample=true"; fi
if $use_kaldi && [ "${kaldi_has_binary:-true}" = false ]; then
  echo "$0: Kaldi has no compute-${feat_opt}-feats: --use-kaldi true is not possible for $feat_name features" >&2
  exit 1
fi
if $use_kaldi; then
  needed="compute-${feat}-feats copy-feats"
  if [ -f "$data/segments" ]; then needed="extract-segments $needed"; fi
  require_kaldi_binaries $needed
fi

mkdir -p "$featdir" "$logdir"
featdir=$(cd "$featdir" && pwd)   # the scp files must hold absolute paths
name=$(basename "$data")

back_up "$data" feats.scp

"$utils/validate_data_dir.sh" --no-text --no-feats "$data"
"$utils/split_data.sh" "$data" "$nj"
sdata=$data/split$nj

# A failed job of an earlier run must not leave an archive that the combination below would pick up,
# and a killed one must not leave its hidden temporaries behind (for this data dir's names only).
remove_stale_temporaries "$featdir" "raw_${feat}_$(printf '%q' "$name").+([0-9]).@(ark|scp)"
remove_stale_temporaries "$logdir" "@(utt2num_frames|utt2dur).+([0-9])"
for n in $(seq "$nj"); do
  rm -f "$featdir/raw_${feat}_$name.$n.ark" "$featdir/raw_${feat}_$name.$n.scp" \
    "$logdir/utt2num_frames.$n" "$logdir/utt2dur.$n"
done

write_num_frames_opt=
if $write_utt2num_frames; then write_num_frames_opt="--write-num-frames=ark,t:$logdir/utt2num_frames.JOB"; fi
write_utt2dur_opt=
if $write_utt2dur; then write_utt2dur_opt="--write-utt2dur=ark,t:$logdir/utt2dur.JOB"; fi
output="ark,scp:$featdir/raw_${feat}_$name.JOB.ark,$featdir/raw_${feat}_$name.JOB.scp"

if [ -f "$data/segments" ]; then
  echo "$0 [info]: segments file exists: using that."
fi
if $use_kaldi; then
  if [ -f "$data/segments" ]; then
    $cmd JOB=1:$nj "$logdir/make_${feat}_$name.JOB.log" \
      extract-segments scp,p:$sdata/JOB/wav.scp $sdata/JOB/segments ark:- \| \
      compute-${feat}-feats $write_utt2dur_opt --verbose=2 --config=$feat_config $rate_opts ark:- ark:- \| \
      copy-feats --compress=$compress $write_num_frames_opt ark:- $output
  else
    $cmd JOB=1:$nj "$logdir/make_${feat}_$name.JOB.log" \
      compute-${feat}-feats $write_utt2dur_opt --verbose=2 --config=$feat_config $rate_opts \
        scp,p:$sdata/JOB/wav.scp ark:- \| \
      copy-feats --compress=$compress $write_num_frames_opt ark:- $output
  fi
else
  segments_opt=
  if [ -f "$data/segments" ]; then segments_opt="--segments=$sdata/JOB/segments"; fi
  $cmd JOB=1:$nj "$logdir/make_${feat}_$name.JOB.log" \
    tfspk-compute-${feat_opt}-feats --config=$feat_config $rate_opts $segments_opt $write_utt2dur_opt \
      $write_num_frames_opt --compress=$compress scp:$sdata/JOB/wav.scp $output
fi

# Combine the per-job outputs (temporary names first, then into place together).
combine() {  # combine <pattern-with-N> <destination>
  for n in $(seq "$nj"); do
    cat "${1//N/$n}"
  done > "$2.tmp"
}
combine "$featdir/raw_${feat}_$name.N.scp" "$data/feats.scp"
if $write_utt2num_frames; then combine "$logdir/utt2num_frames.N" "$data/utt2num_frames"; fi
if $write_utt2dur; then combine "$logdir/utt2dur.N" "$data/utt2dur"; fi
if $write_utt2num_frames; then mv "$data/utt2num_frames.tmp" "$data/utt2num_frames"; fi
if $write_utt2dur; then mv "$data/utt2dur.tmp" "$data/utt2dur"; fi

# Store frame_shift and the config along with the features (as Kaldi).
frame_shift=$(sed -n 's/^--frame-shift=\([0-9.]*\).*/\1/p' "$feat_config" | tail -n 1)
awk -v ms="${frame_shift:-10}" 'BEGIN { printf "%.3f\n", ms / 1000 }' > "$data/frame_shift"
mkdir -p "$data/conf"
cmp -s "$feat_config" "$data/conf/${feat}.conf" || cp "$feat_config" "$data/conf/${feat}.conf"
mv "$data/feats.scp.tmp" "$data/feats.scp"
rm -f "$logdir"/utt2num_frames.* "$logdir"/utt2dur.*

nf=$(wc -l < "$data/feats.scp")
nu=$(wc -l < "$data/utt2spk")
if [ "$nf" -ne "$nu" ]; then
  echo "$0: It seems not all of the feature files were successfully processed" \
    "($nf != $nu); consider using utils/fix_data_dir.sh $data (warnings are in $logdir/make_${feat}_$name.*.log)"
fi
if (( nf < nu - nu / 20 )); then
  echo "$0: Less than 95% the features were successfully generated. Probably a serious error." >&2
  exit 1
fi

report_job_warnings "$logdir/make_${feat}_$name.*.log" "$logdir/make_${feat}_$name".*.log
echo "$0: Succeeded creating $feat_name features for $name"
