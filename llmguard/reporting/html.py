"""The report as self-contained HTML: inline CSS and SVG charts, no script, nothing fetched.

`report_html()` returns a fragment (one <div>, its styles scoped to it) that a notebook renders
inline; `html_page()` wraps it in a document with a Content-Security-Policy that forbids every
network load, so the file opens the same offline, from an e-mail or a CI artifact. Both follow the
reader's colours (light, dark, a JupyterLab theme) and fit any screen width (see `html_style`).

What the report shows, top to bottom: the headline figures, alerts, spend / p95 latency / error
rate over time, where the money went (by the report's `by`, then feature, tenant and user), the
latency of each part of a call and of each step, what went wrong by model, the breakdown tables
and the top cost drivers. The charts are in `html_charts`, the tables in `html_tables`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmguard.reporting.alerts import describe, evaluate, load_thresholds, project_settings
from llmguard.reporting.build import Report, build_report
from llmguard.reporting.costs import cost_by
from llmguard.reporting.dashboard import ErrorKinds, Timeline, error_kinds, timeline
from llmguard.reporting.db import has_calls_table, run_parallel
from llmguard.reporting.filters import Filters, make_filters, parse_by
from llmguard.reporting.html_charts import PALETTE, bar_chart, bucket_name, latency_chart, line_chart, spend_chart
from llmguard.reporting.html_format import esc, label, ms, pct, usd
from llmguard.reporting.html_style import CSS, PAGE_CSS
from llmguard.reporting.html_tables import breakdown_tables, drivers_table, errors_table, headline
from llmguard.reporting.queries import LATENCIES, breakdown
from llmguard.reporting.timerange import iso

__all__ = ["PALETTE", "alerts_html", "bar_chart", "html_page", "latency_chart", "render", "report_html", "spend_chart"]

TAGS = ("feature", "tenant", "user")  # always shown in "where the money went", when any call has them
BARS = 10  # bars of a cost chart; the rest are one "other" bar
_TIME_DIMENSIONS = ("day", "hour")


@dataclass
class Figures:
    """What the HTML shows beyond the `Report`: the headline's latency, charts over time, costs, errors."""

    overall: dict[str, Any] | None = None  # the whole range as one breakdown row (its percentiles)
    timeline: Timeline | None = None
    costs: list[tuple[str, list[tuple[Any, float, int]]]] = field(default_factory=list)  # (dimension, cost_by rows)
    errors: ErrorKinds = field(default_factory=ErrorKinds)
    alert_label: str = ""
    problem: str = ""  # why alerts could not run
    title: str = "llmguard report"


def alerts_html(alerts: list[Any], label: str = "") -> str:
    if not alerts:
        return f'<p class="ok" data-alerts="0">No alerts{esc(" (" + label + ")") if label else ""}.</p>'
    items = "".join(
        f'<li class="alert {esc(a.severity)}" data-kind="{esc(a.kind)}"><div>{esc(a.message)}</div>'
        f'<div class="next">Check next: {esc(a.check_next)}</div></li>'
        for a in alerts
    )
    return f'<ul class="alerts" data-alerts="{len(alerts)}">{items}</ul>'


def _bars(dim: str, rows: list[tuple[Any, float, int]]) -> list[tuple[str, float]]:
    """A cost chart's bars: the BARS - 1 costliest values (in time order for day and hour) and the rest."""
    if dim in _TIME_DIMENSIONS:
        rows = sorted(rows, key=lambda r: str(r[0]))
    items = [(label(value), cost) for value, cost, _ in rows]
    if len(items) <= BARS:
        return items
    rest = items[BARS - 1 :]
    return items[: BARS - 1] + [(f"other ({len(rest):,})", sum(cost for _, cost in rest))]


def _over_time(tl: Timeline, dim: str) -> str:
    every = bucket_name(tl.bucket_s)
    note = " (≈ from a sample)" if tl.sampled else ""
    since = time.strftime("%Y-%m-%d %H:%M:%S" if tl.bucket_s < 60 else "%Y-%m-%d %H:%M", time.gmtime(tl.start))
    return (
        f'<h3>Over time <span class="note">per {esc(every)}, from {esc(since)} UTC</span></h3>'
        f"<figure><figcaption>Spend by {esc(dim)}</figcaption>{spend_chart(tl)}</figure>"
        '<div class="charts">'
        f"<figure><figcaption>Latency p95{esc(note)}</figcaption>"
        f"{line_chart('latency-p95-over-time', tl, lambda b: b['p95_ms'], ms)}</figure>"
        "<figure><figcaption>Error rate (calls not ok)</figcaption>"
        f"{line_chart('error-rate-over-time', tl, lambda b: b['failures'] / b['calls'], pct, '#d03b2f')}</figure>"
        "</div>"
    )


def _costs(costs: list[tuple[str, list[tuple[Any, float, int]]]], by: list[str]) -> str:
    charts, untagged = [], []
    for dim, rows in costs:
        if not rows:
            continue
        if dim not in by[:1] and all(value is None for value, _, _ in rows):
            untagged.append(dim)
            continue
        chart = bar_chart(f"cost-by-{dim}", _bars(dim, rows))
        charts.append(f"<figure><figcaption>Cost by {esc(dim)}</figcaption>{chart}</figure>")
    hint = ""
    if untagged:
        names = ", ".join(f"{d}=…" for d in untagged)
        hint = f'<div class="note">No call has a {esc(" or ".join(untagged))} tag (llmguard.tag({esc(names)})).</div>'
    return f'<h3>Where the money went</h3><div class="charts">{"".join(charts)}</div>{hint}'


def render(rep: Report, figures: Figures | None = None) -> str:
    """The fragment for an already computed report."""
    figures = figures or Figures()
    total = rep.total
    scope = rep.filters.describe()
    described = ", ".join(f"{k}={v}" for k, v in scope.items() if v is not None) or "all calls"
    parts = [
        f'<div class="llmguard-report"><style>{CSS}</style>',
        f"<h2>{esc(figures.title)}</h2>",
        f'<div class="meta">{esc(described)} · {total.get("calls", 0):,} calls · {esc(usd(total.get("cost_usd")))} '
        f"· ledger {esc(rep.ledger)} · generated {esc(iso(rep.generated_at))}</div>",
        headline(total, figures.overall),
        "<h3>Alerts</h3>",
        f'<p class="alert" data-alerts-error="1">Alerts could not run: {esc(figures.problem)}</p>'
        if figures.problem
        else alerts_html(rep.alerts, figures.alert_label),
    ]
    if figures.timeline is not None and figures.timeline.buckets:
        parts.append(_over_time(figures.timeline, figures.timeline.by or "model"))
    parts.append(_costs(figures.costs, rep.by))
    if figures.overall is not None:
        note = (
            " (≈ estimated: the range is large; --exact sorts them all)"
            if figures.overall.get("sampled_percentiles")
            else ""
        )
        parts.append(
            f"<h3>Latency</h3><figure><figcaption>Percentiles of each part of a call and of each step{esc(note)}"
            f"</figcaption>{latency_chart(figures.overall)}</figure>"
        )
    parts += [
        "<h3>What went wrong</h3>",
        errors_table(figures.errors),
        f"<h3>By {esc(', '.join(rep.by) or 'everything')}</h3>",
        breakdown_tables(rep.rows, rep.by),
        "<h3>Top cost drivers</h3>",
        drivers_table(rep.drivers),
        "</div>",
    ]
    return "".join(parts)


@dataclass
class _Alerts:
    """Runs the alerts of one report and keeps what they compared against, or why they could not run."""

    ledger_path: Path
    filters: Filters
    settings: Any
    thresholds: Any
    now: float
    problems: list[str] = field(default_factory=list)
    compared: list[str] = field(default_factory=list)

    def __call__(self) -> list[Any]:
        from llmguard.config import ConfigError

        try:
            chosen = self.settings if self.settings is not None else project_settings()
            limits = load_thresholds(self.thresholds)
        except ConfigError as exc:  # a broken setting must not hide the report; say why alerts are missing
            self.problems.append(str(exc))
            return []
        self.compared.append(describe(self.filters, limits))
        return evaluate(self.ledger_path, self.filters, chosen, limits, self.now)


def report_html(ledger_path: Path | str, **filters: Any) -> str:
    """An HTML fragment of the report (headline, alerts, charts, tables) that renders inline in a notebook.

    Keywords: `by` (default "model"; the report's charts and tables follow it), `since`, `until`,
    `last_run`, `run_id`, `settings`, `alert_thresholds`, `alerts` (False to skip them), `now`,
    `exact` (sort every call for the percentiles of a very large range), `title`, and dimension
    filters (`feature="x"`).
    """
    ledger_path = Path(ledger_path)
    by_text = filters.pop("by", "model")
    settings = filters.pop("settings", None)
    thresholds = filters.pop("alert_thresholds", None)
    want_alerts = filters.pop("alerts", True)
    exact = bool(filters.pop("exact", False))
    title = str(filters.pop("title", None) or "llmguard report")
    now = filters.pop("now", None)
    now = time.time() if now is None else now
    made = make_filters(ledger_path, now=now, **filters)
    if not has_calls_table(ledger_path):
        return f'<div class="llmguard-report"><style>{CSS}</style><p>No calls recorded in {esc(ledger_path)} yet.</p></div>'
    by = parse_by(by_text)
    alerts = _Alerts(ledger_path, made, settings, thresholds, now)
    dims = list(dict.fromkeys([*by[:1], *TAGS]))
    jobs: dict[str, Any] = {
        "report": lambda: build_report(ledger_path, by, made, alerts=alerts if want_alerts else None, exact=exact),
        "overall": lambda: breakdown(ledger_path, [], made, latencies=tuple(LATENCIES), exact=exact),
        "timeline": lambda: timeline(ledger_path, made, by[0] if by else "model", exact=exact),
        "errors": lambda: error_kinds(ledger_path, made),
    }
    grouped = by[0] if len(by) == 1 else None  # its costs are the breakdown's rows: no scan of their own
    for dim in dims:
        if dim != grouped:
            jobs[f"cost:{dim}"] = lambda dim=dim: cost_by(ledger_path, dim, made)
    done = run_parallel(jobs)
    rep: Report = done["report"]
    if grouped is not None:
        done[f"cost:{grouped}"] = [(row[grouped], row["cost_usd"], row["calls"]) for row in rep.rows]
    figures = Figures(
        overall=done["overall"][0] if done["overall"] else None,
        timeline=done["timeline"],
        costs=[(dim, done[f"cost:{dim}"]) for dim in dims],
        errors=done["errors"],
        alert_label=alerts.compared[0] if alerts.compared else "",
        problem=alerts.problems[0] if alerts.problems else "",
        title=title,
    )
    return render(rep, figures)


def html_page(fragment: str, title: str = "llmguard report") -> str:
    """A complete document around a fragment; its CSP blocks every network request."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{esc(title)}</title><style>{PAGE_CSS}</style></head>"
        f"<body>{fragment}</body></html>\n"
    )
