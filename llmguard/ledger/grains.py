"""What the rollup keeps (`GRAINS`), and the SQL that fills and reads it; rollup.py keeps it up to date.

Per hour, the calls' sums by what the default report and the common `--by` ask for (run,
provider, endpoint, model, feature, prompt version, priority, decision, status, error type); per
day, costs by tenant with feature, model and prompt version (the cost drivers), and by user; and
latency histograms: by model per day, by model and feature per week, and of step durations by step
per day. A histogram counts values per bucket of about 2% (`bucket_sql`) and keeps the smallest and
largest value of each, so a percentile is read as a value some call had, or found exactly by one
narrow scan. Together they cost the ledger's writer about 18 us per call (benchmarks/report.py
measures it), which is why there are no more of them: a tenant's or a user's calls of a day are
about one row each, so those grains keep costs only, and a histogram by tenant or user would hold
about a bucket per call.

A rollup's row keeps the calls' own values. NULL is kept as the empty blob (a primary key cannot
hold NULL; no call stores an empty blob). A call whose time is not a number from 1970 on is kept in
period -1.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass

from llmguard.ledger.records import CallEvent
from llmguard.ledger.schema import column_type

HOUR, DAY, WEEK = 3600, 86400, 7 * 86400
NULL = "x''"  # how NULL is kept in a rollup's key (SQL literal)

# latency figure -> column of calls (reporting.queries.LATENCIES is this)
LATENCY_COLUMNS: dict[str, str] = {
    "total": "total_ms",
    "ttft": "ttft_ms",
    "queue": "queue_ms",
    "retry_delay": "retry_delay_ms",
    "model": "model_ms",
}
FIGURE_COLUMNS = {**LATENCY_COLUMNS, "duration": "duration_ms"}  # `duration`: a step's, in the steps table
# Queue wait and retry delay are zero for most calls, so their histograms count only positive values
# (their zeros are a sum of the hourly grain); every other figure counts every value it has.
ZERO_HEAVY = ("queue", "retry_delay")
PRESENT = {figure: "> 0" if figure in ZERO_HEAVY else "IS NOT NULL" for figure in FIGURE_COLUMNS}
RATIO = 1.02  # a histogram bucket spans this factor: its smallest and largest value are within 2%
_SCALE = 1 / math.log(RATIO)
_SHIFT = 16.0  # ln of values down to ~1e-7 ms is above -16, so buckets count up from 0 there
NOT_A_NUMBER = 2**63 - 1  # the bucket of values that are not numbers (and of infinity): they sort last
AT_OR_BELOW_ZERO = -1  # the bucket of values <= 0

# (name, aggregate over calls, how two partial values combine)
MEASURES: list[tuple[str, str, str]] = [
    ("calls", "COUNT(*)", "sum"),
    ("input_tokens", "IFNULL(SUM(input_tokens), 0)", "sum"),
    ("cached_input_tokens", "IFNULL(SUM(cached_input_tokens), 0)", "sum"),
    ("cache_write_tokens", "IFNULL(SUM(cache_write_tokens), 0)", "sum"),
    ("output_tokens", "IFNULL(SUM(output_tokens), 0)", "sum"),
    ("reasoning_tokens", "IFNULL(SUM(reasoning_tokens), 0)", "sum"),
    ("cost_usd", "TOTAL(cost_usd)", "sum"),
    ("unpriced_calls", "IFNULL(SUM(cost_usd IS NULL), 0)", "sum"),
    ("cache_hits", "IFNULL(SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END), 0)", "sum"),
    ("saved_usd", "TOTAL(saved_usd)", "sum"),
    ("dedup_hits", "IFNULL(SUM(CASE WHEN dedup_hit THEN 1 ELSE 0 END), 0)", "sum"),
    ("fallbacks", "IFNULL(SUM(CASE WHEN fallback_used THEN 1 ELSE 0 END), 0)", "sum"),
    ("retries", "IFNULL(SUM(CASE WHEN retry_count > 0 THEN retry_count ELSE 0 END), 0)", "sum"),
    ("retried_calls", "IFNULL(SUM(retry_count > 0), 0)", "sum"),
    ("failures", "IFNULL(SUM(status != 'ok'), 0)", "sum"),
    ("first_ts", "MIN(ts)", "min"),
    ("last_ts", "MAX(ts)", "max"),
    *[(f"{figure}_n", f"COUNT({column})", "sum") for figure, column in LATENCY_COLUMNS.items()],
    *[(f"{figure}_zeros", f"IFNULL(SUM({LATENCY_COLUMNS[figure]} <= 0), 0)", "sum") for figure in ZERO_HEAVY],
]
MEASURE_NAMES = tuple(name for name, _, _ in MEASURES)
# What the tenant and user grains keep: enough for costs by tenant or user and the cost drivers.
COSTS = ("calls", "input_tokens", "output_tokens", "cost_usd", "unpriced_calls", "failures", "first_ts", "last_ts")


@dataclass(frozen=True)
class Grain:
    """One pre-aggregation: rows of `source` grouped by `dims` per period of `period_s` seconds, either
    summed (`measures`) or, with `figures`, counted per histogram bucket of each figure."""

    name: str
    period_s: int
    dims: tuple[str, ...]
    measures: tuple[str, ...] = MEASURE_NAMES
    figures: tuple[str, ...] = ()  # a histogram's figures (FIGURE_COLUMNS)
    source: str = "calls"  # or "steps"

    @property
    def histogram(self) -> bool:
        return bool(self.figures)

    @property
    def table(self) -> str:
        return f"rollup_{self.name}"

    @property
    def key(self) -> list[str]:
        return ["period", *map(quote, self.dims), *(["figure", "bucket"] if self.histogram else [])]


CALL_FIGURES = ("total", "ttft", "queue", "retry_delay")
HOURLY = Grain(
    "hour",
    HOUR,
    ("run_id", "provider", "endpoint", "model", "requested_model", "feature", "prompt_version")
    + ("priority", "decision", "status", "error_type"),
)
TENANTS = Grain("tenant", DAY, ("tenant", "feature", "model", "prompt_version"), COSTS)
USERS = Grain("user", DAY, ("user",), COSTS)
LATENCY = Grain("latency", DAY, ("provider", "model"), (), (*CALL_FIGURES, "model"))
# by week: by day, it would hold a third of a row per call (each feature's buckets fill slowly)
LATENCY_BY_FEATURE = Grain("latency_feature", WEEK, ("provider", "model", "feature"), (), CALL_FIGURES)
STEP_LATENCY = Grain("step_latency", DAY, ("name",), (), ("duration",), source="steps")
SUM_GRAINS = (HOURLY, TENANTS, USERS)
HISTOGRAM_GRAINS = (LATENCY, LATENCY_BY_FEATURE)  # of calls
GRAINS = (*SUM_GRAINS, *HISTOGRAM_GRAINS, STEP_LATENCY)


def quote(name: str) -> str:
    return f'"{name}"'


def period_sql(period_s: int, ts: str = "ts") -> str:
    """The period a row falls in: whole seconds since 1970 // period_s (-1 when its time is not such a number)."""
    return (
        f"(CASE WHEN typeof({ts}) IN ('integer', 'real') AND {ts} >= 0 "
        f"THEN CAST({ts} AS INTEGER) / {period_s} ELSE -1 END)"
    )


def bucket_sql(value: str) -> str:
    """A latency value's histogram bucket: non-decreasing in the value, computed by SQLite alone, so the
    buckets a report asks for are the buckets the rollup counted (see `ensure_ln`)."""
    return (
        f"(CASE WHEN {value} > 0 THEN IFNULL(CAST((ln({value}) + {_SHIFT!r}) * {_SCALE!r} AS INTEGER), "
        f"{NOT_A_NUMBER}) ELSE {AT_OR_BELOW_ZERO} END)"
    )


def encoded(column: str) -> str:
    """A dimension as a rollup keeps it: NULL as the empty blob."""
    return f"IFNULL({column}, {NULL})"


def decoded(column: str) -> str:
    """A rollup's dimension as the calls table holds it."""
    return f"NULLIF({column}, {NULL})"


def ensure_ln(conn: sqlite3.Connection) -> None:
    """SQLite's ln(), or the same function from Python where SQLite was built without math functions."""
    try:
        conn.execute("SELECT ln(1.0)").fetchone()
    except sqlite3.OperationalError:
        conn.create_function("ln", 1, _ln, deterministic=True)


def _ln(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return math.log(value)


# ---- the tables and the statements that fill them -----------------------------------------------


def create_sql(grain: Grain) -> str:
    """A grain's table, keyed by period and its dimensions (typed as the calls' columns)."""
    fields = CallEvent.__dataclass_fields__
    dims = [f"{quote(d)} {column_type(d) if d in fields else 'TEXT'} NOT NULL" for d in grain.dims]
    if grain.histogram:
        values = ["figure TEXT NOT NULL", "bucket INTEGER NOT NULL", "n INTEGER", "lo", "hi"]
    else:
        values = [f"{name} {'REAL' if name.endswith(('_usd', '_ts')) else 'INTEGER'}" for name in grain.measures]
    columns = ", ".join(["period INTEGER NOT NULL", *dims, *values])
    return f"CREATE TABLE IF NOT EXISTS {grain.table} ({columns}, PRIMARY KEY ({', '.join(grain.key)})) WITHOUT ROWID"


def _merge(name: str, how: str) -> str:
    if how == "sum":
        return f"{name} = {name} + excluded.{name}"
    better = "<" if how == "min" else ">"
    return f"{name} = CASE WHEN {name} IS NULL OR excluded.{name} {better} {name} THEN excluded.{name} ELSE {name} END"


def sums_sql(grain: Grain) -> str:
    """Add the calls of a rowid range (?, ?] to a sums grain."""
    measures = [m for m in MEASURES if m[0] in grain.measures]
    dims = [encoded(quote(d)) for d in grain.dims]
    columns = ", ".join(["period", *map(quote, grain.dims), *(name for name, _, _ in measures)])
    select = ", ".join([period_sql(grain.period_s), *dims, *(sql for _, sql, _ in measures)])
    group = ", ".join(str(i) for i in range(1, len(grain.dims) + 2))
    updates = ", ".join(_merge(name, how) for name, _, how in measures)
    return (
        f"INSERT INTO {grain.table} ({columns}) SELECT {select} FROM {grain.source} WHERE rowid > ? AND rowid <= ? "
        f"GROUP BY {group} ON CONFLICT ({', '.join(grain.key)}) DO UPDATE SET {updates}"
    )


def histogram_sql(grain: Grain, figure: str) -> str:
    """Add one figure's values of a rowid range (?, ?] to a histogram grain (a statement per figure
    reads each row once for it)."""
    column = FIGURE_COLUMNS[figure]
    names = ", ".join(map(quote, grain.dims))
    dims = ", ".join(encoded(quote(d)) for d in grain.dims)
    group = ", ".join(str(i) for i in range(1, len(grain.dims) + 4))
    return (
        f"INSERT INTO {grain.table} (period, {names}, figure, bucket, n, lo, hi) "
        f"SELECT {period_sql(grain.period_s)}, {dims}, '{figure}', {bucket_sql(column)}, COUNT(*), "
        f"MIN({column}), MAX({column}) FROM {grain.source} WHERE rowid > ? AND rowid <= ? AND {column} "
        f"{PRESENT[figure]} GROUP BY {group} "
        f"ON CONFLICT ({', '.join(grain.key)}) DO UPDATE SET n = n + excluded.n, "
        "lo = CASE WHEN excluded.lo < lo THEN excluded.lo ELSE lo END, "
        "hi = CASE WHEN excluded.hi > hi THEN excluded.hi ELSE hi END"
    )


def statements(source: str) -> list[str]:
    """What rolls up a rowid range of `source` (calls or steps) into every grain of it."""
    out = []
    for grain in GRAINS:
        if grain.source == source:
            out += [histogram_sql(grain, f) for f in grain.figures] if grain.histogram else [sums_sql(grain)]
    return out
