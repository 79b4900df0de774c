"""The package's imports point one way: cli → viz → inference | training → degradations → models,
data → the base modules. Read from the source (every import, lazy ones too), so a new import
that breaks the layering fails here, not in a review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "manurestore"

# Lower numbers sit lower; a module may import its own layer or any layer below.
LAYERS = {
    "errors": 0, "atomic": 0, "memory": 0, "seeding": 0, "hookspecs": 0, "devices": 0, "metrics": 0, "batches": 0, "validation": 0, "threads": 0, "native": 0,
    "models": 1, "data": 1,
    "degradations": 2, "plugins": 2, "testing": 2,
    "inference": 3, "training": 3,
    "viz": 4,
    "cli": 5, "__main__": 5,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every manurestore module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("manurestore")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("manurestore"):
            found.add(node.module)
            # `from manurestore.x import y` may name a module y; count it when it is one
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: {target for target in imports_of(path) if target in modules and target != name}
            for name, path in modules.items()}


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # the package itself: __version__
        return 0
    return LAYERS[parts[1]]


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_has_a_layer():
    missing = sorted({top(name) for name in graph() if len(name.split(".")) > 1} - set(LAYERS))
    assert not missing, f"give these a layer in LAYERS: {missing}"


def test_imports_point_down_the_layers():
    wrong = [f"{source} imports {target}" for source, targets in graph().items() for target in targets
             if layer(target) > layer(source)]
    assert not wrong, "\n".join(sorted(wrong))


@pytest.mark.parametrize(("importer", "forbidden"), [("inference", "training"), ("training", "inference"),
                                                     ("data", "degradations"), ("data", "models"),
                                                     ("models", "data")])
def test_side_by_side_packages_do_not_import_each_other(importer, forbidden):
    wrong = [f"{source} imports {target}" for source, targets in graph().items() for target in targets
             if top(source) == importer and top(target) == forbidden]
    assert not wrong, "\n".join(sorted(wrong))


def test_only_the_cli_imports_the_cli():
    wrong = [f"{source} imports {target}" for source, targets in graph().items() for target in targets
             if top(target) == "cli" and top(source) not in ("cli", "__main__")]
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append(" → ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)
