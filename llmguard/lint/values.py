"""What an expression is worth without running it: numbers, None/infinity, and static prompt text."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst

INFINITE_NAMES = {"math.inf", "numpy.inf", "sys.maxsize"}
Qualify = Callable[[cst.BaseExpression], "str | None"]


def keyword(call: cst.Call, *names: str) -> cst.Arg | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value in names:
            return arg
    return None


def keyword_name(arg: cst.Arg) -> str:
    """The keyword of an argument (one `keyword()` found); empty for a positional argument."""
    return arg.keyword.value if arg.keyword is not None else ""


def has_star_kwargs(call: cst.Call) -> bool:
    return any(arg.star == "**" for arg in call.args)


def is_none(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def number(expr: cst.BaseExpression, qualify: Qualify | None = None) -> float | None:
    """A numeric literal or simple constant arithmetic (`5 * 60`), `float("inf")`, `math.inf`."""
    if isinstance(expr, cst.Integer | cst.Float):
        try:
            return float(expr.evaluated_value)
        except (ValueError, OverflowError):
            return None
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus | cst.Plus):
        inner = number(expr.expression, qualify)
        if inner is None:
            return None
        return -inner if isinstance(expr.operator, cst.Minus) else inner
    if isinstance(expr, cst.BinaryOperation):
        left, right = number(expr.left, qualify), number(expr.right, qualify)
        if left is None or right is None:
            return None
        op = expr.operator
        try:
            if isinstance(op, cst.Add):
                return left + right
            if isinstance(op, cst.Subtract):
                return left - right
            if isinstance(op, cst.Multiply):
                return left * right
            if isinstance(op, cst.Divide):
                return left / right
            if isinstance(op, cst.FloorDivide):
                return left // right
            if isinstance(op, cst.Power):
                return float(left**right)
        except (ZeroDivisionError, OverflowError):
            return None
        return None
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value in ("float", "int"):
        if len(expr.args) == 1:
            text = string_value(expr.args[0].value)
            if text is not None and text.strip().lower() in ("inf", "+inf", "infinity"):
                return math.inf
            if text is None:
                return number(expr.args[0].value, qualify)
    if qualify is not None and isinstance(expr, cst.Attribute) and qualify(expr) in INFINITE_NAMES:
        return math.inf
    return None


def is_infinite(expr: cst.BaseExpression, qualify: Qualify | None = None) -> bool:
    value = number(expr, qualify)
    return value is not None and (math.isinf(value) or value >= 2**31)


def string_value(expr: cst.BaseExpression) -> str | None:
    """The value of a plain or implicitly concatenated string literal (not bytes, not f-strings)."""
    if isinstance(expr, cst.SimpleString):
        try:
            value = expr.evaluated_value
        except Exception:  # noqa: BLE001 - odd escapes: not a literal we can read
            return None
        return value if isinstance(value, str) else None
    if isinstance(expr, cst.ConcatenatedString):
        left, right = string_value(expr.left), string_value(expr.right)
        return None if left is None or right is None else left + right
    return None


@dataclass(frozen=True)
class StaticText:
    """The text of a string-ish expression that is known before run time.

    `complete` is False when parts are only known at run time (f-string fields, `.format()`
    arguments, `%` operands): their tokens are not counted.
    """

    text: str
    complete: bool


def static_text(expr: cst.BaseExpression, qualify: Qualify | None = None) -> StaticText | None:
    """Literal text of a string, f-string, implicit/`+` concatenation, `textwrap.dedent(...)`,
    `"...".strip()`, `"...".format(...)`, `"..." % x` and `"sep".join([...])`; None if not text."""
    if isinstance(expr, cst.SimpleString):
        value = string_value(expr)
        return None if value is None else StaticText(value, True)
    if isinstance(expr, cst.FormattedString):
        parts, complete = [], True
        for part in expr.parts:
            if isinstance(part, cst.FormattedStringText):
                parts.append(part.value.replace("{{", "{").replace("}}", "}"))
            else:
                complete = False
        return StaticText("".join(parts), complete)
    if isinstance(expr, cst.ConcatenatedString) or (
        isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add)
    ):
        left = static_text(expr.left, qualify)
        right = static_text(expr.right, qualify)
        if left is None and right is None:
            return None
        left = left or StaticText("", False)
        right = right or StaticText("", False)
        return StaticText(left.text + right.text, left.complete and right.complete)
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Modulo):
        left = static_text(expr.left, qualify)
        return None if left is None else StaticText(left.text, False)
    if isinstance(expr, cst.Call):
        func = expr.func
        name = qualify(func) if qualify is not None else None
        if name in ("textwrap.dedent", "inspect.cleandoc") and expr.args:
            inner = static_text(expr.args[0].value, qualify)
            if inner is None:
                return None
            cleaned = textwrap.dedent(inner.text) if name == "textwrap.dedent" else _cleandoc(inner.text)
            return StaticText(cleaned, inner.complete)
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            if method in ("strip", "lstrip", "rstrip", "format", "format_map"):
                inner = static_text(func.value, qualify)
                if inner is None:
                    return None
                if method == "format" or method == "format_map":
                    return StaticText(inner.text, False)
                return StaticText(getattr(inner.text, method)(), inner.complete)
            if method == "join" and len(expr.args) == 1 and isinstance(expr.args[0].value, cst.List | cst.Tuple):
                sep = static_text(func.value, qualify)
                items = [static_text(e.value, qualify) for e in expr.args[0].value.elements]
                if sep is None or not items or any(i is None for i in items):
                    return None
                return StaticText(
                    sep.text.join(i.text for i in items if i is not None),
                    sep.complete and all(i.complete for i in items if i is not None),
                )
    return None


def _cleandoc(text: str) -> str:
    import inspect

    return inspect.cleandoc(text)
