"""Which calls the alerts are about and which they are compared with.

The last hour with the hour before, a `--since` range with the same length before it, a run with
the run before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmguard.reporting.alerts.format import clock, duration
from llmguard.reporting.costs import span
from llmguard.reporting.db import query
from llmguard.reporting.filters import Filters


@dataclass(frozen=True)
class Window:
    label: str
    where: str  # " AND ..." conditions
    params: tuple[Any, ...]
    start: float | None
    end: float | None

    @property
    def length(self) -> float | None:
        return None if self.start is None or self.end is None else self.end - self.start


def _runs(ledger_path: Path, filters: Filters, run_id: str) -> tuple[Window, Window]:
    """The run and the run before it (the one of the last call before its first)."""
    dim_where, dim_params = Filters(where=filters.where).sql()
    first, last = span(ledger_path, Filters(run_id=run_id, where=filters.where))
    current = Window(f"run {run_id}", f" AND run_id = ?{dim_where}", (run_id, *dim_params), first, last)
    previous = None
    if first is not None:
        found = query(ledger_path, "SELECT run_id FROM calls WHERE ts < ? ORDER BY ts DESC LIMIT 1", (first,))
        previous = found[0][0] if found else None
    if previous is None:
        return current, Window("no earlier run", " AND 0", (), None, None)
    p_first, p_last = span(ledger_path, Filters(run_id=previous, where=filters.where))
    return current, Window(f"run {previous}", f" AND run_id = ?{dim_where}", (previous, *dim_params), p_first, p_last)


def windows(ledger_path: Path, filters: Filters, window_s: float, now: float) -> tuple[Window, Window]:
    """The window the alerts are about and the one it is compared with."""
    if filters.run_id is not None:
        return _runs(ledger_path, filters, filters.run_id)
    dim_where, dim_params = Filters(where=filters.where).sql()
    end = filters.until if filters.until is not None else now
    start = filters.since if filters.since is not None else end - window_s
    length = end - start
    label = f"the last {duration(length)}" if filters.until is None else f"{clock(start)} to {clock(end)}"
    current = Window(label, f" AND ts >= ? AND ts < ?{dim_where}", (start, end, *dim_params), start, end)
    previous = Window(
        f"the {duration(length)} before",
        f" AND ts >= ? AND ts < ?{dim_where}",
        (start - length, start, *dim_params),
        start - length,
        start,
    )
    return current, previous


def describe(filters: Filters, thresholds: dict[str, float]) -> str:
    """What the alerts compare, in words (for "no alerts" lines)."""
    if filters.run_id is not None:
        return f"run {filters.run_id} vs the run before it"
    if filters.since is not None:
        return "this range vs the same length of time before it"
    length = duration(thresholds["window_s"])
    return f"the last {length} vs the {length} before"
