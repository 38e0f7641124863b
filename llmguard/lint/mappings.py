"""What the `**mapping` arguments of a call pass, as far as the file shows.

`create(**params)` is looked into when `params` is a dict built in view: a `{...}` literal, a
`dict(...)` call, `a | b`, a name bound once to one of those, and that name's later mutations in
the same scope (`params["k"] = v`, `params.update(...)`, `params.setdefault(...)`, `params |= ...`).
The enclosing function's own `**kwargs` is "forwarded" (its callers decide what it holds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from llmguard.lint.index import FileIndex, Scope
from llmguard.lint.names import dotted
from llmguard.lint.values import string_value

if TYPE_CHECKING:
    from llmguard.lint.context import FileContext

MUTATORS = {"update", "setdefault", "append", "extend", "insert"}
MethodCalls = dict[str, list[tuple[str, cst.Call, Scope]]]  # dotted name -> (method, call, scope)


@dataclass
class StarKwargs:
    """What the `**mapping` arguments of a call pass, as far as the file shows.

    `unknown` holds the source of each mapping that could not be read (a call's result, a
    parameter, a dict updated from elsewhere); `forwarded` is True when one is the enclosing
    function's own `**kwargs` (its callers decide what it holds).
    """

    keys: dict[str, cst.BaseExpression | None] = field(default_factory=dict)  # name -> value, if known
    choices: list[frozenset[str]] = field(default_factory=list)  # {bound: n} with bound = "a" if x else "b"
    unknown: list[str] = field(default_factory=list)
    forwarded: bool = False

    def has(self, names: tuple[str, ...]) -> bool:
        return any(n in self.keys for n in names) or any(c <= set(names) for c in self.choices)

    def maybe(self, names: tuple[str, ...]) -> bool:
        return any(c & set(names) for c in self.choices)

    def note(self) -> str:
        if not self.unknown:
            return " (a key of its **mapping is chosen at run time; it may set it)"
        shown = ", ".join(f"**{u}" for u in self.unknown[:2])
        return f" (could not see inside {shown}; it may set it)"


def method_calls(index: FileIndex) -> MethodCalls:
    """`x.update(...)`, `x.append(...)`, ... by the dotted name `x` they are called on."""
    found: MethodCalls = {}
    for call, scope in index.calls:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in MUTATORS:
            key = dotted(func.value)
            if key is not None:
                found.setdefault(key, []).append((func.attr.value, call, scope))
    return found


def star_kwargs(ctx: FileContext, call: cst.Call, scope: Scope) -> StarKwargs | None:
    """What the `**` arguments of `call` hold; None when it has none."""
    stars = [arg.value for arg in call.args if arg.star == "**"]
    if not stars:
        return None
    found = StarKwargs()
    for expr in stars:
        _read_mapping(ctx, expr, scope, found, 0)
    return found


def _read_mapping(ctx: FileContext, expr: cst.BaseExpression, scope: Scope, out: StarKwargs, depth: int) -> None:
    if depth > 4:
        out.unknown.append(_short(ctx.module.code_for_node(expr)))
        return
    if isinstance(expr, cst.Dict):
        _read_dict(ctx, expr, scope, out, depth)
        return
    if (
        isinstance(expr, cst.Call)
        and isinstance(expr.func, cst.Name)
        and expr.func.value == "dict"
        and "dict" not in ctx.imports.aliases
    ):
        _read_arguments(ctx, expr, scope, out, depth)
        return
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.BitOr):  # a | b
        _read_mapping(ctx, expr.left, scope, out, depth + 1)
        _read_mapping(ctx, expr.right, scope, out, depth + 1)
        return
    key = dotted(expr)
    if key is None:
        out.unknown.append(_short(ctx.module.code_for_node(expr)))
        return
    if "." not in key and isinstance(scope, cst.FunctionDef | cst.Lambda):
        star = scope.params.star_kwarg
        if isinstance(star, cst.Param) and star.name.value == key:
            out.forwarded = True
            return
    values = ctx.bindings(key, scope)
    if len(values) != 1:
        out.unknown.append(key)
        return
    _read_mapping(ctx, values[0], scope, out, depth + 1)
    _read_mutations(ctx, key, scope, out, depth)


def _read_dict(ctx: FileContext, expr: cst.Dict, scope: Scope, out: StarKwargs, depth: int) -> None:
    for element in expr.elements:
        if isinstance(element, cst.StarredDictElement):
            _read_mapping(ctx, element.value, scope, out, depth + 1)
        elif isinstance(element, cst.DictElement):
            keys = _key_names(ctx, element.key, scope)
            if keys is None:
                out.unknown.append(_short(ctx.module.code_for_node(expr)))
            elif len(keys) == 1:
                out.keys[next(iter(keys))] = element.value
            else:
                out.choices.append(keys)


def _read_arguments(ctx: FileContext, call: cst.Call, scope: Scope, out: StarKwargs, depth: int) -> None:
    """`dict(a=1, **b)` or `d.update(a=1, other)`: keywords are keys, the rest are mappings."""
    for arg in call.args:
        if arg.keyword is not None:
            out.keys[arg.keyword.value] = arg.value
        else:
            _read_mapping(ctx, arg.value, scope, out, depth + 1)


def _key_names(ctx: FileContext, expr: cst.BaseExpression, scope: Scope, depth: int = 0) -> frozenset[str] | None:
    """The strings a dict key may be: a literal, a name bound once, `"a" if x else "b"`."""
    expr = ctx.follow(expr, scope)
    text = string_value(expr)
    if text is not None:
        return frozenset({text})
    if isinstance(expr, cst.IfExp) and depth < 4:
        body = _key_names(ctx, expr.body, scope, depth + 1)
        orelse = _key_names(ctx, expr.orelse, scope, depth + 1)
        return None if body is None or orelse is None else body | orelse
    return None


def _read_mutations(ctx: FileContext, key: str, scope: Scope, out: StarKwargs, depth: int) -> None:
    """`d["k"] = v`, `d.update(...)`, `d.setdefault("k", v)`, `d |= {...}` in the scope `d` is used in."""
    wanted = None if "." in key else scope
    for where, item, value in ctx.index.item_sets.get(key, ()):
        if where is wanted:
            if item is None:
                out.unknown.append(key)
            else:
                out.keys[item] = value
    for where, value in ctx.index.augmented.get(key, ()):
        if where is wanted:
            _read_mapping(ctx, value, scope, out, depth + 1)
    for method, call, where in ctx.method_calls.get(key, ()):
        if where is not wanted and "." not in key:
            continue
        if method == "update":
            _read_arguments(ctx, call, scope, out, depth)
        elif method == "setdefault" and call.args:
            name = string_value(call.args[0].value)
            if name is None:
                out.unknown.append(key)
            else:
                out.keys.setdefault(name, call.args[1].value if len(call.args) > 1 else None)


def _short(code: str) -> str:
    code = " ".join(code.split())
    return code if len(code) <= 30 else code[:27] + "..."
