#!/usr/bin/env bash
# Run the test suite in the project's virtualenv (created on first use).
# Extra arguments go to pytest, e.g. tools/test.sh -k losses -x
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$("$root/tools/setup_env.sh" | tail -n 1)
cd "$root"
export PATH="$bin:$PATH" TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
set +e
"$bin/python" -m pytest "$@" </dev/null
status=$?
set -e
if [ $status -eq 5 ]; then
  echo "$0: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit $status
