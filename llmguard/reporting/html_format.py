"""How the HTML report writes values: escaped text, money (`llmguard.money`), percentages, durations, counts.

Every HTML module of the report writes through these, so a figure reads the same in a table, a
chart's label and its tooltip.
"""

from __future__ import annotations

import html
from typing import Any

from llmguard.money import usd as _money
from llmguard.reporting.units import ms as _ms

NONE = "—"


def esc(value: Any) -> str:
    """Escaped text; None as a dash; a NUL byte (a tag value may hold one) as the text `\\x00`, never raw."""
    return html.escape(NONE if value is None else str(value), quote=True).replace("\x00", "\\x00")


def usd(value: float | None) -> str:
    """The one money format (`llmguard.money.usd`), a dash when unknown."""
    return NONE if value is None else _money(value)


def pct(value: float | None) -> str:
    return NONE if value is None else f"{value:.1%}"


def ms(value: float | None) -> str:
    return _ms(value)


def count(value: int | float | None) -> str:
    return NONE if value is None else f"{value:,}"


def label(value: Any) -> str:
    """A dimension's value as a chart or legend shows it: a dash for a call without one (no tenant tag)."""
    return NONE if value is None else str(value)


def short(text: str, most: int = 24) -> str:
    """`text` cut to `most` characters with an ellipsis (the whole text goes in the tooltip)."""
    return text if len(text) <= most else text[: most - 1] + "…"
