#!/usr/bin/env bash
# Fetch Debian packages with "apt-get download" and unpack each one with "dpkg -x" into
# <download-dir>/<package>/ (no installation, no root needed once the apt lists exist).
# A package whose directory already holds the marker .unpacked is skipped, so a second run is free.
# When apt does not know a package and we are root, "apt-get update" is run once and the
# package is tried again.

echo "$0 $@"
set -e -o pipefail

help_message="Usage: $0 <download-dir> <package> [<package> ...]
 e.g.: $0 downloads drascula asterisk-prompt-fr-armelle"

. "$(dirname "$0")/../utils/parse_options.sh" || exit 1
if [ $# -lt 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
download_dir=$1
shift

for tool in apt-get apt-cache dpkg; do
  if ! command -v $tool >/dev/null 2>&1; then
    echo "$0: '$tool' not found: this stage needs a Debian/Ubuntu system. Elsewhere, fetch the packages" >&2
    echo "  $* from https://packages.debian.org, unpack each with 'dpkg -x' (or 'ar x' + 'tar xf data.tar.*')" >&2
    echo "  into <dir>/<package>/ and pass --corpus-dir <dir> to run.sh." >&2
    exit 1
  fi
done

mkdir -p "$download_dir/debs"
download_dir=$(cd "$download_dir" && pwd)

# apt prints a warning when root downloads into a directory its sandbox user cannot write;
# downloading as root is fine here.
apt_options=()
[ "$(id -u)" -eq 0 ] && apt_options=(-o APT::Sandbox::User=root)

apt_knows() {  # true when apt has a candidate version of package $1
  local candidate
  candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
  [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

updated=false
for package in "$@"; do
  target=$download_dir/$package
  if [ -f "$target/.unpacked" ]; then
    echo "$0: $package already unpacked in $target"
    continue
  fi
  if ! apt_knows "$package"; then
    if ! $updated && [ "$(id -u)" -eq 0 ]; then
      echo "$0: apt does not know $package; running apt-get update once"
      apt-get update -qq || echo "$0: warning: apt-get update failed" >&2
      updated=true
    fi
    if ! apt_knows "$package"; then
      echo "$0: Debian package '$package' is not available from apt on this machine." >&2
      echo "  Is the 'main' archive in /etc/apt/sources.list and has 'apt-get update' been run (as root)?" >&2
      echo "  Alternatively unpack the package yourself into <dir>/$package/ and pass --corpus-dir <dir>." >&2
      exit 1
    fi
  fi
  rm -f "$download_dir/debs/${package}_"*.deb
  if ! (cd "$download_dir/debs" && apt-get "${apt_options[@]}" -q download "$package"); then
    echo "$0: 'apt-get download $package' failed (network? see the messages above)" >&2
    exit 1
  fi
  deb=$(ls "$download_dir/debs/${package}_"*.deb 2>/dev/null | head -n 1)
  if [ -z "$deb" ]; then
    echo "$0: apt-get download $package left no ${package}_*.deb in $download_dir/debs" >&2
    exit 1
  fi
  rm -rf "$target.tmp"
  mkdir -p "$target.tmp"
  dpkg -x "$deb" "$target.tmp"
  touch "$target.tmp/.unpacked"
  rm -rf "$target"
  mv "$target.tmp" "$target"
  rm -f "$deb"   # the unpacked copy is all the recipe reads
  echo "$0: unpacked $package into $target"
done
