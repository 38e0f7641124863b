"""What the cells run so far defined, so lint on run sees a cell the way the notebook linter does.

Lint on run checks one cell, but `OpenAI()` in it is only a client if `from openai import OpenAI`
ran in an earlier cell. The imports and simple top-level assignments (clients, constants, option
dicts) of every cell run so far are kept in order and put before the cell's source; the findings
are mapped back to the cell's own lines and those inside the prefix dropped (they were shown when
their cell ran). A cell that names nothing defined earlier is linted alone, as before, so plain
cells still skip libcst.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

MAX_STATEMENTS = 300  # the oldest are forgotten first
MAX_STATEMENT_CHARS = 300  # a long prompt literal would be re-counted on every cell: not kept
_LITERALS = (ast.Constant, ast.Dict, ast.List, ast.Tuple, ast.Set)


class CellDefinitions:
    """The imports and definitions of executed cells, newest last, as Python source lines."""

    def __init__(self) -> None:
        self._statements: dict[str, frozenset[str]] = {}  # one line of source -> the names it binds
        self._pattern: re.Pattern[str] | None = None

    def remember(self, source: str) -> None:
        """Keep what a cell that ran defined (`source` is its Python, magics already turned into code)."""
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            return
        for statement in _definitions(tree.body):
            line = ast.unparse(statement)
            if "\n" in line or len(line) > MAX_STATEMENT_CHARS:
                continue
            self._statements.pop(line, None)  # run again: it moves to the end
            self._statements[line] = _bound_names(statement)
        while len(self._statements) > MAX_STATEMENTS:
            del self._statements[next(iter(self._statements))]
        names = sorted(set().union(*self._statements.values()), key=len, reverse=True)
        self._pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b") if names else None

    def prefix_for(self, source: str) -> str:
        """The lines to put before `source`: empty unless it names something an earlier cell defined."""
        if self._pattern is None or self._pattern.search(source) is None:
            return ""
        return "".join(line + "\n" for line in self._statements)

    def clear(self) -> None:
        self._statements.clear()
        self._pattern = None


def _definitions(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level imports (also inside `if`/`try`/`with`) and assignments of names to literals or to
    class constructions (`client = OpenAI(...)`, `fast = client.with_options(...)`)."""
    for statement in body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            yield statement
        elif isinstance(statement, ast.Assign | ast.AnnAssign) and _kept_value(statement.value):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if all(isinstance(target, ast.Name) for target in targets):
                yield statement
        elif isinstance(statement, ast.If | ast.With):
            yield from _imports_in(statement.body)
        elif isinstance(statement, ast.Try):
            yield from _imports_in(statement.body)
            for handler in statement.handlers:
                yield from _imports_in(handler.body)


def _imports_in(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    for statement in _definitions(body):
        if isinstance(statement, ast.Import | ast.ImportFrom):
            yield statement


def _kept_value(value: ast.expr | None) -> bool:
    if value is None or isinstance(value, _LITERALS):
        return value is not None
    if not isinstance(value, ast.Call):
        return False
    callee = value.func
    name = callee.id if isinstance(callee, ast.Name) else callee.attr if isinstance(callee, ast.Attribute) else ""
    return name[:1].isupper() or name == "with_options"  # an LLM call (`.create(...)`) is not a definition


def _bound_names(statement: ast.stmt) -> frozenset[str]:
    if isinstance(statement, ast.Import | ast.ImportFrom):
        # `from x import *` binds names no one can list: kept in the prefix, but it makes no cell use it
        return frozenset((alias.asname or alias.name).split(".")[0] for alias in statement.names if alias.name != "*")
    targets = statement.targets if isinstance(statement, ast.Assign) else [getattr(statement, "target", None)]
    return frozenset(target.id for target in targets if isinstance(target, ast.Name))
