"""The second prefilter: facts read off CPython's own tree, before libcst parses the file.

The guard (guard.py) compiles every text libcst would see to CPython's tree anyway, in C and many
times faster than libcst builds its own. Some rules can be ruled out from that tree: LG201 finds
nothing in a file that never calls an SDK client's constructor. `TreeFacts` answers such
questions the way lint/names.py does on libcst's tree, but as a superset: every import of a name
counts, wherever and in whatever order it appears, so a file is never dropped for a call that
libcst's import table would resolve to a client.
"""

from __future__ import annotations

import ast
from functools import cached_property

from llmguard.lint import sdk


def _dotted(node: ast.expr) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None (names.dotted on CPython's tree)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


class TreeFacts:
    """What CPython's tree of one file says; each fact is computed on first use."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree

    @cached_property
    def _nodes(self) -> tuple[list[ast.Call], list[ast.Import | ast.ImportFrom]]:
        calls: list[ast.Call] = []
        imports: list[ast.Import | ast.ImportFrom] = []
        stack: list[ast.AST] = [self.tree]
        pop, push = stack.pop, stack.extend
        while stack:
            node = pop()
            kind = type(node)
            if kind is ast.Call:
                calls.append(node)  # type: ignore[arg-type]
            elif kind is ast.Import or kind is ast.ImportFrom:
                imports.append(node)  # type: ignore[arg-type]
                continue
            push(ast.iter_child_nodes(node))
        return calls, imports

    @cached_property
    def _aliases(self) -> tuple[dict[str, set[str]], set[str]]:
        """({local name: every qualified name an import binds it to}, modules star-imported)."""
        aliases: dict[str, set[str]] = {}
        stars: set[str] = set()
        for node in self._nodes[1]:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        aliases.setdefault(alias.asname, set()).add(alias.name)
                    else:
                        head = alias.name.split(".", 1)[0]
                        aliases.setdefault(head, set()).add(head)
                continue
            if node.level:  # relative: names.ImportMap skips them too
                continue
            module = node.module or ""
            for alias in node.names:
                if alias.name == "*":
                    stars.add(module)
                else:
                    aliases.setdefault(alias.asname or alias.name, set()).add(f"{module}.{alias.name}")
        return aliases, stars

    def qualified_names(self, expr: ast.expr) -> set[str]:
        """Every qualified name a Name/Attribute chain may mean (ImportMap.qualify gives one of them)."""
        name = _dotted(expr)
        if name is None:
            return set()
        head, _, rest = name.partition(".")
        aliases, stars = self._aliases
        targets = set(aliases.get(head, ()))
        targets.update(f"{module}.{head}" for module in stars if f"{module}.{head}" in sdk.KNOWN_NAMES)
        return {f"{target}.{rest}" if rest else target for target in targets}

    @cached_property
    def constructs_client(self) -> bool:
        """Does any call's callee resolve to an SDK client class (context.FileContext.clients)?"""
        if not self._aliases[0] and not self._aliases[1]:
            return False
        return any(not sdk.CLIENTS.keys().isdisjoint(self.qualified_names(call.func)) for call in self._nodes[0])
