"""chalicelib is layered and has no import cycle: every import counts, those inside functions and under
TYPE_CHECKING too, since a cycle hidden in a function is still a cycle a reader must untangle.

The layers, bottom to top (a module imports from its own layer or those below, never from above):
- core: settings, errors, the dependency ports and the cache registry, boto3 clients, plain rules;
- schema: the tables, the event vocabulary, the commands, the queues, transactions and other stores;
- domain: the rules of accounts, catalog, orders, lines, connections (what a request or a clock does);
- delivery: what carries the domain's news out (streams, queues, pushes, e-mail, payments);
- edge: HTTP and the API description;
- wiring: the composition root, which builds the dependencies and fills the ports.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "chalicelib"
# One package per layer, bottom to top.
LAYERS = ("core", "schema", "domain", "delivery", "edge", "wiring")


def rank(module: str) -> int:
    """A module's layer: the package it lives in (schema.models.catalog is in schema)."""
    return LAYERS.index(module.split(".")[0])


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        found[name.removesuffix(".__init__").removesuffix("__init__")] = path
    found.pop("", None)
    return found


def imports_of(path: Path, modules: set[str]) -> set[str]:
    own = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    return imports_in(path.read_text(), own.removesuffix(".__init__"), path.name == "__init__.py", modules)


def imports_in(text: str, own: str, is_package: bool, modules: set[str]) -> set[str]:
    """The chalicelib modules a module's source imports, anywhere in it (relative imports resolved)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = own.split(".") if own else []
                anchor = parts[: len(parts) - node.level + (1 if is_package else 0)]
                base = ".".join(["chalicelib", *anchor, *([base] if base else [])])
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            if name != "chalicelib" and not name.startswith("chalicelib."):
                continue
            name = name.removeprefix("chalicelib").lstrip(".")
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != own:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: imports_of(path, set(modules)) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                popped = stack.pop()
                on_stack.discard(popped)
                group.append(popped)
                if popped == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_chalicelib_has_no_import_cycle_at_any_depth() -> None:
    assert cycles(import_graph()) == []


def test_every_module_lives_in_the_package_of_its_layer() -> None:
    assert {name.split(".")[0] for name in _modules()} == set(LAYERS), "a module outside the layers' packages"


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    upward = [
        f"{module} ({_layer(module)}) imports {other} ({_layer(other)})"
        for module, others in sorted(import_graph().items())
        for other in sorted(others)
        if rank(other) > rank(module)
    ]
    assert upward == []


def test_the_check_sees_imports_inside_functions_and_type_checking_blocks() -> None:
    text = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from chalicelib.domain import orders\n"
    text += "def f():\n    from chalicelib.domain.catalog import drop_view\n    from ..edge import web\n"
    text += "    import chalicelib.schema.db\n"
    found = imports_in(text, "domain.probe", False, set(_modules()))
    assert found == {"domain", "domain.orders", "domain.catalog", "edge", "edge.web", "schema.db"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _layer(module: str) -> str:
    return LAYERS[rank(module)]
