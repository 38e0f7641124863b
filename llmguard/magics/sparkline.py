"""The session's spend over time, drawn small: block characters for text, an inline SVG for the widget.

The series comes from `Metrics.snapshot()["spend_series"]` (spend per time bucket since the guard
was installed); here it is only drawn. Bars scale to the busiest bucket, and a bucket that spent
anything is never drawn as empty.
"""

from __future__ import annotations

import html
import math
from typing import Any, TypeGuard

from llmguard.money import duration, usd

BLOCKS = "▂▃▄▅▆▇█"  # a bucket that spent something
EMPTY = "▁"  # one that spent nothing
BAR_PX, GAP_PX, HEIGHT_PX = 4, 1, 16


def _levels(values: list[float], steps: int) -> list[int]:
    """0 for buckets that spent nothing, else 1..steps in proportion to the busiest bucket."""
    peak = max(values, default=0.0)
    if peak <= 0:
        return [0 for _ in values]
    return [0 if value <= 0 else max(1, math.ceil(steps * value / peak)) for value in values]


def has_spend(series: dict[str, Any] | None) -> TypeGuard[dict[str, Any]]:
    """There is a series and some bucket of it spent something."""
    return series is not None and any(value > 0 for value in series["values"])


def caption(series: dict[str, Any]) -> str:
    """`spend over 3 min 5 s, a bar per 10 s (peak $0.0012)`."""
    peak = max(series["values"], default=0.0)
    return f"spend over {duration(series['elapsed_s'])}, a bar per {duration(series['bucket_s'])} (peak {usd(peak)})"


def blocks(series: dict[str, Any]) -> str:
    """The series as text: `▁▁▃█▂`."""
    return "".join(EMPTY if level == 0 else BLOCKS[level - 1] for level in _levels(series["values"], len(BLOCKS)))


def text(series: dict[str, Any]) -> str:
    """`spend ▁▁▃█▂ over 50 s, a bar per 10 s (peak $0.0012)`, for text front ends."""
    return f"spend {blocks(series)} " + caption(series).removeprefix("spend ")


def svg(series: dict[str, Any]) -> str:
    """The series as bars in an inline SVG, in the text colour (reads on light and dark themes)."""
    values = series["values"]
    levels = _levels(values, HEIGHT_PX - 1)
    width = max(1, len(values), series.get("bars", 0)) * (BAR_PX + GAP_PX)  # a steady size as bars fill in
    label = html.escape(caption(series))
    bars = "".join(
        f'<rect x="{i * (BAR_PX + GAP_PX)}" y="{HEIGHT_PX - level}" width="{BAR_PX}" height="{level}"/>'
        for i, level in enumerate(levels)
        if level
    )
    return (
        f'<svg class="llmguard-spark-bars" width="{width}" height="{HEIGHT_PX}" viewBox="0 0 {width} {HEIGHT_PX}" '
        f'role="img" aria-label="{label}" style="vertical-align:middle;fill:currentColor;opacity:0.75">'
        f"<title>{label}</title>"
        f'<line x1="0" y1="{HEIGHT_PX - 0.5}" x2="{width}" y2="{HEIGHT_PX - 0.5}" stroke="currentColor" '
        f'stroke-opacity="0.35" stroke-width="1"/>{bars}</svg>'
    )
