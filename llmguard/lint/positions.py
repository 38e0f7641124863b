"""Line/column ranges for the few nodes a run reports, without libcst's PositionProvider.

PositionProvider records a range for every node of the module (about eight times the cost of
generating its code). Findings are rare, so this generates the module's code once, only when a
file has findings, and records ranges only for the nodes asked about. The ranges follow
PositionProvider's syntactic rules (a statement starts at its keyword, not its leading comments).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import libcst as cst
from libcst._nodes.internal import CodegenState

Range = tuple[int, int, int, int]  # (line, column, end_line, end_column); lines 1-based, columns 0-based


class _State(CodegenState):
    __slots__ = ("line", "column", "wanted", "ranges", "starts")

    def __init__(self, module: cst.Module, wanted: set[int]) -> None:
        super().__init__(default_indent=module.default_indent, default_newline=module.default_newline)
        self.line, self.column = 1, 0
        self.wanted = wanted
        self.ranges: dict[int, Range] = {}
        self.starts: dict[int, list[tuple[int, int]]] = {}

    def add_indent_tokens(self) -> None:
        for token in self.indent_tokens:
            self.add_token(token)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        newlines = value.count("\n")
        if newlines:
            self.line += newlines
            self.column = len(value) - value.rfind("\n") - 1
        else:
            self.column += len(value)

    def before_codegen(self, node: cst.CSTNode) -> None:
        if id(node) in self.wanted:
            self.starts.setdefault(id(node), []).append((self.line, self.column))

    def after_codegen(self, node: cst.CSTNode) -> None:
        key = id(node)
        if key in self.wanted:
            line, column = self.starts[key].pop()
            if key not in self.ranges:
                self.ranges[key] = (line, column, self.line, self.column)

    @contextmanager
    def record_syntactic_position(
        self, node: cst.CSTNode, *, start_node: Any = None, end_node: Any = None
    ) -> Iterator[None]:
        key = id(node)
        if key not in self.wanted:
            yield
            return
        for helper in (start_node, end_node):
            if helper is not None:
                self.wanted.add(id(helper))
        line, column = self.line, self.column
        yield
        start = (
            self.ranges[id(start_node)][:2]
            if start_node is not None and id(start_node) in self.ranges
            else (line, column)
        )
        end = (
            self.ranges[id(end_node)][2:]
            if end_node is not None and id(end_node) in self.ranges
            else (self.line, self.column)
        )
        self.ranges[key] = (*start, *end)


def ranges_for(module: cst.Module, nodes: Iterable[cst.CSTNode]) -> dict[int, Range]:
    """{id(node): range} for the given nodes of `module`."""
    wanted = {id(n) for n in nodes}
    if not wanted:
        return {}
    state = _State(module, wanted | _syntactic_helpers(nodes))
    module._codegen(state)
    return state.ranges


def _syntactic_helpers(nodes: Iterable[cst.CSTNode]) -> set[int]:
    """Child nodes whose ranges a syntactic range is built from (decorators start at `@`...)."""
    extra: set[int] = set()
    for node in nodes:
        if isinstance(node, cst.FunctionDef | cst.ClassDef):
            extra.update(id(d) for d in node.decorators)
    return extra
