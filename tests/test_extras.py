"""Runtime dependencies are what the package imports at run time; the rest are setup.py extras, and code that
needs an extra names it when it is missing."""
import ast
import re
import sys

from conftest import REPO, run

# distribution name (setup.py) -> the module it provides
MODULE_OF = {"tensorflow": "tensorflow", "kaldi-native-fbank": "kaldi_native_fbank", "numpy": "numpy",
             "scipy": "scipy", "soundfile": "soundfile", "pyyaml": "yaml", "matplotlib": "matplotlib",
             "tf2onnx": "tf2onnx", "onnxruntime": "onnxruntime", "pyroomacoustics": "pyroomacoustics",
             "tensorboard": "tensorboard", "h5py": "h5py"}
# modules the package imports only to find out whether they are there, or only for a Keras probe
NOT_IMPORTS = {"keras", "sklearn", "google", "tensorboard"}
# distributions in install_requires only to bound the version a dependency pulls in, not imported by the
# package: name -> the dependency that requires it
VERSION_BOUNDS = {"ml_dtypes": "tensorflow"}


def setup_requirements():
    tree = ast.parse((REPO / "setup.py").read_text())
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            found["install"] = [re.split(r"[<>=\[]", ast.literal_eval(e))[0] for e in node.value.elts]
    sys.path.insert(0, str(REPO))
    try:
        namespace = {"__file__": str(REPO / "setup.py")}
        source = (REPO / "setup.py").read_text().split("\ndef version")[0].split("\nsetup(")[0]
        exec(compile(source.replace("from setuptools import find_packages, setup", ""), "setup.py", "exec"), namespace)
    finally:
        sys.path.pop(0)
    found["extras"] = {name: [re.split(r"[<>=\[]", r)[0] for r in reqs] for name, reqs in namespace["EXTRAS"].items()}
    return found


def third_party_imports():
    stdlib = set(sys.stdlib_module_names)
    where = {}
    for path in (REPO / "tfspk").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                top = name.split(".")[0]
                if top not in stdlib and top != "tfspk":
                    where.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return where


def test_install_requires_is_exactly_what_the_package_imports():
    requirements = setup_requirements()
    imported = set(third_party_imports()) - NOT_IMPORTS
    runtime = {MODULE_OF[name] for name in requirements["install"] if name not in VERSION_BOUNDS}
    optional = {MODULE_OF[name] for extra in ("plot", "export") for name in requirements["extras"][extra]}
    assert runtime <= imported, f"install_requires that nothing imports: {runtime - imported}"
    assert imported <= runtime | optional, f"imported but in no requirement: {imported - runtime - optional}"
    # the test-only and demo-only packages stay out of the runtime requirements
    for name in ("kaldi-io", "scikit-learn", "pyroomacoustics", "matplotlib", "tqdm"):
        assert name not in requirements["install"]
    extras = requirements["extras"]
    assert {"matplotlib", "pyroomacoustics"} <= set(extras["demo"])
    assert {"kaldi-io", "scikit-learn", "pytest-xdist"} <= set(extras["test"]) and set(extras["demo"]) <= set(extras["test"])


def test_every_version_bound_is_a_dependency_of_what_needs_it():
    from importlib.metadata import requires
    install = setup_requirements()["install"]
    for name, needed_by in VERSION_BOUNDS.items():
        assert name in install and needed_by in install, (name, needed_by)
        wanted = {re.split(r"[<>=~!; \[]", r)[0].replace("-", "_").lower() for r in requires(needed_by) or []}
        assert name.replace("-", "_").lower() in wanted, f"{needed_by} no longer requires {name}: drop the bound"


def test_the_two_commands_install_their_extras():
    assert "--extras demo" in (REPO / "tools/demo.sh").read_text()
    assert "--extras test" in (REPO / "tools/test.sh").read_text()


def test_a_missing_plot_extra_is_named(tmp_path):
    script = f"""
import sys
class NoMatplotlib:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "matplotlib":
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, NoMatplotlib())
from tfspk.bin import score_report
sys.argv = ["tfspk-score-report", "--det-plot={tmp_path}/det.png", "{tmp_path}/trials", "{tmp_path}/scores"]
score_report.main()
"""
    (tmp_path / "trials").write_text("a b target\na c nontarget\n")
    (tmp_path / "scores").write_text("a b 1.0\na c 0.0\n")
    proc = run([sys.executable, "-c", script], check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "'matplotlib'" in proc.stderr and "pip install 'tfspk[plot]'" in proc.stderr, proc.stderr
    assert not (tmp_path / "det.png").exists()
