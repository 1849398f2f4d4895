"""The import graph of VORB's product code (``benchmark/``, ``baselines/``), drawn from the source.

Every ``import`` statement counts, at module level or inside a function (a late import is still
a dependency). ``python tests/import_graph.py`` prints the cycles, the upward imports and the late
imports; ``tests/test_imports.py`` holds the graph to the layers of the README's architecture.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("benchmark", "baselines")
TESTS = ("tests", "benchmarks")


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (the deepest module the statement names)
    line: int
    late: bool  # inside a function or method


def module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_files(root: Path = REPO) -> dict[str, Path]:
    return {
        module_name(path, root): path
        for top in PRODUCT
        for path in sorted((root / top).rglob("*.py"))
    }


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, int, bool]]:
    """(module named, line, late) for every import statement, relative ones resolved."""

    def walk(node: ast.AST, late: bool) -> Iterator[tuple[str, int, bool]]:
        for child in ast.iter_child_nodes(node):
            inner = late or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, child.lineno, late
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = module.split(".") if is_package else module.split(".")[:-1]
                    package = package[: len(package) - child.level + 1]
                    base = ".".join([*package, base] if base else package)
                for alias in child.names:
                    yield f"{base}.{alias.name}", child.lineno, late
                    yield base, child.lineno, late
            else:
                if (  # importlib.import_module("a.b"): an import by another name
                    isinstance(child, ast.Call)
                    and isinstance(child.func, ast.Attribute)
                    and child.func.attr == "import_module"
                    and child.args
                    and isinstance(child.args[0], ast.Constant)
                    and isinstance(child.args[0].value, str)
                ):
                    yield child.args[0].value, child.lineno, late
                yield from walk(child, inner)

    yield from walk(tree, False)


def imports(root: Path = REPO) -> list[Import]:
    """Every import between product modules (``from a import b`` names ``a.b`` where that is
    a module, else ``a``); imports of test modules are kept too."""
    files = product_files(root)
    known = set(files) | {
        module_name(path, root) for top in TESTS for path in (root / top).rglob("*.py")
    }
    found: dict[tuple[str, str], Import] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        named: dict[int, list[tuple[str, bool]]] = {}
        for target, line, late in _imports(tree, module, path.name == "__init__.py"):
            named.setdefault(line, []).append((target, late))
        for line, targets in named.items():
            modules = [(t, late) for t, late in targets if t in known]
            # ``from a import b``: b when it is a module, else a (once per statement)
            deepest = {t for t, _ in modules}
            for target, late in modules:
                if any(other != target and other.startswith(target + ".") for other in deepest):
                    continue
                if target != module:
                    key = (module, target)
                    if key not in found or (found[key].late and not late):
                        found[key] = Import(module, target, line, late)
    return sorted(found.values(), key=lambda i: (i.source, i.target))


def cycles(edges: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


if __name__ == "__main__":
    edges = imports()
    print(f"{len(edges)} imports between product modules, {sum(e.late for e in edges)} late")
    for component in cycles(edges):
        print(f"cycle of {len(component)}: {', '.join(component)}")
    for edge in edges:
        if edge.target.split(".")[0] in TESTS:
            print(f"test module imported: {edge.source}:{edge.line} -> {edge.target}")
