"""`--fix` and `--diff`: apply the rules' safe edits with libcst, keeping every other byte as it was.

An edit adds a keyword argument to one call (matching the call's own layout: same line, or one
argument per line with the same indentation and trailing comma), turns a bare decorator into a
call, and may extend an existing `from X import ...` with the name the new argument uses.
Nothing else in the file is regenerated, so the output differs from the input only there.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from llmguard.lint.edits import AddKeyword
from llmguard.lint.engine import Analysis, Engine
from llmguard.lint.notebooks import (
    NotebookError,
    cell_source,
    join_for_fix,
    load_notebook,
    split_fixed,
    write_cells,
)


@dataclass
class FixResult:
    new_text: str | None  # None when nothing changed
    applied: int
    diff: str = ""


def fix_source(engine: Engine, text: str, path: str, ignored: frozenset[str] = frozenset()) -> tuple[str, int]:
    """(fixed text, number of edits applied) for Python source."""
    analysis = engine.analyze(text, path, ignored=ignored, only_fixable=True)
    if not isinstance(analysis, Analysis):
        return text, 0
    edits = [report.edit for _, report in analysis.reports if isinstance(report.edit, AddKeyword)]
    if not edits:
        return text, 0
    fixed = analysis.module.visit(_ApplyEdits(edits))
    return fixed.code, len(edits)


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
    new, applied = fix_source(engine, joined, path, ignored)
    if new == joined:
        return FixResult(None, 0)
    changed = split_fixed(nb, new, replaced)
    if not changed:
        return FixResult(None, 0)
    diffs = [_diff(cell_source(nb.cells[i]), src, f"{path}:cell {i + 1}") for i, src in sorted(changed.items())]
    return FixResult(write_cells(nb, changed), applied, "".join(diffs))


def _diff(old: str, new: str, label: str) -> str:
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), label, label)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


class _ApplyEdits(cst.CSTTransformer):
    def __init__(self, edits: list[AddKeyword]) -> None:
        super().__init__()
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
        new = [_keyword_arg(e.keyword, e.value) for e in _unique(edits) if e.keyword not in present]
        if not new:
            return updated_node
        args = _append(list(updated_node.args), new, updated_node.whitespace_before_args)
        return updated_node.with_changes(args=args)

    def leave_Decorator(self, original_node: cst.Decorator, updated_node: cst.Decorator) -> cst.Decorator:
        edits = self.by_target.get(id(original_node))
        if not edits or isinstance(updated_node.decorator, cst.Call):
            return updated_node
        args = _append([], [_keyword_arg(e.keyword, e.value) for e in _unique(edits)], cst.SimpleWhitespace(""))
        return updated_node.with_changes(decorator=cst.Call(func=updated_node.decorator, args=args))

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom:
        names = self.imports.get(id(original_node))
        if not names or isinstance(updated_node.names, cst.ImportStar):
            return updated_node
        present = {a.evaluated_alias or a.evaluated_name for a in updated_node.names}
        new = [cst.ImportAlias(name=cst.Name(n)) for n in names if n not in present]
        if not new:
            return updated_node
        whitespace = updated_node.lpar.whitespace_after if updated_node.lpar is not None else cst.SimpleWhitespace("")
        return updated_node.with_changes(names=_append(list(updated_node.names), new, whitespace))


def _unique(edits: list[AddKeyword]) -> list[AddKeyword]:
    seen, out = set(), []
    for edit in edits:
        if edit.keyword not in seen:
            seen.add(edit.keyword)
            out.append(edit)
    return out


def _keyword_arg(name: str, value: str) -> cst.Arg:
    return cst.Arg(
        value=cst.parse_expression(value),
        keyword=cst.Name(name),
        equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")),
    )


def _append(items: list, new: Sequence, opening: cst.BaseParenthesizableWhitespace) -> list:  # noqa: ANN001
    """Append Args/ImportAliases in the layout of the existing ones (one line, or one per line).

    Comments stay on the item they followed; new items get the separator of the existing ones,
    minus any comment, and the last one inherits the closing layout (trailing comma, paren indent).
    """
    inline = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    if not items:
        return [item.with_changes(comma=inline) for item in new[:-1]] + [new[-1]]
    last = items[-1]
    trailing = last.comma if isinstance(last.comma, cst.Comma) else None
    if len(items) >= 2 and isinstance(items[-2].comma, cst.Comma):
        separator = _plain(items[-2].comma)
    elif trailing is not None and isinstance(trailing.whitespace_after, cst.ParenthesizedWhitespace):
        separator = cst.Comma(whitespace_after=opening)  # one item per line: indent like the first
    else:
        separator = inline
    indent = separator.whitespace_after
    multiline = isinstance(indent, cst.ParenthesizedWhitespace)
    new_last = new[-1]
    if trailing is not None:
        closing = trailing.whitespace_after
        if multiline and isinstance(closing, cst.ParenthesizedWhitespace):
            last = last.with_changes(comma=trailing.with_changes(
                whitespace_after=closing.with_changes(last_line=indent.last_line, empty_lines=())))
            new_last = new_last.with_changes(comma=trailing.with_changes(
                whitespace_after=closing.with_changes(first_line=cst.TrailingWhitespace())))
        else:
            last = last.with_changes(comma=separator)
            new_last = new_last.with_changes(comma=trailing)
    else:
        after = getattr(last, "whitespace_after_arg", None)
        if multiline and isinstance(after, cst.ParenthesizedWhitespace):  # `b=2  # note\n)`
            last = last.with_changes(whitespace_after_arg=cst.SimpleWhitespace(""), comma=separator.with_changes(
                whitespace_after=after.with_changes(last_line=indent.last_line, empty_lines=())))
            new_last = new_last.with_changes(whitespace_after_arg=after.with_changes(first_line=cst.TrailingWhitespace()))
        else:
            last = last.with_changes(comma=separator)
    return items[:-1] + [last] + [item.with_changes(comma=separator) for item in new[:-1]] + [new_last]


def _plain(comma: cst.Comma) -> cst.Comma:
    """A separator without the comment or blank lines that followed one particular item."""
    after = comma.whitespace_after
    if isinstance(after, cst.ParenthesizedWhitespace):
        return comma.with_changes(whitespace_after=after.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=()))
    return comma
