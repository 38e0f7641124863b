"""The report as rich renderables in a terminal: by default the alerts, the cost table and one
reliability line; `--full` adds the tables of `detail_tables`. Tables are `fit.FittedTable`s, so
a number or a name is never cut short at any width. The checklist is drawn by `check_view`.

Imports only the standard library at load: `llmguard lint` builds the `report` parser (cli.py,
which imports this) and must not load the ledger, so the reporting modules and rich are imported
where they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmguard.money import plural, usd
from llmguard.reporting.figures import ESTIMATED

if TYPE_CHECKING:
    from llmguard.reporting.build import Report
    from llmguard.reporting.fit import FittedTable, Packed

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
) -> FittedTable:
    """The cost table of breakdown rows (calls, tokens, cost, p50/p95, errors) with a total line.

    When narrow, p50, cached, p95, input and output tokens and errors are left out, in that order.
    """
    from llmguard.reporting.figures import ms
    from llmguard.reporting.filters import parse_by
    from llmguard.reporting.fit import Column, FittedTable
    from llmguard.reporting.queries import totals

    names = parse_by(by)
    sampled = any("total" in r.get("sampled_percentiles", ()) for r in rows)
    figures = [("calls", 0), ("input tok", 3), ("cached", 5), ("output tok", 2), ("cost", 0)]
    figures += [("p50 ms", 6), ("p95 ms", 4), ("errors", 1)]
    columns = [Column(n, 0, key=True) for n in names] + [Column(h, p) for h, p in figures]
    table = FittedTable(title, columns, ESTIMATED if sampled else None)
    for row in rows:
        cost = usd(row["cost_usd"]) + (f" (+{row['unpriced_calls']:,} unpriced)" if row.get("unpriced_calls") else "")
        mark = "≈ " if "total" in row.get("sampled_percentiles", ()) else ""
        latency = [mark + ms(row.get("p50_ms")), mark + ms(row.get("p95_ms"))]
        table.add_row(*[str(row.get(n)) for n in names], *_counts(row, cost, latency))
    if len(rows) > 1:
        total = totals(rows)
        cells = _counts(total, usd(total["cost_usd"]), ["", ""])
        table.add_row(*(["total"] + [""] * (len(names) - 1)), *cells, style="bold")
    return table


def _counts(row: dict[str, Any], cost: str, latency: list[str]) -> list[str]:
    return [
        f"{row['calls']:,}",
        f"{row['input_tokens']:,}",
        f"{row['cached_input_tokens']:,}",
        f"{row['output_tokens']:,}",
        cost,
        *latency,
        f"{row.get('errors', 0):,}",
    ]


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


def reliability_line(total: dict[str, Any]) -> Packed:
    """`reliability: 2 retried (5%) · 0 timeouts · ...`: the reliability table's total on one line."""
    from rich.text import Text

    from llmguard.reporting.figures import rate
    from llmguard.reporting.fit import Packed

    calls = total.get("calls", 0)
    parts = [
        f"{rate(total.get('retried_calls', 0), calls)} retried",
        f"{rate(total.get('timeouts', 0), calls)} timeouts",
        f"{total.get('provider_429s', 0):,} provider 429s",
        f"{total.get('rate_limit_refusals', 0):,} rate-limit refusals",
        f"{total.get('budget_refusals', 0):,} budget refusals",
        f"{rate(total.get('fallbacks', 0), calls)} fallbacks",
        f"{rate(total.get('errors', 0), calls)} errors",
        f"{rate(total.get('failures', 0), calls)} failures",
    ]
    return Packed(parts, sep=" · ", lead=Text("reliability: ", style="bold"), indent=2)


def render_terminal(rep: Report, console: Any, compared: str = "", full: bool = False) -> None:
    """Alerts first, then the cost table and a reliability line; `full` adds per call and cache,
    reliability, latency and step tables, the spend sparkline and the top cost drivers."""
    from rich.text import Text

    from llmguard.reporting.fit import Packed

    total = rep.total
    scope = ", ".join(f"{k}={v}" for k, v in rep.filters.describe().items() if v is not None) or "all calls"
    parts = [scope, plural(total.get("calls", 0), "call"), usd(total.get("cost_usd", 0.0)), f"ledger {rep.ledger}"]
    console.print(Packed(parts, sep=" · ", lead=Text("llmguard report · ", style="bold"), indent=2))
    console.print(alerts_panel(rep.alerts, compared))
    if not rep.rows:
        console.print("No calls in this range.")
        return
    console.print(to_table(rep.rows, by=rep.by, title=f"cost by {', '.join(rep.by) or 'everything'}"))
    if not full:
        console.print(reliability_line(total))
        console.print(
            Text(
                "--full adds per call and cache, reliability and latency by group, steps, spend over time "
                "and the top cost drivers",
                style="dim",
            )
        )
        return
    _render_details(rep, console)


def _render_details(rep: Report, console: Any) -> None:
    from llmguard.reporting import detail_tables as tables
    from llmguard.reporting.filters import STEP_DIMENSIONS

    ids = [[str(row.get(k)) for k in rep.by] for row in rep.rows]
    step_names = sorted({n for r in rep.rows for n in r.get("steps", {})})
    console.print(tables.per_call(rep, ids))
    console.print(tables.reliability(rep, ids))
    console.print(tables.latency(rep, ids, step_names))
    if not step_names and rep.steps:  # grouped by what a step does not record (a model): the range's steps once
        unsplit = [name for name in rep.by if name not in STEP_DIMENSIONS]
        console.print(tables.steps_table(rep.steps, rep.steps_sampled, unsplit))
    spend = tables.spend_line(rep.spend)
    if spend:
        console.print(spend, markup=False, highlight=False)
    if rep.drivers:
        console.print(tables.drivers(rep))
