"""Raw HTTP calls (requests, httpx, aiohttp) that go to an LLM API: by host, or by endpoint path.

The URL is read with its run-time parts blanked: `f"{base_url}/chat/completions"` and `base_url +
"/v1/messages"` are LLM endpoints whatever `base_url` holds (self-hosted, proxied, or an
OpenAI-compatible server), and a path only counts where it is (`/completions` only at the end).
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from llmguard.lint import sdk
from llmguard.lint.context import FileContext
from llmguard.lint.index import Scope
from llmguard.lint.names import dotted
from llmguard.lint.values import keyword, string_value

_UNKNOWN = "\0"  # stands for a part of the URL only known at run time


@dataclass(eq=False)
class RawHttpCall:
    node: cst.Call
    library: str  # "requests" | "httpx" | "aiohttp"
    session: cst.Call | None  # the Session/Client constructor the call goes through, if known
    scope: Scope = None


def raw_http_calls(ctx: FileContext) -> list[RawHttpCall]:
    return ctx.memo(_find_raw_http_calls)


def _find_raw_http_calls(ctx: FileContext) -> list[RawHttpCall]:
    found: list[RawHttpCall] = []
    if any(literal in ctx.source for literal in sdk.LLM_URL_LITERALS):
        for call, scope in ctx.index.calls:
            hit = _classify(ctx, call, scope)
            if hit is not None and _goes_to_llm(ctx, call, scope):
                found.append(hit)
    return found


def _classify(ctx: FileContext, call: cst.Call, scope: Scope) -> RawHttpCall | None:
    qualified = ctx.qualify(call.func)
    if qualified in sdk.HTTP_FUNCTIONS:
        return RawHttpCall(call, sdk.HTTP_FUNCTIONS[qualified], None, scope)
    func = call.func
    if not isinstance(func, cst.Attribute) or func.attr.value not in sdk.HTTP_VERBS:
        return None
    session = _session_of(ctx, func.value, scope)
    if session is None:
        return None
    return RawHttpCall(call, sdk.HTTP_SESSIONS[ctx.qualify(session.func) or ""], session, scope)


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
    text = url_text(ctx, url.value, scope)
    return text is not None and is_llm_url(text)


def is_llm_url(text: str) -> bool:
    """A URL (run-time parts as NUL) that names an LLM API host or an LLM endpoint path."""
    if any(host in text for host in sdk.LLM_API_HOSTS) or any(path in text for path in sdk.LLM_API_PATHS):
        return True
    path = text.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    return path.endswith(sdk.LLM_API_TAIL_PATHS)


def url_text(ctx: FileContext, expr: cst.BaseExpression, scope: Scope, depth: int = 0) -> str | None:
    """The literal text of a URL expression with run-time parts as NUL; None when nothing is literal."""
    text = _url_text(ctx, expr, scope, depth)
    return None if text is None or not text.strip(_UNKNOWN) else text


def _url_text(ctx: FileContext, expr: cst.BaseExpression, scope: Scope, depth: int) -> str | None:
    if depth > 6:
        return _UNKNOWN
    expr = ctx.follow(expr, scope)
    if isinstance(expr, cst.Attribute):  # self.endpoint_url = "..." (or a class field default)
        key = dotted(expr)
        values = ctx.bindings(key, scope) if key is not None else []
        if len(values) == 1:
            return _url_text(ctx, values[0], scope, depth + 1)
    if isinstance(expr, cst.SimpleString):
        return string_value(expr)
    if isinstance(expr, cst.FormattedString):
        return "".join(
            part.value.replace("{{", "{").replace("}}", "}") if isinstance(part, cst.FormattedStringText) else _UNKNOWN
            for part in expr.parts
        )
    if isinstance(expr, cst.ConcatenatedString) or (
        isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add)
    ):
        left = _url_text(ctx, expr.left, scope, depth + 1)
        right = _url_text(ctx, expr.right, scope, depth + 1)
        if left is None and right is None:
            return None
        return (left or _UNKNOWN) + (right or _UNKNOWN)
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Modulo):  # "%s/chat/completions" % b
        left = _url_text(ctx, expr.left, scope, depth + 1)
        return None if left is None else left.replace("%s", _UNKNOWN)
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "format":
        template = _url_text(ctx, expr.func.value, scope, depth + 1)
        return None if template is None else _blank_fields(template)
    if isinstance(expr, cst.Call) and (ctx.qualify(expr.func) or "").endswith("urljoin") and len(expr.args) == 2:
        base = _url_text(ctx, expr.args[0].value, scope, depth + 1) or _UNKNOWN
        tail = _url_text(ctx, expr.args[1].value, scope, depth + 1)
        return None if tail is None else base.rstrip("/") + "/" + tail.lstrip("/")
    return _UNKNOWN if isinstance(expr, cst.Name | cst.Attribute | cst.Subscript | cst.Call) else None


def _blank_fields(template: str) -> str:
    """`"{base}/chat/completions"` (a str.format template) -> NUL + "/chat/completions"."""
    out, depth = [], 0
    for char in template:
        if char == "{":
            depth += 1
            if depth == 1:
                out.append(_UNKNOWN)
        elif char == "}" and depth:
            depth -= 1
        elif not depth:
            out.append(char)
    return "".join(out)
