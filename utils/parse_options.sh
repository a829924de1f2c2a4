#!/usr/bin/env bash
# Kaldi-style option parsing for recipe scripts. Source it, do not run it:
#
#   nj=4                  # every option must be declared (with its default) first
#   cmd=run.pl
#   use_gpu=false         # a default of true/false makes the option boolean
#   help_message="Usage: $0 [options] <data-dir> <exp-dir>"
#   . utils/parse_options.sh || exit 1
#   [ $# -ne 2 ] && echo "$help_message" && exit 1
#
# Rules (Kaldi's egs/wsj/s5/utils/parse_options.sh semantics, plus --name=value and --):
#   --foo-bar VALUE | --foo-bar=VALUE  set the already-declared shell variable foo_bar;
#                                      an undeclared variable is an error naming the option.
#   boolean options (declared true or false) accept only true or false.
#   repeatable options (declared as bash arrays, e.g. `set=()`) collect every occurrence in order:
#                                      --set a=1 --set b=2 gives set=(a=1 b=2); values keep their spaces.
#   integer options: a variable listed in `integer_options` (e.g. integer_options="stage stop_stage nj")
#                                      accepts only an optionally signed whole number.
#   --config FILE      source FILE (shell assignments) before the command-line options are
#                      applied, so the command line overrides it; a missing FILE is an error.
#   --help | -h        print $help_message on stderr and exit 0 (as Kaldi does).
#   --                 end of options; everything after it is positional.
#   Parsing stops at the first argument not starting with "--"; the remaining
#   arguments are left in "$@" for the calling script.
# Errors print "$0: ..." on stderr and exit 1 (the calling script, since this file is sourced).
# All helper names start with _po_ and are removed at the end, so the caller's namespace stays clean.

_po_die() {
  echo "$0: $*" >&2
  exit 1
}

# Number of leading arguments that are options (with their values): the arguments
# before the first positional argument. "--" itself is not counted.
_po_count_option_args() {
  local count=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --) break ;;
      --help|-h) count=$((count + 1)); shift ;;
      --*=*) count=$((count + 1)); shift ;;
      --*) [ $# -ge 2 ] || break
           count=$((count + 2)); shift 2 ;;
      *) break ;;
    esac
  done
  echo "$count"
}

# Pass 1: source the config files in command-line order (lower priority than the command line).
_po_num_option_args=$(_po_count_option_args "$@")
_po_args=("$@")
_po_i=0
while [ "$_po_i" -lt "$_po_num_option_args" ]; do
  _po_arg=${_po_args[$_po_i]}
  _po_config_file=
  _po_has_config=false
  case "$_po_arg" in
    --config=*) _po_config_file=${_po_arg#--config=}; _po_has_config=true ;;
    --config) _po_config_file=${_po_args[$((_po_i + 1))]}; _po_has_config=true ;;
  esac
  if $_po_has_config; then
    [ -n "$_po_config_file" ] || _po_die "empty argument to --config"
    [ -f "$_po_config_file" ] && [ -r "$_po_config_file" ] || _po_die "missing config file '$_po_config_file' (given with --config)"
    # shellcheck disable=SC1090
    . "$_po_config_file" || _po_die "error while sourcing config file '$_po_config_file'"
    config=$_po_config_file
  fi
  case "$_po_arg" in
    --*=*|--help|-h) _po_i=$((_po_i + 1)) ;;
    *) _po_i=$((_po_i + 2)) ;;
  esac
done

# Pass 2: apply the command-line options in order.
while [ $# -gt 0 ]; do
  case "$1" in
    --)
      shift
      break ;;
    --help|-h)
      if [ -z "${help_message:-}" ]; then
        echo "No help found." >&2
      else
        printf '%b\n' "$help_message" >&2
      fi
      exit 0 ;;
    --*=*)
      _po_option=${1%%=*}
      _po_value=${1#*=}
      shift ;;
    --*)
      _po_option=$1
      [ $# -ge 2 ] || _po_die "option $1 needs a value (e.g. $1 VALUE)"
      _po_value=$2
      shift 2 ;;
    *)
      break ;;
  esac

  [ "$_po_option" = "--config" ] && continue   # already sourced in pass 1

  _po_name=${_po_option#--}
  _po_name=${_po_name//-/_}
  # Name checked before the indirect expansion ${!name+x} ("x" when declared; bash 3 has no [[ -v ]]).
  # (An empty array counts as declared: `declare -p` knows it, ${name+x} does not.)
  if [[ ! "$_po_name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ "$_po_name" = integer_options ] \
      || { [ -z "${!_po_name+x}" ] && ! declare -p "$_po_name" >/dev/null 2>&1; }; then
    _po_die "invalid option $_po_option (this script declares no variable '$_po_name'; see $0 --help)"
  fi

  if [[ "$(declare -p "$_po_name" 2>/dev/null)" == "declare -a"* ]]; then
    # A repeatable option: append (a plain assignment would keep only the last occurrence).
    declare -n _po_array=$_po_name
    _po_array+=("$_po_value")
    unset -n _po_array
    continue
  fi
  case " ${integer_options:-} " in
    *" $_po_name "*)
      [[ "$_po_value" =~ ^[-+]?[0-9]+$ ]] || _po_die "expected an integer: $_po_option '$_po_value'" ;;
  esac

  _po_old_value=${!_po_name}
  if [ "$_po_old_value" = true ] || [ "$_po_old_value" = false ]; then
    if [ "$_po_value" != true ] && [ "$_po_value" != false ]; then
      _po_die "expected \"true\" or \"false\": $_po_option '$_po_value'"
    fi
  fi
  if [ "$_po_name" = cmd ] && [ -z "$_po_value" ]; then
    # Usually a cmd.sh that does not define the variable passed on with --cmd "$train_cmd".
    _po_die "empty argument to --cmd option"
  fi
  printf -v "$_po_name" '%s' "$_po_value"
done

# Integer options set by a --config file are checked too (the command line was checked above).
for _po_name in ${integer_options:-}; do
  [[ "${!_po_name}" =~ ^[-+]?[0-9]+$ ]] || _po_die "expected an integer: --${_po_name//_/-} '${!_po_name}'"
done

unset -f _po_die _po_count_option_args
unset _po_num_option_args _po_args _po_i _po_arg _po_config_file _po_has_config \
  _po_option _po_value _po_name _po_old_value
true  # the sourcing script sees exit status 0
