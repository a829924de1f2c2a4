#!/usr/bin/env bash
# Run the demo recipe (egs/demo/v2) end to end in the project's virtualenv.
# Extra arguments go to run.sh, e.g. tools/demo.sh --stage 3
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/setup_env.sh" --extras demo >/dev/null
cd "$root/egs/demo/v2"
exec ./run.sh "$@" </dev/null
