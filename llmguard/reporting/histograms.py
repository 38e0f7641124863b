"""Latency percentiles from the rollup's histograms (ledger/rollup.py), without sorting a million values.

Per day and model, the rollup counts each latency figure's values per bucket of about 2% and keeps
the smallest and largest value in each bucket. A percentile's rank falls in one bucket, so its
estimate is that bucket's smallest or largest value, whichever is nearer the rank: a value some call
had, within one bucket of the exact nearest-rank value, and no call is read (`estimate`). Exact
percentiles (`exact`) read the calls once, keep only the values in the buckets that hold the ranks
asked for (a few percent of them), and pick each rank inside its bucket. What they find per bucket
is checked against the histogram, read in the same snapshot; a figure whose counts disagree gets
None, and its caller sorts it in full instead.

Only what the histograms are kept by can be split by them: model, provider, feature and day,
filtered by those (`grain_for`); the finer grain (by feature) is read only when asked for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmguard.ledger import grains
from llmguard.ledger.connection import connect
from llmguard.reporting import rolled
from llmguard.reporting.db import has_steps_table
from llmguard.reporting.filters import DIMENSIONS, Filters
from llmguard.reporting.percentiles import QUANTILES, rank
from llmguard.reporting.sampling import worth_sampling

Key = tuple[Any, ...]
Triple = tuple[float | None, ...]


def grain_for(by: Iterable[str], filters: Filters, source: str = "calls") -> grains.Grain | None:
    """The histograms of `source` (calls, steps) that can be split by `by` and cut by `filters` (the
    coarser first), if any."""
    by = list(by)
    names = {d for d in by if d != "day"} | {name for name, _ in filters.where}
    if "hour" in by or filters.run_id is not None:
        return None
    return next((g for g in grains.GRAINS if g.histogram and g.source == source and names <= set(g.dims)), None)


@dataclass
class Histograms:
    """{(group key, figure): [[bucket, n, lo, hi], ...] by bucket}, and each group's zero values of the
    figures whose histograms hold only positive values (queue wait, retry delay)."""

    figures: list[str] = field(default_factory=list)  # what was read (what the grain keeps of those asked)
    source: str = "calls"
    buckets: dict[tuple[Key, str], list[list[Any]]] = field(default_factory=dict)
    zeros: dict[Key, dict[str, int]] = field(default_factory=dict)
    reading: dict[tuple[Key, str], dict[int, list[Any]]] = field(default_factory=dict)

    def counts(self, key: Key, figure: str) -> tuple[int, int]:
        """(values, zeros) of a group's figure: what its ranks are counted against."""
        zeros = self.zeros.get(key, {}).get(figure, 0) if figure in grains.ZERO_HEAVY else 0
        return sum(b[1] for b in self.buckets.get((key, figure), ())) + zeros, zeros


def read(
    conn: sqlite3.Connection, by: list[str], filters: Filters, figures: Iterable[str], source: str = "calls"
) -> Histograms | None:
    """The histograms of the rows of `source` that `filters` cover, grouped by `by`, in the caller's read
    transaction; None when none apply, the rollup cannot be trusted or the range is too short to cut."""
    grain = grain_for(by, filters, source)
    if grain is None:
        return None
    mark = rolled.watermark(conn, source)
    cut = rolled.split(filters, grain.period_s)
    if mark is None or cut is None:
        return None
    timed = filters.since is not None or filters.until is not None
    if (timed or "day" in by) and rolled.unplaceable(conn, grain):
        return None
    grains.ensure_ln(conn)
    wanted = [f for f in figures if f in grain.figures]
    found = Histograms(wanted, source)
    keys = ", ".join(rolled.dim_sql(d, grain) for d in by)
    lead = f"{keys}, " if keys else ""
    dims_where, dims_params = rolled.filter_sql(filters, grain)
    periods, params = cut.periods()
    marks = ", ".join("?" for _ in wanted)
    group = ", ".join(str(i + 1) for i in range(len(by) + 2))
    rows = conn.execute(
        f"SELECT {lead}figure, bucket, SUM(n), MIN(lo), MAX(hi) FROM {grain.table} "
        f"WHERE figure IN ({marks}){periods}{dims_where} GROUP BY {group}",
        [*wanted, *params, *dims_params],
    )
    _add(found, rows, len(by))
    raw_keys = ", ".join(_raw(d) for d in by)
    raw_lead = f"{raw_keys}, " if raw_keys else ""
    for where, where_params in rolled.raw_parts(filters, mark, cut):
        for figure in wanted:
            column = grains.FIGURE_COLUMNS[figure]
            rows = conn.execute(
                f"SELECT {raw_lead}'{figure}', {grains.bucket_sql(column)}, COUNT(*), MIN({column}), MAX({column}) "
                f"FROM {source} WHERE {where} AND {column} {grains.PRESENT[figure]} GROUP BY {group}",
                where_params,
            )
            _add(found, rows, len(by))
    found.buckets = {group: [b[n] for n in sorted(b)] for group, b in found.reading.items()}
    found.reading = {}
    zero_figures = [f for f in wanted if f in grains.ZERO_HEAVY and source == "calls"]
    if zero_figures:
        request = rolled.Request(tuple(by), ("calls", *(f"{f}_zeros" for f in zero_figures)))
        zeros = _zeros(conn, request, filters)
        found.zeros = {k: {f: v[f"{f}_zeros"] or 0 for f in zero_figures} for k, v in zeros.items()}
    return found


def _raw(dim: str) -> str:
    """A dimension of the calls (or a step's `name`) as SQL on its table."""
    return DIMENSIONS.get(dim, grains.quote(dim))


def _zeros(conn: sqlite3.Connection, request: rolled.Request, filters: Filters) -> dict[Key, dict[str, Any]]:
    """The zero values per group, in the same snapshot (the hourly sums, or the calls themselves)."""
    grain = rolled.grain_for(request, filters, grains.SUM_GRAINS)
    if grain is not None:
        answered = rolled.from_rollup(conn, request, filters, grain)
        if answered is not None:
            return answered
    return rolled.scan(conn, request, filters)


def _add(found: Histograms, rows: Iterable[tuple[Any, ...]], width: int) -> None:
    """Merge (key..., figure, bucket, n, lo, hi) rows into `found` (its buckets by number while reading)."""
    groups = found.reading
    for row in rows:
        group = (tuple(row[:width]), row[width])
        bucket, n, lo, hi = row[width + 1 :]
        buckets = groups.get(group)
        if buckets is None:
            groups[group] = {bucket: [bucket, n, lo, hi]}
            continue
        old = buckets.get(bucket)
        if old is None:
            buckets[bucket] = [bucket, n, lo, hi]
            continue
        old[1] += n
        old[2] = lo if _below(lo, old[2]) else old[2]
        old[3] = hi if _below(old[3], hi) else old[3]


def _below(a: Any, b: Any) -> bool:
    """a < b, as SQLite orders them (numbers before text): the last bucket may hold both."""
    try:
        return bool(a < b)
    except TypeError:
        return isinstance(a, int | float)


def _locate(buckets: list[list[Any]], r: int) -> tuple[int, int] | None:
    """(index of the bucket holding rank r, r's rank inside it), r counted from the first bucket."""
    seen = 0
    for i, (_, n, _, _) in enumerate(buckets):
        if seen + n >= r:
            return i, r - seen
        seen += n
    return None


def _wanted(found: Histograms, key: Key, figure: str) -> list[tuple[int, int | None]]:
    """Per quantile: the bucket index and in-bucket rank of its value (None: the value is 0, a zero)."""
    n, zeros = found.counts(key, figure)
    out: list[tuple[int, int | None]] = []
    for q in QUANTILES:
        r = rank(n, q)
        if not n:
            out.append((-1, None))
        elif r <= zeros:
            out.append((-2, None))
        else:
            place = _locate(found.buckets.get((key, figure), []), r - zeros)
            out.append(place if place is not None else (-1, None))
    return out


def _value(place: tuple[int, int | None]) -> float | None:
    return 0.0 if place[0] == -2 else None


def estimate(found: Histograms, key: Key, figure: str) -> tuple[Triple, bool]:
    """p50/p95/p99 of one group's figure: the nearer end of the bucket holding each rank; and whether
    all three are exact (each rank is its bucket's first or last, or its bucket holds one value)."""
    buckets = found.buckets.get((key, figure), [])
    out: list[float | None] = []
    certain = True
    for index, inside in _wanted(found, key, figure):
        if inside is None:
            out.append(_value((index, inside)))
            continue
        _, n, lo, hi = buckets[index]
        out.append(lo if 2 * inside <= n + 1 else hi)
        certain = certain and (inside in (1, n) or lo == hi)
    return tuple(out), certain


def exact_figures(
    conn: sqlite3.Connection, by: list[str], filters: Filters, found: Histograms, groups: dict[str, set[Key]]
) -> dict[str, dict[Key, Triple] | None]:
    """Exact p50/p95/p99 of the given groups of each figure, from one read of the calls that keeps the
    values of the wanted buckets; None for a figure whose values disagree with its histogram."""
    figures = [f for f in groups if groups[f]]
    want: dict[tuple[Key, str], list[tuple[Any, Any, list[Any]]]] = {}  # -> [(lo, hi, values found)]
    places: dict[tuple[Key, str], list[tuple[int, int | None]]] = {}
    buckets_of: dict[str, set[int]] = {f: set() for f in figures}
    for figure in figures:
        for key in groups[figure]:
            where = places[key, figure] = _wanted(found, key, figure)
            buckets = found.buckets.get((key, figure), [])
            chosen = sorted({index for index, inside in where if inside is not None})
            want[key, figure] = [(buckets[i][2], buckets[i][3], []) for i in chosen]
            places[key, figure] = [(chosen.index(i) if inside is not None else i, inside) for i, inside in where]
            buckets_of[figure].update(buckets[i][0] for i in chosen)
    out: dict[str, dict[Key, Triple] | None] = {}
    asked = [f for f in figures if buckets_of[f]]
    if asked:
        _collect(conn, by, filters, asked, buckets_of, want, found.source)
    for figure in figures:
        out[figure] = _pick(found, groups[figure], figure, want, places)
    return out


def _collect(
    conn: sqlite3.Connection,
    by: list[str],
    filters: Filters,
    figures: list[str],
    buckets_of: dict[str, set[int]],
    want: dict[tuple[Key, str], list[tuple[Any, Any, list[Any]]]],
    source: str,
) -> None:
    """One read of the calls (or steps): each wanted bucket's values, by group."""
    columns = [grains.FIGURE_COLUMNS[f] for f in figures]
    where, params = filters.sql()
    chosen = " OR ".join(
        f"{grains.bucket_sql(c)} IN ({', '.join(str(b) for b in sorted(buckets_of[f]))})"
        for f, c in zip(figures, columns, strict=True)
    )
    keys = ", ".join([_raw(d) for d in by] + columns)
    width = len(by)
    lookups = [{key: spans for (key, f), spans in want.items() if f == figure} for figure in figures]
    for row in conn.execute(f"SELECT {keys} FROM {source} WHERE ({chosen}){where}", params):
        key = tuple(row[:width])
        for i, lookup in enumerate(lookups):
            value = row[width + i]
            spans = lookup.get(key)
            if value is None or spans is None:
                continue
            for lo, hi, values in spans:
                try:
                    inside = lo <= value <= hi
                except TypeError:  # text among numbers: left out, so its bucket's count disagrees
                    continue
                if inside:
                    values.append(value)
                    break


def _pick(
    found: Histograms,
    keys: set[Key],
    figure: str,
    want: dict[tuple[Key, str], list[tuple[Any, Any, list[Any]]]],
    places: dict[tuple[Key, str], list[tuple[int, int | None]]],
) -> dict[Key, Triple] | None:
    out: dict[Key, Triple] = {}
    for key in keys:
        spans = want[key, figure]
        buckets = {(b[2], b[3]): b[1] for b in found.buckets.get((key, figure), [])}
        try:
            for lo, hi, values in spans:
                if len(values) != buckets.get((lo, hi)):
                    return None  # the calls and the histogram disagree (another libm, a changed row)
                values.sort()
        except TypeError:  # values of different kinds (text among numbers): sorted in full instead
            return None
        out[key] = tuple(
            _value((index, inside)) if inside is None else spans[index][2][inside - 1]
            for index, inside in places[key, figure]
        )
    return out


def step_figures(
    ledger_path: Path, filters: Filters, exact: bool = False
) -> tuple[dict[str, dict[str, Any]], bool] | None:
    """The range's steps as `steps.step_figures` gives them ({name: {runs, calls, p50_ms, p95_ms,
    p99_ms}}, whether estimated), from the steps' histograms when the range holds more than
    SAMPLE_ABOVE calls; None when they cannot answer (the caller ranks the steps table)."""
    if grain_for(["name"], filters, "steps") is None or not has_steps_table(ledger_path):
        return None
    calls = sum(v["calls"] for v in rolled.sums(ledger_path, rolled.Request((), ("calls",)), filters).groups.values())
    if not worth_sampling(calls):
        return None
    conn = connect(ledger_path, readonly=True)
    try:
        conn.execute("BEGIN")  # the histograms, the calls inside and the steps read for exact ranks agree
        found = read(conn, ["name"], filters, ["duration"], "steps")
        if found is None:
            return None
        names = {key for key, _ in found.buckets}
        where, params = filters.sql()
        inside = dict(
            conn.execute(f"SELECT name, SUM(COALESCE(calls, 0)) FROM steps WHERE 1=1{where} GROUP BY 1", params)
        )
        ranked: dict[Key, Triple] = {}
        uncertain = False
        if exact:
            picked = exact_figures(conn, ["name"], filters, found, {"duration": names})["duration"]
            if picked is None:
                return None
            ranked = picked
        else:
            for key in names:
                ranked[key], certain = estimate(found, key, "duration")
                uncertain = uncertain or not certain
    finally:
        conn.close()
    figures = {
        key[0]: {"runs": found.counts(key, "duration")[0], "calls": inside.get(key[0]) or 0}
        | {f"p{q}_ms": value for q, value in zip(QUANTILES, ranked[key], strict=True)}
        for key in names
    }
    return dict(sorted(figures.items())), uncertain
