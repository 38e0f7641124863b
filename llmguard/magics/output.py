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
