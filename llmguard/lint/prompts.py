"""Where the prompt text of an LLM call is: message contents, system, prompt, input, instructions."""

from __future__ import annotations

import libcst as cst

from llmguard.lint.context import FileContext, LLMCall
from llmguard.lint.index import Scope
from llmguard.lint.names import dotted
from llmguard.lint.values import keyword, string_value

PROMPT_KEYWORDS = ("system", "prompt", "input", "instructions")
CUSTOM_KEYWORDS = ("prompt", "messages", "system", "input", "content", "text", "query", "question", "instructions")


def prompt_parts(ctx: FileContext, call: LLMCall) -> tuple[list[cst.BaseExpression], int]:
    """(prompt value expressions, number of chat messages) of a call; values are not followed."""
    parts: list[cst.BaseExpression] = []
    messages = 0
    for arg in call.node.args:
        if arg.star:
            continue
        name = arg.keyword.value if arg.keyword is not None else None
        if name is None:
            if call.endpoint == "custom":
                parts.append(arg.value)
            continue
        if name == "messages" or (name == "input" and _is_sequence(ctx, arg.value, call.scope)):
            found = message_contents(ctx, arg.value, call.scope)
            parts.extend(found)
            messages += len(found)
        elif name in PROMPT_KEYWORDS or (call.endpoint == "custom" and name in CUSTOM_KEYWORDS):
            value = ctx.follow(arg.value, call.scope)
            if isinstance(value, cst.List | cst.Tuple):  # system=[{"type": "text", "text": ...}]
                parts.extend(_block_texts(value))
            else:
                parts.append(arg.value)
    return parts, messages


def _is_sequence(ctx: FileContext, expr: cst.BaseExpression, scope: Scope) -> bool:
    return isinstance(ctx.follow(expr, scope), cst.List | cst.Tuple)


def message_contents(ctx: FileContext, expr: cst.BaseExpression, scope: Scope) -> list[cst.BaseExpression]:
    """The content of every message a `messages=` value may hold: list literals, comprehensions,
    `a + b`, `[*a, b]`, every assignment of a variable, and what `.append()`, `.insert()`,
    `.extend()` and `+=` add to it in the same function."""
    found: list[cst.BaseExpression] = []
    for element in _messages(ctx, expr, scope, 0):
        message = ctx.follow(element, scope)
        content = _dict_value(message, "content")
        if content is None:
            continue
        followed = ctx.follow(content, scope)
        if isinstance(followed, cst.List | cst.Tuple):
            found.extend(_block_texts(followed))
        else:
            found.append(content)
    return found


def _messages(ctx: FileContext, expr: cst.BaseExpression, scope: Scope, depth: int) -> list[cst.BaseExpression]:
    if depth > 4:
        return []
    key = dotted(expr)
    if key is None:
        values = [expr]
    else:
        values = ctx.bindings(key, scope) or [ctx.follow(expr, scope)]
        values = [v for v in values if v is not expr]
    out: list[cst.BaseExpression] = []
    for value in values:
        if isinstance(value, cst.List | cst.Tuple):
            for element in value.elements:
                if isinstance(element, cst.StarredElement):
                    out.extend(_messages(ctx, element.value, scope, depth + 1))
                else:
                    out.append(element.value)
        elif isinstance(value, cst.ListComp | cst.GeneratorExp):
            out.append(value.elt)
        elif isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Add):
            out.extend(_messages(ctx, value.left, scope, depth + 1))
            out.extend(_messages(ctx, value.right, scope, depth + 1))
        elif (
            isinstance(value, cst.Call)
            and isinstance(value.func, cst.Name)
            and value.func.value in ("list", "tuple")
            and len(value.args) == 1
        ):
            out.extend(_messages(ctx, value.args[0].value, scope, depth + 1))
    if key is not None:
        out.extend(_added(ctx, key, scope, depth))
    return out


def _added(ctx: FileContext, key: str, scope: Scope, depth: int) -> list[cst.BaseExpression]:
    """Messages `.append()`/`.insert()`/`.extend()`/`+=` add to the list named `key` in `scope`."""
    out: list[cst.BaseExpression] = []
    for method, call, where in ctx.method_calls.get(key, ()):
        if (where is not scope and "." not in key) or not call.args:
            continue
        if method == "append":
            out.append(call.args[0].value)
        elif method == "insert" and len(call.args) == 2:
            out.append(call.args[1].value)
        elif method == "extend":
            out.extend(_messages(ctx, call.args[0].value, scope, depth + 1))
    for where, value in ctx.index.augmented.get(key, ()):
        if where is scope or "." in key:
            out.extend(_messages(ctx, value, scope, depth + 1))
    return out


def _block_texts(blocks: cst.List | cst.Tuple) -> list[cst.BaseExpression]:
    texts = []
    for element in blocks.elements:
        text = _dict_value(element.value, "text")
        if text is not None:
            texts.append(text)
        elif not isinstance(element.value, cst.Dict | cst.Call):
            texts.append(element.value)
    return texts


def _dict_value(expr: cst.BaseExpression, key: str) -> cst.BaseExpression | None:
    if isinstance(expr, cst.Dict):
        for element in expr.elements:
            if isinstance(element, cst.DictElement) and string_value(element.key) == key:
                return element.value
    elif isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == "dict":
        arg = keyword(expr, key)
        return arg.value if arg is not None else None
    return None
