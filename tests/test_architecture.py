"""The package's shape: imports flow one way (no circle, even through imports
inside functions) and no module is over the size bound.

Every module under react_eval/ is parsed with ast (nothing is imported). An
edge A -> B is any ``import B`` / ``from B import x`` in A, at module level or
inside a function, class or ``if TYPE_CHECKING:`` block alike; ``from P import
m`` where ``P.m`` is a module is an edge to ``P.m``; relative imports are
resolved. The implicit import of a parent package's ``__init__`` is not an edge
(every module would otherwise depend on its package).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "react_eval"
#: the issue says "about 500 lines"; the hard bound leaves room for a
#: docstring or a re-export, and anything past it must be split by concern
MAX_LINES = 600


def module_names() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path], *, everywhere: bool = True) -> set[str]:
    """The react_eval modules ``name`` imports, wherever in the file the import
    stands (``everywhere=False``: only the statements at the top of the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree) if everywhere else tree.body:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {target for target in out if target in modules and target != name}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan,
    iterative), each sorted: every module of one imports every other, maybe indirectly."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return components


def circle_through(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside it."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                return paths[node] + [start]
            if child not in paths:
                paths[child] = paths[node] + [child]
                queue.append(child)
    return component  # unreachable for a real component


def test_the_checker_finds_a_circle_through_a_function_level_import(tmp_path):
    """The detector itself: a circle made only by an import inside a function is found."""
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    assert cycles(graph) == [["p.a", "p.b", "p.c"]]
    assert circle_through(["p.a", "p.b", "p.c"], graph) == ["p.a", "p.b", "p.c", "p.a"]
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from p import b\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    return a\n")
    modules = {"p": pkg / "__init__.py", "p.a": pkg / "a.py", "p.b": pkg / "b.py"}
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert graph == {"p": set(), "p.a": {"p.b"}, "p.b": {"p.a"}}
    assert cycles(graph) == [["p.a", "p.b"]]


def test_no_import_circle():
    graph = import_graph()
    modules = module_names()
    top_level = {name: imports_of(name, path, modules, everywhere=False) for name, path in modules.items()}
    # the graph holds the edges that only imports inside functions make (the package has such imports)
    assert len(graph) > 100 and sum(map(len, graph.values())) > sum(map(len, top_level.values()))
    found = cycles(graph)
    assert not found, "import circles (module-level and function-level imports counted):\n" + "\n".join(
        f"  {' -> '.join(circle_through(members, graph))}  (the circle's modules: {', '.join(members)})"
        for members in found)


def test_no_module_over_the_size_bound():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in module_names().items()}
    over = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them by concern): " + ", ".join(
        f"{name} ({n})" for name, n in sorted(over.items(), key=lambda item: -item[1]))
