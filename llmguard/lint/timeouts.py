"""Where LLM timeouts are set (clients, with_options, calls, raw HTTP) and what they are worth."""

from __future__ import annotations

import math
from collections.abc import Iterator

import libcst as cst

from llmguard.lint.context import FileContext
from llmguard.lint.http import raw_http_calls
from llmguard.lint.index import Scope
from llmguard.lint.values import is_none, keyword, number

_TIMEOUT_TYPES = {"httpx.Timeout", "httpx2.Timeout", "aiohttp.ClientTimeout"}


def timeout_arguments(ctx: FileContext) -> Iterator[tuple[cst.Call, cst.Arg]]:
    """(call, timeout argument) for every LLM client, derived client, LLM call and raw LLM HTTP call."""
    seen: set[int] = set()

    def emit(call: cst.Call, *names: str) -> Iterator[tuple[cst.Call, cst.Arg]]:
        arg = keyword(call, *names)
        if arg is not None and id(arg) not in seen:
            seen.add(id(arg))
            yield call, arg

    for client in ctx.clients:
        yield from emit(client.node, "timeout")
        http_client = keyword(client.node, "http_client")
        if http_client is not None and isinstance(http_client.value, cst.Call):
            yield from emit(http_client.value, "timeout")
    for llm_call in ctx.llm_calls:
        yield from emit(llm_call.node, *llm_call.timeout_args)
        for client in llm_call.clients:
            current = client
            while current.parent is not None:
                yield from emit(current.node, "timeout")
                current = current.parent
    for call, scope in ctx.index.calls:  # with_options() on a client, even when no call goes through it
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in ("with_options", "copy"):
            if ctx.resolve_clients(func.value, scope):
                yield from emit(call, "timeout")
    for raw in raw_http_calls(ctx):
        yield from emit(raw.node, "timeout")


def timeout_seconds(ctx: FileContext, expr: cst.BaseExpression, scope: Scope = None) -> float | None:
    """Seconds a timeout value allows to wait for a response (math.inf when unbounded), or None if unknown.

    A name assigned once in the file (`TIMEOUT = None`) counts as its value; a parameter does not.
    """
    expr = ctx.constant(expr, scope)
    if is_none(expr):
        return math.inf
    if isinstance(expr, cst.Tuple) and len(expr.elements) == 2:  # requests' (connect, read)
        return timeout_seconds(ctx, expr.elements[1].value, scope)
    if isinstance(expr, cst.Call) and ctx.qualify(expr.func) in _TIMEOUT_TYPES:
        return _timeout_object(ctx, expr)
    return number(expr, ctx.qualify)


def _timeout_object(ctx: FileContext, call: cst.Call) -> float | None:
    """httpx.Timeout(default, read=...) -> the read timeout; aiohttp.ClientTimeout(total=, sock_read=)."""
    if ctx.qualify(call.func) == "aiohttp.ClientTimeout":
        values = [keyword(call, "total"), keyword(call, "sock_read")]
        given = [timeout_seconds(ctx, a.value) for a in values if a is not None]
        known = [v for v in given if v is not None]
        return min(known) if known else (math.inf if not given else None)
    read = keyword(call, "read")
    if read is not None:
        return timeout_seconds(ctx, read.value)
    default = keyword(call, "timeout")
    if default is None:
        positional = [a for a in call.args if a.keyword is None and not a.star]
        if not positional:
            return None
        default = positional[0]
    return timeout_seconds(ctx, default.value)
