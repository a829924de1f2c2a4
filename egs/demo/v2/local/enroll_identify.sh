#!/usr/bin/env bash
# Speaker identification on the demo's evaluation speakers with an exported model (tfspk-enroll,
# tfspk-identify), closed and open set.
#
# The evaluation speakers are taken in LC_ALL=C order; every --impostor-every-th one is not enrolled
# (an open-set impostor). Each other speaker is enrolled from its first --num-enroll utterances (in
# spk2utt order); all its other utterances, and every utterance of the impostors, are test inputs.
#   closed-set accuracy: share of the enrolled speakers' test utterances whose best-ranked speaker is right;
#   open-set EER: the best speaker's score of each test utterance, a target when the utterance's speaker
#   is enrolled and a non-target when it is an impostor (tfspk-compute-eer).
# Output in <out-dir>: enroll_spk2utt, test_utt2spk, speakers/ (spk_xvector.scp, num_utts.ark),
# identified (tfspk-identify's lines), results.txt.
echo "$0 $@"
set -e -o pipefail

num_enroll=3
impostor_every=3
help_message="Usage: $0 [options] <export-dir> <eval-data-dir> <out-dir>
 e.g.: $0 exp/ecapa_tdnn_nnet_aamsoftmax/export data/eval exp/ecapa_tdnn_nnet_aamsoftmax/identification
Options: --num-enroll ($num_enroll; utterances per enrolled speaker)
         --impostor-every ($impostor_every; every n-th speaker is left out of the enrolment)"

. "$(dirname "$0")/../utils/parse_options.sh" || exit 1
if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
model=$1
data=$2
dir=$3
for f in "$model/export.json" "$data/spk2utt" "$data/wav.scp"; do
  if [ ! -f "$f" ]; then
    echo "$0: missing input $f" >&2
    exit 1
  fi
done
case "$num_enroll$impostor_every" in
  *[!0-9]*) echo "$0: --num-enroll and --impostor-every must be positive integers" >&2; exit 1 ;;
esac
if [ "$num_enroll" -lt 1 ] || [ "$impostor_every" -lt 2 ]; then
  echo "$0: need --num-enroll >= 1 and --impostor-every >= 2" >&2
  exit 1
fi
mkdir -p "$dir"
export LC_ALL=C

# Speakers with more than --num-enroll utterances can be enrolled and tested.
sort "$data/spk2utt" | awk -v n="$num_enroll" -v every="$impostor_every" \
    -v enroll="$dir/enroll_spk2utt" -v test="$dir/test_utt2spk" -v impostors="$dir/impostors" '
  { k++
    if (k % every == 0) { print $1 > impostors; for (i = 2; i <= NF; i++) print $i, $1 > test; next }
    if (NF - 1 <= n) { printf("skipping speaker %s: only %d utterances\n", $1, NF - 1) > "/dev/stderr"; next }
    line = $1; for (i = 2; i <= NF; i++) { if (i - 1 <= n) line = line " " $i; else print $i, $1 > test }
    print line > enroll }'
sort -o "$dir/test_utt2spk" "$dir/test_utt2spk"
utils/filter_scp.pl "$dir/test_utt2spk" "$data/wav.scp" > "$dir/test_wav.scp"
echo "$0: $(wc -l < "$dir/enroll_spk2utt") enrolled speakers, $(wc -l < "$dir/impostors") impostors," \
  "$(wc -l < "$dir/test_wav.scp") test utterances"

tfspk-enroll "$model" "$dir/enroll_spk2utt" "$data/wav.scp" "$dir/speakers"
tfspk-identify --top-n 3 "$model" "$dir/speakers" "scp:$dir/test_wav.scp" "$dir/identified"

# closed set: the best-ranked speaker (field 3) of the enrolled speakers' test utterances
awk 'NR == FNR {spk[$1] = $2; next} FILENAME == impostors {imp[$1]; next}
     !(spk[$1] in imp) {n++; if ($3 == spk[$1]) right++}
     END {printf("closed-set accuracy %.2f %% (%d of %d test utterances of %s enrolled speakers)\n",
                 100 * right / n, right, n, "the")}' \
  impostors="$dir/impostors" "$dir/test_utt2spk" "$dir/impostors" "$dir/identified" > "$dir/results.txt"
# open set: the best score (field 4), target when the speaker is enrolled
awk 'NR == FNR {spk[$1] = $2; next} FILENAME == impostors {imp[$1]; next}
     {print $4, (spk[$1] in imp) ? "nontarget" : "target"}' \
  impostors="$dir/impostors" "$dir/test_utt2spk" "$dir/impostors" "$dir/identified" > "$dir/open_set_scores"
eer=$(tfspk-compute-eer "$dir/open_set_scores")
echo "open-set EER $eer % (best-speaker score: $(grep -c ' target$' "$dir/open_set_scores") enrolled-speaker" \
  "vs $(grep -c nontarget "$dir/open_set_scores") impostor test utterances)" >> "$dir/results.txt"
cat "$dir/results.txt"
