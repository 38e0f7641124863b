"""`--fix` and `--diff`: apply the rules' safe edits with libcst, keeping every other byte as it was.

An edit adds a keyword argument to one call (matching the call's own layout: same line, or one
argument per line with the same indentation and trailing comma), turns a bare decorator into a
call, and may extend an existing `from X import ...` with the name the new argument uses.
Nothing else in the file is regenerated, so the output differs from the input only there, and a
comment stays on the line (and after the code) it was on. A notebook gets only the changed cells'
sources rewritten, in the JSON layout the file already has (notebook_json.py).

`fixes_by_finding` applies each fix on its own, for formats that ship fixes (SARIF).
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass

import libcst as cst

from llmguard.lint import notebook_json
from llmguard.lint.edits import AddKeyword
from llmguard.lint.engine import Analysis, Engine
from llmguard.lint.layout import append_items, keyword_arg
from llmguard.lint.notebooks import (
    CELL_MARKER,
    NotebookError,
    cell_source,
    join_for_fix,
    load_notebook,
    split_fixed,
)

FixKey = tuple[str, "int | None", int, int]  # (code, cell, line, column), as in the Finding
_MARKER = re.compile("^" + re.escape(CELL_MARKER.partition("{")[0]) + r"(\d+)$")


@dataclass
class FixResult:
    new_text: str | None  # None when nothing changed
    applied: int
    diff: str = ""
    skipped: str | None = None  # why a file with fixable findings was left as it was (for the user)


@dataclass(frozen=True)
class TextChange:
    """Replace the text from (line, column) up to (end_line, end_column) (1-based, end exclusive)."""

    line: int
    column: int
    end_line: int
    end_column: int
    text: str


def fix_source(engine: Engine, text: str, path: str, ignored: frozenset[str] = frozenset()) -> tuple[str, int]:
    """(fixed text, number of edits applied) for Python source."""
    analysis = engine.analyze(text, path, ignored=ignored, only_fixable=True)
    if not isinstance(analysis, Analysis):
        return text, 0
    edits = _edits(analysis)
    if not edits:
        return text, 0
    return _apply(analysis.module, edits), len(edits)


def fix_file(engine: Engine, data: bytes, path: str, kind: str, ignored: frozenset[str] = frozenset()) -> FixResult:
    """Fix one file's bytes; returns the new text (or None) and a unified diff of the change."""
    try:  # only UTF-8 files are rewritten: re-encoding another charset could change bytes we did not fix
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return FixResult(None, 0)
    if kind == "template":
        return FixResult(None, 0)
    if kind != "notebook":
        new, applied = fix_source(engine, text, path, ignored)
        if new == text:
            return FixResult(None, 0)
        return FixResult(new, applied, _diff(text, new, path))
    try:
        nb = load_notebook(text)
    except NotebookError:
        return FixResult(None, 0)
    joined, replaced = join_for_fix(nb)
    analysis = engine.analyze(joined, path, ignored=ignored, only_fixable=True)
    if not isinstance(analysis, Analysis):
        skipped = _unparsable(path, joined) if analysis is not None else None  # a FileResult: it did not parse
        return FixResult(None, 0, skipped=skipped)
    edits = _edits(analysis)
    if not edits:
        return FixResult(None, 0)
    changed = split_fixed(nb, _apply(analysis.module, edits), replaced)
    if not changed:
        return FixResult(None, 0)
    diffs = [_diff(cell_source(nb.cells[i]), src, f"{path}:cell {i + 1}") for i, src in sorted(changed.items())]
    return FixResult(notebook_json.write(text, changed), len(edits), "".join(diffs))


def fixes_by_finding(engine: Engine, data: bytes, path: str, kind: str) -> tuple[str, dict[FixKey, str]]:
    """(the file's text, {finding key: the whole file's text with only that finding's fix applied})."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "", {}
    nb = rows = replaced = None
    source = text
    if kind == "notebook":
        try:
            nb = load_notebook(text)
        except NotebookError:
            return text, {}
        source, replaced = join_for_fix(nb)
        rows = _fix_rows(source)
    elif kind == "template":
        return text, {}
    analysis = engine.analyze(source, path, only_fixable=True)
    if not isinstance(analysis, Analysis):
        return text, {}
    out: dict[FixKey, str] = {}
    for rule, report in analysis.reports:
        if not isinstance(report.edit, AddKeyword) or report.position is None:
            continue
        line, col0 = report.position[:2]
        cell = None
        if rows is not None:
            row = rows[line - 1] if 0 < line <= len(rows) else None
            if row is None:
                continue
            cell, line = row
        key: FixKey = (rule.code, cell, line, col0 + 1)
        if key in out:
            continue
        fixed = _apply(analysis.module, [report.edit])
        if nb is not None and replaced is not None:
            changed = split_fixed(nb, fixed, replaced)
            fixed = notebook_json.write(text, changed) if changed else text
        if fixed != text:
            out[key] = fixed
    return text, out


def text_changes(old: str, new: str) -> list[TextChange]:
    """The smallest line-and-column replacements that turn `old` into `new`, one per changed stretch."""
    old_lines, new_lines = _lines(old), _lines(new)
    changes = []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        before, after = "".join(old_lines[i1:i2]), "".join(new_lines[j1:j2])
        prefix = 0
        limit = min(len(before), len(after))
        while prefix < limit and before[prefix] == after[prefix]:
            prefix += 1
        suffix = 0
        while suffix < limit - prefix and before[-1 - suffix] == after[-1 - suffix]:
            suffix += 1
        if prefix and before[prefix - 1] == "\r" and before[prefix : prefix + 1] == "\n":
            prefix -= 1  # never split a CRLF
        start = _position(before, prefix, i1 + 1)
        end = _position(before, len(before) - suffix, i1 + 1)
        changes.append(TextChange(*start, *end, after[prefix : len(after) - suffix]))
    return changes


def _lines(text: str) -> list[str]:
    return re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", text)


def _position(block: str, offset: int, first_line: int) -> tuple[int, int]:
    """1-based (line, column) of `offset` inside `block`, which starts at column 1 of `first_line`."""
    head = block[:offset]
    breaks = _lines(head)
    if not breaks:
        return first_line, 1
    complete = head.endswith(("\n", "\r"))
    line = first_line + len(breaks) - (0 if complete else 1)
    column = 1 if complete else len(breaks[-1]) + 1
    return line, column


def _fix_rows(joined: str) -> list[tuple[int, int] | None]:
    """Row of a `join_for_fix` module -> (1-based cell, 1-based line in the cell); None for markers."""
    rows: list[tuple[int, int] | None] = []
    cell, line = 0, 0
    for text in joined.split("\n"):
        marker = _MARKER.match(text)
        if marker:
            cell, line = int(marker.group(1)) + 1, 0
            rows.append(None)
        else:
            line += 1
            rows.append((cell, line))
    return rows


def _unparsable(path: str, joined: str) -> str:
    """One line for the user: which cell keeps this notebook from being fixed."""
    where, why = "a cell", "syntax error"
    try:
        ast.parse(joined)
    except SyntaxError as err:
        rows = _fix_rows(joined)
        row = rows[err.lineno - 1] if err.lineno and 0 < err.lineno <= len(rows) else None
        if row is not None:
            where = f"cell {row[0]}"
        why = f"syntax error: {err.msg}"
    except (ValueError, RecursionError, MemoryError) as err:
        why = f"{type(err).__name__}: {err}"
    return (
        f"llmguard lint --fix: {path}: not fixed: {where} does not parse ({why}; see LG000), and a notebook "
        "is fixed only when all its code cells parse; fix that cell and run --fix again"
    )


def _edits(analysis: Analysis) -> list[AddKeyword]:
    return [report.edit for _, report in analysis.reports if isinstance(report.edit, AddKeyword)]


def _apply(module: cst.Module, edits: list[AddKeyword]) -> str:
    from llmguard.lint.guard import deep_retry  # deeply nested code recurses past the default limit

    return deep_retry(lambda: module.visit(_ApplyEdits(edits, module.default_indent)).code)


def _diff(old: str, new: str, label: str) -> str:
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), label, label)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


class _ApplyEdits(cst.CSTTransformer):
    def __init__(self, edits: list[AddKeyword], indent: str = "    ") -> None:
        super().__init__()
        self.indent = indent
        self.by_target: dict[int, list[AddKeyword]] = {}
        self.imports: dict[int, list[str]] = {}
        for edit in edits:
            self.by_target.setdefault(id(edit.target), []).append(edit)
            if edit.import_into is not None and edit.import_name:
                names = self.imports.setdefault(id(edit.import_into), [])
                if edit.import_name not in names:
                    names.append(edit.import_name)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        edits = self.by_target.get(id(original_node))
        if not edits:
            return updated_node
        present = {a.keyword.value for a in updated_node.args if a.keyword is not None}
        new = [keyword_arg(e.keyword, e.value) for e in _unique(edits) if e.keyword not in present]
        if not new:
            return updated_node
        items = list(updated_node.args)
        after = None
        if items:  # the whitespace (and comment) between the last argument and `)`
            after = items[-1].whitespace_after_arg
            items[-1] = items[-1].with_changes(whitespace_after_arg=cst.SimpleWhitespace(""))
        args, opening, after = append_items(items, new, updated_node.whitespace_before_args, after, self.indent)
        if after is not None:
            args[-1] = args[-1].with_changes(whitespace_after_arg=after)
        return updated_node.with_changes(args=args, whitespace_before_args=opening)

    def leave_Decorator(self, original_node: cst.Decorator, updated_node: cst.Decorator) -> cst.Decorator:
        edits = self.by_target.get(id(original_node))
        if not edits or isinstance(updated_node.decorator, cst.Call):
            return updated_node
        new = [keyword_arg(e.keyword, e.value) for e in _unique(edits)]
        args, _, _ = append_items([], new, cst.SimpleWhitespace(""), None, self.indent)
        return updated_node.with_changes(decorator=cst.Call(func=updated_node.decorator, args=args))

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom:
        names = self.imports.get(id(original_node))
        if not names or isinstance(updated_node.names, cst.ImportStar):
            return updated_node
        present = {a.evaluated_alias or a.evaluated_name for a in updated_node.names}
        new = [cst.ImportAlias(name=cst.Name(n)) for n in names if n not in present]
        if not new:
            return updated_node
        lpar, rpar = updated_node.lpar, updated_node.rpar
        opening = lpar.whitespace_after if lpar is not None else cst.SimpleWhitespace("")
        after = rpar.whitespace_before if rpar is not None else None
        items, opening, after = append_items(list(updated_node.names), new, opening, after, self.indent)
        changes: dict[str, object] = {"names": items}
        if lpar is not None:
            changes["lpar"] = lpar.with_changes(whitespace_after=opening)
        if rpar is not None and after is not None:
            changes["rpar"] = rpar.with_changes(whitespace_before=after)
        return updated_node.with_changes(**changes)


def _unique(edits: list[AddKeyword]) -> list[AddKeyword]:
    seen, out = set(), []
    for edit in edits:
        if edit.keyword not in seen:
            seen.add(edit.keyword)
            out.append(edit)
    return out
