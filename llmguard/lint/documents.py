"""File and document reads that end up in prompts (LG402) and prompt templates loaded by path (LG403)."""

from __future__ import annotations

from pathlib import Path

import libcst as cst

from llmguard.lint.context import FileContext
from llmguard.lint.index import Scope
from llmguard.lint.values import string_value

_READS = {"read", "read_text", "read_bytes"}
_PASS_THROUGH = {"strip", "lstrip", "rstrip", "decode", "format", "format_map", "replace", "lower", "upper"}
_OPENERS = {"open", "io.open", "codecs.open", "builtins.open"}
_PATHS = {"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "Path"}


def read_call(expr: cst.BaseExpression) -> cst.Call | None:
    """The whole-file read in `open(p).read()`, `Path(p).read_text().strip()`, ...; None otherwise."""
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
        method = expr.func.attr.value
        if method in _READS:
            return expr if not [a for a in expr.args if a.keyword is None or a.keyword.value == "size"] else None
        if method not in _PASS_THROUGH:
            return None
        expr = expr.func.value
    return None


def literal_path(ctx: FileContext, read: cst.Call, scope: Scope) -> str | None:
    """The literal path a read opens (`open("prompts/a.txt")`, `Path(__file__).parent / "a.txt"`)."""
    if not isinstance(read.func, cst.Attribute):  # read_call() only returns `<source>.read...()` calls
        return None
    source = read.func.value
    if isinstance(source, cst.Name):
        values = ctx.bindings(source.value, scope)
        if len(values) != 1:
            return None
        source = values[0]
    return _path_of(ctx, source)


def _path_of(ctx: FileContext, expr: cst.BaseExpression) -> str | None:
    if isinstance(expr, cst.Call):
        name = ctx.qualify(expr.func) or (expr.func.value if isinstance(expr.func, cst.Name) else None)
        if (name in _OPENERS or name in _PATHS) and expr.args and expr.args[0].keyword is None:
            text = string_value(expr.args[0].value)
            if text is not None:
                return text
            return _path_of(ctx, expr.args[0].value)
        return None
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Divide):
        right = string_value(expr.right)
        if right is None:
            return None
        if _is_file_dir(expr.left):
            return "__file__/" + right
        left = _path_of(ctx, expr.left)
        return None if left is None else f"{left}/{right}"
    return None


def _is_file_dir(expr: cst.BaseExpression) -> bool:
    """`Path(__file__).parent`, optionally with `.resolve()`/`.absolute()` before `.parent`."""
    if not (isinstance(expr, cst.Attribute) and expr.attr.value == "parent"):
        return False
    inner = expr.value
    while (
        isinstance(inner, cst.Call)
        and isinstance(inner.func, cst.Attribute)
        and inner.func.attr.value in ("resolve", "absolute")
    ):
        inner = inner.func.value
    return isinstance(inner, cst.Call) and any(
        isinstance(a.value, cst.Name) and a.value.value == "__file__" for a in inner.args
    )


def resolve_path(ctx: FileContext, literal: str) -> Path | None:
    """Where a literal path points: next to the linted file, else under the config root or cwd."""
    here = Path(ctx.path).parent if ctx.path and not ctx.path.startswith("<") else None
    if literal.startswith("__file__/"):
        candidates = [here / literal[len("__file__/") :]] if here is not None else []
    else:
        candidates = (
            [Path(literal)]
            if Path(literal).is_absolute()
            else [*([here / literal] if here is not None else []), ctx.config.root / literal, Path.cwd() / literal]
        )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def whole_read(
    ctx: FileContext, expr: cst.BaseExpression, scope: Scope, before: int | None, depth: int = 0
) -> cst.Call | None:
    """The untruncated read of a document (not a literal-path template) that `expr` includes, if any."""
    if depth > 4:
        return None
    read = read_call(expr)
    if read is not None:
        return None if literal_path(ctx, read, scope) is not None else read
    if isinstance(expr, cst.Name):
        values = ctx.bindings(expr.value, scope, before)
        return whole_read(ctx, values[0], scope, before, depth + 1) if values else None
    if isinstance(expr, cst.FormattedString):
        for part in expr.parts:
            if isinstance(part, cst.FormattedStringExpression):
                found = whole_read(ctx, part.expression, scope, before, depth + 1)
                if found is not None:
                    return found
        return None
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add | cst.Modulo):
        return whole_read(ctx, expr.left, scope, before, depth + 1) or whole_read(
            ctx, expr.right, scope, before, depth + 1
        )
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "format":
        for arg in expr.args:
            found = whole_read(ctx, arg.value, scope, before, depth + 1)
            if found is not None:
                return found
    return None
