# Helpers shared by the recipes' run.sh (egs/*/v2) and their local/ scripts, sourced after parse_options.sh:
#   . utils/recipe_stages.sh
#
# check_seeds "$seeds": every word of a --seeds list is a non-negative integer, else stop naming the first bad one.
# stage_banner <n> <what>: the line that opens a stage, with the UTC time (the log shows where time went).
# use_init_from: the checks and defaults of --init-from <exp-dir> (see below).
# require <stage> <file>...: stop with a message naming the first missing file and the stage that makes it,
#   so a run started at a later --stage says what to run first instead of failing deep inside a tool.
# require_marker <stage> <dir> <marker>: <dir>/.done (written by that stage) holds <marker> (the options it was made
#   with), else stop naming what it was made with, so a stage never reads a dir made for other options.
# archive_dir <name>: where run.sh writes the feature archives of kind <name> (mfcc, fbank, ...): <name>/ for
#   --data data, else <data>_<name>. The archives are named by set (raw_mfcc_eval.1.ark), so two data dirs
#   sharing one archive dir would overwrite each other's features under their feats.scp.
# config_value <section> <key> [<config>]: the value of "<section>:\n  <key>: value" in an experiment config
#   (default: $train_config); empty when the key is absent.
# resolve_front_end <config> [<init-from-exp-dir>]: the front end of the config's features: section (tfspk-train
#   records it in the experiment dir), in the variables the feature stages use: feat_type (mfcc if absent;
#   fine-tuning keeps the source experiment's), feat_conf (conf/<type>.conf), vad_conf (conf/vad.conf),
#   vad_mfcc_conf (conf/mfcc.conf) and sfx. The network's features are made by steps/make_<type>.sh into
#   data/<name>$sfx (sfx=_<type>; none for MFCC, whose features are the VAD's); the energy VAD (vad_conf) on
#   MFCCs (vad_mfcc_conf) is always computed into data/<name> and applies frame by frame to the other feature
#   types (their confs use --snip-edges=false like conf/mfcc.conf, so the frame counts match). Stops naming
#   the config when its features cannot be made offline.

check_seeds() {
  local s
  for s in $1; do
    case $s in ''|*[!0-9]*) echo "$0: --seeds must be non-negative integers, got '$s'" >&2; exit 1 ;; esac
  done
}

require_marker() {
  require "$1" "$2/.done"
  if [ "$(cat "$2/.done")" != "$3" ]; then
    echo "$0: $2 was made with $(cat "$2/.done"), not $3; rerun stage $1" >&2
    exit 1
  fi
}

archive_dir() {
  if [ "$data" = data ]; then echo "$1"; else echo "${data%/}_$1"; fi
}

stage_banner() {
  echo "=== stage $1: $2 ($(date -u +%H:%M:%S))"
}

config_value() {
  awk -v section="$1:" -v key="$2:" '$1 == section && !/^ / {f = 1; next} f && /^[^ #]/ {f = 0}
    f && $1 == key {print $2}' "${3:-$train_config}"
}

resolve_front_end() {
  local config=$1 init_from=$2
  feat_type=$(config_value features type "$config")
  [ -n "$init_from" ] && feat_type=$(config_value features type "$init_from/config.yaml")
  feat_type=${feat_type:-mfcc}
  feat_conf=$(config_value features conf "$config")
  feat_conf=${feat_conf:-conf/$feat_type.conf}
  vad_conf=$(config_value features vad_conf "$config")
  vad_conf=${vad_conf:-conf/vad.conf}
  vad_mfcc_conf=$(config_value features vad_mfcc_conf "$config")
  vad_mfcc_conf=${vad_mfcc_conf:-conf/mfcc.conf}
  sfx=_$feat_type
  if [ "$feat_type" = mfcc ]; then
    sfx=
    if [ "$feat_conf" != "$vad_mfcc_conf" ]; then
      echo "$0: $config: MFCC networks use the VAD's MFCCs: features.conf ($feat_conf) must be features.vad_mfcc_conf ($vad_mfcc_conf)" >&2
      exit 1
    fi
  elif [ ! -f "steps/make_$feat_type.sh" ]; then
    echo "$0: $config: features.type '$feat_type' has no steps/make_$feat_type.sh to compute it offline" >&2
    exit 1
  fi
}

# use_init_from: with --init-from ($init_from), check that it names a finished experiment dir (trained, or
# written by tfspk-import-model), make conf/finetune.yaml the default train config and pass init_from to
# tfspk-train (appended to the recipe's set array of config overrides).
use_init_from() {
  [ -n "$init_from" ] || return 0
  if [ ! -f "$init_from/config.yaml" ] || [ ! -f "$init_from/final/model.weights.h5" ]; then
    echo "$0: --init-from $init_from: expected a trained or imported experiment dir (config.yaml, final/model.weights.h5)" >&2
    exit 1
  fi
  [ -z "$train_config" ] && train_config=conf/finetune.yaml
  set+=("init_from=$init_from")
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
