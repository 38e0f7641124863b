"""The report as self-contained HTML: inline CSS and SVG charts, no script, nothing fetched.

`report_html()` returns a fragment (one <div>, its styles scoped to it) that a notebook renders
inline; `html_page()` wraps it in a document with a Content-Security-Policy that forbids every
network load, so the file opens the same offline, from an e-mail or a CI artifact.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmguard.reporting.alerts import describe, evaluate, load_thresholds, project_settings
from llmguard.reporting.build import Report, build_report
from llmguard.reporting.costs import DRIVER_DIMENSIONS, cost_by
from llmguard.reporting.db import has_calls_table, run_parallel
from llmguard.reporting.filters import make_filters
from llmguard.reporting.percentiles import QUANTILES
from llmguard.reporting.queries import LATENCIES, breakdown
from llmguard.reporting.timerange import iso
from llmguard.reporting.units import ms as _ms

PALETTE = ("#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e", "#9498a0")
_CSS = """
.llmguard-report{font:13px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;max-width:1100px}
.llmguard-report h2{font-size:18px;margin:4px 0 2px}
.llmguard-report h3{font-size:14px;margin:18px 0 6px}
.llmguard-report .meta{color:#5b6475;margin-bottom:8px}
.llmguard-report table{border-collapse:collapse;margin:4px 0 10px}
.llmguard-report th,.llmguard-report td{padding:3px 8px;border-bottom:1px solid #e3e6ec;text-align:right;white-space:nowrap}
.llmguard-report th:first-child,.llmguard-report td.k{text-align:left}
.llmguard-report th{background:#f3f5f8;font-weight:600}
.llmguard-report .alerts{margin:8px 0;padding:0;list-style:none}
.llmguard-report .alert{border-left:4px solid #efb118;background:#fff8e6;padding:6px 10px;margin:4px 0}
.llmguard-report .alert.critical{border-color:#d03b2f;background:#fdeceb}
.llmguard-report .alert .next{color:#3d4452;margin-top:2px}
.llmguard-report .ok{color:#2f7d3b}
.llmguard-report .charts{display:flex;flex-wrap:wrap;gap:18px}
.llmguard-report figure{margin:0}
.llmguard-report figcaption{font-weight:600;margin-bottom:4px}
.llmguard-report svg text{font:11px system-ui,sans-serif;fill:#3d4452}
.llmguard-report .legend{margin:2px 0 12px}
.llmguard-report .legend span{display:inline-block;margin-right:10px}
.llmguard-report .legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}
"""


def _e(value: Any) -> str:
    """Escaped text; a NUL byte (a tag value may hold one) as the text `\\x00`, never raw."""
    return html.escape("—" if value is None else str(value), quote=True).replace("\x00", "\\x00")


def _usd(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 1:
        return f"${value:,.2f}"
    whole, _, decimals = f"{value:.6f}".partition(".")
    return f"${whole}.{decimals.rstrip('0').ljust(2, '0')}"


def _axis_usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:.3g}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


# ---- charts -------------------------------------------------------------------------------------


def spend_chart(spend: dict[str, Any], width: int = 640, height: int = 220) -> str:
    """Stacked columns: cost per time bucket, one colour per model."""
    buckets = spend.get("buckets") or []
    series = sorted({name for b in buckets for name in b["by"]}, key=lambda n: -sum(b["by"].get(n, 0) for b in buckets))
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    top = max((b["cost_usd"] for b in buckets), default=0.0) or 1.0
    left, plot_h = 64, height - 44
    plot_w = width - left - 10
    size = spend.get("bucket_s", 3600)
    first = buckets[0]["start"] if buckets else 0
    slots = int((buckets[-1]["start"] - first) // size) + 1 if buckets else 1  # empty buckets keep their place
    step = plot_w / slots
    parts = [
        f'<svg data-chart="spend-over-time" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{left}" y1="{16 + plot_h}" x2="{width - 10}" y2="{16 + plot_h}" stroke="#9498a0"/>',
        f'<text x="{left - 6}" y="20" text-anchor="end">{_e(_axis_usd(top))}</text>',
        f'<text x="{left - 6}" y="{16 + plot_h}" text-anchor="end">$0</text>',
    ]
    for bucket in buckets:
        x = left + (bucket["start"] - first) // size * step + step * 0.1
        y = 16 + plot_h
        for name in series:
            value = bucket["by"].get(name, 0.0)
            if value <= 0:
                continue
            h = value / top * plot_h
            y -= h
            label = f"{_clock(bucket['start'], size)} · {name}: {_usd(value)}"
            parts.append(
                f'<rect class="bar" data-series="{_e(name)}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{step * 0.8:.1f}" height="{h:.1f}" fill="{colours[name]}"><title>{_e(label)}</title></rect>'
            )
    if buckets:
        parts.append(f'<text x="{left}" y="{height - 8}">{_e(_clock(buckets[0]["start"], size))}</text>')
        parts.append(
            f'<text x="{width - 10}" y="{height - 8}" text-anchor="end">{_e(_clock(buckets[-1]["start"], size))}</text>'
        )
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{colours[n]}"></i>{_e(n)}</span>' for n in series)
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def latency_chart(row: dict[str, Any], width: int = 640) -> str:
    """Grouped bars: p50/p95/p99 of each part of a call's latency and of each user step."""
    items: list[tuple[str, list[float | None]]] = []
    for figure, label in (
        ("queue", "queue wait"),
        ("retry_delay", "retry delay"),
        ("model", "model"),
        ("ttft", "time to first token"),
        ("total", "total"),
    ):
        prefix = "" if figure == "total" else f"{figure}_"
        values = [row.get(f"{prefix}p{q}_ms") for q in QUANTILES]
        if any(v is not None for v in values):
            items.append((label, values))
    for name, figures in (row.get("steps") or {}).items():
        items.append((f"step: {name}", [figures.get(f"p{q}_ms") for q in QUANTILES]))
    top = max((v for _, values in items for v in values if v is not None), default=0.0) or 1.0
    left, bar, gap = 150, 9, 10
    height = 24 + len(items) * (3 * bar + gap)
    plot_w = width - left - 70
    colours = ("#97bbf5", "#4269d0", "#1e3a8a")
    parts = [
        f'<svg data-chart="latency-by-step" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    y = 8.0
    for label, values in items:
        parts.append(f'<text x="{left - 8}" y="{y + 1.5 * bar + 4:.1f}" text-anchor="end">{_e(label)}</text>')
        for i, (q, value) in enumerate(zip(QUANTILES, values, strict=True)):
            if value is None:
                continue
            w = max(1.0, value / top * plot_w)
            parts.append(
                f'<rect class="bar" data-step="{_e(label)}" data-quantile="p{q}" x="{left}" '
                f'y="{y + i * bar:.1f}" width="{w:.1f}" height="{bar - 1}" fill="{colours[i]}">'
                f"<title>{_e(f'{label} p{q}: {_ms(value)}')}</title></rect>"
            )
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + i * bar + bar - 1.5:.1f}">{_e(_ms(value))}</text>')
        y += 3 * bar + gap
    parts.append("</svg>")
    legend = "".join(
        f'<span><i style="background:{c}"></i>p{q}</span>' for c, q in zip(colours, QUANTILES, strict=True)
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def bar_chart(name: str, items: list[tuple[str, float]], fmt: Any = _usd, width: int = 440) -> str:
    """Horizontal bars, largest first (cost by feature)."""
    top = max((v for _, v in items), default=0.0) or 1.0
    left, bar = 140, 18
    height = 8 + len(items) * (bar + 6)
    plot_w = width - left - 80
    parts = [
        f'<svg data-chart="{_e(name)}" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value) in enumerate(items):
        y = 4 + i * (bar + 6)
        w = max(1.0, value / top * plot_w)
        parts.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{_e(label)}</text>')
        parts.append(
            f'<rect class="bar" data-label="{_e(label)}" x="{left}" y="{y}" width="{w:.1f}" height="{bar}" '
            f'fill="{PALETTE[i % len(PALETTE)]}"><title>{_e(f"{label}: {fmt(value)}")}</title></rect>'
        )
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 13}">{_e(fmt(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _clock(ts: float, bucket_s: int) -> str:
    return time.strftime("%Y-%m-%d" if bucket_s >= 86400 else "%m-%d %H:%M", time.gmtime(ts))


# ---- the report ---------------------------------------------------------------------------------


def alerts_html(alerts: list[Any], label: str = "") -> str:
    if not alerts:
        return f'<p class="ok" data-alerts="0">No alerts{_e(" (" + label + ")") if label else ""}.</p>'
    items = "".join(
        f'<li class="alert {_e(a.severity)}" data-kind="{_e(a.kind)}"><div>{_e(a.message)}</div>'
        f'<div class="next">Check next: {_e(a.check_next)}</div></li>'
        for a in alerts
    )
    return f'<ul class="alerts" data-alerts="{len(alerts)}">{items}</ul>'


def _breakdown_table(rows: list[dict[str, Any]], by: list[str]) -> str:
    columns: list[tuple[str, str, Callable[[Any], str]]] = [
        ("calls", "calls", lambda v: f"{v:,}"),
        ("input_tokens", "input tok", lambda v: f"{v:,}"),
        ("cached_input_tokens", "cached", lambda v: f"{v:,}"),
        ("output_tokens", "output tok", lambda v: f"{v:,}"),
        ("tokens_per_call", "tok/call", lambda v: "—" if v is None else f"{v:,.0f}"),
        ("cost_usd", "cost", _usd),
        ("cost_per_call", "$/call", _usd),
        ("cache_hit_rate", "cache hits", _pct),
        ("saved_usd", "saved", _usd),
        ("retry_rate", "retried", _pct),
        ("timeout_rate", "timeouts", _pct),
        ("fallback_rate", "fallbacks", _pct),
        ("error_rate", "errors", _pct),
        ("refusals", "refused", str),
        ("p50_ms", "p50", _ms),
        ("p95_ms", "p95", _ms),
        ("p99_ms", "p99", _ms),
        ("ttft_p95_ms", "ttft p95", _ms),
        ("queue_p95_ms", "queue p95", _ms),
    ]
    head = "".join(f"<th>{_e(n)}</th>" for n in by) + "".join(f"<th>{_e(label)}</th>" for _, label, _ in columns)
    body = []
    for row in rows:
        keys = "".join(f'<td class="k">{_e(row.get(n))}</td>' for n in by)
        cells = "".join(f"<td>{_e(fmt(row.get(k)) if row.get(k) is not None else '—')}</td>" for k, _, fmt in columns)
        body.append(f"<tr>{keys}{cells}</tr>")
    return (
        f'<div data-table="breakdown"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def _drivers_table(drivers: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{n}</th>" for n in (*DRIVER_DIMENSIONS, "calls", "cost", "share"))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="k">{_e(d[n])}</td>' for n in DRIVER_DIMENSIONS)
        + f"<td>{d['calls']:,}</td><td>{_e(_usd(d['cost_usd']))}</td><td>{_e(_pct(d['share']))}</td></tr>"
        for d in drivers
    )
    return f'<div data-table="drivers"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def render(
    rep: Report,
    overall: dict[str, Any] | None,
    by_feature: list[tuple[str, float]],
    alert_label: str = "",
    problem: str = "",
) -> str:
    """The fragment for an already computed report."""
    total = rep.total
    scope = rep.filters.describe()
    described = ", ".join(f"{k}={v}" for k, v in scope.items() if v is not None) or "all calls"
    parts = [
        f'<div class="llmguard-report"><style>{_CSS}</style>',
        "<h2>llmguard report</h2>",
        f'<div class="meta">{_e(described)} · {total.get("calls", 0):,} calls · {_e(_usd(total.get("cost_usd")))} '
        f"· ledger {_e(rep.ledger)} · generated {_e(iso(rep.generated_at))}</div>",
        "<h3>Alerts</h3>",
        f'<p class="alert" data-alerts-error="1">Alerts could not run: {_e(problem)}</p>'
        if problem
        else alerts_html(rep.alerts, alert_label),
        '<div class="charts">',
        f"<figure><figcaption>Spend over time by model</figcaption>{spend_chart(rep.spend)}</figure>",
        f"<figure><figcaption>Cost by feature</figcaption>{bar_chart('cost-by-feature', by_feature)}</figure>",
        "</div>",
    ]
    if overall is not None:
        note = " (≈ estimated from a sample: the range is large)" if overall.get("sampled_percentiles") else ""
        parts.append(
            f"<figure><figcaption>Latency percentiles by step{note}</figcaption>{latency_chart(overall)}</figure>"
        )
    parts += [
        f"<h3>By {_e(', '.join(rep.by) or 'everything')}</h3>",
        _breakdown_table(rep.rows, rep.by),
        "<h3>Top cost drivers</h3>",
        _drivers_table(rep.drivers),
        "</div>",
    ]
    return "".join(parts)


def report_html(ledger_path: Path | str, **filters: Any) -> str:
    """An HTML fragment of the report (alerts, charts, tables) that renders inline in a notebook.

    Keywords: `by` (default "model"), `since`, `until`, `last_run`, `run_id`, `settings`,
    `alert_thresholds`, `alerts` (False to skip them), `now`, `exact` (sort every call for the
    percentiles of a very large range), and dimension filters (`feature="x"`).
    """
    ledger_path = Path(ledger_path)
    by = filters.pop("by", "model")
    settings = filters.pop("settings", None)
    thresholds = filters.pop("alert_thresholds", None)
    want_alerts = filters.pop("alerts", True)
    exact = bool(filters.pop("exact", False))
    now = filters.pop("now", None)
    now = time.time() if now is None else now
    made = make_filters(ledger_path, now=now, **filters)
    if not has_calls_table(ledger_path):
        return f'<div class="llmguard-report"><style>{_CSS}</style><p>No calls recorded in {_e(ledger_path)} yet.</p></div>'

    problems: list[str] = []
    compared: list[str] = []

    def find_alerts() -> list[Any]:
        from llmguard.config import ConfigError

        try:
            chosen = settings if settings is not None else project_settings()
            limits = load_thresholds(thresholds)
        except ConfigError as exc:  # a broken setting must not hide the report; say why alerts are missing
            problems.append(str(exc))
            return []
        compared.append(describe(made, limits))
        return evaluate(ledger_path, made, chosen, limits, now)

    extra = run_parallel(
        {
            "report": lambda: build_report(
                ledger_path, by, made, alerts=find_alerts if want_alerts else None, exact=exact
            ),
            "overall": lambda: breakdown(ledger_path, [], made, latencies=tuple(LATENCIES), exact=exact),
            "features": lambda: cost_by(ledger_path, "feature", made),
        }
    )
    overall = extra["overall"][0] if extra["overall"] else None
    features = [(str(name) if name is not None else "(no feature)", cost) for name, cost, _ in extra["features"]]
    return render(
        extra["report"],
        overall,
        features,
        alert_label=compared[0] if compared else "",
        problem=problems[0] if problems else "",
    )


def html_page(fragment: str, title: str = "llmguard report") -> str:
    """A complete document around a fragment; its CSP blocks every network request."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{_e(title)}</title></head>'
        f"<body>{fragment}</body></html>\n"
    )
