#!/usr/bin/env bash
# Create (or refresh) the project's virtualenv in .venv and install tfspk into it, with the extras of setup.py
# named by --extras (default: test, which includes every extra the suite and the demo use; tools/demo.sh asks
# for demo). Idempotent: re-installs only when setup.py or the list of tools in tfspk/bin changed, or an extra
# is asked for that is not installed yet.
# Usage: tools/setup_env.sh [--extras demo|test|plot,export,...]   (prints the venv's bin dir on the last line)
set -euo pipefail
extras=test
usage() {
  echo "Usage: $0 [--extras <names>]   (default: test; TFSPK_VENV=<dir> and PYTHON=<python3> may be set)" >&2
  echo "Creates or refreshes the virtualenv with tfspk[<names>] and prints its bin dir on the last line." >&2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --extras) [ $# -ge 2 ] || { usage; exit 1; }; extras=$2; shift 2 ;;
    --extras=*) extras=${1#--extras=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage; exit 1 ;;
  esac
done
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${TFSPK_VENV:-$root/.venv}
python=${PYTHON:-python3}

if ! command -v "$python" >/dev/null 2>&1; then
  echo "$0: $python not found; install Python >= 3.9 (Debian: apt-get install python3 python3-venv)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "$0: creating virtualenv $venv" >&2
  "$python" -m venv "$venv" || {
    echo "$0: '$python -m venv' failed; on Debian install python3-venv" >&2; exit 1; }
fi
stamp_now=$(cat "$root/setup.py"; ls "$root/tfspk/bin")
stamp_now=$(printf '%s' "$stamp_now" | cksum)
# The stamp file: the checksum, then the extras installed with it (one per line). Extras asked for are added
# to those installed, so tools/demo.sh after tools/test.sh installs nothing and removes nothing.
installed=$(tail -n +2 "$venv/.tfspk-installed" 2>/dev/null || true)
want=$(printf '%s\n' $installed ${extras//,/ } | sed '/^$/d' | sort -u)
if [ "$(head -n 1 "$venv/.tfspk-installed" 2>/dev/null)" != "$stamp_now" ] || [ "$want" != "$installed" ]; then
  spec="$root[$(echo $want | tr ' ' ',')]"
  echo "$0: installing tfspk and its dependencies into $venv (first time: 20 s to a few minutes)" >&2
  # uv installs the same packages from PyPI as pip, several times faster (parallel downloads and
  # unpacking). It reads no pip.conf: where only pip's configured index can be reached, it fails and pip
  # does the install. --compile-bytecode as pip does: with PYTHONDONTWRITEBYTECODE set, a venv without
  # .pyc files recompiles TensorFlow's modules in every process (the test suite took twice as long).
  if ! { "$venv/bin/python" -m pip install -q uv >&2 &&
         "$venv/bin/python" -m uv pip install -q --compile-bytecode --python "$venv/bin/python" -e "$spec" >&2; }; then
    echo "$0: uv could not install; installing with pip" >&2
    "$venv/bin/python" -m pip install -q --upgrade pip >&2
    "$venv/bin/python" -m pip install -q -e "$spec" >&2
  fi
  printf '%s\n%s\n' "$stamp_now" "$want" > "$venv/.tfspk-installed"
fi
echo "$venv/bin"
