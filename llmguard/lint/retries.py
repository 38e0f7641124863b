"""Retry shapes shared by LG101/LG105/LG106: hand-written retry loops and tenacity/backoff uses."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import libcst as cst

from llmguard.lint import sdk
from llmguard.lint.context import FileContext
from llmguard.lint.index import Scope, children, walk
from llmguard.lint.names import dotted
from llmguard.lint.values import number

_EXITS = (cst.Raise, cst.Return, cst.Break)
_BROAD = {"Exception", "BaseException", "builtins.Exception", "builtins.BaseException"}


@dataclass(eq=False)
class RetryLoop:
    """A loop whose body has a try around an LLM call and an except branch that goes round again."""

    loop: cst.While | cst.For
    scope: Scope
    try_node: cst.Try
    handlers: list[cst.ExceptHandler]  # the handlers that retry (do not always leave the loop)

    @cached_property
    def infinite(self) -> bool:
        loop = self.loop
        if isinstance(loop, cst.While):
            test = loop.test
            return (isinstance(test, cst.Name) and test.value == "True") or number(test) not in (None, 0)
        return isinstance(loop.iter, cst.Call) and (dotted(loop.iter.func) or "").split(".")[-1] == "count"

    def bounded(self) -> bool:
        """A handler that can leave the loop, or a checked counter/deadline elsewhere in the body."""
        if any(_contains(h, _EXITS) for h in self.handlers):
            return True
        for node in _own_nodes(self.loop, skip=self.try_node.body):
            if isinstance(node, cst.If) and _contains(node.test, (cst.Comparison,)) and _contains(node.body, _EXITS):
                return True
        return False

    def sleeps(self) -> bool:
        for node in walk(self.loop.body, into_scopes=False):
            if isinstance(node, cst.Call):
                name = (dotted(node.func) or "").rsplit(".", 1)[-1].lower()
                if "sleep" in name or "wait" in name or "backoff" in name:
                    return True
        return False


def _contains(node: cst.CSTNode, kinds: tuple[type, ...]) -> bool:
    return any(isinstance(n, kinds) for n in walk(node, into_scopes=False))


def _always_leaves(handler: cst.ExceptHandler) -> bool:
    body = handler.body.body if isinstance(handler.body, cst.IndentedBlock) else ()
    for statement in body:
        small = statement.body if isinstance(statement, cst.SimpleStatementLine) else ()
        if any(isinstance(s, _EXITS) for s in small):
            return True
    return False


def retry_loops(ctx: FileContext) -> list[RetryLoop]:
    return ctx.memo(_find_retry_loops)


def _find_retry_loops(ctx: FileContext) -> list[RetryLoop]:
    found: list[RetryLoop] = []
    llm = ctx.llm_call_ids
    if llm:
        for loop, scope in ctx.index.loops:
            if not _retry_like(loop):
                continue
            for node in _own_nodes(loop):
                if not isinstance(node, cst.Try):
                    continue
                inside = list(walk(node.body, into_scopes=False))
                if not any(isinstance(n, cst.Call) and id(n) in llm for n in inside):
                    continue
                if _iterates(loop, inside) or not _leaves_on_success(node, inside):
                    continue
                handlers = [h for h in node.handlers if not _always_leaves(h)]
                if handlers:
                    found.append(RetryLoop(loop, scope, node, handlers))
    return found


def _retry_like(loop: cst.While | cst.For) -> bool:
    """Loops that go round to try again: `while True`, `while attempt < n`, `for _ in range(n)`/`count()`.

    A loop over a collection (`for doc in docs:`) that skips failed items is not retrying them.
    """
    if isinstance(loop, cst.While):
        test = loop.test
        constant = (isinstance(test, cst.Name) and test.value == "True") or number(test) not in (None, 0)
        return constant or isinstance(test, cst.Comparison)
    if isinstance(loop.iter, cst.Call):
        name = (dotted(loop.iter.func) or "").rsplit(".", 1)[-1]
        return name in ("range", "count", "repeat")
    return False


def _leaves_on_success(try_node: cst.Try, tried: list[cst.CSTNode]) -> bool:
    """A retry stops once the call works (return/break in the try body or its else); a loop that goes
    on either way repeats the call on purpose."""
    if any(isinstance(n, cst.Return | cst.Break) for n in tried):
        return True
    return try_node.orelse is not None and _contains(try_node.orelse, (cst.Return, cst.Break))


def _iterates(loop: cst.While | cst.For, tried: list[cst.CSTNode]) -> bool:
    """`for i in range(n):` whose try uses `i` makes n different calls; it does not retry one."""
    if not isinstance(loop, cst.For) or not isinstance(loop.target, cst.Name) or loop.target.value == "_":
        return False
    name = loop.target.value
    return any(isinstance(n, cst.Name) and n.value == name for n in tried)


def _own_nodes(loop: cst.While | cst.For, skip: cst.CSTNode | None = None) -> list[cst.CSTNode]:
    """Nodes of the loop body that belong to this loop (not to a nested loop or function)."""
    out: list[cst.CSTNode] = []
    stack: list[cst.CSTNode] = [loop.body]
    while stack:
        node = stack.pop()
        if node is skip:
            continue
        out.append(node)
        if isinstance(node, cst.While | cst.For | cst.FunctionDef | cst.ClassDef | cst.Lambda):
            continue
        stack.extend(children(node))
    return out


def is_broad(ctx: FileContext, expr: cst.BaseExpression | None) -> bool:
    """`except:`, `except Exception`, or a tuple that includes one of them."""
    if expr is None:
        return True
    if isinstance(expr, cst.Tuple):
        return any(is_broad(ctx, e.value) for e in expr.elements)
    name = dotted(expr)
    return name in _BROAD or ctx.qualify(expr) in _BROAD


def classifies(handler: cst.ExceptHandler) -> bool:
    """The handler looks at the exception (isinstance, status code) before deciding to retry."""
    for node in walk(handler.body, into_scopes=False):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "isinstance":
            return True
        if isinstance(node, cst.Attribute) and node.attr.value in ("status_code", "status", "code", "type"):
            return True
    return False


def function_calls_llm(ctx: FileContext, function: cst.FunctionDef) -> bool:
    llm = ctx.llm_call_ids
    return any(isinstance(n, cst.Call) and id(n) in llm for n in walk(function.body, into_scopes=False))


@dataclass(eq=False)
class RetryUse:
    """A tenacity `@retry`/`retry(...)`/`Retrying(...)` or backoff decorator in the file."""

    node: cst.Call | cst.Decorator  # the call, or the bare decorator (`@retry`)
    library: str  # "tenacity" | "backoff"
    qualified: str
    function: cst.FunctionDef | None  # the decorated function, if used as a decorator

    @property
    def call(self) -> cst.Call | None:
        return self.node if isinstance(self.node, cst.Call) else None


def retry_uses(ctx: FileContext) -> list[RetryUse]:
    return ctx.memo(_find_retry_uses)


def _find_retry_uses(ctx: FileContext) -> list[RetryUse]:
    decorated: dict[int, cst.FunctionDef] = {}
    found: list[RetryUse] = []
    for decorator, function in ctx.index.decorators:
        expr = decorator.decorator
        if isinstance(expr, cst.Call):
            decorated[id(expr)] = function
            continue
        qualified = ctx.qualify(expr)
        if qualified in sdk.TENACITY_RETRY:
            found.append(RetryUse(decorator, "tenacity", qualified, function))
    for call, _scope in ctx.index.calls:
        qualified = ctx.qualify(call.func)
        if qualified is None:
            continue
        if qualified in sdk.TENACITY_RETRY or qualified in sdk.TENACITY_RETRYING:
            found.append(RetryUse(call, "tenacity", qualified, decorated.get(id(call))))
        elif qualified in sdk.BACKOFF_DECORATORS:
            found.append(RetryUse(call, "backoff", qualified, decorated.get(id(call))))
    return found
