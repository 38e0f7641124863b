"""GitHub Actions workflow commands: one `::error` annotation per finding."""

from __future__ import annotations

from llmguard.lint.findings import Finding
from llmguard.lint.formats.locations import file_position


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        line, column, end_line, end_column = file_position(f)
        where = f" (cell {f.cell}, line {f.line})" if f.cell is not None else ""
        title = _property(f"llmguard {f.code} {f.name}")
        props = f"file={_property(f.path)},line={line},col={column},endLine={end_line},endColumn={end_column}"
        lines.append(f"::error title={title},{props}::{_data(f'{f.code} {f.message}{where}')}")
    return "\n".join(lines) + ("\n" if lines else "")
