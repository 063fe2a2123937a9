"""The NumPy projection maths, and the rooms that compute with it, stay free of Brian2."""
import ast
from pathlib import Path

import numpy as np

from bioprop.projection import DenseProjection, dense_grads

PACKAGE = Path(__file__).resolve().parent.parent / "bioprop"


def _module_path(name: str) -> Path:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _imports(name: str):
    """The absolute names of the modules `name` imports, wherever in the module."""
    path = _module_path(name)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            yield module
            if node.module is None:  # from . import x: x may be a module
                yield from (f"{module}.{alias.name}" for alias in node.names)


def _reachable(start):
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name in seen or not _module_path(name).exists():
            continue
        seen.add(name)
        todo += [m for m in _imports(name) if m.startswith("bioprop")]
    return seen


def test_rules_model_and_projection_import_no_brian2():
    rooms = _reachable(["bioprop.projection", "bioprop.model", "bioprop.rules"])
    assert {"bioprop.projection", "bioprop.model", "bioprop.rules.targets"} <= rooms
    assert "bioprop.pathways" not in rooms
    brian = {name: m for name in rooms for m in _imports(name) if m.split(".")[0] == "brian2"}
    assert not brian, f"modules that import Brian2: {brian}"


def test_drive_and_its_gradients():
    rng = np.random.default_rng(0)
    projection = DenseProjection(rng.standard_normal((3, 4)), rng.standard_normal(3))
    pre, delta = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    np.testing.assert_allclose(projection.drive(pre), pre @ projection.weight.T + projection.bias)
    grad_w, grad_b = dense_grads(delta, pre)
    np.testing.assert_allclose(grad_w, sum(np.outer(d, p) for d, p in zip(delta, pre)) / 5)
    np.testing.assert_allclose(grad_b, delta.mean(axis=0))
