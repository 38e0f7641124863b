"""The HTML report's charts: inline SVG with a viewBox (they scale to the space they get), no script.

Time charts share one axis (`_time_axis`): ticks at round times (seconds in a notebook session,
hours over a week), labelled in UTC. Every mark carries a <title> (its tooltip) and data-*
attributes saying what it shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from llmguard.reporting.dashboard import Timeline
from llmguard.reporting.html_format import esc, label, ms, short, usd
from llmguard.reporting.percentiles import QUANTILES

PALETTE = ("#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e", "#9498a0")
SERIES = 7  # series drawn on their own in the spend chart; the rest are summed as "other"
OTHER = "other"
_OTHER = object()  # the series of the values not drawn on their own
# Round tick steps of a time axis, in seconds.
_TICKS: tuple[int, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
_TICKS += (86400, 172800, 604800, 30 * 86400, 91 * 86400, 365 * 86400)


def _svg(name: str, width: int, height: int, extra: str = "") -> str:
    return (
        f'<svg data-chart="{esc(name)}" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"{extra}>'
    )


def bucket_name(seconds: int) -> str:
    """`5 s`, `10 min`, `3 h`, `1 day`, `1 week`: how long one bucket of a time chart is."""
    for unit, size in (("week", 604800), ("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n > 1 and unit in ('week', 'day') else ''}"
    return f"{seconds} s"


def time_ticks(start: float, end: float) -> tuple[list[float], int]:
    """Round times in [start, end] (3 to 6 of them, near 4) and the step between them."""
    best: tuple[int, int, int] | None = None  # (distance from 4 ticks, first tick, step)
    for step in _TICKS:  # counted, not listed: a month has 2.6 million one-second ticks
        first = -(-int(start) // step) * step
        count = max(0, (int(end) - first) // step + 1)
        if 3 <= count <= 6 and (best is None or abs(count - 4) < best[0]):
            best = (abs(count - 4), first, step)
    if best is None:  # a range too short for any round step: its two ends and its middle
        return [start, (start + end) / 2, end], 1
    _, first, step = best
    return [float(t) for t in range(first, int(end) + 1, step)], step


def _tick_text(ts: float, step: int) -> str:
    """A tick's label: the clock (UTC), or the date at midnight and for steps of a day or more."""
    moment = time.gmtime(ts)
    if step >= 86400 or (moment.tm_hour, moment.tm_min, moment.tm_sec) == (0, 0, 0):
        return time.strftime("%m-%d", moment)
    return time.strftime("%H:%M:%S" if step < 60 else "%H:%M", moment)


def _time_axis(tl: Timeline, left: float, right: float, base: float) -> list[str]:
    """The x axis of a time chart: its line and its round ticks, labelled (UTC) below `base`."""
    parts = [f'<line class="axis" x1="{left}" y1="{base}" x2="{right}" y2="{base}"/>']
    ticks, step = time_ticks(tl.start, tl.end)
    scale = (right - left) / (tl.end - tl.start)
    for ts in ticks:
        x = left + (ts - tl.start) * scale
        parts.append(f'<line class="axis" x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}"/>')
        parts.append(
            f'<text class="tick" data-ts="{ts:.0f}" x="{x:.1f}" y="{base + 16}" text-anchor="middle">'
            f"{esc(_tick_text(ts, step))}</text>"
        )
    return parts


def _value_axis(top: float, fmt: Callable[[float], str], left: float, right: float, y0: float, h: float) -> list[str]:
    """Three labelled grid lines (0, half, top) of a chart's y axis."""
    parts = []
    for share in (0.0, 0.5, 1.0):
        y = y0 + h - share * h
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{esc(fmt(top * share))}</text>')
    return parts


def _when(ts: float, bucket_s: int) -> str:
    """A bucket's start as its tooltip gives it (UTC)."""
    shape = "%Y-%m-%d" if bucket_s >= 86400 else "%Y-%m-%d %H:%M" if bucket_s >= 60 else "%Y-%m-%d %H:%M:%S"
    return time.strftime(shape, time.gmtime(ts)) + " UTC"


def _series(tl: Timeline) -> tuple[list[Any], dict[Any, str]]:
    """The series drawn on their own (most expensive first, the rest summed as OTHER) and their colours."""
    totals: dict[Any, float] = {}
    for bucket in tl.buckets.values():
        for value, cost in bucket["by"].items():
            totals[value] = totals.get(value, 0.0) + cost
    ordered = sorted(
        (v for v in totals if totals[v] > 0), key=lambda v: (-totals[v], str(v))
    )  # what cost nothing has no bar
    shown: list[Any] = ordered if len(ordered) <= SERIES + 1 else ordered[:SERIES] + [_OTHER]
    return shown, {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(shown)}


def _name(value: Any, tl: Timeline) -> str:
    return OTHER if value is _OTHER else label(value)


def _stack(bucket: dict[str, Any], series: list[Any]) -> list[tuple[Any, float]]:
    """(series, cost) of one bucket, bottom first; OTHER sums the values not drawn on their own."""
    named = {v: bucket["by"].get(v, 0.0) for v in series if v is not _OTHER}
    rest = sum(cost for v, cost in bucket["by"].items() if v not in named)
    return [(v, rest if v is _OTHER else named[v]) for v in series]


def spend_chart(tl: Timeline, width: int = 640, height: int = 240) -> str:
    """Stacked columns: cost per time bucket, one colour per value of the timeline's dimension."""
    series, colours = _series(tl)
    top = max((b["cost_usd"] for b in tl.buckets.values()), default=0.0) or 1.0
    left, right, y0 = 70, width - 30, 12
    plot_h = height - y0 - 30
    step = (right - left) / tl.slots
    parts = [_svg("spend-over-time", width, height, f' data-bucket-s="{tl.bucket_s}"')]
    parts += _value_axis(top, usd, left, right, y0, plot_h)
    for index in sorted(tl.buckets):
        x, y = left + (index - tl.first) * step + step * 0.1, float(y0 + plot_h)
        for value, cost in _stack(tl.buckets[index], series):
            if cost <= 0:
                continue
            h = cost / top * plot_h
            y -= h
            tip = f"{_when(index * tl.bucket_s, tl.bucket_s)} · {_name(value, tl)}: {usd(cost)}"
            parts.append(
                f'<rect class="bar" data-series="{esc(_name(value, tl))}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{max(step * 0.8, 1):.1f}" height="{h:.1f}" fill="{colours[value]}"><title>{esc(tip)}</title></rect>'
            )
    parts += _time_axis(tl, left, right, y0 + plot_h)
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{colours[v]}"></i>{esc(_name(v, tl))}</span>' for v in series)
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def line_chart(
    name: str,
    tl: Timeline,
    value: Callable[[dict[str, Any]], float | None],
    fmt: Callable[[float], str],
    colour: str = "#4269d0",
    size: tuple[int, int] = (480, 190),
) -> str:
    """One figure per time bucket (p95 latency, error rate) as a line with a point per bucket."""
    width, height = size
    points = {i: v for i, b in sorted(tl.buckets.items()) if (v := value(b)) is not None}
    top = max(points.values(), default=0.0) or 1.0
    left, right, y0 = 70, width - 30, 12
    plot_h = height - y0 - 30
    step = (right - left) / tl.slots
    parts = [_svg(name, width, height, f' data-bucket-s="{tl.bucket_s}"')]
    parts += _value_axis(top, fmt, left, right, y0, plot_h)
    runs: list[list[str]] = []
    previous = None
    for index, v in points.items():
        x, y = left + (index - tl.first + 0.5) * step, y0 + plot_h - v / top * plot_h
        if previous is None or index != previous + 1:
            runs.append([])  # a bucket without calls breaks the line
        runs[-1].append(f"{x:.1f},{y:.1f}")
        previous = index
        tip = f"{_when(index * tl.bucket_s, tl.bucket_s)}: {fmt(v)}"
        parts.append(
            f'<circle class="point" data-value="{v}" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
            f"<title>{esc(tip)}</title></circle>"
        )
    parts += [f'<polyline class="line" stroke="{colour}" points="{" ".join(run)}"/>' for run in runs if len(run) > 1]
    parts += _time_axis(tl, left, right, y0 + plot_h)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(name: str, items: list[tuple[str, float]], fmt: Callable[[float], str] = usd, width: int = 440) -> str:
    """Horizontal bars, in the order given (cost by feature, tenant, user)."""
    top = max((v for _, v in items), default=0.0) or 1.0
    left, bar = 150, 18
    height = 8 + len(items) * (bar + 6)
    plot_w = width - left - 80
    parts = [_svg(name, width, height)]
    for i, (text, value) in enumerate(items):
        y = 4 + i * (bar + 6)
        w = max(1.0, value / top * plot_w)
        parts.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{esc(short(text, 22))}</text>')
        parts.append(
            f'<rect class="bar" data-label="{esc(text)}" x="{left}" y="{y}" width="{w:.1f}" height="{bar}" '
            f'fill="{PALETTE[i % len(PALETTE)]}"><title>{esc(f"{text}: {fmt(value)}")}</title></rect>'
        )
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 13}">{esc(fmt(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def latency_chart(row: dict[str, Any], width: int = 640) -> str:
    """Grouped bars: p50/p95/p99 of each part of a call's latency and of each user step."""
    items: list[tuple[str, list[float | None]]] = []
    for figure, name in (
        ("queue", "queue wait"),
        ("retry_delay", "retry delay"),
        ("model", "model"),
        ("ttft", "time to first token"),
        ("total", "total"),
    ):
        prefix = "" if figure == "total" else f"{figure}_"
        values = [row.get(f"{prefix}p{q}_ms") for q in QUANTILES]
        if any(v is not None for v in values):
            items.append((name, values))
    for step, figures in (row.get("steps") or {}).items():
        items.append((f"step: {step}", [figures.get(f"p{q}_ms") for q in QUANTILES]))
    top = max((v for _, values in items for v in values if v is not None), default=0.0) or 1.0
    left, bar, gap = 160, 9, 10
    height = 24 + len(items) * (3 * bar + gap)
    plot_w = width - left - 80
    colours = ("#97bbf5", "#4269d0", "#1e3a8a")
    parts = [_svg("latency-by-step", width, height)]
    y = 8.0
    for name, values in items:
        parts.append(f'<text x="{left - 8}" y="{y + 1.5 * bar + 4:.1f}" text-anchor="end">{esc(short(name))}</text>')
        for i, (q, v) in enumerate(zip(QUANTILES, values, strict=True)):
            if v is None:
                continue
            w = max(1.0, v / top * plot_w)
            parts.append(
                f'<rect class="bar" data-step="{esc(name)}" data-quantile="p{q}" x="{left}" '
                f'y="{y + i * bar:.1f}" width="{w:.1f}" height="{bar - 1}" fill="{colours[i]}">'
                f"<title>{esc(f'{name} p{q}: {ms(v)}')}</title></rect>"
            )
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + i * bar + bar - 1.5:.1f}">{esc(ms(v))}</text>')
        y += 3 * bar + gap
    parts.append("</svg>")
    legend = "".join(
        f'<span><i style="background:{c}"></i>p{q}</span>' for c, q in zip(colours, QUANTILES, strict=True)
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'
