"""Figures only the HTML report draws: time buckets that follow the range's span, cost, calls,
failures and latency p95 per bucket, and what went wrong (status and message) by model.

Sums per bucket come from the ledger's hourly rollup when the buckets are whole hours (`rolled`).
`spend_over_time` picks buckets of a minute or more for the terminal's sparkline; a notebook
session lasts seconds, so the dashboard's buckets start at one second (`bucket_for`). Per-bucket
p95 is nearest-rank (the value some call had), like every percentile in reports; over more than
SAMPLE_ABOVE calls it is estimated from the same deterministic sample (`sampling`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmguard.reporting import rolled, sampling
from llmguard.reporting.costs import span
from llmguard.reporting.db import has_calls_table, query
from llmguard.reporting.filters import Filters

# Bucket sizes in seconds, one second up to a week.
BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 7 * 86400)
MAX_BUCKETS = 60
MIN_SLOTS = 6  # a chart spans at least this many buckets, so one call still gets a readable time axis
MESSAGE_CHARS = 200  # error messages are grouped by their first characters


def bucket_for(start: float | None, end: float | None, max_buckets: int = MAX_BUCKETS) -> int:
    """The smallest bucket (a second up to a week) that cuts [start, end] into at most `max_buckets`."""
    length = max(0.0, (end or 0.0) - (start or 0.0))
    return next((size for size in BUCKETS if length / size <= max_buckets), BUCKETS[-1])


@dataclass
class Timeline:
    """Per time bucket of the range: cost (split by one dimension), calls, failures and latency p95.

    `first` is the index of the range's first bucket (its start is `first * bucket_s`), `slots` how
    many buckets the range spans; `buckets` holds only those with calls, keyed by their index.
    """

    bucket_s: int
    first: int
    slots: int
    by: str | None
    buckets: dict[int, dict[str, Any]] = field(default_factory=dict)
    sampled: bool = False  # the p95s were estimated from a sample

    @property
    def start(self) -> float:
        return float(self.first * self.bucket_s)

    @property
    def end(self) -> float:
        return float((self.first + self.slots) * self.bucket_s)


def timeline(
    ledger_path: Path, filters: Filters | None = None, by: str | None = "model", exact: bool = False
) -> Timeline:
    """Cost per bucket and `by` value (None kept as None), calls, failures (status not ok), p95 total latency."""
    filters = filters or Filters()
    if not has_calls_table(ledger_path):
        return Timeline(bucket_s=1, first=0, slots=MIN_SLOTS, by=by)
    first_ts, last_ts = span(ledger_path, filters)
    start = filters.since if filters.since is not None else first_ts
    end = filters.until if filters.until is not None else last_ts
    if start is None or end is None:
        return Timeline(bucket_s=1, first=0, slots=MIN_SLOTS, by=by)
    size = bucket_for(start, end)
    first, last = int(start // size), int(end // size)
    if filters.until is not None and end == last * size and last > first:
        last -= 1  # --until is exclusive: a range that ends on a bucket's start leaves that bucket out
    out = Timeline(bucket_s=size, first=first, slots=max(MIN_SLOTS, last - first + 1), by=by)
    where, params = filters.sql()
    request = rolled.Request((by,) if by else (), ("calls", "cost_usd", "failures", "total_n"), size)
    found = rolled.sums(ledger_path, request, filters).groups
    rows = sorted(
        (
            (key[0], key[1] if by else None, v["cost_usd"], v["calls"], v["failures"], v["total_n"])
            for key, v in found.items()
        ),
        key=lambda r: (r[0], str(r[1])),
    )
    timed = 0
    for b, value, cost, calls, failures, with_latency in rows:
        item = out.buckets.setdefault(b, {"cost_usd": 0.0, "calls": 0, "failures": 0, "by": {}, "p95_ms": None})
        item["cost_usd"] += cost or 0.0
        item["calls"] += calls
        item["failures"] += failures or 0
        item["by"][value] = item["by"].get(value, 0.0) + (cost or 0.0)
        timed += with_latency
    sample = ""
    if sampling.worth_sampling(timed, exact):
        sample = f"AND {sampling.row_hash('calls')} < {sampling.budget_threshold(timed)}"
        out.sampled = True
    ranked = query(ledger_path, p95_per_bucket_sql(size, where, sample), params)
    for b, value in ranked:
        if b in out.buckets:
            out.buckets[b]["p95_ms"] = value
    return out


def p95_per_bucket_sql(size: int, where: str = "", sample: str = "") -> str:
    """The p95 total latency per time bucket; unfiltered, the ledger's `calls_ts` index covers it."""
    bucket = f"(CAST(ts AS INTEGER) / {size})"
    return f"""SELECT b, v FROM (
                SELECT {bucket} AS b, total_ms AS v,
                       ROW_NUMBER() OVER (PARTITION BY {bucket} ORDER BY total_ms) AS rn,
                       COUNT(*) OVER (PARTITION BY {bucket}) AS n
                FROM calls WHERE total_ms IS NOT NULL {where} {sample})
            WHERE rn = (n * 95 + 99) / 100"""


@dataclass
class ErrorKinds:
    """Calls that did not end ok, grouped by (status, error type, message), counted per model."""

    models: list[str] = field(default_factory=list)  # most failures first
    rows: list[dict[str, Any]] = field(default_factory=list)  # {"status", "error_type", "message", "by", "calls"}
    more: int = 0  # kinds left out (beyond `limit`)
    more_calls: int = 0  # the calls of those kinds


def error_kinds_sql(where: str = "") -> str:
    """The failed calls grouped by kind and model; the ledger's `calls_failed` index covers it."""
    return f"""SELECT status, error_type, substr(error_message, 1, {MESSAGE_CHARS}), model, COUNT(*)
            FROM calls WHERE status != 'ok' {where} GROUP BY 1, 2, 3, 4"""


def error_kinds(ledger_path: Path, filters: Filters | None = None, limit: int = 12) -> ErrorKinds:
    """The most common ways calls failed or were refused, and which models they happened to."""
    filters = filters or Filters()
    if not has_calls_table(ledger_path):
        return ErrorKinds()
    where, params = filters.sql()
    found = query(ledger_path, error_kinds_sql(where), params)
    kinds: dict[tuple[Any, ...], dict[str, Any]] = {}
    per_model: dict[str, int] = {}
    for status, error_type, message, model, calls in found:
        row = kinds.setdefault(
            (status, error_type, message),
            {"status": status, "error_type": error_type, "message": message, "by": {}, "calls": 0},
        )
        name = str(model) if model is not None else "(no model)"
        row["by"][name] = row["by"].get(name, 0) + calls
        row["calls"] += calls
        per_model[name] = per_model.get(name, 0) + calls
    ordered = sorted(kinds.values(), key=lambda r: (-r["calls"], str(r["status"]), str(r["message"])))
    shown, rest = ordered[:limit], ordered[limit:]
    models = sorted(per_model, key=lambda name: (-per_model[name], name))
    return ErrorKinds(models, shown, len(rest), sum(r["calls"] for r in rest))
