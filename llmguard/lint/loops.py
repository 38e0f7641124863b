"""The loops an LLM call sits in, and what each loop shows about itself (LG601's raw material).

One walk per function that holds an LLM call finds every call lexically inside a loop body (not in a
nested function), with its innermost loop, and notes on each loop what bounds it in sight: a
throttle (`sleep`, `acquire`, a limiter), a cache lookup, a queue it drains, its own `break` or
`return`, or a limiting `with` around the call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

import libcst as cst

from llmguard.lint.context import FileContext, LLMCall
from llmguard.lint.index import LEAVES, Scope, code_fields
from llmguard.lint.names import dotted

# Names that show a visible bound on the rate: `async with sem:`, `limiter.acquire()`, `time.sleep(1)`.
_THROTTLE_WORDS = ("sleep", "acquire", "limiter", "ratelimit", "rate_limit", "throttle", "semaphore", "bucket")
_CACHE_WORDS = ("cache", "memo")
_WORDS = re.compile("|".join(_CACHE_WORDS + _THROTTLE_WORDS))
_DRAIN_METHODS = {"pop", "popleft", "popitem", "get", "get_nowait"}
_COMPREHENSIONS = frozenset({cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp})
_NESTED_SCOPES = frozenset({cst.FunctionDef, cst.Lambda})
_SKIP = LEAVES - {cst.Name, cst.Break}  # leaves that tell nothing about a loop (Name and Break do)
_Comprehension = cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp


@dataclass(eq=False)
class Loop:
    node: cst.CSTNode  # For, While or a comprehension
    scope: Scope
    iterable: cst.BaseExpression | None = None  # For / comprehension
    parent: Loop | None = None  # the loop this one sits in (same function)
    queue: str | None = None  # While: the collection its test looks at
    throttled: bool = False
    cached: bool = False
    drains: bool = False  # While: takes items from `queue`
    exits: bool = False  # has its own break/return: loops until done (an agent or a search), not a fan-out


@dataclass(eq=False)
class LoopSite:
    call: LLMCall
    loop: Loop
    limited: bool  # inside a `with` whose item looks like a limiter or semaphore


def loop_sites(ctx: FileContext, llm: dict[int, LLMCall]) -> list[LoopSite]:
    """Every LLM call lexically inside a loop body (not in a nested function), with its innermost loop.

    Only the functions that hold an LLM call are walked (and module level when it holds one): a loop
    in another function cannot hold one of them directly.
    """
    sites: list[LoopSite] = []
    scopes: dict[int, Scope] = {id(c.scope): c.scope for c in llm.values()}
    for scope in scopes.values():
        body = ctx.module if scope is None else scope.body
        _walk_scope(body, scope, llm, sites)
    return sites


_Entry = tuple[cst.CSTNode, "Loop | None", bool]  # (node, innermost loop, inside a limiting `with`)


def _walk_scope(root: cst.CSTNode, scope: Scope, llm: dict[int, LLMCall], sites: list[LoopSite]) -> None:
    stack: list[_Entry] = [(root, None, False)]
    while stack:
        node, loop, limited = stack.pop()
        kind = type(node)
        if kind in _NESTED_SCOPES:
            continue  # its own scope: walked on its own if it holds an LLM call
        # `kind is X` (not isinstance) keeps this loop over every node fast; cast() only names the type
        pushes: list[_Entry]
        if kind is cst.For:
            for_loop = cast(cst.For, node)
            new = Loop(node, scope, iterable=for_loop.iter, parent=loop)
            pushes = [(for_loop.body, new, limited)]
            pushes += [(c, loop, limited) for c in (for_loop.target, for_loop.iter, for_loop.orelse) if c is not None]
        elif kind is cst.While:
            while_loop = cast(cst.While, node)
            new = Loop(node, scope, queue=_queue_of(while_loop.test), parent=loop)
            pushes = [(while_loop.body, new, limited), (while_loop.test, loop, limited)]
            if while_loop.orelse is not None:
                pushes.append((while_loop.orelse, loop, limited))
        elif kind in _COMPREHENSIONS:
            pushes = _comprehension(cast(_Comprehension, node), scope, loop, limited)
        elif kind is cst.With:
            with_node = cast(cst.With, node)
            bound = limited or any(_throttling(item.item) for item in with_node.items)
            pushes = [(item, loop, limited) for item in with_node.items]
            pushes.append((with_node.body, loop, bound))
        else:
            if loop is not None:
                _note(node, kind, loop)
                if kind is cst.Call and id(node) in llm:
                    sites.append(LoopSite(llm[id(node)], loop, limited))
            pushes = [(c, loop, limited) for c in _kids(node)]
        stack.extend(pushes)


def _comprehension(node: _Comprehension, scope: Scope, loop: Loop | None, limited: bool) -> list[_Entry]:
    generator = node.for_in
    new = Loop(node, scope, iterable=generator.iter, parent=loop)
    parts = [node.key, node.value] if isinstance(node, cst.DictComp) else [node.elt]
    pushes: list[_Entry] = [(part, new, limited) for part in parts]
    pushes.append((generator, loop, limited))
    return pushes


def _kids(node: cst.CSTNode) -> list[cst.CSTNode]:
    """Child nodes that can hold code (tokens, whitespace and plain leaves left out); in any order."""
    out: list[cst.CSTNode] = []
    for name in code_fields(type(node)):
        value = getattr(node, name)
        kind = type(value)
        if kind is tuple or kind is list:
            out.extend(v for v in value if _is_code(type(v)))
        elif _is_code(kind):
            out.append(value)
    return out


_CODE_TYPES: dict[type, bool] = {}


def _is_code(kind: type) -> bool:
    found = _CODE_TYPES.get(kind)
    if found is None:
        found = _CODE_TYPES[kind] = issubclass(kind, cst.CSTNode) and kind not in _SKIP
    return found


def _note(node: cst.CSTNode, kind: type, loop: Loop) -> None:
    """What a node inside a loop tells about the loop: a throttle, a cache, a drained queue, an exit."""
    if kind is cst.Break or kind is cst.Return:
        loop.exits = True
    elif kind is cst.Name:
        _word(cast(cst.Name, node).value.lower(), loop)
    elif kind is cst.Attribute and loop.queue is not None:  # its `attr` Name is noted on its own
        attribute = cast(cst.Attribute, node)
        if attribute.attr.value in _DRAIN_METHODS and dotted(attribute.value) == loop.queue:
            loop.drains = True


def _word(lowered: str, loop: Loop) -> None:
    found = _WORDS.search(lowered)
    if found is not None:
        if found.group(0) in _CACHE_WORDS:
            loop.cached = True
        else:
            loop.throttled = True


def _throttling(expr: cst.BaseExpression) -> bool:
    """A `with` item that looks like a limiter: `sem`, `limiter.slot()`, `llmguard.step(...)`."""
    target = expr.func if isinstance(expr, cst.Call) else expr
    name = (dotted(target) or "").lower()
    parts = name.split(".")
    return (
        any(word in name for word in _THROTTLE_WORDS)
        or "llmguard" in name
        or any(part in ("sem", "sema", "lock") for part in parts)
    )


def _queue_of(test: cst.BaseExpression) -> str | None:
    """`while queue:`, `while not q.empty():`, `while len(todo) > 0:` -> the collection's name."""
    if isinstance(test, cst.Name | cst.Attribute):
        return dotted(test)
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = test.expression
        if isinstance(inner, cst.Call) and isinstance(inner.func, cst.Attribute) and inner.func.attr.value == "empty":
            return dotted(inner.func.value)
        return None
    if isinstance(test, cst.Comparison) and isinstance(test.left, cst.Call):
        call = test.left
        if isinstance(call.func, cst.Name) and call.func.value == "len" and len(call.args) == 1:
            return dotted(call.args[0].value)
    return None
