"""The package's structure: small rooms, arrows that point one way.

These are the rules docs/design.md states, checked on the source itself: no import
cycles between bioprop's modules, nothing imports the package ``__init__`` (which only
re-exports), no module imports another's private names, and no module grows much past
400 lines.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bioprop"
MAX_LINES = 410


def modules() -> dict:
    """Dotted module name → path, for every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict) -> list:
    """(imported module, imported name) of every bioprop import in one module."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "bioprop":
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                out.append((full, None) if full in known else (target, alias.name))
        elif isinstance(node, ast.Import):
            out += [(alias.name, None) for alias in node.names
                    if alias.name.split(".")[0] == "bioprop"]
    return out


def graph() -> dict:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict) -> list:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    edges = {name: {target for target, _ in found if target != name}
             for name, found in graph().items()}
    assert cycles(edges) == []


def test_nothing_imports_the_package_init_or_private_names():
    wrong = []
    for name, found in graph().items():
        for target, imported in found:
            if target == "bioprop" and name != "bioprop":
                wrong.append(f"{name} imports {imported!r} from the package __init__")
            if imported and imported.startswith("_") and not imported.startswith("__") \
                    and target != name:
                wrong.append(f"{name} imports the private {target}.{imported}")
    assert not wrong, "\n".join(wrong)


def test_modules_stay_small():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines())
             for name, path in modules().items()}
    large = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not large, f"modules over {MAX_LINES} lines (split them by concept): {large}"


def test_every_subpackage_is_installed():
    """A subpackage missing from pyproject.toml works in a development install and is
    absent from a plain ``pip install .``."""
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
                 ["tool"]["setuptools"]["packages"])
    found = {".".join(path.parent.relative_to(PACKAGE.parent).parts)
             for path in PACKAGE.rglob("__init__.py")}
    assert found - listed == set(), f"packages missing from pyproject.toml: {found - listed}"
