"""Report the import structure that the contracts in pyproject.toml check.

Usage: python scripts/import_report.py

Prints, from grimp's graph of ``biolake`` (the graph import-linter checks; imports under
``if TYPE_CHECKING:`` left out):

- the import loops: groups of modules that all reach each other (strongly connected components);
- the imports of biolake modules that sit inside functions, grouped by importer and imported
  package, each with its line.

``make lint`` fails on a broken contract; this script is for reading the structure, e.g. after a
change that needed an import inside a function.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import grimp

PACKAGE = "biolake"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def loops(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def function_imports() -> list[tuple[str, str, int]]:
    """(importer, imported, line) for each import of a biolake module inside a function,
    outside ``if TYPE_CHECKING:`` blocks."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        importer = ".".join(parts)
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                for imported in _imported(node, importer, path.name == "__init__.py"):
                    if imported.split(".")[0] == PACKAGE:
                        found.append((importer, imported, node.lineno))
    return sorted(set(found))


def _imported(node: ast.AST, importer: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if not node.level:
            return [node.module or ""]
        base = importer.split(".")[: None if is_package else -1]
        base = base[: len(base) - node.level + 1]
        return [".".join([*base, *([node.module] if node.module else [])])]
    return []


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def main() -> None:
    graph = grimp.build_graph(PACKAGE, exclude_type_checking_imports=True)
    print(f"{len(graph.modules)} modules in {PACKAGE}")
    components = loops(graph)
    print(f"\nimport loops: {len(components)}")
    for component in components:
        print(f"  {len(component)} modules: {', '.join(component)}")
    imports = function_imports()
    groups: dict[tuple[str, str], list[tuple[str, str, int]]] = defaultdict(list)
    for importer, imported, line in imports:
        groups[(_package(importer), _package(imported))].append((importer, imported, line))
    print(f"\nimports of {PACKAGE} modules inside functions: {len(imports)}")
    for (importer_pkg, imported_pkg), rows in sorted(groups.items()):
        print(f"  {importer_pkg} -> {imported_pkg}: {len(rows)}")
        for importer, imported, line in rows:
            print(f"    {importer}:{line} imports {imported}")


if __name__ == "__main__":
    main()
