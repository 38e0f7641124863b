"""Human output: full (finding, source line, caret, fix hint) or concise (one line each).

Lines are built as styled parts (`Text`) and printed by rich's Console on a terminal. Output that
goes to a file or a pipe has no styles, and `PlainConsole` writes exactly what rich would write
there without loading rich (about a tenth of a warm run): rich drops the control characters
`\a \b \v \f \r`, and a line with a tab is handed to rich itself (it expands tabs by cell width).
"""

from __future__ import annotations

import builtins
import os
from collections import Counter
from functools import lru_cache
from typing import TYPE_CHECKING, TextIO

from llmguard.lint.findings import Finding
from llmguard.lint.lines import split_lines

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text as RichText

_RICH_STRIPS = dict.fromkeys((7, 8, 11, 12, 13))  # rich.control.strip_control_codes
_STYLE_ENVIRONMENT = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS", "JUPYTER_LINES")


class Text:
    """A line of styled parts: the few `rich.text.Text` methods this module uses."""

    __slots__ = ("text", "style", "parts")

    def __init__(self, text: str = "", style: str = "") -> None:
        self.text, self.style = text, style  # the first part, and the style of the whole line
        self.parts: list[tuple[str, str | None]] = []

    def append(self, text: str, style: str | None = None) -> None:
        self.parts.append((text, style))

    def plain(self) -> str:
        return self.text + "".join(text for text, _ in self.parts)

    def rich(self) -> RichText:
        from rich.text import Text as RichText

        out = RichText(self.text, style=self.style)
        for text, style in self.parts:
            out.append(text, style=style)
        return out


class PlainConsole:
    """rich's Console output for a file or pipe (no styles, no wrapping), without rich."""

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self._fallback: Console | None = None

    def print(self, line: Text | None = None) -> None:
        text = "" if line is None else line.plain()
        if "\t" in text and line is not None:
            rich_console(self.file).print(line.rich())
            return
        self.file.write(text.translate(_RICH_STRIPS) + "\n")


def rich_console(file: TextIO) -> Console:
    from rich.console import Console

    return Console(file=file, highlight=False, soft_wrap=True, emoji=False)


def console_for(file: TextIO) -> PlainConsole | Console:
    """A PlainConsole where rich would print no styles (not a terminal, no colour forced, not Jupyter)."""
    try:
        terminal = file.isatty()
    except (AttributeError, ValueError, OSError):
        terminal = True  # rich decides: it may know better
    if terminal or hasattr(builtins, "get_ipython") or any(name in os.environ for name in _STYLE_ENVIRONMENT):
        return rich_console(file)
    return PlainConsole(file)


def say(console: PlainConsole | Console, message: str) -> None:
    """Print a plain message (rich reads `[...]` in a str as markup: such a message goes to rich)."""
    if isinstance(console, PlainConsole) and "[" not in message:
        console.print(Text(message))
    elif isinstance(console, PlainConsole):
        rich_console(console.file).print(message)
    else:
        console.print(message)


def _print(console: PlainConsole | Console, line: Text | None = None) -> None:
    if isinstance(console, PlainConsole):
        console.print(line)
    elif line is None:
        console.print()
    else:
        console.print(line.rich())


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
    from llmguard.lint.formats.locations import label  # not for --statistics

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
    from llmguard.lint.keys import redact

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
    findings: list[Finding],
    console: PlainConsole | Console,
    concise: bool = False,
    statistics: bool = False,
    files: int = 0,
) -> None:
    if statistics:
        render_statistics(findings, console)
    else:
        for finding in findings:
            _print(console, _header(finding))
            snippet = None if concise else _snippet(finding)
            if snippet is not None:
                _print(console, snippet)
                _print(console)
    _summary(findings, console, files)


def render_statistics(findings: list[Finding], console: PlainConsole | Console) -> None:
    counts = Counter(f.code for f in findings)
    names = {f.code: f.name for f in findings}
    fixable = {f.code for f in findings if f.fix}
    width = max((len(str(n)) for n in counts.values()), default=1)
    for code, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        line = Text(f"{n:>{width}}  ")
        line.append(code, style="bold red")
        line.append(" [*] " if code in fixable else "     ", style="cyan")
        line.append(names[code])
        _print(console, line)


def _summary(findings: list[Finding], console: PlainConsole | Console, files: int) -> None:
    if not findings:
        _print(console, Text(f"All checks passed! ({files} file{'s' if files != 1 else ''} checked)", style="green"))
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
    _print(console, text)
