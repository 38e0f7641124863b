"""How alert messages write milliseconds, dollars, lengths of time and times of day (UTC)."""

from __future__ import annotations

import time

from llmguard.money import usd as _money
from llmguard.reporting.units import ms as _ms


def ms(value: float) -> str:
    """`850 ms`, `1.2 s`."""
    return _ms(value, digits=1, grouped=False)


def usd(value: float) -> str:
    """The one money format (`llmguard.money.usd`)."""
    return _money(value)


def duration(seconds: float) -> str:
    """`45 s`, `20 min`, `3 h 15 min`, `2.5 days` (never negative)."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        hours, minutes = divmod(int(seconds // 60), 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds / 86400:.1f} days"


def clock(ts: float) -> str:
    """`14:05 UTC`."""
    return time.strftime("%H:%M UTC", time.gmtime(ts))
