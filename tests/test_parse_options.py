"""utils/parse_options.sh: Kaldi option parsing for recipe scripts (sourced by the script)."""
import pytest

from conftest import REPO, run

SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
nj=4
foo_bar=default
use_gpu=false
cmd=run.pl
empty_default=
help_message="Usage: $0 [options] <in> <out>\\n  --nj N   number of jobs"
. {parse_options}
printf 'nj=%s\\nfoo_bar=%s\\nuse_gpu=%s\\ncmd=%s\\nempty_default=%s\\nnargs=%s\\n' \\
  "$nj" "$foo_bar" "$use_gpu" "$cmd" "$empty_default" "$#"
for a in "$@"; do printf 'arg=%s\\n' "$a"; done
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "demo.sh"
    path.write_text(SCRIPT.format(parse_options=REPO / "utils" / "parse_options.sh"))
    path.chmod(0o755)
    return path


def parse(script, *args, check=True):
    """Run the demo script; return (variables dict, positional args list, CompletedProcess)."""
    proc = run([str(script), *args], cwd=script.parent, check=check)
    values, positional = {}, []
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        if key == "arg":
            positional.append(value)
        else:
            values[key] = value
    return values, positional, proc


def test_defaults_untouched_without_options(script):
    values, positional, _ = parse(script)
    assert values == {"nj": "4", "foo_bar": "default", "use_gpu": "false", "cmd": "run.pl",
                      "empty_default": "", "nargs": "0"}
    assert positional == []


def test_both_option_forms_dashes_to_underscores_and_spaces_kept(script):
    values, positional, _ = parse(script, "--nj", "8", "--foo-bar=a b  c", "--use-gpu", "true",
                                  "--cmd", "queue.pl --mem 4G", "--empty-default=", "in", "out")
    assert values["nj"] == "8"
    assert values["foo_bar"] == "a b  c"
    assert values["use_gpu"] == "true"
    assert values["cmd"] == "queue.pl --mem 4G"
    assert values["empty_default"] == ""
    assert positional == ["in", "out"]


def test_parsing_stops_at_first_positional_and_at_double_dash(script):
    values, positional, _ = parse(script, "--nj", "2", "data", "--nj", "3")
    assert values["nj"] == "2" and positional == ["data", "--nj", "3"]
    values, positional, _ = parse(script, "--nj", "5", "--", "--foo-bar", "x")
    assert values["nj"] == "5" and values["foo_bar"] == "default"
    assert positional == ["--foo-bar", "x"]


def test_value_may_look_like_an_option_or_contain_specials(script):
    values, _, _ = parse(script, "--foo-bar", "--not-an-option", "--cmd", "a;b $(echo x) 'q'")
    assert values["foo_bar"] == "--not-an-option"
    assert values["cmd"] == "a;b $(echo x) 'q'"  # stored verbatim, never evaluated


def test_config_file_is_read_first_and_command_line_wins(script, tmp_path):
    conf = tmp_path / "my.conf"
    conf.write_text("# a comment\nnj=7\nfoo_bar='from config'\n")
    values, _, _ = parse(script, "--config", str(conf), "--nj", "9")
    assert values["nj"] == "9" and values["foo_bar"] == "from config"
    # Kaldi gives config files lower priority even when --config comes last.
    values, _, _ = parse(script, "--nj", "1", f"--config={conf}", "x")
    assert values["nj"] == "1" and values["foo_bar"] == "from config"


def test_help_prints_help_message_on_stderr_and_exits_0(script):
    _, _, proc = parse(script, "--nj", "3", "--help")
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert "Usage:" in proc.stderr and "\n  --nj N   number of jobs" in proc.stderr


def test_help_without_help_message(tmp_path):
    path = tmp_path / "bare.sh"
    path.write_text(f"#!/usr/bin/env bash\n. {REPO / 'utils' / 'parse_options.sh'}\necho ran\n")
    proc = run(["bash", str(path), "-h"], check=False)
    assert proc.returncode == 0 and proc.stdout == "" and "No help found." in proc.stderr


@pytest.mark.parametrize("args, expected", [
    (["--unknown-opt", "1"], "invalid option --unknown-opt"),
    (["--unknown-opt=1"], "invalid option --unknown-opt"),
    (["--use-gpu", "yes"], "expected \"true\" or \"false\": --use-gpu 'yes'"),
    (["--use-gpu="], "expected \"true\" or \"false\""),
    (["--config", "no/such.conf"], "missing config file 'no/such.conf'"),
    (["--nj"], "option --nj needs a value"),
    (["--cmd", ""], "empty argument to --cmd option"),
    (["--bad;name", "1"], "invalid option --bad;name"),
])
def test_errors_name_the_option_and_exit_1(script, args, expected):
    _, _, proc = parse(script, *args, check=False)
    assert proc.returncode == 1
    assert expected in proc.stderr
    assert proc.stderr.startswith(str(script) + ": ")
    assert "nj=" not in proc.stdout  # the script stopped


def test_undeclared_but_config_declared_variable_is_accepted(script, tmp_path):
    # A config file may declare a variable; the command line can then set it (Kaldi: sourced first).
    conf = tmp_path / "extra.conf"
    conf.write_text("extra_opt=1\n")
    _, _, proc = parse(script, "--config", str(conf), "--extra-opt", "2")
    assert proc.returncode == 0


def test_helpers_do_not_leak_into_the_caller(tmp_path):
    path = tmp_path / "leak.sh"
    path.write_text(f"#!/usr/bin/env bash\nx=1\n. {REPO / 'utils' / 'parse_options.sh'}\n"
                    "compgen -v _po_ || true; compgen -A function _po_ || true\n")
    proc = run(["bash", str(path), "--x", "2"])
    assert proc.stdout.strip() == ""


ARRAY_SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
set_opts=()
stage=0
nj=4
integer_options="stage nj"
. {parse_options}
printf 'n=%s\\n' "${{#set_opts[@]}}"
for v in "${{set_opts[@]}}"; do printf 'set=%s\\n' "$v"; done
printf 'stage=%s\\n' "$stage"
"""


@pytest.fixture
def array_script(tmp_path):
    path = tmp_path / "arrays.sh"
    path.write_text(ARRAY_SCRIPT.format(parse_options=REPO / "utils" / "parse_options.sh"))
    path.chmod(0o755)
    return path


def test_array_option_collects_every_occurrence_in_order(array_script):
    # Before: a repeated option kept its last value only (and an empty array was "not declared").
    proc = run([str(array_script), "--set-opts", "a=1", "--set-opts=b=2 c", "--stage", "-2", "--set-opts", "a=3"])
    assert proc.stdout.splitlines() == ["n=3", "set=a=1", "set=b=2 c", "set=a=3", "stage=-2"]
    assert run([str(array_script)]).stdout.splitlines() == ["n=0", "stage=0"]


def test_array_option_from_a_config_file_then_the_command_line(array_script, tmp_path):
    (tmp_path / "c.conf").write_text("set_opts=(x=1 'y=2 3')\n")
    proc = run([str(array_script), "--set-opts", "z=4", "--config", str(tmp_path / "c.conf")])
    assert proc.stdout.splitlines() == ["n=3", "set=x=1", "set=y=2 3", "set=z=4", "stage=0"]


@pytest.mark.parametrize("args, message", [
    (["--stage", "4a"], "expected an integer: --stage '4a'"),
    (["--stage=abc"], "expected an integer: --stage 'abc'"),
    (["--nj", ""], "expected an integer: --nj ''"),
    (["--stage", "1.5"], "expected an integer: --stage '1.5'"),
])
def test_integer_options_are_checked(array_script, args, message):
    proc = run([str(array_script), *args], check=False)
    assert proc.returncode == 1 and message in proc.stderr and proc.stdout == ""


def test_integer_option_from_a_config_file_is_checked(array_script, tmp_path):
    (tmp_path / "c.conf").write_text("stage=x\n")
    proc = run([str(array_script), "--config", str(tmp_path / "c.conf")], check=False)
    assert proc.returncode == 1 and "expected an integer: --stage 'x'" in proc.stderr


def test_the_list_of_integer_options_is_not_an_option(array_script):
    proc = run([str(array_script), "--integer-options", "", "--stage", "x"], check=False)
    assert proc.returncode == 1 and "invalid option --integer-options" in proc.stderr
