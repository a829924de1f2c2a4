#!/usr/bin/env bash
# Run the test suite in the project's virtualenv (created on first use).
# Extra arguments go to pytest, e.g. tools/test.sh -k losses -x
# By default the tests run on two pytest-xdist workers, one test file per worker at a time (the slow tests
# of a few files one by one), the costliest first (-n 2 --dist loadfile --no-loadscope-reorder; the
# scheduler is tests/conftest.py's); the user's options come after these, so tools/test.sh -n 0 runs in
# one process and tools/test.sh -n 4 on four workers (TFSPK_TEST_WORKERS=<n> changes the default).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$("$root/tools/setup_env.sh" --extras test | tail -n 1)
cd "$root"
export PATH="$bin:$PATH" TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
set +e
parallel=(-n "${TFSPK_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder)
for arg in "$@"; do
  # --pdb and -p no:xdist cannot take -n; with them the run stays in this process.
  case "$arg" in --pdb|--trace|no:xdist|-pno:xdist) parallel=() ;; esac
done
"$bin/python" -m pytest ${parallel[@]+"${parallel[@]}"} "$@" </dev/null
status=$?
set -e
if [ $status -eq 5 ]; then
  echo "$0: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit $status
