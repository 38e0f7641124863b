"""Where the money went: spend per time bucket, cost by one dimension, and the top cost drivers.

Each is read from the ledger's rollup where it can answer (`rolled.sums`: spend per hour, costs per
day by tenant with feature, model and prompt version, and by user), else from the calls. Grouping
a million calls by four columns is a million-row sort, so without the rollup, over more than
SAMPLE_ABOVE calls, the top drivers are named by a sample first (see `top_cost_drivers`).
"""

from __future__ import annotations

import heapq
import json
import math
from pathlib import Path
from typing import Any

from llmguard.reporting import rolled, sampling
from llmguard.reporting.db import has_calls_table, query
from llmguard.reporting.filters import Filters, key_sql

_BUCKETS = (60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)
DRIVER_DIMENSIONS = ("feature", "model", "tenant", "prompt_version")
_DRIVER_KEY = key_sql(DRIVER_DIMENSIONS)
_DRIVER_SUMS = "COUNT(*), SUM(COALESCE(cost_usd, 0)), SUM(input_tokens + output_tokens)"


def span(ledger_path: Path, filters: Filters) -> tuple[float | None, float | None]:
    """First and last call time in range (MIN/MAX walk the ts index)."""
    where, params = filters.sql()
    # apart: SQLite reads MIN or MAX alone off the ts index, but both at once by scanning every call
    first = query(ledger_path, f"SELECT MIN(ts) FROM calls WHERE 1=1 {where}", params)[0][0]
    last = query(ledger_path, f"SELECT MAX(ts) FROM calls WHERE 1=1 {where}", params)[0][0]
    return first, last


def bucket_size(start: float | None, end: float | None, max_buckets: int = 60) -> int:
    """The smallest bucket (a minute up to a week) that cuts [start, end] into at most `max_buckets`."""
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
    found = rolled.sums(ledger_path, rolled.Request((by,) if by else (), ("calls", "cost_usd"), bucket_s), filters)
    rows = sorted(
        ((key[0], key[1] if by else None, v["cost_usd"], v["calls"]) for key, v in found.groups.items()),
        key=lambda r: (r[0], str(r[1])),
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
    found = rolled.sums(ledger_path, rolled.Request((dim,), ("calls", "cost_usd")), filters)
    rows = [(key[0], float(v["cost_usd"]), v["calls"]) for key, v in found.groups.items()]
    return sorted(rows, key=lambda r: (-r[1], -r[2], str(r[0])))


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
    rolled_up = _drivers_from_rollup(ledger_path, filters, limit)
    if rolled_up is not None:
        return rolled_up
    where, params = filters.sql()
    key, sums = _DRIVER_KEY, _DRIVER_SUMS
    [(n, total)] = query(
        ledger_path, f"SELECT COUNT(*), SUM(COALESCE(cost_usd, 0)) FROM calls WHERE 1=1 {where}", params
    )
    rows = None
    if sampling.worth_sampling(n, exact):
        rows = drivers_from_sample(ledger_path, where, params, n, limit)
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


def _drivers_from_rollup(ledger_path: Path, filters: Filters, limit: int) -> list[dict[str, Any]] | None:
    """The top drivers summed exactly from the rollup's costs by tenant; None when it cannot answer."""
    measures = ("calls", "cost_usd", "input_tokens", "output_tokens")
    found = rolled.sums(ledger_path, rolled.Request(DRIVER_DIMENSIONS, measures), filters)
    if found.grain is None:
        return None
    total = sum(v["cost_usd"] for v in found.groups.values())
    ranked = heapq.nsmallest(
        limit, found.groups.items(), key=lambda kv: (-kv[1]["cost_usd"], -kv[1]["calls"], str(kv[0]))
    )
    out = []
    for key, v in ranked:
        item = dict(zip(DRIVER_DIMENSIONS, key, strict=True))
        tokens = (v["input_tokens"] or 0) + (v["output_tokens"] or 0)
        item.update(
            calls=v["calls"],
            cost_usd=float(v["cost_usd"]),
            tokens_per_call=tokens / v["calls"] if v["calls"] else None,
            share=v["cost_usd"] / total if total else None,
        )
        out.append(item)
    return out


def drivers_from_sample(
    ledger_path: Path,
    where: str,
    params: list[Any],
    n: int,
    limit: int,
) -> list[tuple[Any, ...]] | None:
    """Exact sums of the sample's leading combinations, or None when a near-tie makes them unsure."""
    key, sums = _DRIVER_KEY, _DRIVER_SUMS
    below = sampling.budget_threshold(n)
    rate = below / sampling.ALL
    leaders = query(
        ledger_path,
        f"""SELECT {key}, SUM(COALESCE(cost_usd, 0)) AS c, SUM(COALESCE(cost_usd, 0) * COALESCE(cost_usd, 0))
            FROM calls WHERE {sampling.row_hash("calls")} < {below} {where} GROUP BY 1 ORDER BY c DESC LIMIT ?""",
        params + [4 * limit + 1],
    )
    candidates, runner_up = leaders[: 4 * limit], leaders[4 * limit :]

    def reach(leader: tuple[Any, ...], sign: int) -> float:  # a sampled sum, scaled, four errors off
        _, cost, squares = leader
        return (cost + sign * 4 * math.sqrt(squares)) / rate

    if runner_up and len(candidates) >= limit and reach(runner_up[0], 1) >= reach(candidates[limit - 1], -1):
        return None  # the sample cannot tell the leaders apart: no use summing its candidates
    rows = query(
        ledger_path,
        f"SELECT {key}, {sums} FROM calls WHERE {key} IN (SELECT value FROM json_each(?)) {where} GROUP BY 1",
        [json.dumps([k for k, _, _ in candidates])] + params,
    )
    if runner_up:  # could the best combination left out reach the last place shown?
        shown = sorted((r[2] or 0.0 for r in rows), reverse=True)[:limit]
        if len(shown) < limit or reach(runner_up[0], 1) >= shown[-1]:
            return None
    return rows
