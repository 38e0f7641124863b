"""Times as users write them (`24h`, `7d`, an ISO date, epoch seconds) and as reports print them (ISO, UTC).

Times of day are UTC: quotas reset at UTC midnight too.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from llmguard.reporting.errors import ReportError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400, "w": 604800}


def parse_time(text: str | float | None, now: float | None = None) -> float | None:
    """`24h`, `30m`, `7d` (that long ago), `now`, an ISO date/time (UTC unless it says), or epoch seconds."""
    if text is None or text == "":
        return None
    if isinstance(text, int | float):
        return float(text)
    now = time.time() if now is None else now
    match = _DURATION.match(text)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2).lower()]
    if text.strip().lower() == "now":
        return now
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(
            f"llmguard: cannot read the time {text!r}; use a duration such as 24h, 30m or 7d (that long ago), "
            "or an ISO time such as 2025-05-01 or 2025-05-01T12:00 (UTC)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `1h`, `7d`, `2w` -> seconds."""
    match = _DURATION.match(text or "")
    if not match:
        raise ReportError(f"llmguard: cannot read the duration {text!r}; use e.g. 30m, 1h, 24h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def iso(ts: float | None) -> str | None:
    """Epoch seconds as `2025-05-01T12:00:00Z` (None stays None)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
