"""A candidate program cut down to what ``entry_point`` needs, with the stdlib's ``ast``.

Used for HumanEval when EvalPlus (``react-eval[evalplus]``), whose sanitizer
needs tree-sitter and a large dependency stack, is not installed. Same idea:
take the longest leading run of lines that parses, keep its imports, and the
top-level functions, classes and assignments reachable from ``entry_point``
by name; drop everything else (tests, prints, ``if __name__ == ...``).
"""

from __future__ import annotations

import ast


def _parsable_prefix(code: str) -> ast.Module | None:
    """The module of the longest leading run of lines that parses (a model's
    answer may end in prose or a cut-off line)."""
    lines = code.splitlines()
    for end in range(len(lines), 0, -1):
        try:
            return ast.parse("\n".join(lines[:end]))
        except (SyntaxError, ValueError):
            continue
    return None


def _defined_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _used_names(node: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def sanitize(code: str, entry_point: str) -> str:
    """Imports plus the definitions reachable from ``entry_point`` ("" when nothing parses)."""
    module = _parsable_prefix(code)
    if module is None:
        return ""
    imports = [n for n in module.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    definitions = [n for n in module.body if _defined_names(n)]
    by_name: dict[str, list[ast.stmt]] = {}
    for node in definitions:
        for name in _defined_names(node):
            by_name.setdefault(name, []).append(node)
    if entry_point not in by_name:  # nothing to anchor on: keep every definition
        keep = {id(n) for n in definitions}
    else:
        keep, todo = set(), [entry_point]
        while todo:
            for node in by_name.get(todo.pop(), []):
                if id(node) not in keep:
                    keep.add(id(node))
                    todo.extend(_used_names(node) & set(by_name))
    body = imports + [n for n in definitions if id(n) in keep]
    body.sort(key=lambda n: n.lineno)
    return "\n\n".join(ast.unparse(n) for n in body) + ("\n" if body else "")
