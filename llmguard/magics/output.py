"""Showing things in a cell: rich outputs in a notebook, plain text in a terminal.

Every function here runs on the main thread, while a cell runs. Nothing in the extension prints or
displays from another thread (the text would land in whichever cell happens to be running).
"""

from __future__ import annotations

import html
import re
from typing import Any

from llmguard.money import usd  # noqa: F401 - the one money format, re-exported for the magics


def show(text: str, html_text: str | None = None, **extra: Any) -> None:
    """Display `text` (and an HTML version for frontends that render it) as one output.

    The HTML is marked for MathJax to leave alone: JupyterLab typesets `$...$` in HTML outputs as
    LaTeX, which would turn "$0.01 spent · budget $0.50" into italic math.
    """
    from IPython.display import display

    bundle: dict[str, Any] = {"text/plain": text}
    if html_text is not None:
        bundle["text/html"] = f'<div class="tex2jax_ignore mathjax_ignore">{html_text}</div>'
    bundle.update(extra)
    display(bundle, raw=True)


_BACKTICKED = re.compile(r"`([^`\n]+)`")
TONES = {"info": "#2f7ed8", "warn": "#d9822b", "error": "#c23030", "ok": "#2e9e4f"}


def code_html(text: str) -> str:
    """`text` escaped for HTML, with each `backticked` span as `<code>` (the plain text keeps its backticks)."""
    return _BACKTICKED.sub(r"<code>\1</code>", html.escape(text))


def note_html(text: str, tone: str = "info") -> str:
    """A one-line note with a coloured left border that reads well on light and dark themes."""
    return (
        f'<div class="llmguard-note" style="border-left:3px solid {TONES[tone]};padding:2px 8px;'
        f'font-family:var(--jp-code-font-family,monospace);font-size:12px;white-space:pre-wrap">'
        f"{code_html(text)}</div>"
    )


def note(text: str, tone: str = "info") -> None:
    show(text, note_html(text, tone))


def count(value: float | None) -> str:
    if value is None:
        return "-"
    value = float(value)
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def terminal_line(text: str, bold_chars: int = 0, red_from: int = -1) -> None:
    """Print one summary line in a terminal: bold prefix, red tail from `red_from` (-1: none).

    Written with two ANSI codes by hand rather than rich: this line prints right after
    `%load_ext`, and importing rich's console there cost ~25 ms of the extension's load time.
    Colour only on a terminal that shows it (a pipe or a captured stdout gets the plain text).
    """
    import os
    import sys

    out = sys.stdout
    if not (getattr(out, "isatty", lambda: False)() and "NO_COLOR" not in os.environ):
        print(text, file=out)
        return
    head, body = text[:bold_chars], text[bold_chars:]
    styled = f"\x1b[1m{head}\x1b[0m" if head else ""
    if red_from >= bold_chars:
        cut = red_from - bold_chars
        body = f"{body[:cut]}\x1b[31m{body[cut:]}\x1b[0m"
    print(styled + body, file=out)
