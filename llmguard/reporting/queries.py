"""Cost and latency breakdowns from the ledger, aggregated in SQL (a ledger can hold millions of rows).

Nothing here loads the calls into Python. The sums, counters and latency counts of each group come
from the ledger's rollup where it can answer (`rolled.sums`: per hour by model, feature, provider,
run, status, ...), or from one grouped scan of the calls with the same aggregates. Percentiles are
nearest-rank (the value some call actually had). Over ranges of more than SAMPLE_ABOVE calls, they
are read off the rollup's latency histograms when those are kept by what the report groups by
(`histograms`: model, provider, feature, day), every group's, within a bucket (2%) of the exact
value; else, over more than SAMPLE_ABOVE values, big groups' are estimated from a deterministic
sample (`percentiles`, `sampling`). Rows name the figures so estimated (`sampled_percentiles`). `exact=True` (`--exact`)
finds every percentile exactly: through the histograms, one read of the calls that keeps only the
values near the wanted ranks, else by sorting every value.

Step percentiles rank the ledger's `steps` table (see `steps`); when `by` or the filters name what
a step does not record (`--by model`, the default), the rows carry none, and a report gives the
steps of the whole range once (`Report.steps`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmguard.ledger import grains
from llmguard.ledger.connection import connect
from llmguard.reporting import histograms, rolled
from llmguard.reporting import steps as step_table
from llmguard.reporting.db import has_calls_table, has_steps_table, query, run_parallel
from llmguard.reporting.filters import Filters, parse_by, steps_apply
from llmguard.reporting.percentiles import QUANTILES, STEPS, Counts, Figure, Ranked, Scan, percentile_job
from llmguard.reporting.sampling import is_sampled, sample_thresholds, worth_sampling

# latency figure -> column; "total" is the call's own latency as the user's code saw it
LATENCIES: dict[str, str] = dict(grains.LATENCY_COLUMNS)
DEFAULT_LATENCIES = ("total", "ttft", "queue", "retry_delay")
GUIDED_ABOVE = 50_000  # calls in range above which exact percentiles are found through the histograms
_ZERO_HEAVY = grains.ZERO_HEAVY  # zero for most calls: their zeros are counted, only the rest sorted

# Sums every call contributes to, as a breakdown row names them.
_SUMS = (
    "calls",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "first_ts",
    "last_ts",
)
_MEASURED = ("unpriced_calls", "cache_hits", "saved_usd", "dedup_hits", "retries", "retried_calls", "fallbacks")
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
_LATENCY_COUNTS = tuple(f"{f}_n" for f in LATENCIES) + tuple(f"{f}_zeros" for f in _ZERO_HEAVY)
MEASURES = tuple(dict.fromkeys((*_SUMS, *_MEASURED, *_LATENCY_COUNTS)))


def _tally(row: dict[str, Any], status: Any, error_type: Any, values: dict[str, Any]) -> None:
    """Add one (status, error type) part of a group: its sums, and the counters they name."""
    n = values["calls"]
    for name in _SUMS:
        if name == "first_ts":
            row[name] = _least(row[name], values[name])
        elif name == "last_ts":
            row[name] = _greatest(row[name], values[name])
        else:
            row[name] += values[name] or 0
    for name in _MEASURED:
        row[name] += values[name] or 0
    for name in _LATENCY_COUNTS:
        row["_" + name] = row.get("_" + name, 0) + (values[name] or 0)
    row["timeouts"] += n if error_type in ("timeout", "deadline") else 0
    row["rate_limit_refusals"] += n if status == "refused" and error_type == "rate_limit" else 0
    row["provider_429s"] += n if error_type == "rate_limited" else 0
    row["budget_refusals"] += n if status == "refused" and error_type == "budget" else 0
    row["refusals"] += n if status == "refused" else 0
    row["errors"] += n if status == "error" else 0
    row["incomplete"] += n if status == "incomplete" else 0
    row["failures"] += n if status is not None and status != "ok" else 0


def _least(a: Any, b: Any) -> Any:
    return b if a is None or (b is not None and b < a) else a


def _greatest(a: Any, b: Any) -> Any:
    return b if a is None or (b is not None and b > a) else a


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


def group_rows(
    names: list[str], groups: dict[tuple[Any, ...], dict[str, Any]]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """{group key: row with its dimensions, sums and counters} from sums keyed (*dims, status, error_type)."""
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    width = len(names)
    for key, values in groups.items():
        k = key[:width]
        row = by_key.get(k)
        if row is None:
            row = dict(zip(names, k, strict=True))
            row.update({name: 0 for name in _SUMS}, first_ts=None, last_ts=None)
            row.update({name: 0 for name in _COUNTERS})
            by_key[k] = row
        _tally(row, key[width], key[width + 1], values)
    for row in by_key.values():
        row["cost_usd"] = float(row["cost_usd"])
        row["saved_usd"] = float(row["saved_usd"])
    return by_key


def _counts(rows: dict[tuple[Any, ...], dict[str, Any]], figure: str) -> dict[tuple[Any, ...], tuple[int, int]]:
    zeros = figure in _ZERO_HEAVY
    return {k: (row[f"_{figure}_n"], row[f"_{figure}_zeros"] if zeros else 0) for k, row in rows.items()}


def _keyed(counts: dict[tuple[Any, ...], tuple[int, int]], keys: dict[tuple[Any, ...], str]) -> Counts:
    return {(keys[k], ""): value for k, value in counts.items()}


def sqlite_keys(keys: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], str]:
    """Each group's key as SQLite writes it (json_array), the key the sorting paths group by."""
    out: dict[tuple[Any, ...], str] = {}
    if not keys:
        return out
    conn = sqlite3.connect(":memory:")
    try:
        width = len(keys[0])
        args = ", ".join("?" for _ in range(width))
        for key in keys:
            out[key] = conn.execute(f"SELECT json_array({args})", key).fetchone()[0]
    finally:
        conn.close()
    return out


def _percentiles(
    ledger_path: Path,
    names: list[str],
    filters: Filters,
    rows: dict[tuple[Any, ...], dict[str, Any]],
    latencies: tuple[str, ...],
    exact: bool,
) -> tuple[dict[str, dict[tuple[Any, ...], tuple[float | None, ...]]], dict[str, set[tuple[Any, ...]]]]:
    """{figure: {group key: (p50, p95, p99)}} and {figure: groups estimated}: through the histograms
    where they apply and the range is large, the rest by sorting or sampling the calls."""
    done: dict[str, dict[tuple[Any, ...], tuple[float | None, ...]]] = {}
    estimated: dict[str, set[tuple[Any, ...]]] = {}
    calls = sum(r["calls"] for r in rows.values())
    big = worth_sampling(calls)
    if (big or calls > GUIDED_ABOVE) and histograms.grain_for(names, filters):
        # a large range is estimated; a middling one found exactly, by one read instead of a sort per figure
        done, estimated = _from_histograms(ledger_path, names, filters, rows, list(latencies), exact or not big)
    left = [f for f in latencies if f not in done]
    if left:
        keys = sqlite_keys(list(rows))
        back = {text: k for k, text in keys.items()}
        scan = Scan(ledger_path, names, *filters.sql())
        counts = {f: _keyed(_counts(rows, f), keys) for f in left}
        thresholds = {f: sample_thresholds(counts[f], exact) for f in left}
        jobs = {f: percentile_job(scan, Figure(LATENCIES[f]), counts[f], thresholds[f]) for f in left}
        ranked: dict[str, Ranked] = run_parallel(jobs)
        for f in left:
            done[f] = {back[k]: v for (k, _), v in ranked[f].items()}
            estimated[f] = {back[k] for (k, _), t in thresholds[f].items() if is_sampled(t)}
    return done, estimated


def _from_histograms(
    ledger_path: Path,
    names: list[str],
    filters: Filters,
    rows: dict[tuple[Any, ...], dict[str, Any]],
    figures: list[str],
    exact: bool,
) -> tuple[dict[str, dict[tuple[Any, ...], tuple[float | None, ...]]], dict[str, set[tuple[Any, ...]]]]:
    """Every group's percentiles read off the histograms, so no call is read (a small group's as well:
    a bucket's error does not grow as its group shrinks); with `exact`, found exactly by one read of
    the calls that keeps only the values of the buckets holding the wanted ranks."""
    done: dict[str, dict[tuple[Any, ...], tuple[float | None, ...]]] = {}
    estimated: dict[str, set[tuple[Any, ...]]] = {}
    conn = connect(ledger_path, readonly=True)
    try:
        conn.execute("BEGIN")  # the histograms and the calls read for exact ranks agree
        found = histograms.read(conn, names, filters, figures)
        if found is None:
            return done, estimated
        want: dict[str, set[tuple[Any, ...]]] = {}
        for figure in found.figures:
            done[figure], estimated[figure] = {}, set()
            want[figure] = set(rows) if exact else set()
            for k in () if exact else rows:  # estimated, unless each rank is certain from its bucket
                done[figure][k], certain = histograms.estimate(found, k, figure)
                if not certain:
                    estimated[figure].add(k)
        for figure, found_exact in histograms.exact_figures(conn, names, filters, found, want).items():
            if found_exact is None:  # sorted in full by the caller
                done.pop(figure, None)
                estimated.pop(figure, None)
            else:
                done[figure].update(found_exact)
    finally:
        conn.close()
    return done, estimated


def _step_rows(
    ledger_path: Path,
    names: list[str],
    filters: Filters,
    exact: bool,
    keys: dict[tuple[Any, ...], str],
    whole: tuple[dict[str, dict[str, Any]], bool] | None,
) -> tuple[dict[str, dict[str, dict[str, Any]]], set[str]]:
    """{group key text: {step name: figures}} and the groups whose step figures were estimated."""
    if whole is not None:
        return ({keys[()]: whole[0]}, {keys[()]} if whole[1] else set()) if () in keys else ({}, set())
    where, params = filters.sql()
    counted = query(ledger_path, step_table.count_sql(names, where), params)
    found = step_table.counts(counted)
    limits = sample_thresholds(found, exact)
    ranked = percentile_job(Scan(ledger_path, names, where, params), STEPS, found, limits)()
    return step_table.by_group(counted, ranked), {k for (k, _), t in limits.items() if is_sampled(t)}


def breakdown(
    ledger_path: Path,
    by: str | list[str] | tuple[str, ...] | None = "model",
    filters: Filters | None = None,
    latencies: tuple[str, ...] = DEFAULT_LATENCIES,
    steps: bool = True,
    exact: bool = False,
) -> list[dict[str, Any]]:
    """One row per group: calls, tokens, cost, cache, reliability counts and rates, latency percentiles.

    `sampled_percentiles` names the figures whose percentiles were estimated (big groups of a range
    with over SAMPLE_ABOVE values); `exact=True` finds every one exactly instead.

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
    steps = steps and steps_apply(names, filters) and has_steps_table(ledger_path)
    where, params = filters.sql()
    jobs: dict[str, Callable[[], Any]] = {
        "sums": lambda: rolled.sums(ledger_path, rolled.Request((*names, "status", "error_type"), MEASURES), filters)
    }
    if steps and not names:  # the one group's steps, read off the steps' histograms where they answer
        jobs["whole"] = lambda: histograms.step_figures(ledger_path, filters, exact)
    first = run_parallel(jobs)
    rows = group_rows(names, first["sums"].groups)
    ranked, estimated = _percentiles(ledger_path, names, filters, rows, latencies, exact)
    keys = sqlite_keys(list(rows)) if steps else {}
    step_rows, step_estimated = (
        _step_rows(ledger_path, names, filters, exact, keys, first.get("whole")) if steps else ({}, set())
    )
    out = []
    for k, row in rows.items():
        if "queue" in latencies:
            row["queued_calls"] = row["_queue_n"] - row["_queue_zeros"]
        for name in _LATENCY_COUNTS:
            row.pop("_" + name, None)
        _with_rates(row)
        for figure in latencies:
            prefix = "" if figure == "total" else f"{figure}_"
            for q, value in zip(QUANTILES, ranked[figure].get(k, (None,) * 3), strict=True):
                row[f"{prefix}p{q}_ms"] = value
        text = keys.get(k)
        row["steps"] = dict(sorted(step_rows.get(text, {}).items())) if text is not None else {}
        row["sampled_percentiles"] = [f for f in latencies if k in estimated.get(f, ())]
        if text is not None and text in step_estimated:
            row["sampled_percentiles"].append("steps")
        out.append(row)
    time_first = bool(names) and names[0] in ("day", "hour")
    out.sort(key=(lambda r: (str(r[names[0]]),)) if time_first else (lambda r: (-r["cost_usd"], -r["calls"])))
    return out


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums and rates over all groups (percentiles do not add up, so they are not here)."""
    out: dict[str, Any] = {}
    extra = [n for n in ("queued_calls",) if any(n in r for r in rows)]
    for name in list(_SUMS) + list(_COUNTERS) + extra:
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
