# Sourced by run.sh: puts the repository's virtualenv (python, tfspk-* tools), utils/ and steps/ on PATH.
tfspk_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
tfspk_venv=${TFSPK_VENV:-$tfspk_root/.venv}
if [ ! -x "$tfspk_venv/bin/python" ] || [ ! -x "$tfspk_venv/bin/tfspk-train" ]; then
  echo "$(basename "${BASH_SOURCE[0]}"): the tfspk virtualenv is missing or incomplete ($tfspk_venv)." >&2
  echo "  Create it with the set-up command from the README:  $tfspk_root/tools/setup_env.sh" >&2
  return 1 2>/dev/null || exit 1
fi
export PATH=$tfspk_venv/bin:$tfspk_root/utils:$tfspk_root/steps:$PATH
export LC_ALL=C                       # Kaldi sort order for every table
export PYTHONUNBUFFERED=1             # logs appear as they are written
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# With Kaldi installed, put its binaries on PATH too (the steps use them when asked to):
# export KALDI_ROOT=/path/to/kaldi && . $KALDI_ROOT/tools/config/common_path.sh
