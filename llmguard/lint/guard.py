"""Limits that keep hostile input from crashing or stalling a run.

libcst's native parser recurses on the C stack and segfaults (taking the whole process down) from
about 2,000 levels of nesting, and its run time grows with the square of a chain's depth (a
5,000-term `1+1+…` takes seconds, 100,000 terms minutes). CPython's own parser is fast and fails
cleanly instead: more than 200 nested brackets are a `SyntaxError`, a few thousand levels of
anything a `RecursionError`. So every text is checked with `compile(..., ast.PyCF_ONLY_AST)`
before libcst sees it, and the resulting tree is measured: deeper than `MAX_DEPTH`, or more
nesting work than `MAX_WORK`, is "too complex to lint" (an LG000), decided from the text alone so
the verdict is the same on every machine and can be cached. Text CPython rejects for another
reason (newer syntax than this interpreter knows) gets a cheap token scan instead.

libcst's visitors and code generation are plain Python recursion; code within the limits can
still pass the default recursion limit of 1,000 frames, so `run_deep` runs such work again in a
thread with a large stack and a higher limit.
"""

from __future__ import annotations

import ast
import re
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

MAX_DEPTH = 1000  # levels of nesting (statements + expressions; `a or b or c` counts as libcst nests it)
FREE_DEPTH = 20  # expression levels whose parse cost is linear; deeper levels add to the work
# The sum over expression nodes of their depth beyond FREE_DEPTH: libcst's extra time is about 1 µs per unit
# (a 1,000-deep `a[0][0]…` chain is ~960,000 units and ~0.9 s). The most found in 23,000 real files (the
# stdlib, site-packages) was 7.1 million, in a 450 KB generated sympy benchmark that parses in 3.4 s.
MAX_WORK = 10_000_000
MAX_BRACKETS = 200  # CPython's own limit (tokenizer MAXLEVEL)

_SHORT = 800  # characters: too few to nest deeper than libcst copes with (each level takes one) or to cost much
_SLACK = 2  # f-string parts share their string's position in 3.11's ast
_DEPTH_MESSAGES = (
    "too many nested parentheses",
    "too many levels of indentation",
    "too many nested",
    "too complex",
    "too many statically nested blocks",
)
_DEEP_STACK = 256 << 20  # bytes of C stack for run_deep; 8 MB already covers MAX_DEPTH (measured)
_DEEP_RECURSION = 100_000

T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """Why a text is not linted, and where (1-based line and column)."""

    message: str
    line: int = 1
    column: int = 1


def check(text: str) -> Problem | None:
    """None when libcst may parse `text`; else the LG000 to report instead.

    A plain syntax error is not a Problem here: libcst reports it (and may accept syntax newer
    than this interpreter's) once the scan has shown the text is not nested too deeply.
    """
    return inspect(text)[0]


def inspect(text: str) -> tuple[Problem | None, ast.Module | None]:
    """`check`, and CPython's tree of `text` when it compiled (treefilter.py reads it); a short
    text is not compiled (None)."""
    if len(text) < _SHORT:
        return None, None
    problem, _, tree = _verdict(text)
    return problem, tree


def verdict(text: str) -> tuple[Problem | None, SyntaxError | None]:
    """(why libcst must not parse `text` or None, CPython's own syntax error or None)."""
    problem, error, _ = _verdict(text)
    return problem, error


def _verdict(text: str) -> tuple[Problem | None, SyntaxError | None, ast.Module | None]:
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" and the like: not our concern
            warnings.simplefilter("ignore")
            tree = cast(ast.Module, compile(text, "<lint>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True))
    except (RecursionError, MemoryError):
        where = scan(text)
        return (
            Problem(
                "too complex to lint: nested too deeply for Python's own parser (not checked)",
                where.line if where is not None else 1,
            ),
            None,
            None,
        )
    except SyntaxError as err:
        if any(m in (err.msg or "") for m in _DEPTH_MESSAGES):
            message = f"syntax error: {err.msg} (not checked)"
            return Problem(message, err.lineno or 1, max(1, err.offset or 1)), err, None
        return scan(text), err, None
    except ValueError as err:  # NUL bytes
        return scan(text), SyntaxError(str(err)), None
    problem = measure(tree)
    return problem, None, tree if problem is None else None


def measure(tree: ast.AST) -> Problem | None:
    """Depth and nesting work of a parsed module (iterative: the tree may be thousands of levels deep)."""
    work = 0
    # (node, total depth, expression depth, the statement it is in: reported as the place)
    stack: list[tuple[ast.AST, int, int, ast.AST]] = [(tree, 0, 0, tree)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth, expr, statement = pop()
        if depth > MAX_DEPTH:
            return Problem(
                f"too complex to lint: nested more than {MAX_DEPTH} levels deep (not checked)", *_where(statement)
            )
        if isinstance(node, ast.expr):
            expr += 1
            if node.end_lineno == node.lineno:  # short: cannot be deep (each level takes a character)
                span = (node.end_col_offset or 0) - node.col_offset + _SLACK
                if expr + span <= FREE_DEPTH and depth + span <= MAX_DEPTH:
                    continue
            if expr > FREE_DEPTH:
                work += expr - FREE_DEPTH
                if work > MAX_WORK:
                    return Problem(
                        "too complex to lint: too much deeply nested code (nesting work over "
                        f"{MAX_WORK:,}) (not checked)",
                        *_where(statement),
                    )
            step = len(node.values) if isinstance(node, ast.BoolOp) else 1  # libcst nests `a or b or c`
        else:
            if isinstance(node, ast.stmt):
                expr, statement = 0, node
            step = 1
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, ast.AST):
                push((value, depth + step, expr, statement))
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        push((item, depth + step, expr, statement))
    return None


def _where(node: ast.AST) -> tuple[int, int]:
    return getattr(node, "lineno", 1) or 1, (getattr(node, "col_offset", 0) or 0) + 1


# -- text CPython cannot parse: a token scan ------------------------------------------------------
_TOKEN = re.compile(
    r"""(?P<string>[rRbBuUfFtT]{0,2}(?:'''(?:\\.|[^\\])*?(?:'''|\Z)|\"\"\"(?:\\.|[^\\])*?(?:\"\"\"|\Z)"""
    r"""|'(?:\\.|[^\\'\n])*(?:'|$)|"(?:\\.|[^\\"\n])*(?:"|$)))"""
    r"""|(?P<comment>\#[^\r\n]*)|(?P<cont>\\\r?\n)|(?P<newline>\r?\n|\r)"""
    r"""|(?P<open>[(\[{])|(?P<close>[)\]}])|(?P<sep>[,;])"""
    r"""|(?P<op>\*\*|//|<<|>>|->|:=|[-+*/%@&|^~<>=!.]=?|\b(?:or|and|not|lambda|if|else|await|in|is)\b)"""
    r"""|(?P<word>[^\W\d]\w*|\d[\w.]*)|(?P<other>\S)""",
    re.MULTILINE | re.DOTALL,
)


def scan(text: str) -> Problem | None:
    """An upper-bound estimate of nesting from tokens, for text `compile()` rejects.

    Each bracket is a level, and each operator or bracket pair in a comma-separated segment may be
    one more (chains such as `a.b.c`, `a[0][0]`, `-(-(-x))`, `lambda: lambda: 1`). f-strings are
    scanned as code, since libcst parses their replacement fields with the same recursive parser.
    """
    # per open bracket: [operators and bracket pairs in this segment, deepest bracket in it, deepest segment]
    stack: list[list[int]] = [[0, 0, 0]]
    work, line = 0, 1
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "string":
            token = match.group()
            if "f" in token[:3].lower() and "{" in token:  # f-string fields are code to libcst
                inner = scan(token[token.index("{") :])
                if inner is not None:
                    return Problem(inner.message, line + inner.line - 1)
            line += token.count("\n")
            continue
        if kind in ("comment", "other", "word"):
            continue
        frame = stack[-1]
        if kind in ("cont", "newline"):
            if kind == "newline" and len(stack) == 1:  # the end of a logical line ends its segment
                problem, work = _segment(frame, 1, work, line)
                if problem is not None:
                    return problem
            line += 1
        elif kind == "op":
            frame[0] += 1
        elif kind == "open":
            if len(stack) > MAX_BRACKETS:
                return Problem("syntax error: too many nested parentheses (not checked)", line)
            stack.append([0, 0, 0])
        else:  # sep or close
            problem, work = _segment(frame, len(stack), work, line)
            if problem is not None:
                return problem
            if kind == "close" and len(stack) > 1:
                stack.pop()
                parent = stack[-1]
                parent[0] += 1
                parent[1] = max(parent[1], 1 + frame[2])
    if sum(f[0] + f[1] for f in stack) + len(stack) > MAX_DEPTH:
        return Problem(f"too complex to lint: nested more than {MAX_DEPTH} levels deep (not checked)", line)
    return None


def _segment(frame: list[int], brackets: int, work: int, line: int) -> tuple[Problem | None, int]:
    """Close a segment of the scan: check its depth, add its nesting work, reset it."""
    chain = frame[0] + frame[1]
    if chain + brackets > MAX_DEPTH:
        return Problem(f"too complex to lint: nested more than {MAX_DEPTH} levels deep (not checked)", line), work
    if chain > FREE_DEPTH:
        work += (chain - FREE_DEPTH) ** 2 // 2
        if work > MAX_WORK:
            return Problem(
                f"too complex to lint: too much deeply nested code (nesting work over {MAX_WORK:,}) (not checked)", line
            ), work
    frame[2] = max(frame[2], chain)
    frame[0] = frame[1] = 0
    return None, work


# -- deep recursion --------------------------------------------------------------------------------
def run_deep(function: Callable[[], T]) -> T:
    """`function()` in a thread with a large C stack and a high recursion limit; its exceptions re-raised.

    The recursion limit is process-wide, so it is raised only while the thread runs and restored
    afterwards (concurrent deep runs share the raised limit; the last one out restores it).
    """
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    global _deep_runs, _saved_limit
    with _DEEP_LOCK:
        if _deep_runs == 0:
            _saved_limit = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_saved_limit, _DEEP_RECURSION))
        _deep_runs += 1
        previous = threading.stack_size()
        try:
            threading.stack_size(_DEEP_STACK)
            worker = threading.Thread(target=target, name="llmguard-lint-deep", daemon=True)
            worker.start()
        except (ValueError, RuntimeError, MemoryError) as exc:  # no thread or no big stack here
            worker = None
            outcome["error"] = RecursionError(f"cannot run with a larger stack ({exc})")
        finally:
            threading.stack_size(previous)
    try:
        if worker is not None:
            worker.join()
    finally:
        with _DEEP_LOCK:
            _deep_runs -= 1
            if _deep_runs == 0:
                sys.setrecursionlimit(_saved_limit)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


_DEEP_LOCK = threading.Lock()
_deep_runs = 0
_saved_limit = 1000


def deep_retry(function: Callable[[], T]) -> T:
    """`function()`, and once more with deep recursion allowed if it hit the recursion limit."""
    try:
        return function()
    except RecursionError:
        pass
    return run_deep(function)
