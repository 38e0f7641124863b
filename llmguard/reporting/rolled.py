"""Grouped sums of the calls a report covers, read from the rollup where it can answer (see ledger/rollup.py).

A `Request` names the dimensions to group by, the sums wanted and, for charts over time, a time
bucket. `sums` answers it from the smallest grain that holds those dimensions and sums, for the
whole periods inside the report's range, and adds from the calls table what the grain cannot
hold: the calls above the rollup's watermark, and those in the partial periods at the range's
edges (through the ts index). Without a usable rollup (a ledger an older llmguard made, a range
shorter than two of the grain's periods, a dimension no grain keeps) it groups the calls table
itself with the same aggregates, so both roads give the same numbers.

The rollup is checked before it is trusted: the calls it says it holds plus those above its
watermark must be all the calls there are (a row deleted by hand, a VACUUM, fails that and the
report scans). A reader that finds the rollup behind by more than a commit would have left lets
it catch up (at most READER_CATCH_UP calls, a chunk per transaction) before it reads.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmguard.ledger import grains, rollup
from llmguard.ledger.connection import connect
from llmguard.ledger.records import stored_form
from llmguard.reporting.filters import DIMENSIONS, Filters

READER_CATCH_UP = 100_000  # calls a report rolls up itself before reading (about a second), at most
TIME_DIMENSIONS = {"day": "%Y-%m-%d", "hour": "%Y-%m-%d %H:00"}
_HOW = {name: how for name, _, how in grains.MEASURES}
_AGGREGATE = {name: sql for name, sql, _ in grains.MEASURES}


@dataclass(frozen=True)
class Request:
    """Group by `dims` (names of filters.DIMENSIONS) and sum `measures` (grains.MEASURE_NAMES); with
    `bucket_s`, the key starts with the time bucket's index, CAST(ts AS INTEGER) // bucket_s."""

    dims: tuple[str, ...]
    measures: tuple[str, ...]
    bucket_s: int | None = None

    def __post_init__(self) -> None:
        if "calls" not in self.measures:
            raise ValueError("a Request counts its calls: name 'calls' among its measures")


@dataclass
class Sums:
    """{key tuple: {measure: value}}, and which grain answered (None: the calls were scanned)."""

    groups: dict[tuple[Any, ...], dict[str, Any]]
    grain: str | None = None


# ---- choosing a grain -------------------------------------------------------------------------


def _needed(request: Request, filters: Filters) -> set[str]:
    names = {d for d in request.dims if d not in TIME_DIMENSIONS} | {name for name, _ in filters.where}
    return names | ({"run_id"} if filters.run_id is not None else set())


def grain_for(request: Request, filters: Filters, candidates: tuple[grains.Grain, ...]) -> grains.Grain | None:
    """The first grain (finest first) that holds every dimension and sum asked for, in periods that fit."""
    needed = _needed(request, filters)
    for grain in candidates:
        if not needed <= set(grain.dims) or not set(request.measures) <= set(grain.measures):
            continue
        if "hour" in request.dims and grain.period_s > grains.HOUR:
            continue
        if request.bucket_s is not None and request.bucket_s % grain.period_s:
            continue
        return grain
    return None


@dataclass(frozen=True)
class Split:
    """A range cut at a grain's periods: whole periods [first, end) from the rollup (None: unbounded),
    the rest from the calls (`edges`: ts conditions, each with its parameters)."""

    first: int | None
    end: int | None
    edges: list[tuple[str, list[Any]]]

    def periods(self) -> tuple[str, list[Any]]:
        """` AND period ...` conditions (and parameters) that keep the whole periods of the range."""
        parts, params = "", list[Any]()
        if self.first is not None:
            parts, params = parts + " AND period >= ?", [*params, self.first]
        if self.end is not None:
            parts, params = parts + " AND period < ?", [*params, self.end]
        return parts, params


def split(filters: Filters, period_s: int) -> Split | None:
    """None when the range holds fewer than two whole periods (a scan of it is as cheap)."""
    first = None if filters.since is None else math.ceil(filters.since / period_s)
    end = None if filters.until is None else math.floor(filters.until / period_s)
    if first is not None and end is not None and end - first < 2:
        return None
    edges = []
    if first is not None:
        edges.append(("ts >= ? AND ts < ?", [filters.since, first * period_s]))
    if end is not None:
        edges.append(("ts >= ? AND ts < ?", [end * period_s, filters.until]))
    return Split(first, end, edges)


# ---- reading ----------------------------------------------------------------------------------


def watermark(conn: sqlite3.Connection, source: str = "calls") -> rollup.Watermark | None:
    """A table's watermark when its rollup can be trusted in this read transaction, else None."""
    try:
        mark = rollup.watermark(conn, source)
        if mark is None or not mark.usable or not rollup.has_table(conn, source):
            return None
        (everything,) = conn.execute(f"SELECT COUNT(*) FROM {source}").fetchone()
        (above,) = conn.execute(f"SELECT COUNT(*) FROM {source} WHERE rowid > ?", (mark.rowid,)).fetchone()
    except sqlite3.Error:
        return None
    return mark if everything == mark.rows + above else None


def catch_up_if_behind(ledger_path: Path) -> None:
    """Let the rollup catch up when a reader finds it behind (an older ledger being rolled up, a
    writer that exited early): best effort, and only as much as READER_CATCH_UP."""
    try:
        conn = connect(ledger_path, readonly=True)
        try:
            behind = rollup.backlog(conn)
        finally:
            conn.close()
        if behind <= rollup.CATCH_UP_AT:
            return
        conn = connect(ledger_path)
        try:
            conn.execute("PRAGMA busy_timeout=200")  # a writer busy committing catches up itself
            rollup.backfill(conn, chunks=max(1, READER_CATCH_UP // rollup.CHUNK_ROWS))
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        pass  # read-only or busy: the calls above the watermark are read from the calls table


def dim_sql(name: str, grain: grains.Grain | None) -> str:
    if grain is None:
        return DIMENSIONS[name]
    if name in TIME_DIMENSIONS:
        return f"strftime('{TIME_DIMENSIONS[name]}', period * {grain.period_s}, 'unixepoch')"
    return grains.decoded(grains.quote(name))


def _bucket_sql(bucket_s: int, grain: grains.Grain | None) -> str:
    return f"(CAST(ts AS INTEGER) / {bucket_s})" if grain is None else f"(period * {grain.period_s} / {bucket_s})"


def filter_sql(filters: Filters, grain: grains.Grain) -> tuple[str, list[Any]]:
    """The dimension filters on a grain's columns (NULL is kept as the empty blob)."""
    parts, params = [], []
    if filters.run_id is not None:
        parts.append('"run_id" = ?')
        params.append(stored_form(filters.run_id))
    for name, value in filters.where:
        if value is None:
            parts.append(f"{grains.quote(name)} = {grains.NULL}")
        else:
            parts.append(f"{grains.quote(name)} = ?")
            params.append(stored_form(value))
    return "".join(f" AND {p}" for p in parts), params


def _select(request: Request, grain: grains.Grain | None) -> tuple[str, int]:
    """`key columns, sums` of a grouped read, on a grain's table (rolled up) or on calls (grain None)."""
    keys = [dim_sql(d, grain) for d in request.dims]
    if request.bucket_s is not None:
        keys.insert(0, _bucket_sql(request.bucket_s, grain))
    if grain is None:
        values = [_AGGREGATE[m] for m in request.measures]
    else:
        values = [f"{'SUM' if _HOW[m] == 'sum' else _HOW[m].upper()}({m})" for m in request.measures]
    return ", ".join(keys + values) or "NULL", len(keys)


def _grouped(conn: sqlite3.Connection, sql: str, params: list[Any], width: int) -> Iterable[tuple[Any, ...]]:
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(width))}" if width else ""
    return conn.execute(sql + group, params)


def _add(
    groups: dict[tuple[Any, ...], dict[str, Any]], rows: Iterable[tuple[Any, ...]], request: Request, width: int
) -> None:
    counted = request.measures.index("calls")
    for row in rows:
        key, values = tuple(row[:width]), row[width:]
        if not values[counted]:
            continue  # the one row of an aggregate over no calls
        found = groups.get(key)
        if found is None:
            groups[key] = dict(zip(request.measures, values, strict=True))
            continue
        for name, value in zip(request.measures, values, strict=True):
            how, old = _HOW[name], found[name]
            if how == "sum":
                found[name] = (old or 0) + (value or 0)
            elif value is not None and (old is None or (value < old if how == "min" else value > old)):
                found[name] = value


def scan(conn: sqlite3.Connection, request: Request, filters: Filters) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The request answered from the calls table alone."""
    where, params = filters.sql()
    select, width = _select(request, None)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    _add(groups, _grouped(conn, f"SELECT {select} FROM calls WHERE 1=1{where}", params, width), request, width)
    return groups


def sums(ledger_path: Path, request: Request, filters: Filters | None = None) -> Sums:
    """The request over the calls `filters` cover: from the rollup where it can answer, else a scan."""
    filters = filters or Filters()
    grain = grain_for(request, filters, grains.SUM_GRAINS)
    if grain is not None:
        catch_up_if_behind(ledger_path)
    conn = connect(ledger_path, readonly=True)
    try:
        conn.execute("BEGIN")  # one snapshot: the watermark, the rollup and the calls above it agree
        answered = from_rollup(conn, request, filters, grain) if grain is not None else None
        if answered is not None:
            return Sums(answered, grain.name if grain is not None else None)
        return Sums(scan(conn, request, filters))
    finally:
        conn.close()


def unplaceable(conn: sqlite3.Connection, grain: grains.Grain) -> bool:
    """Whether the grain holds calls whose time is not a number from 1970 on (period -1)."""
    return conn.execute(f"SELECT 1 FROM {grain.table} WHERE period = -1 LIMIT 1").fetchone() is not None


def from_rollup(
    conn: sqlite3.Connection, request: Request, filters: Filters, grain: grains.Grain
) -> dict[tuple[Any, ...], dict[str, Any]] | None:
    mark = watermark(conn)
    if mark is None:
        return None
    cut = split(filters, grain.period_s)
    if cut is None:
        return None
    timed = filters.since is not None or filters.until is not None or request.bucket_s is not None
    if (timed or any(d in TIME_DIMENSIONS for d in request.dims)) and unplaceable(conn, grain):
        return None
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    select, width = _select(request, grain)
    dims_where, dims_params = filter_sql(filters, grain)
    periods, period_params = cut.periods()
    rolled = f"SELECT {select} FROM {grain.table} WHERE 1=1{periods}{dims_where}"
    _add(groups, _grouped(conn, rolled, [*period_params, *dims_params], width), request, width)
    raw_select, _ = _select(request, None)
    for sql, params in raw_parts(filters, mark, cut):
        _add(groups, _grouped(conn, f"SELECT {raw_select} FROM calls WHERE {sql}", params, width), request, width)
    return groups


def raw_parts(filters: Filters, mark: rollup.Watermark, cut: Split) -> list[tuple[str, list[Any]]]:
    """What a grain does not hold of the range, as WHERE clauses on calls: the calls above the
    watermark (read by rowid), and those below it at the range's edges (read through the ts index)."""
    unindexed, unindexed_params = filters.sql(indexed=False)
    where, params = filters.sql()
    parts = [(f"rowid > ?{unindexed}", [mark.rowid, *unindexed_params])]
    for condition, edge in cut.edges:
        parts.append((f"+rowid <= ? AND {condition}{where}", [mark.rowid, *edge, *params]))
    return parts
