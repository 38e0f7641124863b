"""One fast walk over a libcst tree that collects what the rules look at.

libcst's visitor calls two hooks on every node, tokens and whitespace included, which costs about
as much as the parse itself. Every rule here starts from a few kinds of node (calls, decorators,
loops, assignments, imports), so one iterative walk over the fields that can hold code collects
them all, in source order, with the function each one sits in. Rules then look at those lists and
walk small subtrees (a loop body) with the same walker.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import libcst as cst

from llmguard.lint.names import ImportMap, dotted
from llmguard.lint.values import string_value

_NOT_CODE = {
    "lpar",
    "rpar",
    "comma",
    "semicolon",
    "colon",
    "equal",
    "star",
    "dot",
    "operator",
    "lbracket",
    "rbracket",
    "lbrace",
    "rbrace",
    "leading_lines",
    "lines_after_decorators",
    "header",
    "footer",
    "trailing_whitespace",
    "newline",
    "asynchronous",
    "relative",
    "default_indent",
    "default_newline",
    "encoding",
    "has_trailing_newline",
    "prefix",
    "quote",
    "start",
    "end",
    "arrow",
    "walrus",
}
_FIELDS: dict[type, tuple[str, ...]] = {}
_SCOPES = (cst.FunctionDef, cst.Lambda)
# Nodes that never hold code below them: the walk does not look inside.
LEAVES = frozenset(
    {
        cst.Name,
        cst.SimpleString,
        cst.Integer,
        cst.Float,
        cst.Imaginary,
        cst.Ellipsis,
        cst.FormattedStringText,
        cst.Pass,
        cst.Break,
        cst.Continue,
        cst.ImportStar,
        cst.Comment,
        cst.EmptyLine,
        cst.Newline,
    }
)


def code_fields(kind: type) -> tuple[str, ...]:
    """The dataclass fields of a node type that can hold code (no tokens or whitespace); cached."""
    names = _FIELDS.get(kind)
    if names is None:
        names = tuple(
            f.name for f in dataclasses.fields(kind) if f.name not in _NOT_CODE and not f.name.startswith("whitespace")
        )
        _FIELDS[kind] = names
    return names


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The child nodes that can hold code, in source order (no tokens or whitespace)."""
    out: list[cst.CSTNode] = []
    for name in code_fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            out.append(value)
        elif isinstance(value, tuple | list):
            out.extend(v for v in value if isinstance(v, cst.CSTNode))
    return out


def walk(node: cst.CSTNode, into_scopes: bool = True) -> Iterator[cst.CSTNode]:
    """Pre-order walk; with into_scopes=False it does not enter nested functions, lambdas or classes."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if not into_scopes and current is not node and isinstance(current, (*_SCOPES, cst.ClassDef)):
            continue
        kids = children(current)
        kids.reverse()
        stack.extend(kids)


Scope = cst.FunctionDef | cst.Lambda | None  # the enclosing function, or None at module (and class body) level


@dataclass
class Assignment:
    scope: Scope
    value: cst.BaseExpression
    order: int


@dataclass
class FileIndex:
    imports: ImportMap
    calls: list[tuple[cst.Call, Scope]] = field(default_factory=list)
    decorators: list[tuple[cst.Decorator, cst.FunctionDef]] = field(default_factory=list)
    loops: list[tuple[cst.While | cst.For, Scope]] = field(default_factory=list)
    assignments: dict[str, list[Assignment]] = field(default_factory=dict)
    module_constants: list[tuple[str, cst.BaseExpression]] = field(default_factory=list)
    order: dict[int, int] = field(default_factory=dict)  # id(call) -> position in source order
    classes: dict[str, cst.ClassDef] = field(default_factory=dict)  # module-level class name -> its definition
    method_class: dict[int, cst.ClassDef] = field(default_factory=dict)  # id(method) -> the class it is in
    # `d["key"] = v` and `x += v`: mutations of a dict or list that an Assign index does not see
    item_sets: dict[str, list[tuple[Scope, str | None, cst.BaseExpression]]] = field(default_factory=dict)
    augmented: dict[str, list[tuple[Scope, cst.BaseExpression]]] = field(default_factory=dict)

    def assign(self, key: str, scope: Scope, value: cst.BaseExpression, order: int) -> None:
        self.assignments.setdefault(key, []).append(Assignment(scope, value, order))

    def values_of(
        self, key: str, scope: Scope, before: int | None = None, fallback: bool = True
    ) -> list[cst.BaseExpression]:
        """What `key` was assigned in `scope` (falling back to module level), latest first."""
        found = self.assignments.get(key, ())
        for wanted in (scope, None) if scope is not None and fallback else (scope,):
            hits = [a for a in found if a.scope is wanted and (before is None or a.order < before)]
            if hits:
                return [a.value for a in sorted(hits, key=lambda a: -a.order)]
        return []


def build_index(module: cst.Module, known: frozenset[str] = frozenset()) -> FileIndex:
    # long: one flat loop over every node of the file; a helper call per node would slow the hot path
    index = FileIndex(ImportMap(known=known))
    imports = index.imports
    # (node, enclosing function, the class whose body this is directly in)
    stack: list[tuple[cst.CSTNode, Scope, cst.ClassDef | None]] = [(module, None, None)]
    counter = 0
    while stack:
        node, scope, owner = stack.pop()
        in_class = owner is not None
        counter += 1
        kind = type(node)
        child_scope, child_owner = scope, owner
        # `kind is X` (not isinstance) keeps this loop over every node fast; cast() only names the type
        if kind is cst.Call:
            index.calls.append((cast(cst.Call, node), scope))
            index.order[id(node)] = counter
        elif kind is cst.Assign:
            assign = cast(cst.Assign, node)
            for target in assign.targets:
                _record_target(index, target.target, scope, assign.value, counter, in_class)
        elif kind is cst.AnnAssign:
            annotated = cast(cst.AnnAssign, node)
            if annotated.value is not None:
                _record_target(index, annotated.target, scope, annotated.value, counter, in_class)
        elif kind is cst.AugAssign:
            augmented = cast(cst.AugAssign, node)
            key = dotted(augmented.target)
            if key is not None:
                index.augmented.setdefault(key, []).append((scope, augmented.value))
        elif kind is cst.WithItem:
            item = cast(cst.WithItem, node)
            if item.asname is not None:
                _record_target(index, item.asname.name, scope, item.item, counter, in_class)
        elif kind is cst.FunctionDef:
            function = cast(cst.FunctionDef, node)
            for decorator in function.decorators:
                index.decorators.append((decorator, function))
            if owner is not None:
                index.method_class[id(node)] = owner
            child_scope, child_owner = function, None
        elif kind is cst.Lambda:
            child_scope = cast(cst.Lambda, node)
        elif kind is cst.ClassDef:
            class_def = cast(cst.ClassDef, node)
            if scope is None and owner is None:
                index.classes[class_def.name.value] = class_def
            child_owner = class_def
        elif kind is cst.While or kind is cst.For:
            index.loops.append((cast("cst.While | cst.For", node), scope))
        elif kind is cst.Import or kind is cst.ImportFrom:
            imports.add(cast("cst.Import | cst.ImportFrom", node))
            continue
        kids: list[tuple[cst.CSTNode, Scope, cst.ClassDef | None]] = []
        for name in _FIELDS.get(kind) or code_fields(kind):
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                if type(value) not in LEAVES:
                    kids.append((value, child_scope, child_owner))
            elif isinstance(value, tuple | list):
                kids.extend(
                    (v, child_scope, child_owner) for v in value if isinstance(v, cst.CSTNode) and type(v) not in LEAVES
                )
        kids.reverse()
        stack.extend(kids)
    return index


def _record_target(
    index: FileIndex, target: cst.BaseExpression, scope: Scope, value: cst.BaseExpression, order: int, in_class: bool
) -> None:
    if isinstance(target, cst.Tuple | cst.List):
        elements = [e.value for e in target.elements]
        values = [e.value for e in value.elements] if isinstance(value, cst.Tuple | cst.List) else None
        if values is not None and len(values) == len(elements):
            for sub_target, sub_value in zip(elements, values, strict=True):
                _record_target(index, sub_target, scope, sub_value, order, in_class)
        return
    if isinstance(target, cst.Subscript):  # params["max_tokens"] = 100
        base = dotted(target.value)
        if base is not None and len(target.slice) == 1 and isinstance(target.slice[0].slice, cst.Index):
            name = string_value(target.slice[0].slice.value)
            index.item_sets.setdefault(base, []).append((None if "." in base else scope, name, value))
        return
    key = dotted(target)
    if key is None:
        return
    if "." in key:  # self.client set in __init__ is used from every method
        scope = None
    index.assign(key, scope, value, order)
    if in_class and "." not in key:
        index.assign(f"self.{key}", None, value, order)
        index.assign(f"cls.{key}", None, value, order)
    elif scope is None and not in_class and "." not in key:
        index.module_constants.append((key, value))
