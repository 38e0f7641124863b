"""What a report covers and groups by: the dimensions a call records, and the filters users give.

Dimension values are compared as the ledger stores them (a lone surrogate is stored escaped).
A row of the steps table records only its tags, run and time (STEP_DIMENSIONS): `steps_apply`
says whether steps can be split or filtered the way a report asks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmguard.ledger.sqlite import stored_form
from llmguard.reporting.db import last_run_id
from llmguard.reporting.errors import ReportError
from llmguard.reporting.timerange import iso, parse_time

# name -> SQL expression; `day` and `hour` are UTC, of the call's whole second (so a call 0.4 ms before
# midnight is the day before, as the rollup's periods count it: ledger/rollup.py).
DIMENSIONS: dict[str, str] = {
    "model": "model",
    "requested_model": "requested_model",
    "provider": "provider",
    "endpoint": "endpoint",
    "feature": "feature",
    "tenant": "tenant",
    "user": '"user"',
    "prompt_version": "prompt_version",
    "notebook": "notebook",
    "cell": "cell",
    "run_id": "run_id",
    "priority": "priority",
    "status": "status",
    "decision": "decision",
    "error_type": "error_type",
    "day": "strftime('%Y-%m-%d', CAST(ts AS INTEGER), 'unixepoch')",
    "hour": "strftime('%Y-%m-%d %H:00', CAST(ts AS INTEGER), 'unixepoch')",
}
GROUPABLE = tuple(DIMENSIONS)
# What a row of the steps table can be grouped and filtered by: its tags, its run and its time.
STEP_DIMENSIONS = ("tenant", "user", "feature", "prompt_version", "notebook", "cell", "run_id", "day", "hour")


@dataclass(frozen=True)
class Filters:
    """Which calls a report covers: a time range [since, until), a run, and equality on dimensions."""

    since: float | None = None
    until: float | None = None
    run_id: str | None = None
    where: tuple[tuple[str, Any], ...] = ()

    def sql(self, indexed: bool = True) -> tuple[str, list[Any]]:
        """` AND ...` conditions and their parameters (empty when the report covers everything).

        `indexed=False` keeps SQLite from reading them through the ts or run_id index (a read of the
        calls above the rollup's watermark goes by rowid)."""
        parts, params = [], []
        ts, run = ("ts", "run_id") if indexed else ("+ts", "+run_id")
        if self.since is not None:
            parts.append(f"{ts} >= ?")
            params.append(self.since)
        if self.until is not None:
            parts.append(f"{ts} < ?")
            params.append(self.until)
        if self.run_id is not None:
            parts.append(f"{run} = ?")
            params.append(stored_form(self.run_id))
        for name, value in self.where:
            expr = DIMENSIONS[name]
            if value is None:
                parts.append(f"{expr} IS NULL")
            else:
                parts.append(f"{expr} = ?")
                params.append(stored_form(value))  # as recorded: a lone surrogate is stored escaped
        return "".join(f" AND {p}" for p in parts), params

    def describe(self) -> dict[str, Any]:
        return {
            "since": iso(self.since),
            "until": iso(self.until),
            "run_id": self.run_id,
            **{name: value for name, value in self.where},
        }


def make_filters(
    ledger_path: Path | None = None,
    since: str | float | None = None,
    until: str | float | None = None,
    last_run: bool = False,
    run_id: str | None = None,
    now: float | None = None,
    **where: Any,
) -> Filters:
    """Filters from user input (CLI flags, magic options); raises ReportError with the fix."""
    unknown = sorted(set(where) - set(DIMENSIONS))
    if unknown:
        raise ReportError(f"llmguard: cannot filter by {', '.join(unknown)}; choose from {', '.join(GROUPABLE)}")
    now = time.time() if now is None else now
    start, end = parse_time(since, now), parse_time(until, now)
    if start is not None and end is not None and end <= start:
        raise ReportError(f"llmguard: --until ({iso(end)}) must be after --since ({iso(start)})")
    if last_run and run_id is None:
        if ledger_path is None:
            raise ReportError("llmguard: --last-run needs a ledger")
        run_id = last_run_id(ledger_path)
    return Filters(start, end, run_id, tuple(sorted(where.items())))


def parse_by(by: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """`"feature,model"` -> ["feature", "model"], checked against GROUPABLE."""
    if by is None:
        return []
    names = [p.strip() for p in by.split(",")] if isinstance(by, str) else [str(p).strip() for p in by]
    names = [n for n in names if n]
    for name in names:
        if name not in DIMENSIONS:
            raise ReportError(f"llmguard: cannot group by {name!r}; choose from {', '.join(GROUPABLE)}")
    if len(set(names)) != len(names):
        raise ReportError(f"llmguard: --by names a dimension twice: {','.join(names)}")
    return names


def steps_apply(by: list[str], filters: Filters) -> bool:
    """Whether step rows can be grouped by `by` and filtered by `filters` (only by what they record)."""
    return all(name in STEP_DIMENSIONS for name in by) and all(name in STEP_DIMENSIONS for name, _ in filters.where)


def key_sql(by: list[str] | tuple[str, ...]) -> str:
    """One text key per group (NULLs and several dimensions included), decoded with json.loads."""
    return "json_array(" + ", ".join(DIMENSIONS[name] for name in by) + ")"
