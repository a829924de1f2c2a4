# Helpers shared by the recipes' run.sh (egs/*/v2), sourced after parse_options.sh:  . utils/recipe_stages.sh
#
# stage_banner <n> <what>: the line that opens a stage, with the UTC time (the log shows where time went).
# require <stage> <file>...: stop with a message naming the first missing file and the stage that makes it,
#   so a run started at a later --stage says what to run first instead of failing deep inside a tool.

stage_banner() {
  echo "=== stage $1: $2 ($(date -u +%H:%M:%S))"
}

require() {
  local maker=$1
  shift
  for f in "$@"; do
    if [ ! -e "$f" ]; then
      echo "$0: missing $f; it is made by stage $maker (run: $0 --stage $maker ...)" >&2
      exit 1
    fi
  done
}
