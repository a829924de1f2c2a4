#!/usr/bin/env bash
# Compute MFCC features for a data directory, as Kaldi's steps/make_mfcc.sh:
# <data-dir>/feats.scp (+ utt2num_frames, utt2dur, frame_shift, conf/mfcc.conf), archives in
# <mfcc-dir>, one log per job in <log-dir>/make_mfcc_<name>.JOB.log.
# With --use-kaldi false (default) each job is one tfspk-compute-mfcc-feats process (features,
# compression, frame counts and durations in one pass); with --use-kaldi true it runs Kaldi's
# [extract-segments |] compute-mfcc-feats | copy-feats pipeline.
# Nothing half-made is left looking complete: the old feats.scp is moved to <data-dir>/.backup
# first, per-job archives appear only when their job succeeds, and the combined files are
# written under temporary names and moved into place after every job has succeeded.
set -e -o pipefail

nj=4
cmd=run.pl
mfcc_config=conf/mfcc.conf
compress=true
write_utt2num_frames=true
write_utt2dur=true
use_kaldi=false

echo "$0 $@"  # Print the command line for logging.

if [ -f path.sh ]; then . ./path.sh; fi
utils=$(cd "$(dirname "${BASH_SOURCE[0]}")/../utils" && pwd)
export PATH=$PATH:$utils   # run.pl and the data-dir scripts, if the caller has not put them on PATH

help_message="Usage: $0 [options] <data-dir> [<log-dir> [<mfcc-dir>] ]
 e.g.: $0 data/train exp/make_mfcc mfcc
Note: <log-dir> defaults to <data-dir>/log, and
      <mfcc-dir> defaults to <data-dir>/data.
Options:
  --mfcc-config <config-file>          # config passed to compute-mfcc-feats (default: $mfcc_config)
  --nj <nj>                            # number of parallel jobs (default: $nj)
  --cmd <run.pl|queue.pl <queue opts>> # how to run jobs (default: $cmd)
  --compress <true|false>              # store compressed matrices (default: $compress)
  --write-utt2num-frames <true|false>  # if true, write utt2num_frames (default: $write_utt2num_frames)
  --write-utt2dur <true|false>         # if true, write utt2dur (default: $write_utt2dur)
  --use-kaldi <true|false>             # use Kaldi's binaries (must be on PATH) (default: $use_kaldi)"

. "$utils/parse_options.sh"

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  echo "$help_message" >&2
  exit 1
fi

data=$1
logdir=${2:-$data/log}
mfccdir=${3:-$data/data}

for f in "$data/wav.scp" "$data/utt2spk" "$mfcc_config"; do
  if [ ! -f "$f" ]; then
    echo "$0: no such file $f" >&2
    exit 1
  fi
done
if ! [[ "$nj" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: --nj must be a positive integer, got '$nj'" >&2
  exit 1
fi
if $use_kaldi; then
  needed="compute-mfcc-feats copy-feats"
  if [ -f "$data/segments" ]; then needed="extract-segments $needed"; fi
  for binary in $needed; do
    if ! command -v "$binary" > /dev/null; then
      echo "$0: --use-kaldi true, but Kaldi's $binary is not on PATH (source Kaldi's path.sh," \
        "or use --use-kaldi false for tfspk's tools)" >&2
      exit 1
    fi
  done
fi

mkdir -p "$mfccdir" "$logdir"
mfccdir=$(cd "$mfccdir" && pwd)   # the scp files must hold absolute paths
name=$(basename "$data")

if [ -f "$data/feats.scp" ]; then
  mkdir -p "$data/.backup"
  echo "$0: moving $data/feats.scp to $data/.backup"
  mv "$data/feats.scp" "$data/.backup"
fi

"$utils/validate_data_dir.sh" --no-text --no-feats "$data"
"$utils/split_data.sh" "$data" "$nj"
sdata=$data/split$nj

# A failed job of an earlier run must not leave an archive that the combination below would pick up.
for n in $(seq "$nj"); do
  rm -f "$mfccdir/raw_mfcc_$name.$n.ark" "$mfccdir/raw_mfcc_$name.$n.scp" \
    "$logdir/utt2num_frames.$n" "$logdir/utt2dur.$n"
done

write_num_frames_opt=
if $write_utt2num_frames; then write_num_frames_opt="--write-num-frames=ark,t:$logdir/utt2num_frames.JOB"; fi
write_utt2dur_opt=
if $write_utt2dur; then write_utt2dur_opt="--write-utt2dur=ark,t:$logdir/utt2dur.JOB"; fi
output="ark,scp:$mfccdir/raw_mfcc_$name.JOB.ark,$mfccdir/raw_mfcc_$name.JOB.scp"

if [ -f "$data/segments" ]; then
  echo "$0 [info]: segments file exists: using that."
fi
if $use_kaldi; then
  if [ -f "$data/segments" ]; then
    $cmd JOB=1:$nj "$logdir/make_mfcc_$name.JOB.log" \
      extract-segments scp,p:$sdata/JOB/wav.scp $sdata/JOB/segments ark:- \| \
      compute-mfcc-feats $write_utt2dur_opt --verbose=2 --config=$mfcc_config ark:- ark:- \| \
      copy-feats --compress=$compress $write_num_frames_opt ark:- $output
  else
    $cmd JOB=1:$nj "$logdir/make_mfcc_$name.JOB.log" \
      compute-mfcc-feats $write_utt2dur_opt --verbose=2 --config=$mfcc_config \
        scp,p:$sdata/JOB/wav.scp ark:- \| \
      copy-feats --compress=$compress $write_num_frames_opt ark:- $output
  fi
else
  segments_opt=
  if [ -f "$data/segments" ]; then segments_opt="--segments=$sdata/JOB/segments"; fi
  $cmd JOB=1:$nj "$logdir/make_mfcc_$name.JOB.log" \
    tfspk-compute-mfcc-feats --config=$mfcc_config $segments_opt $write_utt2dur_opt \
      $write_num_frames_opt --compress=$compress scp:$sdata/JOB/wav.scp $output
fi

# Combine the per-job outputs (temporary names first, then into place together).
combine() {  # combine <pattern-with-N> <destination>
  for n in $(seq "$nj"); do
    cat "${1//N/$n}"
  done > "$2.tmp"
}
combine "$mfccdir/raw_mfcc_$name.N.scp" "$data/feats.scp"
if $write_utt2num_frames; then combine "$logdir/utt2num_frames.N" "$data/utt2num_frames"; fi
if $write_utt2dur; then combine "$logdir/utt2dur.N" "$data/utt2dur"; fi
if $write_utt2num_frames; then mv "$data/utt2num_frames.tmp" "$data/utt2num_frames"; fi
if $write_utt2dur; then mv "$data/utt2dur.tmp" "$data/utt2dur"; fi

# Store frame_shift and the config along with the features (as Kaldi).
frame_shift=$(sed -n 's/^--frame-shift=\([0-9.]*\).*/\1/p' "$mfcc_config" | tail -n 1)
awk -v ms="${frame_shift:-10}" 'BEGIN { printf "%.3f\n", ms / 1000 }' > "$data/frame_shift"
mkdir -p "$data/conf"
cmp -s "$mfcc_config" "$data/conf/mfcc.conf" || cp "$mfcc_config" "$data/conf/mfcc.conf"
mv "$data/feats.scp.tmp" "$data/feats.scp"
rm -f "$logdir"/utt2num_frames.* "$logdir"/utt2dur.*

nf=$(wc -l < "$data/feats.scp")
nu=$(wc -l < "$data/utt2spk")
if [ "$nf" -ne "$nu" ]; then
  echo "$0: It seems not all of the feature files were successfully processed" \
    "($nf != $nu); consider using utils/fix_data_dir.sh $data (warnings are in $logdir/make_mfcc_$name.*.log)"
fi
if (( nf < nu - nu / 20 )); then
  echo "$0: Less than 95% the features were successfully generated. Probably a serious error." >&2
  exit 1
fi

echo "$0: Succeeded creating MFCC features for $name"
