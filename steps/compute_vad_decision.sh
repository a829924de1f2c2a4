#!/usr/bin/env bash
# Energy-based voice activity detection for a data directory with features, as Kaldi's
# sid/compute_vad_decision.sh: <data-dir>/vad.scp, archives in <vad-dir>, one log per job in
# <log-dir>/vad_<name>.JOB.log. Runs tfspk-compute-vad, or Kaldi's compute-vad with --use-kaldi true.
# The old vad.scp is moved to <data-dir>/.backup first; the new one appears only when every
# job has succeeded.
set -e -o pipefail

nj=4
cmd=run.pl
vad_config=conf/vad.conf
use_kaldi=false

echo "$0 $@"  # Print the command line for logging.

if [ -f path.sh ]; then . ./path.sh; fi
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/internal/paths.sh"   # tfspk_steps, utils (on PATH)

help_message="Usage: $0 [options] <data-dir> [<log-dir> [<vad-dir>]]
 e.g.: $0 data/train exp/make_vad mfcc
Note: <log-dir> defaults to <data-dir>/log, and <vad-dir> defaults to <data-dir>/data
Options:
  --vad-config <config-file>                       # config passed to compute-vad (default: $vad_config)
  --nj <nj>                                        # number of parallel jobs (default: $nj)
  --cmd (utils/run.pl|utils/queue.pl <queue opts>) # how to run jobs (default: $cmd)
  --use-kaldi <true|false>                         # use Kaldi's compute-vad (must be on PATH) (default: $use_kaldi)"

. "$utils/parse_options.sh"
. "$tfspk_steps/internal/checks.sh"

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  echo "$help_message" >&2
  exit 1
fi

data=$1
logdir=${2:-$data/log}
vaddir=${3:-$data/data}

require_files "$data/feats.scp" "$data/utt2spk" "$vad_config"
if ! [[ "$nj" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: --nj must be a positive integer, got '$nj'" >&2
  exit 1
fi
vad_binary=tfspk-compute-vad
if $use_kaldi; then
  vad_binary=compute-vad
  require_kaldi_binaries compute-vad
fi

mkdir -p "$vaddir" "$logdir"
vaddir=$(cd "$vaddir" && pwd)   # the scp files must hold absolute paths
name=$(basename "$data")

back_up "$data" vad.scp

"$utils/split_data.sh" "$data" "$nj"
sdata=$data/split$nj

# Leftovers of an earlier run: its archives, and the hidden temporaries of its killed jobs.
remove_stale_temporaries "$vaddir" "vad_$(printf '%q' "$name").+([0-9]).@(ark|scp)"
for n in $(seq "$nj"); do
  rm -f "$vaddir/vad_$name.$n.ark" "$vaddir/vad_$name.$n.scp"
done

$cmd JOB=1:$nj "$logdir/vad_$name.JOB.log" \
  $vad_binary --config=$vad_config scp:$sdata/JOB/feats.scp \
    ark,scp:$vaddir/vad_$name.JOB.ark,$vaddir/vad_$name.JOB.scp

for n in $(seq "$nj"); do
  cat "$vaddir/vad_$name.$n.scp"
done > "$data/vad.scp.tmp"
mv "$data/vad.scp.tmp" "$data/vad.scp"

nc=$(wc -l < "$data/vad.scp")
nu=$(wc -l < "$data/feats.scp")
if [ "$nc" -ne "$nu" ]; then
  echo "$0: **Warning it seems not all of the utterances got VAD output ($nc != $nu);"
  echo "$0: **validate_data_dir.sh will fail; you might want to use utils/fix_data_dir.sh $data"
  [ "$nc" -eq 0 ] && exit 1
fi
echo "$0: Created VAD output for $name"
