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


FAST_EXIT_SCRIPT = '''import atexit, sys, types
sys.modules.setdefault("tensorflow", types.ModuleType("tensorflow"))   # as if the tool had loaded TF
from tfspk import cli
from tfspk.errors import ToolError
atexit.register(lambda: open(sys.argv[2], "w").write("teardown ran"))
left_open = open(sys.argv[1], "w")          # a file the tool forgot to close: its buffer is still in Python

def main(argv):
    left_open.write("x" * 1000 + "\\n")
    print("to stdout", flush=False)
    if argv[2] == "fail":
        raise ToolError("bad input")
    return 0

cli.run_tool(main)
'''


@pytest.mark.parametrize("outcome, status", [("ok", 0), ("fail", 1)])
def test_console_script_with_tensorflow_skips_teardown_but_flushes_its_files(tmp_path, outcome, status):
    """A tfspk-* process that loaded TensorFlow ends with os._exit (the interpreter's teardown of TF costs
    about a second per process): no atexit handler runs, yet every open file and stdout are written out."""
    import subprocess
    import sys
    script = tmp_path / "tfspk-fake-tool"
    script.write_text(FAST_EXIT_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "out.txt"), str(tmp_path / "atexit.txt"),
                           outcome], capture_output=True, text=True)
    assert proc.returncode == status, proc.stderr
    assert (tmp_path / "out.txt").read_text() == "x" * 1000 + "\n"
    assert proc.stdout == "to stdout\n"
    assert not (tmp_path / "atexit.txt").exists()          # the teardown was skipped
    # The same tool under another program name (a tool run inside another process) exits normally.
    other = tmp_path / "not-a-console-script.py"
    other.write_text(FAST_EXIT_SCRIPT)
    proc = subprocess.run([sys.executable, str(other), str(tmp_path / "out2.txt"), str(tmp_path / "atexit2.txt"),
                           outcome], capture_output=True, text=True)
    assert proc.returncode == status and (tmp_path / "atexit2.txt").read_text() == "teardown ran"


def test_console_script_with_child_processes_exits_normally(tmp_path):
    """A forked worker still alive at the end: the normal exit (atexit handlers, pool shutdown) runs."""
    import subprocess
    import sys
    script = tmp_path / "tfspk-fake-tool"
    script.write_text(FAST_EXIT_SCRIPT.replace("def main(argv):", """import multiprocessing, time
child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(0.5,))

def main(argv):
    child.start()"""))
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "out.txt"), str(tmp_path / "atexit.txt"),
                           "ok"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "atexit.txt").read_text() == "teardown ran"
    assert (tmp_path / "out.txt").read_text() == "x" * 1000 + "\n"


FAKE_KERAS = '''
try:
    import matplotlib
    PROBED = "matplotlib found"
except ImportError:
    PROBED = "matplotlib hidden"
import keras_helper          # not Keras: imports sklearn while keras initialises, and gets it
'''


@pytest.mark.parametrize("with_bin", [True, False])
def test_keras_optional_probes_find_nothing_under_tfspk_bin_and_everyone_else_does(tmp_path, with_bin):
    """tfspk.bin hides sklearn and matplotlib from Keras's own modules while the keras package initialises
    (a stand-in keras here), not from other modules, nor from anyone after Keras is loaded."""
    import subprocess
    import sys
    (tmp_path / "keras").mkdir()
    (tmp_path / "keras" / "__init__.py").write_text(FAKE_KERAS)
    (tmp_path / "keras_helper.py").write_text("import sklearn\n")
    code = (("import tfspk.bin\n" if with_bin else "") +
            "import sys, keras\nprint(keras.PROBED, 'sklearn' in sys.modules)\n"
            "import matplotlib, sklearn.base\nprint('later imports work')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env=dict(__import__("os").environ, PYTHONPATH=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    probed = "matplotlib hidden" if with_bin else "matplotlib found"
    assert proc.stdout.splitlines() == [f"{probed} True", "later imports work"]


def test_tensorflow_tools_load_keras_without_sklearn_and_matplotlib():
    """The real Keras under tfspk.bin: its two optional integrations stay unloaded (they cost ~1.3 s of CPU
    per tool start), Keras works, and tfspk's own scikit-learn and matplotlib code runs afterwards."""
    import subprocess
    import sys
    code = ("import sys, tfspk.bin, tensorflow as tf, keras\n"
            "print(sorted(m for m in ('sklearn', 'matplotlib') if m in sys.modules))\n"
            "print(keras.layers.Dense(2)(tf.ones([1, 3])).shape)\n"
            "from sklearn.discriminant_analysis import LinearDiscriminantAnalysis\n"
            "import matplotlib.pyplot\n"
            "from keras.src.wrappers import sklearn_wrapper\n"
            "print(sklearn_wrapper.sklearn is None)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "(1, 2)", "True"]
