"""The benchmarks are run by hand (docs/benchmarks.md), not by the suite; this keeps their tfspk imports, which
sit inside functions and break silently when a name moves, resolvable."""
import ast
import importlib
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("bench_*.py"))


def tfspk_imports(path):
    """``(module, name, line)`` of every ``from tfspk... import name`` in the file, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tfspk":
            for alias in node.names:
                yield node.module, alias.name, node.lineno


def test_there_are_benchmarks_with_tfspk_imports():
    assert BENCHMARKS and any(list(tfspk_imports(path)) for path in BENCHMARKS)


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda path: path.name)
def test_every_tfspk_name_a_benchmark_imports_exists(path):
    missing = []
    for module, name, line in tfspk_imports(path):
        imported = importlib.import_module(module)
        if not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{path.name}:{line}: {module}.{name}")
    assert not missing, "names the benchmark imports that tfspk does not have: " + ", ".join(missing)
