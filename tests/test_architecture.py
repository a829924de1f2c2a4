"""Rules of the code base that no single feature test would notice breaking."""
import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# docs/INTERFACES.md: a layer imports only the layers listed before it.
LAYERS = ["errors", "params", "cli", "io", "features", "data", "nnet", "losses", "train", "extract",
          "backend", "metrics", "export", "bin"]


def _layer_of(module_path):
    rel = module_path.relative_to(REPO / "tfspk")
    return rel.parts[0].removesuffix(".py") if rel.parts else None


def _tfspk_imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "tfspk" and len(parts) > 1 and parts[1] in LAYERS:
                yield node.lineno, parts[1]


@pytest.mark.parametrize("path", sorted((REPO / "tfspk").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_layers_import_only_layers_above(path):
    layer = _layer_of(path)
    if layer not in LAYERS:
        pytest.skip(f"{layer} is not a layer")
    rank = LAYERS.index(layer)
    for line, imported in _tfspk_imports(path):
        assert LAYERS.index(imported) <= rank, (
            f"{path.relative_to(REPO)}:{line}: layer '{layer}' imports lower layer '{imported}'")


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
