"""Human output with rich: full (finding, source line, caret, fix hint) or concise (one line each)."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from rich.console import Console
from rich.text import Text

from llmguard.lint.findings import Finding
from llmguard.lint.formats.locations import label
from llmguard.lint.keys import redact
from llmguard.lint.lines import split_lines


@lru_cache(maxsize=64)
def _source_lines(path: str, cell: int | None) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return []
    if cell is None:
        return split_lines(text)
    from llmguard.lint.notebooks import NotebookError, cell_source, load_notebook

    try:
        nb = load_notebook(text)
    except NotebookError:
        return []
    return split_lines(cell_source(nb.cells[cell - 1])) if 0 < cell <= len(nb.cells) else []


def _header(finding: Finding) -> Text:
    text = Text()
    text.append(label(finding), style="bold")
    text.append(": ")
    text.append(finding.code, style="bold red")
    if finding.fix:
        text.append(" [*]", style="cyan")
    text.append(" ")
    text.append(finding.message)
    if finding.confidence != "high":
        text.append(f" ({finding.confidence} confidence: matched by the SDK's method shape)", style="dim")
    return text


def _snippet(finding: Finding) -> Text | None:
    lines = _source_lines(finding.path, finding.cell)
    if not 0 < finding.line <= len(lines) or finding.code == "LG000" and finding.line == 1 and finding.column == 1:
        return None
    source = redact(lines[finding.line - 1].expandtabs(1))  # never print an API key (LG501 masks it)
    gutter = str(finding.line)
    pad = " " * len(gutter)
    end = min(finding.end_column, len(source) + 1) if finding.end_line == finding.line else len(source) + 1
    width = max(1, end - finding.column)
    out = Text()
    out.append(f"{pad} |\n", style="blue")
    out.append(f"{gutter} | ", style="blue")
    out.append(source + "\n")
    out.append(f"{pad} | ", style="blue")
    out.append(" " * (finding.column - 1) + "^" * width, style="red")
    if finding.fix:
        out.append(f"\n{pad} = ", style="blue")
        out.append(f"fix: {finding.fix}", style="cyan")
    return out


def render(
    findings: list[Finding], console: Console, concise: bool = False, statistics: bool = False, files: int = 0
) -> None:
    if statistics:
        render_statistics(findings, console)
    else:
        for finding in findings:
            console.print(_header(finding))
            snippet = None if concise else _snippet(finding)
            if snippet is not None:
                console.print(snippet)
                console.print()
    _summary(findings, console, files)


def render_statistics(findings: list[Finding], console: Console) -> None:
    counts = Counter(f.code for f in findings)
    names = {f.code: f.name for f in findings}
    fixable = {f.code for f in findings if f.fix}
    width = max((len(str(n)) for n in counts.values()), default=1)
    for code, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        line = Text(f"{n:>{width}}  ")
        line.append(code, style="bold red")
        line.append(" [*] " if code in fixable else "     ", style="cyan")
        line.append(names[code])
        console.print(line)


def _summary(findings: list[Finding], console: Console, files: int) -> None:
    if not findings:
        console.print(Text(f"All checks passed! ({files} file{'s' if files != 1 else ''} checked)", style="green"))
        return
    fixable = sum(1 for f in findings if f.fix)
    in_files = len({f.path for f in findings})
    text = Text(
        f"Found {len(findings)} finding{'s' if len(findings) != 1 else ''} in {in_files} "
        f"file{'s' if in_files != 1 else ''} ({files} checked).",
        style="bold",
    )
    if fixable:
        text.append(f" [*] {fixable} fixable with `llmguard lint --fix`.", style="cyan")
    console.print(text)
