"""Lines of the file itself for findings in notebooks (SARIF and GitHub annotations need them)."""

from __future__ import annotations

from functools import lru_cache

from llmguard.lint.findings import Finding
from llmguard.lint.lines import split_lines


@lru_cache(maxsize=256)
def _joined(path: str):  # noqa: ANN202
    """(JoinedNotebook, the file's lines) or None."""
    from llmguard.lint.notebooks import NotebookError, join, load_notebook

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        return join(load_notebook(text), text), split_lines(text)
    except (OSError, UnicodeDecodeError, NotebookError):
        return None


def _json_offset(lines: list[str], line: int) -> int:
    """Characters before the source text on a JSON line such as `    "x = 1\\n",` (its indent and quote)."""
    if 0 < line <= len(lines):
        quote = lines[line - 1].find('"')
        return quote + 1 if quote >= 0 else 0
    return 0


def file_position(finding: Finding) -> tuple[int, int, int, int]:
    """(line, column, end_line, end_column) in the file on disk; for a notebook, its JSON lines."""
    if finding.cell is None:
        return finding.line, finding.column, finding.end_line, finding.end_column
    found = _joined(finding.path)
    if found is None:
        return 1, 1, 1, 1
    joined, lines = found
    start = joined.file_line(finding.cell, finding.line)
    end = joined.file_line(finding.cell, finding.end_line)
    one_per_line = joined.raw_lines.get(finding.cell, (1, False))[1]
    if not one_per_line:
        return start, 1, start, 1
    return (start, finding.column + _json_offset(lines, start), end, finding.end_column + _json_offset(lines, end))


def label(finding: Finding) -> str:
    """`path:line:col`, or `path:cell N:line:col` in a notebook."""
    if finding.cell is not None:
        return f"{finding.path}:cell {finding.cell}:{finding.line}:{finding.column}"
    return f"{finding.path}:{finding.line}:{finding.column}"
