"""The layers of `bootstrap/` (docs/architecture.md), checked with `ast` so that a later
change cannot bring back an import cycle or an import that runs up the layers unnoticed.

Every `import` counts: at module level, inside functions (imported where used) and
under `TYPE_CHECKING` (a type is a dependency too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "bootstrap"

# Lower layers first; a module may import its own layer and those below it.
LAYERS = {
    "bootstrap.errors": 0,
    "bootstrap.redact": 0,
    "bootstrap.sanitize": 0,
    "bootstrap.console": 0,
    "bootstrap.inputs": 0,
    "bootstrap.killpoint": 0,
    "bootstrap.kube": 1,
    "bootstrap.steps": 2,
    "bootstrap.outputs": 3,
    "bootstrap.run": 4,
    "bootstrap.commands": 5,
    "bootstrap.api": 6,
    "bootstrap.__main__": 7,
}


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    return names


MODULES = module_names()


def imports_of(path: Path) -> set[str]:
    """The bootstrap modules `path` imports (a `from P import m` of a submodule m
    counts as m)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("bootstrap"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("bootstrap"):
                continue
            subs = [f"{node.module}.{a.name}" for a in node.names]
            found.update(s for s in subs if s in MODULES)
            if not all(s in MODULES for s in subs):
                found.add(node.module)
    return found


GRAPH = {name: imports_of(path) - {name} for name, path in MODULES.items()}


def layer(name: str) -> int | None:
    for prefix, rank in LAYERS.items():
        if name == prefix or name.startswith(prefix + "."):
            return rank
    return None


def test_every_module_belongs_to_a_layer() -> None:
    assert sorted(n for n in MODULES if n != "bootstrap" and layer(n) is None) == []


def test_no_relative_imports() -> None:
    # The checks above read absolute imports only; keep it that way.
    relative = [
        name
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.level
    ]
    assert relative == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down_the_layers(name: str) -> None:
    if name == "bootstrap":  # the facade: its names are imported lazily on first use
        return
    own = layer(name)
    assert own is not None
    upward = sorted(
        target
        for target in GRAPH[name]
        # `from bootstrap import __version__` reads the package, not a layer
        if target != "bootstrap" and (layer(target) or 0) > own
    )
    assert upward == [], f"{name} (layer {own}) imports from a higher layer"


def cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in MODULES or w == "bootstrap":
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

    for name in sorted(MODULES):
        if name not in index:
            visit(name)
    return found


def test_no_import_cycles() -> None:
    assert cycles() == []


def test_the_checker_sees_a_cycle() -> None:
    # The check itself can fail: a made-up back edge is found.
    GRAPH["bootstrap.kube.kubeconfig"].add("bootstrap.kube.target")
    try:
        assert cycles() == [["bootstrap.kube.kubeconfig", "bootstrap.kube.target"]]
    finally:
        GRAPH["bootstrap.kube.kubeconfig"].discard("bootstrap.kube.target")


@pytest.mark.parametrize("package", ["kube", "steps", "outputs", "commands"])
def test_each_layer_says_what_it_owns_and_may_import(package: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
    assert doc is not None and "May import" in doc
