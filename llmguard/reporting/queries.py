"""Cost and latency breakdowns from the ledger, aggregated in SQL (a ledger can hold millions of rows).

Nothing here loads the calls into Python: every figure is a SQL aggregate, and percentiles are
nearest-rank (the value some call actually had) from window functions (see `percentiles`). The
ledger keeps only its `ts` and `run_id` indexes (each index costs every recorded call ~8 us), so
a breakdown is a few independent scans that run on parallel read-only connections.

Step percentiles rank the ledger's `steps` table (see `steps`); when `by` or the filters name what
a step does not record (`--by model`, the default), the rows carry none, and a report gives the
steps of the whole range once (`Report.steps`). Over ranges of more than SAMPLE_ABOVE values,
big groups' percentiles are estimated from a deterministic sample and the rows say so
(`sampled_percentiles`); `exact=True` (`--exact`) sorts everything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from llmguard.reporting import steps as step_table
from llmguard.reporting.db import has_calls_table, has_steps_table, query, run_parallel
from llmguard.reporting.filters import DIMENSIONS, Filters, key_sql, parse_by, steps_apply
from llmguard.reporting.percentiles import QUANTILES, STEPS, Counts, Figure, Scan, percentile_job
from llmguard.reporting.sampling import is_sampled, sample_thresholds

# latency figure -> column; "total" is the call's own latency as the user's code saw it
LATENCIES: dict[str, str] = {
    "total": "total_ms",
    "ttft": "ttft_ms",
    "queue": "queue_ms",
    "retry_delay": "retry_delay_ms",
    "model": "model_ms",
}
DEFAULT_LATENCIES = ("total", "ttft", "queue", "retry_delay")

# Sums every call contributes to: (name, SQL).
_AGGREGATES: list[tuple[str, str]] = [
    ("calls", "COUNT(*)"),
    ("input_tokens", "SUM(input_tokens)"),
    ("cached_input_tokens", "SUM(cached_input_tokens)"),
    ("output_tokens", "SUM(output_tokens)"),
    ("reasoning_tokens", "SUM(reasoning_tokens)"),
    ("cost_usd", "SUM(COALESCE(cost_usd, 0))"),
    ("first_ts", "MIN(ts)"),
    ("last_ts", "MAX(ts)"),
]
# Counters that are zero for most calls come from a second scan that sorts only the calls with
# something to count, grouped by what they are (status, error type, flags) and tallied in Python.
_EVENTFUL = (
    "(status != 'ok' OR error_type IS NOT NULL OR cache_hit OR dedup_hit OR fallback_used "
    "OR retry_count > 0 OR cost_usd IS NULL OR saved_usd IS NOT NULL)"
)
_COUNTERS = (
    "unpriced_calls",
    "cache_hits",
    "saved_usd",
    "dedup_hits",
    "retries",
    "retried_calls",
    "timeouts",
    "rate_limit_refusals",
    "provider_429s",
    "budget_refusals",
    "refusals",
    "fallbacks",
    "errors",
    "incomplete",
    "failures",
)


class _Eventful(NamedTuple):
    """One group of eventful calls, as the second scan returns it (after the group key)."""

    status: str
    error_type: str | None
    cache_hit: int
    dedup_hit: int
    fallback: int
    retried: int
    unpriced: int
    n: int
    retries: int
    saved: float


def _tally(row: dict[str, Any], e: _Eventful) -> None:
    n = e.n
    row["unpriced_calls"] += n if e.unpriced else 0
    row["cache_hits"] += n if e.cache_hit else 0
    row["saved_usd"] += e.saved or 0.0
    row["dedup_hits"] += n if e.dedup_hit else 0
    row["retries"] += e.retries or 0
    row["retried_calls"] += n if e.retried else 0
    row["timeouts"] += n if e.error_type in ("timeout", "deadline") else 0
    row["rate_limit_refusals"] += n if e.status == "refused" and e.error_type == "rate_limit" else 0
    row["provider_429s"] += n if e.error_type == "rate_limited" else 0
    row["budget_refusals"] += n if e.status == "refused" and e.error_type == "budget" else 0
    row["refusals"] += n if e.status == "refused" else 0
    row["fallbacks"] += n if e.fallback else 0
    row["errors"] += n if e.status == "error" else 0
    row["incomplete"] += n if e.status == "incomplete" else 0
    row["failures"] += n if e.status != "ok" else 0


# Per latency figure: how many calls have it and how many of those are zero. Queue wait and retry
# delay are zero for most calls, so their zeros are counted here and only the rest are sorted.
_ZERO_HEAVY = ("queue", "retry_delay")
_LATENCY_COUNTS = {
    figure: (f"COUNT({column})", f"SUM({column} <= 0)" if figure in _ZERO_HEAVY else "0")
    for figure, column in LATENCIES.items()
}
_RATES = {  # rate name -> (numerator, denominator)
    "tokens_per_call": (("input_tokens", "output_tokens"), "calls"),
    "cost_per_call": (("cost_usd",), "calls"),
    "cache_hit_rate": (("cache_hits",), "calls"),
    "retry_rate": (("retried_calls",), "calls"),
    "timeout_rate": (("timeouts",), "calls"),
    "fallback_rate": (("fallbacks",), "calls"),
    "error_rate": (("errors",), "calls"),
    "failure_rate": (("failures",), "calls"),
}


def _with_rates(row: dict[str, Any]) -> dict[str, Any]:
    for name, (parts, denominator) in _RATES.items():
        total = row.get(denominator) or 0
        row[name] = sum(row.get(p) or 0 for p in parts) / total if total else None
    return row


def _first_scans(scan: Scan, latencies: tuple[str, ...], steps: bool) -> dict[str, Any]:
    """The sums, the eventful calls and (with `steps`) the step counts of each group, scanned at once."""
    key = key_sql(scan.by)
    group = ", ".join(DIMENSIONS[n] for n in scan.by) or "NULL"
    counted = [sql for figure in latencies for sql in _LATENCY_COUNTS[figure]]
    agg_sql = (
        f"SELECT {key} AS k, "
        + ", ".join([sql for _, sql in _AGGREGATES] + counted)
        + f" FROM calls WHERE 1=1 {scan.where} GROUP BY {group}"
    )
    eventful_sql = f"""
        SELECT {key}, status, error_type, cache_hit, dedup_hit, fallback_used, retry_count > 0, cost_usd IS NULL,
               COUNT(*), SUM(retry_count), SUM(COALESCE(saved_usd, 0))
        FROM calls WHERE {_EVENTFUL} {scan.where}
        GROUP BY {group}, 2, 3, 4, 5, 6, 7, 8
    """
    path, params = scan.ledger_path, scan.params
    jobs: dict[str, Callable[[], Any]] = {
        "agg": lambda: query(path, agg_sql, params),
        "eventful": lambda: query(path, eventful_sql, params),
    }
    if steps:
        jobs["steps"] = lambda: query(path, step_table.count_sql(scan.by, scan.where), params)
    return run_parallel(jobs)


def _latency_counts(agg: list[tuple[Any, ...]], latencies: tuple[str, ...]) -> dict[str, Counts]:
    """Per latency figure: {(group key, ""): (calls with it, zeros among them)}."""
    width = len(_AGGREGATES)
    counts: dict[str, Counts] = {figure: {} for figure in latencies}
    for record in agg:
        extra = record[1 + width :]
        for i, figure in enumerate(latencies):
            counts[figure][record[0], ""] = (extra[2 * i] or 0, extra[2 * i + 1] or 0)
    return counts


def _sums(names: list[str], agg: list[tuple[Any, ...]], eventful: list[tuple[Any, ...]]) -> dict[str, dict[str, Any]]:
    """{group key: row} with the group's dimensions, sums and counters."""
    width = len(_AGGREGATES)
    by_key: dict[str, dict[str, Any]] = {}
    for record in agg:
        k = record[0]
        row: dict[str, Any] = dict(zip(names, json.loads(k), strict=True))
        for (name, _), value in zip(_AGGREGATES, record[1 : 1 + width], strict=True):
            row[name] = value if value is not None or name in ("first_ts", "last_ts") else 0
        row["cost_usd"] = float(row["cost_usd"])
        row.update({name: 0 for name in _COUNTERS}, saved_usd=0.0)
        by_key[k] = row
    for k, *fields in eventful:
        _tally(by_key[k], _Eventful(*fields))
    return by_key


def breakdown(
    ledger_path: Path,
    by: str | list[str] | tuple[str, ...] | None = "model",
    filters: Filters | None = None,
    latencies: tuple[str, ...] = DEFAULT_LATENCIES,
    steps: bool = True,
    exact: bool = False,
) -> list[dict[str, Any]]:
    """One row per group: calls, tokens, cost, cache, reliability counts and rates, latency percentiles.

    `sampled_percentiles` names the figures whose percentiles were estimated from a sample (big
    groups of a range with over SAMPLE_ABOVE values); `exact=True` sorts every value instead.

    Rates are per call (`retry_rate` = calls that needed at least one retry / calls). Latency keys:
    `p50_ms`/`p95_ms`/`p99_ms` for the total, `<figure>_p50_ms` for ttft, queue, retry_delay (and
    model when asked), and `steps` = {name: {runs, calls, p50_ms, p95_ms, p99_ms}} from the steps
    table (`runs`: the samples; `calls`: the calls made inside them), when `by` and the filters are
    dimensions a step records (`steps_apply`); otherwise `steps` is {} (see `step_figures`).
    """
    names = parse_by(by)
    filters = filters or Filters()
    if not has_calls_table(ledger_path):
        return []
    scan = Scan(ledger_path, names, *filters.sql())
    steps = steps and steps_apply(names, filters) and has_steps_table(ledger_path)
    first = _first_scans(scan, latencies, steps)
    counts = _latency_counts(first["agg"], latencies)
    figures = {figure: Figure(LATENCIES[figure]) for figure in latencies}
    if steps:
        counts["steps"] = step_table.counts(first["steps"])
        figures["steps"] = STEPS
    sampled = {figure: sample_thresholds(counts[figure], exact) for figure in figures}
    estimated: dict[str, list[str]] = {}  # group key -> figures estimated from a sample
    for figure, limits in sampled.items():
        for k in dict.fromkeys(group for (group, _), t in limits.items() if is_sampled(t)):
            estimated.setdefault(k, []).append(figure)
    ranked = run_parallel(
        {figure: percentile_job(scan, source, counts[figure], sampled[figure]) for figure, source in figures.items()}
    )
    step_rows = step_table.by_group(first["steps"], ranked["steps"]) if steps else {}
    rows = []
    for k, row in _sums(names, first["agg"], first["eventful"]).items():
        if "queue" in counts:
            n, z = counts["queue"].get((k, ""), (0, 0))
            row["queued_calls"] = n - z
        _with_rates(row)
        for figure in latencies:
            prefix = "" if figure == "total" else f"{figure}_"
            for q, value in zip(QUANTILES, ranked[figure].get((k, ""), (None,) * 3), strict=True):
                row[f"{prefix}p{q}_ms"] = value
        row["steps"] = dict(sorted(step_rows.get(k, {}).items()))
        row["sampled_percentiles"] = estimated.get(k, [])
        rows.append(row)
    time_first = bool(names) and names[0] in ("day", "hour")
    rows.sort(key=(lambda r: (str(r[names[0]]),)) if time_first else (lambda r: (-r["cost_usd"], -r["calls"])))
    return rows


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums and rates over all groups (percentiles do not add up, so they are not here)."""
    out: dict[str, Any] = {}
    extra = [n for n in ("queued_calls",) if any(n in r for r in rows)]
    for name in [n for n, _ in _AGGREGATES] + list(_COUNTERS) + extra:
        values = [r[name] for r in rows if r.get(name) is not None]
        if name == "first_ts":
            out[name] = min(values) if values else None
        elif name == "last_ts":
            out[name] = max(values) if values else None
        else:
            out[name] = sum(values) if values else 0
    return _with_rates(out)


def summary(ledger_path: Path, by: str = "model", run_id: str | None = None) -> list[dict[str, Any]]:
    """One row per group (see `breakdown`); kept for the demo and older callers."""
    return breakdown(ledger_path, by=by, filters=Filters(run_id=run_id))
