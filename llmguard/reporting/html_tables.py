"""The HTML report's figures as text: the headline strip, the breakdown, the cost drivers, the errors.

A breakdown row has some twenty figures; one table of them is wider than a desktop screen. So the
breakdown is three tables (cost, reliability, latency) with the group's key first in each, and
every table sits in a box that scrolls sideways on its own when the screen is narrower still.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmguard.reporting.costs import DRIVER_DIMENSIONS
from llmguard.reporting.dashboard import ErrorKinds
from llmguard.reporting.html_format import NONE, count, esc, ms, pct, usd

Column = tuple[str, str, Callable[[Any], str]]  # (row key, heading, format)

_CALLS: Column = ("calls", "calls", count)
# (the table's data-table name, its caption, its columns); the first is the breakdown proper
BREAKDOWN: tuple[tuple[str, str, list[Column]], ...] = (
    (
        "breakdown",
        "Cost and tokens",
        [
            _CALLS,
            ("input_tokens", "input tok", count),
            ("cached_input_tokens", "cached", count),
            ("output_tokens", "output tok", count),
            ("tokens_per_call", "tok/call", lambda v: f"{v:,.0f}"),
            ("cost_usd", "cost", usd),
            ("cost_per_call", "$/call", usd),
            ("cache_hit_rate", "cache hits", pct),
            ("saved_usd", "saved", usd),
        ],
    ),
    (
        "breakdown-reliability",
        "Reliability",
        [
            _CALLS,
            ("retry_rate", "retried", pct),
            ("timeout_rate", "timeouts", pct),
            ("fallback_rate", "fallbacks", pct),
            ("error_rate", "errors", pct),
            ("refusals", "refused", str),
        ],
    ),
    (
        "breakdown-latency",
        "Latency",
        [
            _CALLS,
            ("p50_ms", "p50", ms),
            ("p95_ms", "p95", ms),
            ("p99_ms", "p99", ms),
            ("ttft_p95_ms", "ttft p95", ms),
            ("queue_p95_ms", "queue p95", ms),
        ],
    ),
)


def _table(name: str, head: list[str], body: list[str], keys: int = 1) -> str:
    """A table in its own scrolling box; the first `keys` columns are text (left-aligned)."""
    heading = "".join(f'<th class="k">{esc(h)}</th>' if i < keys else f"<th>{esc(h)}</th>" for i, h in enumerate(head))
    return (
        f'<div class="scroll" data-table="{name}"><table><thead><tr>{heading}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def breakdown_tables(rows: list[dict[str, Any]], by: list[str]) -> str:
    """The breakdown by `by`: cost, reliability and latency, one table each."""
    out = []
    for name, caption, columns in BREAKDOWN:
        body = []
        for row in rows:
            keys = "".join(f'<td class="k">{esc(row.get(n))}</td>' for n in by)
            cells = "".join(f"<td>{esc(fmt(row[k]) if row.get(k) is not None else NONE)}</td>" for k, _, fmt in columns)
            body.append(f"<tr>{keys}{cells}</tr>")
        out.append(f'<div class="note">{esc(caption)}</div>')
        out.append(_table(name, [*by, *(heading for _, heading, _ in columns)], body, len(by)))
    return "".join(out)


def drivers_table(drivers: list[dict[str, Any]]) -> str:
    body = [
        "<tr>"
        + "".join(f'<td class="k">{esc(d[n])}</td>' for n in DRIVER_DIMENSIONS)
        + f"<td>{count(d['calls'])}</td><td>{esc(usd(d['cost_usd']))}</td><td>{esc(pct(d['share']))}</td></tr>"
        for d in drivers
    ]
    return _table("drivers", [*DRIVER_DIMENSIONS, "calls", "cost", "share"], body, len(DRIVER_DIMENSIONS))


def errors_table(kinds: ErrorKinds) -> str:
    """Calls that did not end ok: one row per (status, type, message), one column per model."""
    if not kinds.rows:
        return '<p class="ok" data-errors="0">Every call ended ok.</p>'
    body = []
    for row in kinds.rows:
        per_model = "".join(f"<td>{count(row['by'].get(m)) if row['by'].get(m) else ''}</td>" for m in kinds.models)
        body.append(
            f'<tr><td class="k">{esc(row["status"])}</td><td class="k">{esc(row["error_type"])}</td>'
            f'<td class="msg">{esc(row["message"])}</td>{per_model}<td>{count(row["calls"])}</td></tr>'
        )
    more = ""
    if kinds.more:
        more = f'<div class="note">and {kinds.more:,} more kinds ({kinds.more_calls:,} calls)</div>'
    return _table("errors", ["status", "type", "message", *kinds.models, "calls"], body, 3) + more


def headline(total: dict[str, Any], overall: dict[str, Any] | None) -> str:
    """The strip at the top: cost, calls, error rate (calls not ok), cache savings, p95 latency."""
    calls = total.get("calls") or 0
    failed = " · ".join(
        f"{name}: {count(total.get(key))}"
        for key, name in (("errors", "errors"), ("refusals", "refused"), ("incomplete", "incomplete"))
        if total.get(key)
    )
    per_call = f"{usd(total.get('cost_per_call'))} per call" if calls else ""
    tiles = (
        ("cost", "cost", usd(total.get("cost_usd")), per_call),
        ("calls", "calls", count(calls), f"retried: {count(total.get('retried_calls', 0))}"),
        ("error-rate", "error %", pct(total.get("failure_rate")), failed or "every call ok"),
        (
            "saved",
            "cache savings",
            usd(total.get("saved_usd") or 0.0),
            f"cache hits: {count(total.get('cache_hits', 0))}",
        ),
        (
            "p95",
            "p95 latency",
            ms(overall.get("p95_ms") if overall else None),
            f"p50 {ms(overall.get('p50_ms'))}" if overall else "",
        ),
    )
    cells = "".join(
        f'<div class="tile" data-headline="{name}"><div class="l">{esc(title)}</div>'
        f'<div class="v">{esc(value)}</div><div class="d">{esc(detail)}</div></div>'
        for name, title, value, detail in tiles
    )
    return f'<div class="tiles">{cells}</div>'
