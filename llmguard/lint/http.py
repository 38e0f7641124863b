"""Raw HTTP calls (requests, httpx, aiohttp) that go to a known LLM API endpoint."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from llmguard.lint import sdk
from llmguard.lint.context import FileContext
from llmguard.lint.index import Scope
from llmguard.lint.names import dotted
from llmguard.lint.values import keyword


@dataclass(eq=False)
class RawHttpCall:
    node: cst.Call
    library: str  # "requests" | "httpx" | "aiohttp"
    session: cst.Call | None  # the Session/Client constructor the call goes through, if known


def raw_http_calls(ctx: FileContext) -> list[RawHttpCall]:
    cached = getattr(ctx, "_raw_http", None)
    if cached is not None:
        return cached
    found: list[RawHttpCall] = []
    if any(host in ctx.source for host in sdk.LLM_HOSTS):
        for call, scope in ctx.index.calls:
            hit = _classify(ctx, call, scope)
            if hit is not None and _goes_to_llm(ctx, call, scope):
                found.append(hit)
    ctx._raw_http = found  # type: ignore[attr-defined]
    return found


def _classify(ctx: FileContext, call: cst.Call, scope: Scope) -> RawHttpCall | None:
    qualified = ctx.qualify(call.func)
    if qualified in sdk.HTTP_FUNCTIONS:
        return RawHttpCall(call, sdk.HTTP_FUNCTIONS[qualified], None)
    func = call.func
    if not isinstance(func, cst.Attribute) or func.attr.value not in sdk.HTTP_VERBS:
        return None
    session = _session_of(ctx, func.value, scope)
    if session is None:
        return None
    return RawHttpCall(call, sdk.HTTP_SESSIONS[ctx.qualify(session.func) or ""], session)


def _session_of(ctx: FileContext, expr: cst.BaseExpression, scope: Scope) -> cst.Call | None:
    for _ in range(3):
        if isinstance(expr, cst.Call):
            return expr if ctx.qualify(expr.func) in sdk.HTTP_SESSIONS else None
        key = dotted(expr)
        if key is None:
            return None
        values = ctx.bindings(key, scope)
        if not values:
            return None
        expr = values[0]
    return None


def _goes_to_llm(ctx: FileContext, call: cst.Call, scope: Scope) -> bool:
    url = keyword(call, "url")
    if url is None:
        positional = [a for a in call.args if a.keyword is None and not a.star]
        name = call.func.attr.value if isinstance(call.func, cst.Attribute) else ""
        index = 1 if name == "request" or (ctx.qualify(call.func) or "").endswith(".request") else 0
        if len(positional) <= index:
            return False
        url = positional[index]
    text = ctx.text_of(url.value, scope)
    if text is None:
        return False
    return any(host in text.text for host in sdk.LLM_HOSTS)
