#!/usr/bin/env bash
# The demo's augmentation set (the demo has no MUSAN / RIRS_NOISES): noise and music recordings from
# Debian packages, and simulated room impulse responses, as Kaldi data dirs for tfspk.data.augment:
#   <data-dir>/aug_noise   foreground noises: keyboard clicks and desktop sounds
#   <data-dir>/aug_music   music, cut into 30 s pieces
#   <data-dir>/aug_rirs    20 small-room + 20 medium-room RIRs (pyroomacoustics, seeded; [Ko2017])
# all at 8 kHz (conf/mfcc.conf), audio in <wav-dir>/{noise,music,rirs}. Packages (about 15 MB of
# downloads, unpacked into <download-dir>/<package> by local/fetch_packages.sh and kept there):
#   bucklespring-data        171 keyboard key sounds (56 s)        GPL-2+
#   oxygen-sounds            50 KDE Oxygen desktop sounds (113 s)  LGPL-3.0-or-later
#   sound-theme-freedesktop  freedesktop.org desktop sounds (26 files; the spoken audio-channel-*
#                            files are left out)                    CC-BY-SA-3.0, CC-BY-3.0, GPL-2+
#   asc-music                3 music tracks of Advanced Strategic Command (17 min, MP3)   GPL-2+
# (licences from each package's debian/copyright). A second run with the same options does nothing.
echo "$0 $@"
set -e -o pipefail

rate=8000
num_rirs=20
seed=777

help_message="Usage: $0 [options] <download-dir> <wav-dir> <data-dir>
 e.g.: $0 downloads data/aug_wav data
Options: --rate ($rate) --num-rirs ($num_rirs, per room kind) --seed ($seed)"

. "$(dirname "$0")/../utils/parse_options.sh" || exit 1
if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
download_dir=$1
wav_dir=$2
data=$3
packages="asc-music bucklespring-data oxygen-sounds sound-theme-freedesktop"
stamp="rate=$rate num_rirs=$num_rirs seed=$seed packages=$packages"

if [ -f "$data/aug_rirs/.done" ] && [ "$(cat "$data/aug_rirs/.done")" = "$stamp" ]; then
  echo "$0: the augmentation set in $data/aug_{noise,music,rirs} is up to date"
  exit 0
fi
if ! python3 -c "import pyroomacoustics" 2>/dev/null; then
  echo "$0: the Python package pyroomacoustics is missing; it comes with tfspk's 'demo' extra" \
    "(pip install 'tfspk[demo]'; in a checkout: tools/setup_env.sh --extras demo, which tools/demo.sh runs)" >&2
  exit 1
fi
"$(dirname "$0")/fetch_packages.sh" "$download_dir" $packages
rm -rf "$data/aug_noise" "$data/aug_music" "$data/aug_rirs" "$wav_dir"
"$(dirname "$0")/make_aug_set.py" --rate $rate --num-rirs $num_rirs --seed $seed \
  "$download_dir" "$wav_dir" "$data"
echo "$stamp" > "$data/aug_rirs/.done"
