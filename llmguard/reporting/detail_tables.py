"""The tables `llmguard report --full` adds to the default view: per call and cache, reliability,
latency, the range's steps, spend over time and the top cost drivers.

Each is a `fit.FittedTable`: at any width its numbers and names are whole, its least important
columns left out first. Imported by `terminal` only when `--full` asks for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmguard.money import DASH, usd
from llmguard.reporting.figures import ESTIMATED, rate, triple
from llmguard.reporting.fit import Column, FittedTable
from llmguard.reporting.timerange import iso

if TYPE_CHECKING:
    from llmguard.reporting.build import Report


def _keyed(title: str, keys: list[str], columns: list[Column], caption: str | None = None) -> FittedTable:
    return FittedTable(title, [Column(k, 0, key=True) for k in keys] + columns, caption)


def per_call(rep: Report, ids: list[list[str]]) -> FittedTable:
    columns = [
        Column("tok/call"),
        Column("reasoning tok", 3),
        Column("cost/call"),
        Column("cache hits", 1),
        Column("saved", 2),
        Column("dedup hits", 4),
    ]
    table = _keyed("per call and cache", rep.by, columns)
    for keys, row in zip(ids, rep.rows, strict=True):
        table.add_row(
            *keys,
            "-" if row["tokens_per_call"] is None else f"{row['tokens_per_call']:,.0f}",
            f"{row['reasoning_tokens']:,}",
            usd(row["cost_per_call"]) if row["cost_per_call"] is not None else DASH,
            rate(row["cache_hits"], row["calls"]),
            usd(row["saved_usd"]),
            f"{row['dedup_hits']:,}",
        )
    return table


def reliability(rep: Report, ids: list[list[str]]) -> FittedTable:
    columns = [
        Column("calls"),
        Column("retried", 2),
        Column("timeouts", 3),
        Column("429s", 3),
        Column("rate-limit refusals", 5),
        Column("budget refusals", 5),
        Column("fallbacks", 4),
        Column("errors"),
        Column("failures", 1),
    ]
    table = _keyed("reliability", rep.by, columns)
    for keys, row in zip(ids, rep.rows, strict=True):
        table.add_row(
            *keys,
            f"{row['calls']:,}",
            rate(row["retried_calls"], row["calls"]),
            rate(row["timeouts"], row["calls"]),
            f"{row['provider_429s']:,}",
            f"{row['rate_limit_refusals']:,}",
            f"{row['budget_refusals']:,}",
            rate(row["fallbacks"], row["calls"]),
            rate(row["errors"], row["calls"]),
            rate(row["failures"], row["calls"]),
        )
    return table


def latency(rep: Report, ids: list[list[str]], step_names: list[str]) -> FittedTable:
    sampled = any(r.get("sampled_percentiles") for r in rep.rows)
    caption = ESTIMATED if sampled else None
    columns = [Column("total"), Column("ttft", 1), Column("queue", 2), Column("retry delay", 3)]
    columns += [Column(f"step {s}", 4) for s in step_names]
    table = _keyed("latency ms (p50 / p95 / p99)", rep.by, columns, caption)
    for keys, row in zip(ids, rep.rows, strict=True):
        steps = row.get("steps", {})
        approx = set(row.get("sampled_percentiles", ()))
        table.add_row(
            *keys,
            triple(row, "", "total" in approx),
            triple(row, "ttft_", "ttft" in approx),
            triple(row, "queue_", "queue" in approx),
            triple(row, "retry_delay_", "retry_delay" in approx),
            *[triple(steps[s], "", "steps" in approx) if s in steps else "-" for s in step_names],
        )
    return table


def drivers(rep: Report) -> FittedTable:
    """The costliest combinations; a dimension none of them carries is named in the caption instead."""
    from llmguard.reporting.costs import DRIVER_DIMENSIONS

    dims = [n for n in DRIVER_DIMENSIONS if any(d[n] is not None for d in rep.drivers)]
    unset = [n for n in DRIVER_DIMENSIONS if n not in dims]
    caption = f"none of these calls has a {' or '.join(unset)}" if unset else None
    columns = [Column("calls", 2), Column("cost"), Column("share", 1), Column("tok/call", 3)]
    table = _keyed("top cost drivers", dims, columns, caption)
    for d in rep.drivers:
        table.add_row(
            *[str(d[n]) for n in dims],
            f"{d['calls']:,}",
            usd(d["cost_usd"]),
            "-" if d["share"] is None else f"{d['share']:.0%}",
            "-" if d["tokens_per_call"] is None else f"{d['tokens_per_call']:,.0f}",
        )
    return table


def steps_table(steps: dict[str, dict[str, Any]], sampled: bool, unsplit: list[str]) -> FittedTable:
    """Each step of the range: its runs, the calls made inside them, and its duration percentiles."""
    title = "step latency ms (p50 / p95 / p99)" + (f", not split by {', '.join(unsplit)}" if unsplit else "")
    caption = ESTIMATED if sampled else None
    columns = [Column("runs"), Column("calls inside", 1), Column("p50 / p95 / p99")]
    table = _keyed(title, ["step"], columns, caption)
    for name, figures in steps.items():
        table.add_row(name, f"{figures['runs']:,}", f"{figures['calls']:,}", triple(figures, "", sampled))
    return table


def spend_line(spend: dict[str, Any]) -> str | None:
    """`spend per minute: ▁▃█  (peak $0.0307 at ...)`, or None when nothing was spent in the range."""
    from llmguard.reporting.terminal import sparkline

    buckets = spend.get("buckets", [])
    if not buckets:
        return None
    size = spend["bucket_s"]
    peak = max(buckets, key=lambda b: b["cost_usd"])
    return f"spend per {_unit(size)}: {sparkline(_dense(buckets, size))}  (peak {usd(peak['cost_usd'])} at {iso(peak['start'])})"


def _dense(buckets: list[dict[str, Any]], size: int) -> list[float]:
    """Costs per bucket with the empty buckets in between filled with zeros."""
    by_start = {int(b["start"]): b["cost_usd"] for b in buckets}
    first, last = int(buckets[0]["start"]), int(buckets[-1]["start"])
    return [by_start.get(t, 0.0) for t in range(first, last + size, size)]


def _unit(size: int) -> str:
    return {60: "minute", 300: "5 min", 900: "15 min", 3600: "hour", 14400: "4 h", 86400: "day", 604800: "week"}.get(
        size, f"{size} s"
    )
