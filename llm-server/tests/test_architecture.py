"""The package's shape, checked from its source: no import cycles between its folders, and
llama.cpp reached only through `engine/`."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "llm_server"


def modules() -> Iterator[tuple[str, ast.Module]]:
    """Every module of the package: its dotted name and its syntax tree."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, ast.parse(path.read_text(), str(path))


def imports(tree: ast.Module) -> set[str]:
    """The modules a tree imports anywhere (inside functions too: a deferred import is one)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def unit(module: str) -> str | None:
    """The part of the package a module belongs to: its top folder, or itself at the top."""
    parts = module.split(".")
    if parts[0] != "llm_server":
        return None
    return parts[1] if len(parts) > 1 else "llm_server"


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    names = {name for name, _ in modules()}
    for name, tree in modules():
        source = unit(name)
        assert source is not None
        targets = {unit(m) for m in imports(tree) if m in names}
        edges.setdefault(source, set()).update(t for t in targets if t and t != source)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = []
            while True:
                member = stack.pop()
                part.append(member)
                if member == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_folders() -> None:
    edges = graph()
    assert {"engine", "generation", "openai", "analyze"} <= set(edges)
    assert cycles(edges) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_engine_imports_llama_cpp() -> None:
    importers = {
        name
        for name, tree in modules()
        if any(m == "llama_cpp" or m.startswith("llama_cpp.") for m in imports(tree))
    }
    assert importers  # the check sees the imports it is about
    assert {name for name in importers if not name.startswith("llm_server.engine.")} == set()


def test_the_engine_knows_nothing_of_http() -> None:
    for name, tree in modules():
        if name.startswith("llm_server.engine"):
            outside = {m for m in imports(tree) if unit(m) not in (None, "engine", "config")}
            assert outside == set(), name
            assert not any(m.split(".")[0] in ("fastapi", "starlette") for m in imports(tree))


MAX_FUNCTION_LINES = 60


def test_functions_are_short() -> None:
    """A function longer than a screen does more than one thing (the developers' guide)."""
    long = [
        f"{name}.{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for name, tree in modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []
