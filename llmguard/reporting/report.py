"""Cost and latency breakdowns from the ledger, aggregated in SQL (a ledger can hold millions of rows).

Nothing here loads the calls into Python: every figure is a SQL aggregate, and percentiles are
nearest-rank (the value some call actually had) from window functions. The ledger keeps only its
`ts` and `run_id` indexes (each index costs every recorded call ~8 us), so a report is a few
independent scans that run on parallel read-only connections.

Percentiles: p = the value at rank ceil(q * n) of the n calls that have the figure, in ascending
order. Queue wait and retry delay are zero for most calls, so their zeros are counted, not sorted.
Step percentiles rank the ledger's `steps` table: one sample per run of a step, however many
calls ran inside it (a step that made no call is there too; a call inside two steps doubles
neither). A step row knows its tags, run and time, not the model or provider of the calls inside
it, so grouping or filtering by those (`--by model`, the default) cannot split steps: the rows
then carry none, and the report gives the steps of the whole range once (`Report.steps`). A
ledger an older llmguard made has no steps table: no step figures, no error. Over ranges of more
than SAMPLE_ABOVE values, big groups' percentiles are estimated from a deterministic sample and the
rows say so (`sampled_percentiles`); `exact=True` (`--exact`) sorts everything. Times of day are UTC
(quotas reset at UTC midnight too).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmguard.ledger.sqlite import connect, stored_form

# name -> SQL expression; `day` and `hour` are UTC.
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
    "day": "strftime('%Y-%m-%d', ts, 'unixepoch')",
    "hour": "strftime('%Y-%m-%d %H:00', ts, 'unixepoch')",
}
GROUPABLE = tuple(DIMENSIONS)
# What a row of the steps table can be grouped and filtered by: its tags, its run and its time.
STEP_DIMENSIONS = ("tenant", "user", "feature", "prompt_version", "notebook", "cell", "run_id", "day", "hour")
# latency figure -> column; "total" is the call's own latency as the user's code saw it
LATENCIES: dict[str, str] = {
    "total": "total_ms",
    "ttft": "ttft_ms",
    "queue": "queue_ms",
    "retry_delay": "retry_delay_ms",
    "model": "model_ms",
}
DEFAULT_LATENCIES = ("total", "ttft", "queue", "retry_delay")
QUANTILES = (50, 95, 99)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400, "w": 604800}


class ReportError(ValueError):
    """A report request that cannot be answered; the message says what to change."""


# ---- time ranges --------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Filters:
    """Which calls a report covers: a time range [since, until), a run, and equality on dimensions."""

    since: float | None = None
    until: float | None = None
    run_id: str | None = None
    where: tuple[tuple[str, Any], ...] = ()

    def sql(self) -> tuple[str, list[Any]]:
        """` AND ...` conditions and their parameters (empty when the report covers everything)."""
        parts, params = [], []
        if self.since is not None:
            parts.append("ts >= ?")
            params.append(self.since)
        if self.until is not None:
            parts.append("ts < ?")
            params.append(self.until)
        if self.run_id is not None:
            parts.append("run_id = ?")
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
            "since": _iso(self.since),
            "until": _iso(self.until),
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
        raise ReportError(f"llmguard: --until ({_iso(end)}) must be after --since ({_iso(start)})")
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


# ---- running queries ----------------------------------------------------------------------------


def unreadable(ledger_path: Path, exc: BaseException) -> str:
    """What to tell someone whose ledger SQLite cannot read."""
    return (
        f"llmguard: cannot read the ledger at {ledger_path} ({exc}). If it is damaged, the guard moves it aside "
        "(to ledger.sqlite3.corrupt-<time>) and starts a fresh one the next time it records a call; or restore "
        "the file from a backup."
    )


def check_readable(ledger_path: Path) -> None:
    """ReportError (saying why) when SQLite cannot read the ledger: not a database, damaged, unreadable.

    Reads the schema and the newest row through the ts index, so a report of a damaged file fails
    here instead of showing no calls. Damage deeper in is found by the report's own scans.
    """
    try:
        conn = connect(ledger_path, readonly=True)
        try:
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='calls'").fetchall()
            if tables:
                conn.execute("SELECT * FROM calls ORDER BY ts DESC LIMIT 1").fetchall()
                conn.execute("SELECT * FROM calls ORDER BY rowid LIMIT 1").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ReportError(unreadable(ledger_path, exc)) from None


def has_calls_table(ledger_path: Path) -> bool:
    try:
        conn = connect(ledger_path, readonly=True)
    except sqlite3.Error:
        return False
    try:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='calls'").fetchone() is not None
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def has_steps_table(ledger_path: Path) -> bool:
    """False for a ledger an older llmguard made (its steps are only on its calls)."""
    try:
        conn = connect(ledger_path, readonly=True)
    except sqlite3.Error:
        return False
    try:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='steps'").fetchone() is not None
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def steps_apply(by: list[str], filters: Filters) -> bool:
    """Whether step rows can be grouped by `by` and filtered by `filters` (only by what they record)."""
    return all(name in STEP_DIMENSIONS for name in by) and all(name in STEP_DIMENSIONS for name, _ in filters.where)


def query(ledger_path: Path, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One read-only query on its own connection (so several can run at once)."""
    conn = connect(ledger_path, readonly=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def run_parallel(jobs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run independent scans at once: SQLite releases the GIL while it works."""
    if len(jobs) <= 1 or (os.cpu_count() or 1) <= 1:
        return {name: job() for name, job in jobs.items()}
    with ThreadPoolExecutor(max_workers=min(len(jobs), max(2, os.cpu_count() or 2))) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def _key_sql(by: list[str]) -> str:
    """One text key per group (NULLs and several dimensions included), decoded with json.loads."""
    return "json_array(" + ", ".join(DIMENSIONS[name] for name in by) + ")"


def _partition(by: list[str], *extra: str) -> str:
    """A window's PARTITION BY on the raw dimensions (cheaper to sort than the text key)."""
    parts = [DIMENSIONS[name] for name in by] + list(extra)
    return f"PARTITION BY {', '.join(parts)} " if parts else ""


def rank(n: int, q: int) -> int:
    """Nearest rank of percentile q (in %) among n values: ceil(q n / 100), in integers."""
    return max(1, (n * q + 99) // 100)


# Percentiles sort every value they cover, and SQLite sorts about a million rows a second: over a
# 1 M-call range, sorting would be most of a report. So when a figure has more than SAMPLE_ABOVE
# values in range, its groups are estimated from deterministic samples of SAMPLE_BUDGET values
# shared between them, at least SAMPLE_MIN each (one standard error at 4,000 values: 0.8% of the
# group's ranks at p50, 0.34% at p95, 0.16% at p99; benchmarks/report.py prints the error in
# values); groups no bigger than their share stay exact, and exact=True sorts everything.
SAMPLE_ABOVE = 250_000
SAMPLE_BUDGET = 64_000
SAMPLE_MIN = 4_000


# Which calls are in the sample: Fibonacci hashing of the rowid, kept when below a group's
# threshold. Its bits are spread evenly even when calls come in a fixed cycle (four steps per
# document, say), which `rowid % n` would alias with; deterministic, so a ledger always gives the
# same report.
def _hash(table: str) -> str:
    return f"(({table}.rowid * 2654435761) & 4294967295)"


_HASH = _hash("calls")
_ALL = 2**32


def sample_thresholds(counts: dict[Any, tuple[int, int]], exact: bool = False) -> dict[Any, int]:
    """Per group of one figure: calls whose hash is below this are sorted (_ALL: every call, exact)."""
    if exact or sum(n - z for n, z in counts.values()) <= SAMPLE_ABOVE:
        return {}
    share = max(SAMPLE_MIN, SAMPLE_BUDGET // max(1, len(counts)))
    return {k: _ALL if n - z <= share else _ALL * share // (n - z) for k, (n, z) in counts.items()}


@dataclass(frozen=True)
class _Figure:
    """Where one figure's values come from, as SQL: a latency column of calls, or the steps' durations."""

    value: str
    source: str = "calls"  # the table
    condition: str = ""  # beyond the value being present
    sub: str = "''"  # a second part of the group key (the step name), '' for none


_STEPS = _Figure("duration_ms", "steps", "", "name")


def _steps_count_sql(by: list[str], where: str) -> str:
    """Per group and step: its runs (what the step percentiles rank against) and the calls inside them."""
    return f"""
        SELECT {_key_sql(by)}, name, COUNT(*), 0, SUM(COALESCE(calls, 0)) FROM steps
        WHERE duration_ms IS NOT NULL {where} GROUP BY {", ".join([DIMENSIONS[n] for n in by] + ["name"])}
    """


def _step_figures(
    counted: list[tuple[Any, ...]],
    ranked: dict[tuple[str, str], tuple[float | None, ...]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """{group key: {step name: {runs, calls, p50_ms, p95_ms, p99_ms}}}: `calls` is how many ran inside."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for k, name, runs, _, calls in counted:
        p50, p95, p99 = ranked[k, name]
        out.setdefault(k, {})[name] = {"runs": runs, "calls": calls or 0, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}
    return out


def step_figures(
    ledger_path: Path,
    filters: Filters | None = None,
    exact: bool = False,
) -> tuple[dict[str, dict[str, Any]], bool]:
    """The steps of the whole range, {name: {runs, calls, p50_ms, p95_ms, p99_ms}}, and whether they
    were estimated from a sample. Empty when the filters name what a step does not record (a model)
    or the ledger has no steps table."""
    filters = filters or Filters()
    if not steps_apply([], filters) or not has_steps_table(ledger_path):
        return {}, False
    where, params = filters.sql()
    counted = query(ledger_path, _steps_count_sql([], where), params)
    counts = {(k, name): (n, z) for k, name, n, z, _ in counted}
    thresholds = sample_thresholds(counts, exact)
    ranked = _percentile_job(ledger_path, [], _STEPS, where, params, counts, thresholds)()
    figures = _step_figures(counted, ranked).get("[]", {})  # the one group: json_array() of nothing
    return dict(sorted(figures.items())), any(t < _ALL for t in thresholds.values())


def _percentile_job(
    ledger_path: Path,
    by: list[str],
    figure: _Figure,
    where: str,
    params: list[Any],
    counts: dict[tuple[str, str], tuple[int, int]],
    thresholds: dict[tuple[str, str], int],
) -> Callable[[], dict[tuple[str, str], tuple[float | None, ...]]]:
    """{(group key, sub): (p50, p95, p99)} of one figure, given each group's (values, zeros).

    Only positive values are sorted (queue wait and retry delay are zero for most calls). Wanted
    ranks go in a temp table, so one window scan picks exactly those rows. With `thresholds`, a
    group's rank r of its p positive values becomes rank ceil(r * m / p) of the m in its sample.
    """
    present = f"{figure.value} > 0" if any(z for _, z in counts.values()) else f"{figure.value} IS NOT NULL"
    if figure.condition:
        present = f"{figure.condition} AND {present}"
    wanted: set[tuple[str, str, int, int]] = set()
    for (k, sub), (n, z) in counts.items():
        for q in QUANTILES:
            if n and rank(n, q) > z:
                wanted.add((k, sub, rank(n, q) - z, n - z))
    key, partition = _key_sql(by), _partition(by, *([figure.sub] if figure.sub != "''" else []))
    select = f"SELECT {key} AS k, {figure.sub} AS sub, {figure.value} AS v"
    if not thresholds:
        sql = f"""
            SELECT s.k, s.sub, s.rn, s.v FROM (
                {select}, ROW_NUMBER() OVER ({partition}ORDER BY {figure.value}) AS rn
                FROM {figure.source} WHERE {present} {where}) AS s
            WHERE EXISTS (SELECT 1 FROM temp.lg_rank AS w WHERE w.k = s.k AND w.sub = s.sub AND w.r = s.rn)
        """
    else:  # the sample's size per group comes from the same sort (a second window)
        below, hashed = max(thresholds.values()), _hash(figure.source)
        sql = f"""
            SELECT s.k, s.sub, w.r, s.v FROM (
                {select}, ROW_NUMBER() OVER win AS rn,
                       COUNT(*) OVER (win ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS m
                FROM {figure.source} WHERE {present} {where} {f"AND {hashed} < {below}" if below < _ALL else ""}
                    AND {hashed} < (SELECT t FROM temp.lg_sample AS g WHERE g.k = {key} AND g.sub = {figure.sub})
                WINDOW win AS ({partition}ORDER BY {figure.value})) AS s
            JOIN temp.lg_rank AS w ON w.k = s.k AND w.sub = s.sub AND s.rn = (w.r * s.m + w.p - 1) / w.p
        """

    def job() -> dict[tuple[str, str], tuple[float | None, ...]]:
        found: dict[tuple[str, str, int], float] = {}
        if wanted:
            conn = connect(ledger_path, readonly=True)
            try:
                conn.execute(
                    "CREATE TEMP TABLE lg_rank (k TEXT, sub TEXT, r INTEGER, p INTEGER, "
                    "PRIMARY KEY (k, sub, r)) WITHOUT ROWID"
                )
                conn.executemany("INSERT INTO temp.lg_rank VALUES (?, ?, ?, ?)", sorted(wanted))
                if thresholds:
                    conn.execute(
                        "CREATE TEMP TABLE lg_sample (k TEXT, sub TEXT, t INTEGER, PRIMARY KEY (k, sub)) WITHOUT ROWID"
                    )
                    conn.executemany(
                        "INSERT INTO temp.lg_sample VALUES (?, ?, ?)",
                        sorted((k, sub, t) for (k, sub), t in thresholds.items()),
                    )
                found = {(k, sub, r): v for k, sub, r, v in conn.execute(sql, params)}
            finally:
                conn.close()
        out = {}
        for (k, sub), (n, z) in counts.items():
            out[k, sub] = tuple(
                None if not n else 0.0 if rank(n, q) <= z else found.get((k, sub, rank(n, q) - z)) for q in QUANTILES
            )
        return out

    return job


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


def _tally(
    row: dict[str, Any],
    status: str,
    error_type: str | None,
    cache_hit: int,
    dedup_hit: int,
    fallback: int,
    retried: int,
    unpriced: int,
    n: int,
    retries: int,
    saved: float,
) -> None:
    row["unpriced_calls"] += n if unpriced else 0
    row["cache_hits"] += n if cache_hit else 0
    row["saved_usd"] += saved or 0.0
    row["dedup_hits"] += n if dedup_hit else 0
    row["retries"] += retries or 0
    row["retried_calls"] += n if retried else 0
    row["timeouts"] += n if error_type in ("timeout", "deadline") else 0
    row["rate_limit_refusals"] += n if status == "refused" and error_type == "rate_limit" else 0
    row["provider_429s"] += n if error_type == "rate_limited" else 0
    row["budget_refusals"] += n if status == "refused" and error_type == "budget" else 0
    row["refusals"] += n if status == "refused" else 0
    row["fallbacks"] += n if fallback else 0
    row["errors"] += n if status == "error" else 0
    row["incomplete"] += n if status == "incomplete" else 0
    row["failures"] += n if status != "ok" else 0


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
    key = _key_sql(names)
    group = ", ".join(DIMENSIONS[n] for n in names) or "NULL"
    where, params = filters.sql()
    counted = [sql for figure in latencies for sql in _LATENCY_COUNTS[figure]]
    agg_sql = (
        f"SELECT {key} AS k, "
        + ", ".join([sql for _, sql in _AGGREGATES] + counted)
        + f" FROM calls WHERE 1=1 {where} GROUP BY {group}"
    )
    eventful_sql = f"""
        SELECT {key}, status, error_type, cache_hit, dedup_hit, fallback_used, retry_count > 0, cost_usd IS NULL,
               COUNT(*), SUM(retry_count), SUM(COALESCE(saved_usd, 0))
        FROM calls WHERE {_EVENTFUL} {where}
        GROUP BY {group}, 2, 3, 4, 5, 6, 7, 8
    """
    jobs: dict[str, Callable[[], Any]] = {
        "agg": lambda: query(ledger_path, agg_sql, params),
        "eventful": lambda: query(ledger_path, eventful_sql, params),
    }
    steps = steps and steps_apply(names, filters) and has_steps_table(ledger_path)
    if steps:
        jobs["steps"] = lambda: query(ledger_path, _steps_count_sql(names, where), params)
    first = run_parallel(jobs)
    width = len(_AGGREGATES)
    counts: dict[str, dict[tuple[str, str], tuple[int, int]]] = {figure: {} for figure in latencies}
    for record in first["agg"]:
        extra = record[1 + width :]
        for i, figure in enumerate(latencies):
            counts[figure][record[0], ""] = (extra[2 * i] or 0, extra[2 * i + 1] or 0)
    figures = {figure: _Figure(LATENCIES[figure]) for figure in latencies}
    if steps:
        counts["steps"] = {(k, name): (n, z) for k, name, n, z, _ in first["steps"]}
        figures["steps"] = _STEPS
    sampled = {figure: sample_thresholds(counts[figure], exact) for figure in figures}
    estimated: dict[str, list[str]] = {}  # group key -> figures estimated from a sample
    for figure, limits in sampled.items():
        for k in dict.fromkeys(group for (group, _), t in limits.items() if t < _ALL):
            estimated.setdefault(k, []).append(figure)
    ranked = run_parallel(
        {
            figure: _percentile_job(ledger_path, names, source, where, params, counts[figure], sampled[figure])
            for figure, source in figures.items()
        }
    )
    step_rows = _step_figures(first["steps"], ranked["steps"]) if steps else {}
    by_key: dict[str, dict[str, Any]] = {}
    for record in first["agg"]:
        k = record[0]
        row: dict[str, Any] = dict(zip(names, json.loads(k), strict=True))
        for (name, _), value in zip(_AGGREGATES, record[1 : 1 + width], strict=True):
            row[name] = value if value is not None or name in ("first_ts", "last_ts") else 0
        row["cost_usd"] = float(row["cost_usd"])
        row.update({name: 0 for name in _COUNTERS}, saved_usd=0.0)
        by_key[k] = row
    for k, *fields in first["eventful"]:
        _tally(by_key[k], *fields)
    rows = []
    for k, row in by_key.items():
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


def report_html(ledger_path: Path, **filters: Any) -> str:
    """The HTML report fragment (alerts, charts, tables): `llmguard.reporting.html.report_html`, found here too."""
    from llmguard.reporting.html import report_html as build

    return build(ledger_path, **filters)


def last_run_id(ledger_path: Path) -> str | None:
    """The run of the most recent call (uses the ts index)."""
    try:
        conn = connect(ledger_path, readonly=True)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT run_id FROM calls ORDER BY ts DESC LIMIT 1").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return row[0] if row else None


# ---- spend over time and cost drivers -----------------------------------------------------------

_BUCKETS = (60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)


def span(ledger_path: Path, filters: Filters) -> tuple[float | None, float | None]:
    """First and last call time in range (MIN/MAX walk the ts index)."""
    where, params = filters.sql()
    row = query(ledger_path, f"SELECT MIN(ts), MAX(ts) FROM calls WHERE 1=1 {where}", params)[0]
    return row[0], row[1]


def bucket_size(start: float | None, end: float | None, max_buckets: int = 60) -> int:
    length = max(0.0, (end or 0.0) - (start or 0.0))
    for size in _BUCKETS:
        if length / size <= max_buckets:
            return size
    return _BUCKETS[-1]


def spend_over_time(
    ledger_path: Path,
    filters: Filters | None = None,
    by: str | None = "model",
    bucket_s: int | None = None,
) -> dict[str, Any]:
    """Cost per time bucket (and per `by` value): {"bucket_s", "buckets": [{"start", "cost_usd", "calls", "by": {...}}]}."""
    filters = filters or Filters()
    if not has_calls_table(ledger_path):
        return {"bucket_s": bucket_s or 3600, "buckets": []}
    if bucket_s is None:
        first, last = span(ledger_path, filters)
        start = filters.since if filters.since is not None else first
        end = filters.until if filters.until is not None else last
        bucket_s = bucket_size(start, end)
    where, params = filters.sql()
    dim = DIMENSIONS[by] if by else "NULL"
    rows = query(
        ledger_path,
        f"""SELECT CAST(ts / {bucket_s} AS INTEGER) AS b, {dim} AS d, SUM(COALESCE(cost_usd, 0)), COUNT(*)
            FROM calls WHERE 1=1 {where} GROUP BY b, d ORDER BY b""",
        params,
    )
    buckets: dict[int, dict[str, Any]] = {}
    for b, d, cost, calls in rows:
        item = buckets.setdefault(b, {"start": b * bucket_s, "cost_usd": 0.0, "calls": 0, "by": {}})
        item["cost_usd"] += cost
        item["calls"] += calls
        if by:
            item["by"][str(d)] = item["by"].get(str(d), 0.0) + cost
    return {"bucket_s": bucket_s, "by": by, "buckets": list(buckets.values())}


def cost_by(ledger_path: Path, dim: str, filters: Filters | None = None) -> list[tuple[Any, float, int]]:
    """(value, cost, calls) of one dimension, most expensive first: one narrow scan for a chart."""
    filters = filters or Filters()
    if not has_calls_table(ledger_path):
        return []
    where, params = filters.sql()
    return query(
        ledger_path,
        f"""SELECT {DIMENSIONS[dim]}, SUM(COALESCE(cost_usd, 0)), COUNT(*) FROM calls WHERE 1=1 {where}
            GROUP BY 1 ORDER BY 2 DESC, 3 DESC""",
        params,
    )


DRIVER_DIMENSIONS = ("feature", "model", "tenant", "prompt_version")
_DRIVER_KEY = "json_array(" + ", ".join(DIMENSIONS[d] for d in DRIVER_DIMENSIONS) + ")"
_DRIVER_SUMS = "COUNT(*), SUM(COALESCE(cost_usd, 0)), SUM(input_tokens + output_tokens)"


def top_cost_drivers(
    ledger_path: Path,
    filters: Filters | None = None,
    limit: int = 5,
    exact: bool = False,
) -> list[dict[str, Any]]:
    """The feature/model/tenant/prompt_version combinations that cost the most, with their share.

    Grouping a million calls by four columns is a million-row sort. Over more than SAMPLE_ABOVE
    calls, a sample of about SAMPLE_BUDGET calls names the likely leaders first, and only they are
    summed over every call. That answer is kept only when the best combination left out of the
    sample's leaders could not, four standard errors up, reach the last place shown; otherwise (near
    ties, as when spend is spread evenly) every combination is summed after all.
    """
    filters = filters or Filters()
    if not has_calls_table(ledger_path):
        return []
    where, params = filters.sql()
    key, sums = _DRIVER_KEY, _DRIVER_SUMS
    [(n, total)] = query(
        ledger_path, f"SELECT COUNT(*), SUM(COALESCE(cost_usd, 0)) FROM calls WHERE 1=1 {where}", params
    )
    rows = None
    if not exact and n > SAMPLE_ABOVE:
        rows = _drivers_from_sample(ledger_path, where, params, n, limit)
    if rows is None:
        rows = query(
            ledger_path,
            f"SELECT {key}, {sums} FROM calls WHERE 1=1 {where} GROUP BY 1 ORDER BY 3 DESC, 2 DESC LIMIT ?",
            params + [limit],
        )
    out = []
    for key_text, count, cost, tokens in sorted(rows, key=lambda r: (-(r[2] or 0.0), -r[1]))[:limit]:
        item = dict(zip(DRIVER_DIMENSIONS, json.loads(key_text), strict=True))
        item.update(
            calls=count,
            cost_usd=cost,
            tokens_per_call=tokens / count if count and tokens is not None else None,
            share=cost / total if total else None,
        )
        out.append(item)
    return out


def _drivers_from_sample(
    ledger_path: Path,
    where: str,
    params: list[Any],
    n: int,
    limit: int,
) -> list[tuple[Any, ...]] | None:
    """Exact sums of the sample's leading combinations, or None when a near-tie makes them unsure."""
    key, sums = _DRIVER_KEY, _DRIVER_SUMS
    below = _ALL * SAMPLE_BUDGET // n
    rate = below / _ALL
    leaders = query(
        ledger_path,
        f"""SELECT {key}, SUM(COALESCE(cost_usd, 0)) AS c, SUM(COALESCE(cost_usd, 0) * COALESCE(cost_usd, 0))
            FROM calls WHERE {_HASH} < {below} {where} GROUP BY 1 ORDER BY c DESC LIMIT ?""",
        params + [4 * limit + 1],
    )
    candidates, runner_up = leaders[: 4 * limit], leaders[4 * limit :]

    def reach(cost: float, squares: float, sign: int) -> float:  # a sampled sum, scaled, four errors off
        return (cost + sign * 4 * math.sqrt(squares)) / rate

    if runner_up and len(candidates) >= limit and reach(*runner_up[0][1:], 1) >= reach(*candidates[limit - 1][1:], -1):
        return None  # the sample cannot tell the leaders apart: no use summing its candidates
    rows = query(
        ledger_path,
        f"SELECT {key}, {sums} FROM calls WHERE {key} IN (SELECT value FROM json_each(?)) {where} GROUP BY 1",
        [json.dumps([k for k, _, _ in candidates])] + params,
    )
    if runner_up:  # could the best combination left out reach the last place shown?
        shown = sorted((r[2] or 0.0 for r in rows), reverse=True)[:limit]
        if len(shown) < limit or reach(*runner_up[0][1:], 1) >= shown[-1]:
            return None
    return rows


# ---- export -------------------------------------------------------------------------------------

_EXPORT_COLUMNS = (
    "request_id",
    "ts",
    "run_id",
    "provider",
    "endpoint",
    "model",
    "requested_model",
    "prompt_version",
    "feature",
    "tenant",
    "user",
    "notebook",
    "cell",
    "priority",
    "decision",
    "status",
    "http_status",
    "error_type",
    "stream",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "cache_hit",
    "saved_usd",
    "dedup_hit",
    "retry_count",
    "fallback_used",
    "queue_ms",
    "retry_delay_ms",
    "model_ms",
    "ttft_ms",
    "total_ms",
    "steps",
    "tags",
)
_BOOLEANS = ("stream", "cache_hit", "dedup_hit", "fallback_used")


def iter_events(ledger_path: Path, filters: Filters | None = None) -> Iterator[dict[str, Any]]:
    """Call events in the seed article's structured-event shape, streamed from the ledger one at a time.

    Names follow the seed (`tenant_id`, `user_id`, `estimated_cost`, `latency_ms` with the user's
    steps beside queue/retry_delay/model/ttft/total); the rest are the ledger's own fields.
    """
    filters = filters or Filters()
    if not has_calls_table(ledger_path):
        return
    where, params = filters.sql()
    conn = connect(ledger_path, readonly=True)
    try:
        cursor = conn.execute(
            f"SELECT {', '.join(_EXPORT_COLUMNS)} FROM calls WHERE 1=1 {where} ORDER BY ts, rowid", params
        )
        for values in cursor:
            row = dict(zip(_EXPORT_COLUMNS, values, strict=True))
            steps = json.loads(row["steps"]) if row["steps"] else {}
            tags = json.loads(row["tags"]) if row["tags"] else {}
            event = {
                "request_id": row["request_id"],
                "timestamp": _iso(row["ts"]),
                "feature": row["feature"],
                "tenant_id": row["tenant"],
                "user_id": row["user"],
                "model": row["model"],
                "prompt_version": row["prompt_version"],
                "input_tokens": row["input_tokens"],
                "cached_input_tokens": row["cached_input_tokens"],
                "output_tokens": row["output_tokens"],
                "reasoning_tokens": row["reasoning_tokens"],
                "estimated_cost": row["cost_usd"],
                "latency_ms": {
                    **steps,
                    "queue": row["queue_ms"],
                    "retry_delay": row["retry_delay_ms"],
                    "model": row["model_ms"],
                    "ttft": row["ttft_ms"],
                    "total": row["total_ms"],
                },
                "retry_count": row["retry_count"],
                "cache_hit": bool(row["cache_hit"]),
                "fallback_used": bool(row["fallback_used"]),
            }
            for name in (
                "run_id",
                "provider",
                "endpoint",
                "requested_model",
                "notebook",
                "cell",
                "priority",
                "decision",
                "status",
                "http_status",
                "error_type",
                "saved_usd",
            ):
                event[name] = row[name]
            for name in ("stream", "dedup_hit"):
                event[name] = bool(row[name])
            event["ts"] = row["ts"]
            if tags:
                event["tags"] = tags
            yield event
    finally:
        conn.close()


# ---- output -------------------------------------------------------------------------------------


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def to_json(data: Any) -> str:
    return json.dumps(_clean(data), indent=2, default=str)


def flatten(row: dict[str, Any]) -> dict[str, Any]:
    """A breakdown row with its `steps` spread into `step.<name>.<figure>` columns (for CSV)."""
    flat = {k: v for k, v in row.items() if k != "steps"}
    for name, figures in (row.get("steps") or {}).items():
        for figure, value in figures.items():
            flat[f"step.{name}.{figure}"] = value
    return flat


# A cell starting with one of these is run as a formula by spreadsheets (OWASP, "CSV Injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value safe to open in a spreadsheet: text that would start a formula gets a leading `'`
    (numbers, negative ones too, stay numbers), and NUL bytes are written as the text `\\x00`."""
    if not isinstance(value, str):
        return value
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Breakdown rows as CSV; text cells neutralised (`csv_cell`), so a tag value cannot become a formula."""
    flat = [flatten(r) for r in rows]
    fieldnames: list[str] = []
    for row in flat:
        fieldnames.extend(k for k in row if k not in fieldnames)
    out = io.StringIO()
    if flat:
        writer = csv.writer(out)
        writer.writerow([csv_cell(name) for name in fieldnames])
        writer.writerows([csv_cell(row.get(name, "")) for name in fieldnames] for row in flat)
    return out.getvalue()


def to_table(
    rows: list[dict[str, Any]],
    by: str | list[str] = "model",
    title: str = "llmguard cost summary",
) -> Any:
    """A compact rich Table of breakdown rows (calls, tokens, cost, p50/p95, errors) with a total line."""
    from rich.markup import escape
    from rich.table import Table

    names = parse_by(by)
    table = Table(title=title)
    for name in names:
        table.add_column(name, justify="left")
    for name in ("calls", "input tok", "cached", "output tok", "cost USD", "p50 ms", "p95 ms", "errors"):
        table.add_column(name, justify="right")
    for row in rows:
        cost = f"{row['cost_usd']:.6f}" + (f" (+{row['unpriced_calls']} unpriced)" if row.get("unpriced_calls") else "")
        table.add_row(*[escape(str(row.get(n))) for n in names], *_figures(row, cost))
    if len(rows) > 1:
        total = totals(rows)
        cells = _figures(total, f"{total['cost_usd']:.6f}")
        cells[5] = cells[6] = ""
        table.add_row(*(["total"] + [""] * (len(names) - 1)), *cells, style="bold")
    return table


def _figures(row: dict[str, Any], cost: str) -> list[str]:
    return [
        f"{row['calls']:,}",
        f"{row['input_tokens']:,}",
        f"{row['cached_input_tokens']:,}",
        f"{row['output_tokens']:,}",
        cost,
        _ms(row.get("p50_ms")),
        _ms(row.get("p95_ms")),
        str(row.get("errors", 0)),
    ]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


@dataclass
class Report:
    """Everything one report shows, as plain data (JSON, the terminal and HTML render it)."""

    ledger: str
    by: list[str]
    filters: Filters
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: dict[str, Any] = field(default_factory=dict)
    spend: dict[str, Any] = field(default_factory=dict)
    drivers: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[Any] = field(default_factory=list)
    generated_at: float = field(default_factory=time.time)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)  # the steps of the whole range
    steps_sampled: bool = False  # their percentiles were estimated from a sample

    def to_dict(self) -> dict[str, Any]:
        return {
            "ledger": self.ledger,
            "generated_at": _iso(self.generated_at),
            "range": self.filters.describe(),
            "by": self.by,
            "alerts": [a.to_dict() if hasattr(a, "to_dict") else a for a in self.alerts],
            "total": self.total,
            "rows": self.rows,
            "spend_over_time": self.spend,
            "top_cost_drivers": self.drivers,
            "steps": self.steps,
            "steps_sampled": self.steps_sampled,
        }


def build_report(
    ledger_path: Path,
    by: str | list[str] | None = "model",
    filters: Filters | None = None,
    alerts: Callable[[], list[Any]] | None = None,
    exact: bool = False,
) -> Report:
    """The breakdown, spend over time, top cost drivers, the range's steps and (optionally) alerts,
    scanned in parallel."""
    names = parse_by(by)
    filters = filters or Filters()
    jobs: dict[str, Callable[[], Any]] = {
        "rows": lambda: breakdown(ledger_path, names, filters, exact=exact),
        "spend": lambda: spend_over_time(ledger_path, filters),
        "drivers": lambda: top_cost_drivers(ledger_path, filters, exact=exact),
        "steps": lambda: step_figures(ledger_path, filters, exact=exact),
    }
    if alerts is not None:
        jobs["alerts"] = alerts
    done = run_parallel(jobs)
    return Report(
        ledger=str(ledger_path),
        by=names,
        filters=filters,
        rows=done["rows"],
        total=totals(done["rows"]),
        spend=done["spend"],
        drivers=done["drivers"],
        alerts=done.get("alerts", []),
        steps=done["steps"][0],
        steps_sampled=done["steps"][1],
    )
