"""`llmguard report` and `llmguard check`: arguments, rendering, exit codes (0 ok, 1 failed check, 2 usage
or a ledger that cannot be read).

cli.py wires them in: `add_report_arguments(parser)` + `run_report(args)`, and
`add_check_arguments(parser)` + `run_check(args)`.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

FORMATS = ("table", "json", "csv", "html", "jsonl")
SPARKS = "▁▂▃▄▅▆▇█"


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="folder holding ledger.sqlite3 (default: LLMGUARD_HOME or ./.llmguard)")
    parser.add_argument("--since", help="start of the range: 24h, 30m, 7d (ago) or an ISO time (UTC)")
    parser.add_argument("--until", help="end of the range (same forms as --since; default: now)")
    parser.add_argument("--last-run", action="store_true", help="only the most recent run")
    parser.add_argument("--run", dest="run_id", help="only this run id")
    parser.add_argument(
        "--by",
        default="model",
        help="group by one or more of: model, provider, feature, tenant, user, prompt_version, "
        "notebook, cell, day, hour, ... (comma-separated; default: model)",
    )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="DIM=VALUE",
        help="only calls with this dimension value, e.g. --where feature=summary (repeatable)",
    )
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--out", help="write to this file instead of stdout")
    parser.add_argument("--alerts", action="store_true", help="show only the alerts")
    parser.add_argument(
        "--window", help="alerts: the window compared with the one before it when no --since is given (default 1h)"
    )
    parser.add_argument(
        "--exact",
        action="store_true",
        help="sort every call for percentiles and cost drivers, even over ranges so large that they "
        "are otherwise estimated from a sample (slower)",
    )


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="the project folder (or a file); default: .")
    parser.add_argument("--home", help="folder holding the project's ledger.sqlite3 (default: from its settings)")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def _where(items: list[str]) -> dict[str, str]:
    from llmguard.reporting.report import ReportError

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ReportError(f"llmguard: --where {item!r} must look like DIM=VALUE, e.g. --where feature=summary")
        out[name.strip()] = value
    return out


def run_report(args: argparse.Namespace) -> int:
    from llmguard.config import ConfigError
    from llmguard.reporting import alerts as alerts_mod
    from llmguard.reporting import report

    try:
        settings = alerts_mod.project_settings()
        warning = alerts_mod.project_settings_warning()
        if warning:
            print(warning, file=sys.stderr)
        home = Path(args.home) if getattr(args, "home", None) else settings.home_path
        ledger = home / "ledger.sqlite3"
        if not ledger.exists():
            return _fail(
                f"llmguard: no ledger at {ledger}. Run some calls with the guard on (e.g. `llmguard demo`), "
                "or point --home / LLMGUARD_HOME at the folder that holds ledger.sqlite3."
            )
        report.check_readable(ledger)  # a damaged ledger is an error, not "0 calls"; a reader never moves it
        now = time.time()
        by = report.parse_by(args.by)
        filters = report.make_filters(
            ledger,
            since=args.since,
            until=args.until,
            last_run=args.last_run,
            run_id=getattr(args, "run_id", None),
            now=now,
            **_where(args.where),
        )
        overrides = {}
        if getattr(args, "window", None):
            overrides["window_s"] = report.parse_duration(args.window)
        thresholds = alerts_mod.load_thresholds(overrides)
    except (report.ReportError, ConfigError) as exc:
        return _fail(str(exc))
    if args.last_run and filters.run_id is None:
        return _fail(f"llmguard: the ledger at {ledger} holds no calls yet, so there is no last run")

    def find_alerts() -> list[Any]:
        return alerts_mod.evaluate(ledger, filters, settings, thresholds, now)

    out = _output(args)
    try:
        return _render(args, out, ledger, by, filters, settings, thresholds, overrides, now, find_alerts)
    except sqlite3.Error as exc:  # damage deeper in the file than check_readable looks
        return _fail(report.unreadable(ledger, exc))
    except report.ReportError as exc:
        return _fail(str(exc))
    finally:
        if out is not sys.stdout:
            out.close()


def _render(
    args: argparse.Namespace,
    out: Any,
    ledger: Path,
    by: list[str],
    filters: Any,
    settings: Any,
    thresholds: Any,
    overrides: dict[str, Any],
    now: float,
    find_alerts: Any,
) -> int:
    """Write the report in the chosen format; 0 when written."""
    from llmguard.reporting import alerts as alerts_mod
    from llmguard.reporting import report

    if args.alerts:
        found = find_alerts()
        if args.format == "json":
            out.write(report.to_json([a.to_dict() for a in found]) + "\n")
        else:
            _console(out).print(_alerts_panel(found, alerts_mod.describe(filters, thresholds)))
        return 0
    if args.format == "jsonl":
        import json

        for event in report.iter_events(ledger, filters):
            out.write(json.dumps(event, default=str) + "\n")
        return 0
    if args.format == "csv":
        out.write(report.to_csv(report.breakdown(ledger, by, filters, exact=args.exact)))
        return 0
    if args.format == "html":
        from llmguard.reporting import html as report_html

        where = dict(filters.where)
        fragment = report_html.report_html(
            ledger,
            by=by,
            since=filters.since,
            until=filters.until,
            run_id=filters.run_id,
            settings=settings,
            alert_thresholds=overrides or None,
            now=now,
            exact=args.exact,
            **where,
        )
        out.write(report_html.html_page(fragment))
        if args.out:
            print(f"llmguard: wrote {args.out}", file=sys.stderr)
        return 0
    rep = report.build_report(ledger, by, filters, alerts=find_alerts, exact=args.exact)
    if args.format == "json":
        out.write(report.to_json(rep.to_dict()) + "\n")
    else:
        render_terminal(rep, _console(out), alerts_mod.describe(filters, thresholds))
    return 0


def _output(args: argparse.Namespace) -> Any:
    return open(args.out, "w", encoding="utf-8") if args.out else sys.stdout


def _console(out: Any) -> Any:
    from rich.console import Console

    return Console(file=out, width=None if out is sys.stdout else 160)


# ---- terminal rendering -------------------------------------------------------------------------


def sparkline(values: list[float]) -> str:
    """One character per value, scaled to the largest."""
    top = max(values, default=0.0)
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1) + 0.5))] for v in values)


def _alerts_panel(found: list[Any], compared: str = "") -> Any:
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


def render_terminal(rep: Any, console: Any, compared: str = "") -> None:
    """Alerts first, then cost, reliability and latency tables, spend sparkline and the top cost drivers."""
    from rich.markup import escape
    from rich.table import Table

    from llmguard.reporting import report

    total = rep.total
    scope = ", ".join(f"{k}={v}" for k, v in rep.filters.describe().items() if v is not None) or "all calls"
    console.print(
        f"[bold]llmguard report[/bold] · {escape(scope)} · {total.get('calls', 0):,} calls · "
        f"${total.get('cost_usd', 0.0):.4f} · ledger {escape(rep.ledger)}"
    )
    console.print(_alerts_panel(rep.alerts, compared))
    if not rep.rows:
        console.print("No calls in this range.")
        return
    console.print(report.to_table(rep.rows, by=rep.by, title=f"cost by {', '.join(rep.by) or 'everything'}"))
    keys = rep.by
    per = Table(title="per call and cache")
    for name in (*keys, "tok/call", "reasoning tok", "USD/call", "cache hits", "saved USD", "dedup hits"):
        per.add_column(name, justify="left" if name in keys else "right")
    rel = Table(title="reliability")
    for name in (
        *keys,
        "calls",
        "retried",
        "timeouts",
        "429s",
        "rate-limit refusals",
        "budget refusals",
        "fallbacks",
        "errors",
        "failures",
    ):
        rel.add_column(name, justify="left" if name in keys else "right")
    sampled = any(r.get("sampled_percentiles") for r in rep.rows)
    lat = Table(
        title="latency ms (p50 / p95 / p99)",
        caption=(
            f"≈ estimated from a sample of about {report.SAMPLE_BUDGET:,} calls shared by the groups "
            "(the range is large); --exact sorts them all"
            if sampled
            else None
        ),
    )
    step_names = sorted({n for r in rep.rows for n in r.get("steps", {})})
    for name in (*keys, "total", "ttft", "queue", "retry delay", *[f"step {s}" for s in step_names]):
        lat.add_column(name, justify="left" if name in keys else "right")
    for row in rep.rows:
        ids = [escape(str(row.get(k))) for k in keys]
        per.add_row(
            *ids,
            "-" if row["tokens_per_call"] is None else f"{row['tokens_per_call']:,.0f}",
            f"{row['reasoning_tokens']:,}",
            "-" if row["cost_per_call"] is None else f"{row['cost_per_call']:.6f}",
            _rate(row["cache_hits"], row["calls"]),
            f"{row['saved_usd']:.4f}",
            str(row["dedup_hits"]),
        )
        rel.add_row(
            *ids,
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
        steps = row.get("steps", {})
        approx = set(row.get("sampled_percentiles", ()))
        lat.add_row(
            *ids,
            _triple(row, "", "total" in approx),
            _triple(row, "ttft_", "ttft" in approx),
            _triple(row, "queue_", "queue" in approx),
            _triple(row, "retry_delay_", "retry_delay" in approx),
            *[_triple(steps[s], "", "steps" in approx) if s in steps else "-" for s in step_names],
        )
    console.print(per)
    console.print(rel)
    console.print(lat)
    if not step_names and rep.steps:  # grouped by what a step does not record (a model): the range's steps once
        unsplit = [name for name in rep.by if name not in report.STEP_DIMENSIONS]
        console.print(_steps_table(rep.steps, rep.steps_sampled, unsplit))
    buckets = rep.spend.get("buckets", [])
    if buckets:
        size = rep.spend["bucket_s"]
        costs = _dense(buckets, size)
        peak = max(buckets, key=lambda b: b["cost_usd"])
        console.print(
            f"spend per {_unit(size)}: {sparkline(costs)}  (peak ${peak['cost_usd']:.4f} at "
            f"{report._iso(peak['start'])})"
        )
    if rep.drivers:
        drivers = Table(title="top cost drivers")
        for name in (*report.DRIVER_DIMENSIONS, "calls", "cost USD", "share", "tok/call"):
            drivers.add_column(name, justify="left" if name in report.DRIVER_DIMENSIONS else "right")
        for d in rep.drivers:
            drivers.add_row(
                *[escape(str(d[n])) for n in report.DRIVER_DIMENSIONS],
                f"{d['calls']:,}",
                f"{d['cost_usd']:.4f}",
                "-" if d["share"] is None else f"{d['share']:.0%}",
                "-" if d["tokens_per_call"] is None else f"{d['tokens_per_call']:,.0f}",
            )
        console.print(drivers)


def _steps_table(steps: dict[str, dict[str, Any]], sampled: bool, unsplit: list[str]) -> Any:
    """Each step of the range: its runs, the calls made inside them, and its duration percentiles."""
    from rich.markup import escape
    from rich.table import Table

    title = "step latency ms (p50 / p95 / p99)" + (f", not split by {', '.join(unsplit)}" if unsplit else "")
    table = Table(
        title=title,
        caption=("≈ estimated from a sample (the range is large); --exact sorts them all" if sampled else None),
    )
    for name in ("step", "runs", "calls inside", "p50 / p95 / p99"):
        table.add_column(name, justify="left" if name == "step" else "right")
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


# ---- check --------------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    from llmguard.config import ConfigError
    from llmguard.reporting import readiness, report

    path = Path(args.path)
    if not path.exists():
        return _fail(f"llmguard check: {path}: no such file or directory")
    try:
        result = readiness.check(path, home=getattr(args, "home", None))
    except (ConfigError, report.ReportError) as exc:
        return _fail(str(exc))
    if args.format == "json":
        print(report.to_json(result.to_dict()))
    else:
        render_check(result, _console(sys.stdout))
    return 1 if result.failed else 0


def render_check(result: Any, console: Any) -> None:
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
