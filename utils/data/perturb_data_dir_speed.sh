#!/usr/bin/env bash
# A speed-perturbed copy of a data directory: every utterance of <srcdir>/wav.scp played <factor> times faster
# (tempo and pitch, as 'sox speed'), utterance and speaker ids prefixed with sp<factor>- (each factor's speakers
# are new speakers, as Kaldi's perturb_data_dir_speed_3way.sh trains them). Kaldi's
# utils/data/perturb_data_dir_speed.sh interface; unlike Kaldi (a 'sox ... speed' pipe in wav.scp), the audio is
# written once, as 16-bit WAV files at the source's rate, into --wav-dir (default <destdir>/wav). The work is
# done by tfspk-perturb-data-dir-speed (tfspk/data/perturb_data_dir.py); docs/augmentation.md describes it.
set -e -o pipefail

echo "$0 $@"

wav_dir=   # where the audio files go (default: <destdir>/wav)
help_message="Usage: $0 [--wav-dir <dir>] <factor> <srcdir> <destdir>
 e.g.: $0 0.9 data/train data/train_sp0.9
Writes <destdir> with ids sp<factor>-<id>, the audio as WAV files in --wav-dir (default <destdir>/wav),
utt2dur of the new audio, utt2uniq, and the source's labels (utt2lang, spk2lang, text, ...).
<factor> is in [0.5, 2] and not 1 (keep the source dir for the unperturbed copy); features are
not copied (compute them on <destdir>); data dirs with segments are not supported."

. "$(dirname "$0")/../parse_options.sh"

if [ $# != 3 ]; then
  echo "$help_message" >&2
  exit 1
fi

factor=$1
srcdir=$2
destdir=$3
[ ! -d "$srcdir" ] && echo "$0: no such directory $srcdir" >&2 && exit 1
[ ! -f "$srcdir/wav.scp" ] && echo "$0: no such file $srcdir/wav.scp" >&2 && exit 1
[ ! -f "$srcdir/utt2spk" ] && echo "$0: no such file $srcdir/utt2spk" >&2 && exit 1

command -v tfspk-perturb-data-dir-speed >/dev/null 2>&1 || { echo "$0: tfspk-perturb-data-dir-speed not found on PATH (activate the tfspk venv or source path.sh)" >&2; exit 1; }
tfspk-perturb-data-dir-speed --wav-dir="$wav_dir" "$factor" "$srcdir" "$destdir"
