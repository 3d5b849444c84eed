"""The library's structure: layers that import only downwards, no import circles between modules (lazy
imports inside functions count too), pytest imported by the plugin module alone, and public faces that
name what they export."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "greenbench"
# each layer and the layers below it that it may import (greenbench/__init__.py draws them)
LAYERS = {
    "core": set(),
    "quantization": {"core"},
    "coding": {"core", "quantization"},
    "analysis": {"core", "quantization", "coding"},
    "energy": {"core"},
    "nn": {"core", "quantization", "coding", "analysis", "energy"},
    "harness": {"core", "quantization", "coding", "analysis", "energy", "nn"},
}
TOP = {"cli", "pytest_plugin"}  # the entry points: they may import every layer
FACES = {"claims", "checks", "quantizers", "energy"}  # public import paths: re-exports with an __all__
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    """Dotted module name (without 'greenbench.') -> file, for every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name or "__init__"] = path
    return found


def _imports() -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its body (the longest known prefix)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path}: relative import (the package imports absolutely)"
                if (node.module or "").split(".")[0] == "greenbench":
                    base = node.module.split(".")[1:]
                    targets = [base + [a.name] for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == "greenbench"]
            for parts in targets:
                while parts and ".".join(parts) not in modules:
                    parts = parts[:-1]
                if parts:
                    found.add(".".join(parts))
        graph[name] = found - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [node])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [])):
            return found
    return None


def _layer(module: str) -> str:
    return module.split(".")[0]


def test_every_module_is_in_a_layer_an_entry_point_or_a_face():
    stray = [m for m in _modules() if _layer(m) not in set(LAYERS) | TOP | FACES | {"__init__"}]
    assert not stray, f"modules outside the layers {sorted(LAYERS)}: {stray}"


def test_no_import_circles_among_the_librarys_modules():
    graph = _imports()
    for face in FACES - {"energy"}:  # a face module and the package __init__s re-export; their imports point down
        graph.pop(face)
    graph = {m: {t for t in ts if t not in LAYERS} for m, ts in graph.items() if m not in LAYERS}
    assert _cycle(graph) is None, f"import circle: {' → '.join(_cycle(graph))}"


def test_layers_import_only_downwards():
    upward = []
    for module, targets in _imports().items():
        layer = _layer(module)
        if layer not in LAYERS:
            continue
        for target in targets:
            if _layer(target) not in LAYERS[layer] | {layer}:
                upward.append(f"{module} → {target}")
    assert not upward, f"imports that run up or sideways: {upward}"


def test_faces_and_entry_points_are_not_imported_by_the_layers():
    bad = [f"{m} → {t}" for m, ts in _imports().items() if _layer(m) in LAYERS
           for t in ts if t in TOP or (t in FACES and t not in LAYERS)]
    assert not bad, bad


def _pytest_imports(tree: ast.AST) -> list[ast.AST]:
    found = []
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(n == "pytest" or n.startswith(("pytest.", "_pytest")) for n in names):
            found.append(node)
    return found


def test_only_the_plugin_imports_pytest_and_parametrize_with_checks_only_when_called():
    importers = {}
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        inside = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) for n in ast.walk(f)}
        for node in _pytest_imports(tree):
            importers.setdefault(name, set()).add("lazily" if id(node) in inside else "at import")
    assert importers.pop("pytest_plugin") == {"at import"}
    # like scikit-learn's: importing the checks never imports pytest; only the decorator needs it
    assert importers == {"harness.checks": {"lazily"}}


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


@pytest.mark.parametrize("face", sorted(FACES))
def test_a_public_face_exports_what_its_all_names(face):
    module = importlib.import_module(f"greenbench.{face}")
    assert module.__all__, f"greenbench.{face} has an empty __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"greenbench.{face}.__all__ names what it does not define: {missing}"


def test_every_environment_variable_is_declared_and_in_the_readme():
    import re

    from greenbench.core.settings import VARIABLES

    root = PACKAGE.parent
    used = set()
    for path in [*PACKAGE.rglob("*.py"), root / "conftest.py", *(root / "tools").iterdir()]:
        used |= set(re.findall(r"GREENBENCH_[A-Z0-9_]+", path.read_text()))
    assert used <= set(VARIABLES), f"variables read but not declared in core.settings: {sorted(used - set(VARIABLES))}"
    readme = (root / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in VARIABLES), "the README's table lacks a variable"
