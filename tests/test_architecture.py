"""Rules of the code base that no single feature test would notice breaking."""
import ast
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# docs/INTERFACES.md, "Layers": layer -> the layers it may import (a DAG; a layer always imports itself).
# params and errors are the floor.
_FLOOR = {"errors", "params"}
ALLOWED = {
    "errors": set(),
    "params": {"errors"},
    "cli": _FLOOR,
    "io": _FLOOR | {"cli"},
    "features": _FLOOR | {"cli", "io"},
    "data": _FLOOR | {"cli", "io", "features"},
    "nnet": _FLOOR,
    "losses": _FLOOR,
    "backend": _FLOOR | {"cli", "io"},
    "metrics": _FLOOR | {"cli", "io"},
    "train": _FLOOR | {"cli", "io", "features", "data", "nnet", "losses", "metrics"},
    "extract": _FLOOR | {"cli", "io", "features", "data", "nnet"},
    "export": _FLOOR | {"cli", "io", "features", "nnet", "backend", "metrics"},
    "importers": _FLOOR | {"cli", "io", "features", "nnet", "train"},
    "bin": {"errors", "params", "cli", "io", "features", "data", "nnet", "losses", "backend", "metrics", "train",
            "extract", "export", "importers"},
}
LAYERS = list(ALLOWED)


def _layer_of(module_path):
    rel = module_path.relative_to(REPO / "tfspk")
    return rel.parts[0].removesuffix(".py") if rel.parts else None


def _tfspk_imports(source, filename="<source>"):
    tree = ast.parse(source, filename=filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        layers = {name.split(".")[1] for name in names if name.split(".")[0] == "tfspk" and "." in name}
        for layer in sorted(layers & set(ALLOWED)):
            yield node.lineno, layer


def forbidden_imports(layer, source, where):
    """``where:line: ...`` for every import of a layer that ``layer`` may not import."""
    allowed = ALLOWED[layer] | {layer}
    return [f"{where}:{line}: layer '{layer}' imports '{imported}' (allowed: {', '.join(sorted(ALLOWED[layer]))})"
            for line, imported in _tfspk_imports(source, where) if imported not in allowed]


@pytest.mark.parametrize("path", sorted((REPO / "tfspk").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_layers_import_only_allowed_layers(path):
    layer = _layer_of(path)
    if layer not in ALLOWED:
        pytest.skip(f"{layer} is not a layer")
    assert not forbidden_imports(layer, path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))


def test_the_checker_catches_a_forbidden_import():
    source = "import os\nfrom tfspk.errors import ToolError\n\ndef f():\n    from tfspk.train import trainer\n"
    assert forbidden_imports("nnet", source, "tfspk/nnet/fake.py") == [
        "tfspk/nnet/fake.py:5: layer 'nnet' imports 'train' (allowed: errors, params)"]
    assert forbidden_imports("metrics", "import tfspk.train.schedule\n", "m.py")[0].startswith(
        "m.py:1: layer 'metrics' imports 'train'")
    assert forbidden_imports("train", "from tfspk import metrics\nimport tfspk.nnet\n", "t.py") == []


def test_the_layer_graph_is_acyclic_and_documented():
    order = []  # Kahn: repeatedly take the layers whose allowed imports are all taken
    remaining = dict(ALLOWED)
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if deps <= set(order))
        assert ready, f"cycle among layers {sorted(remaining)}"
        order += ready
        for name in ready:
            del remaining[name]
    table = {}
    text = (REPO / "docs" / "INTERFACES.md").read_text(encoding="utf-8")
    for line in text.split("## Layers", 1)[1].split("\n## ", 1)[0].splitlines():
        match = re.match(r"\|\s*`(\w+)`\s*\|(.*)\|\s*$", line)
        if match:
            table[match.group(1)] = {name for name in re.findall(r"`(\w+)`", match.group(2))}
    assert table == ALLOWED, "docs/INTERFACES.md's layer table differs from tests/test_architecture.py"


def _project_files():
    """The files of the project (what git tracks or would add), not recipe outputs or the venv."""
    import subprocess
    listing = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=REPO, capture_output=True, text=True)
    if listing.returncode == 0:
        return [REPO / name for name in listing.stdout.splitlines() if (REPO / name).is_file()]
    return [path for top in ("tfspk", "tests", "utils", "steps", "egs", "tools", ".ci")
            for path in (REPO / top).rglob("*") if path.is_file()]


def test_nothing_reads_the_developers_shared_folder():
    pattern = re.compile(r"(\.\./shared|/work/shared)")
    offenders = []
    for path in _project_files():
        if path.suffix != ".md" and path != Path(__file__):
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if pattern.search(text):
                offenders.append(str(path.relative_to(REPO)))
    assert not offenders, f"files referring to the developers' shared folder: {offenders}"


def test_committed_symlinks_stay_inside_the_repository():
    """A clone must not carry a developer's links (e.g. a recipe's data dir pointing at a scratch copy)."""
    import shutil
    import subprocess
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(["git", "ls-files", "-s"], cwd=REPO, capture_output=True, text=True, check=True)
    offenders = []
    for line in listing.stdout.splitlines():
        mode, _, _, path = line.split(None, 3)
        if mode != "120000":
            continue
        target = os.readlink(REPO / path) if (REPO / path).is_symlink() else ""
        resolved = (REPO / path).parent / target
        if not target or os.path.isabs(target) or not resolved.resolve().is_relative_to(REPO.resolve()):
            offenders.append(f"{path} -> {target}")
    assert not offenders, f"committed symlinks leaving the repository: {offenders}"


def test_atomic_outputs_get_umask_permissions_and_vanish_on_error(tmp_path):
    import os
    from tfspk.io.atomic import atomic_open
    old = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "out.txt") as handle:
            handle.write("x")
        assert (os.stat(tmp_path / "out.txt").st_mode & 0o777) == 0o644
        with pytest.raises(RuntimeError):
            with atomic_open(tmp_path / "half.txt") as handle:
                handle.write("partial")
                raise RuntimeError("writer died")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    finally:
        os.umask(old)
