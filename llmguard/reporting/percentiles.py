"""Nearest-rank percentiles in SQL: p = the value at rank ceil(q * n) of the n values, in ascending order.

Only positive values are sorted when zeros are common (queue wait and retry delay are zero for most
calls): their zeros are counted, not sorted. Wanted ranks go in a temp table, so one window scan
picks exactly those rows. With sample thresholds (see `sampling`), a group's rank r of its p
positive values becomes rank ceil(r * m / p) of the m in its sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmguard.ledger.sqlite import connect
from llmguard.reporting.filters import DIMENSIONS, key_sql
from llmguard.reporting.sampling import ALL, row_hash

QUANTILES = (50, 95, 99)

# {(group key, sub): (values, zeros)}, {(group key, sub): sample threshold}, {(group key, sub): (p50, p95, p99)}
Counts = dict[tuple[str, str], tuple[int, int]]
Thresholds = dict[tuple[str, str], int]
Ranked = dict[tuple[str, str], tuple[float | None, ...]]


def rank(n: int, q: int) -> int:
    """Nearest rank of percentile q (in %) among n values: ceil(q n / 100), in integers."""
    return max(1, (n * q + 99) // 100)


@dataclass(frozen=True)
class Scan:
    """What a report scans: the ledger, the dimensions it groups by and its filters as SQL."""

    ledger_path: Path
    by: list[str]
    where: str = ""  # " AND ..." conditions
    params: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Figure:
    """Where one figure's values come from, as SQL: a latency column of calls, or the steps' durations."""

    value: str
    source: str = "calls"  # the table
    condition: str = ""  # beyond the value being present
    sub: str = "''"  # a second part of the group key (the step name), '' for none


STEPS = Figure("duration_ms", "steps", "", "name")


def _partition(by: list[str], *extra: str) -> str:
    """A window's PARTITION BY on the raw dimensions (cheaper to sort than the text key)."""
    parts = [DIMENSIONS[name] for name in by] + list(extra)
    return f"PARTITION BY {', '.join(parts)} " if parts else ""


def _rank_sql(scan: Scan, figure: Figure, zeros: bool, thresholds: Thresholds) -> str:
    """The window scan that returns (key, sub, rank, value) for the ranks in temp.lg_rank."""
    present = f"{figure.value} > 0" if zeros else f"{figure.value} IS NOT NULL"
    if figure.condition:
        present = f"{figure.condition} AND {present}"
    key, partition = key_sql(scan.by), _partition(scan.by, *([figure.sub] if figure.sub != "''" else []))
    select = f"SELECT {key} AS k, {figure.sub} AS sub, {figure.value} AS v"
    if not thresholds:
        return f"""
            SELECT s.k, s.sub, s.rn, s.v FROM (
                {select}, ROW_NUMBER() OVER ({partition}ORDER BY {figure.value}) AS rn
                FROM {figure.source} WHERE {present} {scan.where}) AS s
            WHERE EXISTS (SELECT 1 FROM temp.lg_rank AS w WHERE w.k = s.k AND w.sub = s.sub AND w.r = s.rn)
        """
    # the sample's size per group comes from the same sort (a second window)
    below, hashed = max(thresholds.values()), row_hash(figure.source)
    return f"""
        SELECT s.k, s.sub, w.r, s.v FROM (
            {select}, ROW_NUMBER() OVER win AS rn,
                   COUNT(*) OVER (win ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS m
            FROM {figure.source} WHERE {present} {scan.where} {f"AND {hashed} < {below}" if below < ALL else ""}
                AND {hashed} < (SELECT t FROM temp.lg_sample AS g WHERE g.k = {key} AND g.sub = {figure.sub})
            WINDOW win AS ({partition}ORDER BY {figure.value})) AS s
        JOIN temp.lg_rank AS w ON w.k = s.k AND w.sub = s.sub AND s.rn = (w.r * s.m + w.p - 1) / w.p
    """


def _find(
    scan: Scan, sql: str, wanted: set[tuple[str, str, int, int]], thresholds: Thresholds
) -> dict[tuple[str, str, int], float]:
    """{(key, sub, rank among positives): value} for the wanted ranks."""
    conn = connect(scan.ledger_path, readonly=True)
    try:
        conn.execute(
            "CREATE TEMP TABLE lg_rank (k TEXT, sub TEXT, r INTEGER, p INTEGER, PRIMARY KEY (k, sub, r)) WITHOUT ROWID"
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
        return {(k, sub, r): v for k, sub, r, v in conn.execute(sql, scan.params)}
    finally:
        conn.close()


def percentile_job(scan: Scan, figure: Figure, counts: Counts, thresholds: Thresholds) -> Callable[[], Ranked]:
    """{(group key, sub): (p50, p95, p99)} of one figure, given each group's (values, zeros)."""
    wanted: set[tuple[str, str, int, int]] = set()
    for (k, sub), (n, z) in counts.items():
        for q in QUANTILES:
            if n and rank(n, q) > z:
                wanted.add((k, sub, rank(n, q) - z, n - z))
    sql = _rank_sql(scan, figure, any(z for _, z in counts.values()), thresholds)

    def job() -> Ranked:
        found = _find(scan, sql, wanted, thresholds) if wanted else {}
        return {
            (k, sub): tuple(
                None if not n else 0.0 if rank(n, q) <= z else found.get((k, sub, rank(n, q) - z)) for q in QUANTILES
            )
            for (k, sub), (n, z) in counts.items()
        }

    return job
