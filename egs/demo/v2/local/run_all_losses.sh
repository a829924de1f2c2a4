#!/usr/bin/env bash
# Train, extract and score one demo system per line of conf/losses.txt ([Liu2019, Table 1] style),
# reusing the corpus and features of run.sh stages 0-2, and write RESULTS.md with the table
# (EER, minDCF(0.01), minDCF(0.001) for PLDA and cosine), the command and the date.
# Run from egs/demo/v2 after "./run.sh --stop-stage 2" (or it runs those stages first).

echo "$0 $@"
set -e -o pipefail

net=tdnn                  # run.sh --net: the network of every system (conf/<net>.yaml)
systems=                  # space-separated labels of conf/losses.txt (default: all)
train_opts=()             # passed to run.sh, e.g. "--num-epochs 6" (repeatable)
set=()                    # passed to run.sh: config overrides, e.g. --set optimizer.lr=0.02 (repeatable)
reuse=true                # a system whose scores/results.txt exists is not run again
results=RESULTS.md
data=data
exp=exp
nj=2
integer_options="nj"
help_message="Usage: $0 [--net tdnn|tdnn_fbank|ecapa_tdnn|resnet34] [--systems \"softmax amsoftmax ...\"] [--train-opts \"...\"]... [--set key=value]... [--reuse true|false] [--results $results]
 Trains every system of conf/losses.txt with run.sh --stage 3 (features of stages 0-2 are reused)."

. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then
  echo "$help_message" >&2
  exit 1
fi
command_line="local/run_all_losses.sh${systems:+ --systems \"$systems\"}"
[ "$net" != tdnn ] && command_line+=" --net $net"
prefix=xvector_nnet_; [ "$net" != tdnn ] && prefix=${net}_nnet_   # run.sh's default nnet dir names
sfx=; grep -q '^ *type: *fbank' "conf/$net.yaml" 2>/dev/null && sfx=_fbank
run_args=()   # every --train-opts and --set, each passed on as given
for opts in "${train_opts[@]}"; do run_args+=(--train-opts "$opts"); command_line+=" --train-opts \"$opts\""; done
for kv in "${set[@]}"; do run_args+=(--set "$kv"); command_line+=" --set \"$kv\""; done
[ -z "$systems" ] && systems=$(awk '!/^#/ && NF {print $1}' conf/losses.txt)
for s in $systems; do
  if ! awk -v s="$s" '!/^#/ && $1 == s {found = 1} END {exit !found}' conf/losses.txt; then
    echo "$0: system '$s' is not in conf/losses.txt" >&2
    exit 1
  fi
done

if [ ! -f "$data/train${sfx}_no_sil/feats.scp" ] || [ ! -f "$data/eval$sfx/vad.scp" ]; then
  echo "$0: no features yet; running ./run.sh --stop-stage 2 first"
  ./run.sh --data "$data" --exp "$exp" --nj $nj --net "$net" --stop-stage 2
fi

for s in $systems; do
  if $reuse && [ -f "$exp/$prefix$s/scores/results.txt" ]; then
    echo "=== $0: system $s: reusing $exp/$prefix$s/scores/results.txt (--reuse false runs it again)"
    continue
  fi
  echo "=== $0: system $s ($(date -u +%H:%M:%S))"
  rm -rf "$exp/$prefix$s"     # a fresh run (no checkpoint of an earlier, different run is resumed)
  ./run.sh --data "$data" --exp "$exp" --nj $nj --net "$net" --stage 3 --system "$s" "${run_args[@]}"
done

# Wall time of a system: from the first line of its training log to its results (train + extract + score).
seconds_of() {
  local dir=$exp/$prefix$1
  local begin end
  begin=$(date -d "$(head -n 1 "$dir/log/train.log" | cut -d' ' -f1,2)" +%s)
  end=$(stat -c %Y "$dir/scores/results.txt")
  echo $(( end - begin ))
}
timings=()
total=0
for s in $systems; do
  t=$(seconds_of $s)
  timings+=("$s $t")
  total=$(( total + t ))
done

# The table: one row per system, PLDA and cosine side by side (numbers from each system's results.txt).
table=$(for s in $systems; do
  r=$exp/$prefix$s/scores/results.txt
  if [ ! -f "$r" ]; then
    echo "$0: missing $r" >&2
    exit 1
  fi
  params=$(awk -v s="$s" '!/^#/ && $1 == s {p = ($3 == "-" ? "" : $3); a = ($4 == "-" ? "" : " + " $4); print $2 (p == "" ? "" : " (" p ")") a}' conf/losses.txt)
  awk -v label="$s" -v params="$params" '
    $1 == "plda" {pe = $4; p1 = $5; p2 = $6}
    $1 == "cosine" {ce = $4; c1 = $5; c2 = $6}
    END {printf "| %s | %s | %.2f | %.4f | %.4f | %.2f | %.4f | %.4f |\n", label, params, pe, p1, p2, ce, c1, c2}' "$r"
done)

num_train_spk=$(wc -l < "$data/train${sfx}_no_sil/spk2utt")
num_train_utt=$(wc -l < "$data/train${sfx}_no_sil/utt2spk")
num_eval_spk=$(wc -l < "$data/eval/spk2utt")
num_target=$(grep -c ' target$' "$data/eval/trials")
num_nontarget=$(grep -c ' nontarget$' "$data/eval/trials")
{
  echo "# Demo results: one x-vector system per loss"
  echo
  echo "Produced by \`cd egs/demo/v2 && $command_line\` on $(date -u '+%Y-%m-%d %H:%M UTC'),"
  echo "$(nproc) CPU cores shared with other jobs (timings are pessimistic), tfspk $(python -c 'import tfspk; print(tfspk.__version__)' 2>/dev/null)."
  echo
  echo "Corpus: the demo's Debian voice packages at 8 kHz. Training: $num_train_utt utterances of $num_train_spk speakers"
  echo "(after the length filter); evaluation: $num_eval_spk other speakers, $num_target target and $num_nontarget"
  echo "non-target trials (local/make_trials.py). Network: conf/$net.yaml (tdnn: [Liu2019] TDNN at a quarter width), same"
  echo "seed and schedule for every system; losses and margins: conf/losses.txt. Back-end: train mean,"
  echo "LDA to $(grep -o 'lda_dim=[0-9]*' "$exp/$prefix$(echo $systems | awk '{print $1}')/xvectors_train/backend_opts" | cut -d= -f2) + PLDA, and cosine of the centred x-vectors."
  echo "minDCF as Kaldi's sid/compute_min_dcf.py (normalised, c_miss = c_fa = 1)."
  echo
  echo "| system | loss | PLDA EER(%) | PLDA minDCF(0.01) | PLDA minDCF(0.001) | cosine EER(%) | cosine minDCF(0.01) | cosine minDCF(0.001) |"
  echo "|---|---|---|---|---|---|---|---|"
  echo "$table"
  echo
  echo "Wall time per system (training log start to results: train + extract + score), seconds:"
  echo "$(printf '%s; ' "${timings[@]}")sum $total s."
  echo "This is a small demo (1200 training steps, 54 training speakers): differences between losses of a"
  echo "few tenths of a percent are within run-to-run noise; compare with [Liu2019, Table 1] for VoxCeleb."
} > "$results.tmp"
mv "$results.tmp" "$results"
cat "$results"
