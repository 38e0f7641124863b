"""The report and the readiness checklist as rich tables in a terminal.

Imports only the standard library at load: `llmguard lint` builds the `report` parser (cli.py,
which imports this) and must not load the ledger, so the reporting modules and rich are imported
where they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmguard.reporting.timerange import iso

if TYPE_CHECKING:
    from llmguard.reporting.build import Report

SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One character per value, scaled to the largest."""
    top = max(values, default=0.0)
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1) + 0.5))] for v in values)


def to_table(
    rows: list[dict[str, Any]],
    by: str | list[str] = "model",
    title: str = "llmguard cost summary",
) -> Any:
    """A compact rich Table of breakdown rows (calls, tokens, cost, p50/p95, errors) with a total line."""
    from rich.markup import escape
    from rich.table import Table

    from llmguard.reporting.filters import parse_by
    from llmguard.reporting.queries import totals

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


def alerts_panel(found: list[Any], compared: str = "") -> Any:
    """The alerts, critical ones in red, each with what to check next (a green line when there are none)."""
    from rich.panel import Panel
    from rich.text import Text

    if not found:
        return Text(f"No alerts ({compared})." if compared else "No alerts.", style="green")
    text = Text()
    for i, alert in enumerate(found):
        if i:
            text.append("\n")
        style = "bold red" if alert.severity == "critical" else "bold yellow"
        text.append(f"{'✖' if alert.severity == 'critical' else '▲'} {alert.kind}: ", style=style)
        text.append(alert.message + "\n")
        text.append("  check next: ", style="dim")
        text.append(alert.check_next + "\n")
    return Panel(
        text,
        title=f"alerts ({len(found)})",
        border_style="red" if any(a.severity == "critical" for a in found) else "yellow",
    )


def _table(title: str, keys: list[str], columns: tuple[str, ...], caption: str | None = None) -> Any:
    """A rich Table whose group columns (`keys`) are left-aligned and figures right-aligned."""
    from rich.table import Table

    table = Table(title=title, caption=caption)
    for name in (*keys, *columns):
        table.add_column(name, justify="left" if name in keys else "right")
    return table


def _per_call(rep: Report, ids: list[list[str]]) -> Any:
    per = _table(
        "per call and cache", rep.by, ("tok/call", "reasoning tok", "USD/call", "cache hits", "saved USD", "dedup hits")
    )
    for keys, row in zip(ids, rep.rows, strict=True):
        per.add_row(
            *keys,
            "-" if row["tokens_per_call"] is None else f"{row['tokens_per_call']:,.0f}",
            f"{row['reasoning_tokens']:,}",
            "-" if row["cost_per_call"] is None else f"{row['cost_per_call']:.6f}",
            _rate(row["cache_hits"], row["calls"]),
            f"{row['saved_usd']:.4f}",
            str(row["dedup_hits"]),
        )
    return per


def _reliability(rep: Report, ids: list[list[str]]) -> Any:
    columns = ("calls", "retried", "timeouts", "429s", "rate-limit refusals", "budget refusals", "fallbacks")
    rel = _table("reliability", rep.by, (*columns, "errors", "failures"))
    for keys, row in zip(ids, rep.rows, strict=True):
        rel.add_row(
            *keys,
            f"{row['calls']:,}",
            _rate(row["retried_calls"], row["calls"]),
            _rate(row["timeouts"], row["calls"]),
            str(row["provider_429s"]),
            str(row["rate_limit_refusals"]),
            str(row["budget_refusals"]),
            _rate(row["fallbacks"], row["calls"]),
            _rate(row["errors"], row["calls"]),
            _rate(row["failures"], row["calls"]),
        )
    return rel


def _latency(rep: Report, ids: list[list[str]], step_names: list[str]) -> Any:
    from llmguard.reporting import sampling

    sampled = any(r.get("sampled_percentiles") for r in rep.rows)
    caption = (
        f"≈ estimated from a sample of about {sampling.SAMPLE_BUDGET:,} calls shared by the groups "
        "(the range is large); --exact sorts them all"
        if sampled
        else None
    )
    columns = ("total", "ttft", "queue", "retry delay", *[f"step {s}" for s in step_names])
    lat = _table("latency ms (p50 / p95 / p99)", rep.by, columns, caption)
    for keys, row in zip(ids, rep.rows, strict=True):
        steps = row.get("steps", {})
        approx = set(row.get("sampled_percentiles", ()))
        lat.add_row(
            *keys,
            _triple(row, "", "total" in approx),
            _triple(row, "ttft_", "ttft" in approx),
            _triple(row, "queue_", "queue" in approx),
            _triple(row, "retry_delay_", "retry_delay" in approx),
            *[_triple(steps[s], "", "steps" in approx) if s in steps else "-" for s in step_names],
        )
    return lat


def _drivers(rep: Report) -> Any:
    from rich.markup import escape

    from llmguard.reporting.costs import DRIVER_DIMENSIONS

    drivers = _table("top cost drivers", list(DRIVER_DIMENSIONS), ("calls", "cost USD", "share", "tok/call"))
    for d in rep.drivers:
        drivers.add_row(
            *[escape(str(d[n])) for n in DRIVER_DIMENSIONS],
            f"{d['calls']:,}",
            f"{d['cost_usd']:.4f}",
            "-" if d["share"] is None else f"{d['share']:.0%}",
            "-" if d["tokens_per_call"] is None else f"{d['tokens_per_call']:,.0f}",
        )
    return drivers


def render_terminal(rep: Report, console: Any, compared: str = "") -> None:
    """Alerts first, then cost, reliability and latency tables, spend sparkline and the top cost drivers."""
    from rich.markup import escape

    from llmguard.reporting.filters import STEP_DIMENSIONS

    total = rep.total
    scope = ", ".join(f"{k}={v}" for k, v in rep.filters.describe().items() if v is not None) or "all calls"
    console.print(
        f"[bold]llmguard report[/bold] · {escape(scope)} · {total.get('calls', 0):,} calls · "
        f"${total.get('cost_usd', 0.0):.4f} · ledger {escape(rep.ledger)}"
    )
    console.print(alerts_panel(rep.alerts, compared))
    if not rep.rows:
        console.print("No calls in this range.")
        return
    console.print(to_table(rep.rows, by=rep.by, title=f"cost by {', '.join(rep.by) or 'everything'}"))
    ids = [[escape(str(row.get(k))) for k in rep.by] for row in rep.rows]
    step_names = sorted({n for r in rep.rows for n in r.get("steps", {})})
    console.print(_per_call(rep, ids))
    console.print(_reliability(rep, ids))
    console.print(_latency(rep, ids, step_names))
    if not step_names and rep.steps:  # grouped by what a step does not record (a model): the range's steps once
        unsplit = [name for name in rep.by if name not in STEP_DIMENSIONS]
        console.print(_steps_table(rep.steps, rep.steps_sampled, unsplit))
    buckets = rep.spend.get("buckets", [])
    if buckets:
        size = rep.spend["bucket_s"]
        costs = _dense(buckets, size)
        peak = max(buckets, key=lambda b: b["cost_usd"])
        console.print(
            f"spend per {_unit(size)}: {sparkline(costs)}  (peak ${peak['cost_usd']:.4f} at {iso(peak['start'])})"
        )
    if rep.drivers:
        console.print(_drivers(rep))


def _steps_table(steps: dict[str, dict[str, Any]], sampled: bool, unsplit: list[str]) -> Any:
    """Each step of the range: its runs, the calls made inside them, and its duration percentiles."""
    from rich.markup import escape

    title = "step latency ms (p50 / p95 / p99)" + (f", not split by {', '.join(unsplit)}" if unsplit else "")
    caption = "≈ estimated from a sample (the range is large); --exact sorts them all" if sampled else None
    table = _table(title, ["step"], ("runs", "calls inside", "p50 / p95 / p99"), caption)
    for name, figures in steps.items():
        table.add_row(escape(name), f"{figures['runs']:,}", f"{figures['calls']:,}", _triple(figures, "", sampled))
    return table


def _dense(buckets: list[dict[str, Any]], size: int) -> list[float]:
    """Costs per bucket with the empty buckets in between filled with zeros."""
    by_start = {int(b["start"]): b["cost_usd"] for b in buckets}
    first, last = int(buckets[0]["start"]), int(buckets[-1]["start"])
    return [by_start.get(t, 0.0) for t in range(first, last + size, size)]


def _unit(size: int) -> str:
    return {60: "minute", 300: "5 min", 900: "15 min", 3600: "hour", 14400: "4 h", 86400: "day", 604800: "week"}.get(
        size, f"{size} s"
    )


def _rate(count: int, calls: int) -> str:
    return f"{count:,} ({count / calls:.0%})" if calls and count else "0"


def _triple(row: dict[str, Any], prefix: str, approx: bool = False) -> str:
    values = [row.get(f"{prefix}p{q}_ms") for q in (50, 95, 99)]
    if all(v is None for v in values):
        return "-"
    return ("≈ " if approx else "") + " / ".join("-" if v is None else f"{v:,.0f}" for v in values)


def render_check(result: Any, console: Any) -> None:
    """The readiness checklist: one row per item with its status, why, and the fix."""
    from rich.markup import escape
    from rich.table import Table

    ev = result.evidence
    table = Table(title=f"production readiness: {ev.root}", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("check")
    table.add_column("status")
    table.add_column("why")
    table.add_column("fix")
    styles = {"pass": "[green]PASS[/green]", "fail": "[bold red]FAIL[/bold red]", "n/a": "[dim]N/A[/dim]"}
    for item in result.items:
        table.add_row(
            str(item.number) if item.number else "-",
            escape(item.title),
            styles[item.status],
            escape(item.reason),
            escape(item.fix or ""),
        )
    console.print(table)
    failed = len(result.failed)
    sources = f"settings: {ev.pyproject or 'defaults'} · ledger: {ev.ledger} · lint findings: {len(ev.findings)}"
    console.print(escape(sources))
    console.print(f"[bold red]{failed} check(s) failed[/bold red]" if failed else "[green]all checks passed[/green]")
