"""The shared command-line plumbing: Kaldi options, config files, error exits."""
import pytest

from tfspk import cli
from tfspk.errors import ToolError


def make_parser():
    parser = cli.KaldiArgumentParser("prog [options] <in> <out>")
    parser.add_argument("--frame-length", type=float, default=25.0)
    cli.add_bool(parser, "--snip-edges", True, "snip edges")
    parser.add_argument("rspec")
    return parser


def test_kaldi_bool_forms():
    args = make_parser().parse_args(["--snip-edges=false", "x"])
    assert args.snip_edges is False
    assert make_parser().parse_args(["--snip-edges", "x"]).snip_edges is True
    assert make_parser().parse_args(["x"]).snip_edges is True


def test_config_file_then_command_line_override(tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text("# comment\n--frame-length=20  # trailing\n\n--snip-edges=false\n")
    args = make_parser().parse_args([f"--config={conf}", "--frame-length=30", "x"])
    assert args.frame_length == 30.0 and args.snip_edges is False
    args = make_parser().parse_args(["--config", str(conf), "x"])
    assert args.frame_length == 20.0


def test_missing_config_and_bad_values_exit_1(tmp_path, capsys):
    for argv in (["--config", str(tmp_path / "nope.conf"), "x"], ["--snip-edges=maybe", "x"], ["--unknown=1", "x"]):
        with pytest.raises(SystemExit) as exit_info:
            make_parser().parse_args(argv)
        assert exit_info.value.code == 1
    assert "nope.conf" in capsys.readouterr().err


def test_bad_config_line_names_file_and_line(tmp_path, capsys):
    conf = tmp_path / "bad.conf"
    conf.write_text("--frame-length=20\nframe-shift=10\n")
    with pytest.raises(SystemExit):
        make_parser().parse_args([f"--config={conf}", "x"])
    assert "bad.conf:2" in capsys.readouterr().err


def test_run_tool_turns_tool_error_into_exit_1(capsys):
    def main(argv):
        raise ToolError("utt1 missing from feats.scp")
    with pytest.raises(SystemExit) as exit_info:
        cli.run_tool(main, [])
    assert exit_info.value.code == 1
    assert "utt1 missing from feats.scp" in capsys.readouterr().err
