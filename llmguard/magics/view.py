"""What the widget, `%llmguard status` and the terminal summary show: one snapshot of a guard, formatted.

`collect` reads only the guard's own snapshots (metrics, budget, limiter): no ledger query, no
lock held for long, so a widget thread can call it a few times a second. Nothing here reads
settings that can hold secrets; API keys never reach a view.
"""

from __future__ import annotations

import html
import math
from typing import Any

from llmguard.magics.output import count, ms, usd


def collect(guard: Any) -> dict[str, Any]:
    """A plain dict of everything a view shows, from the guard's live state."""
    metrics = guard.metrics.snapshot()
    session = guard.budget.session
    budget = None
    if session is not None and not math.isinf(session.limit):
        budget = {"limit": session.limit, "spent": session.spent, "reserved": session.reserved}
    limits = []
    for model, spec in sorted(guard.limiter.snapshot().items()):
        rpm, tpm = spec.get("rpm"), spec.get("tpm")
        left_r, left_t = spec.get("requests_left"), spec.get("tokens_left")
        limits.append(
            {
                "model": model,
                "rpm": rpm,
                "tpm": tpm,
                "rpm_used": None if not rpm or left_r is None else max(0.0, rpm - left_r),
                "tpm_used": None if not tpm or left_t is None else max(0.0, tpm - left_t),
                "queue_depth": spec.get("queue_depth", 0),
                "oldest_wait_s": spec.get("oldest_wait_s", 0.0),
            }
        )
    return {
        **metrics,
        "enabled": bool(guard.enabled),
        "budget": budget,
        "limits": limits,
        "queue_depth": sum(item["queue_depth"] for item in limits),
        "window_s": guard.settings.window_s,
    }


def spend_text(view: dict[str, Any]) -> str:
    text = f"{usd(view['cost_usd'])} spent"
    if view.get("unpriced_calls"):
        text += f" (+{view['unpriced_calls']} unpriced)"
    budget = view.get("budget")
    if budget is not None:
        text += f" · budget {usd(budget['spent'])} of {usd(budget['limit'])}"
    if not view.get("enabled", True):
        text += " · llmguard is OFF"
    return text


def budget_fraction(view: dict[str, Any]) -> float | None:
    budget = view.get("budget")
    if budget is None or budget["limit"] <= 0:
        return None
    return min(1.0, (budget["spent"] + budget["reserved"]) / budget["limit"])


def _rate_parts(view: dict[str, Any]) -> list[str]:
    if not view["limits"]:
        return [f"RPM {count(view['rpm'])} · TPM {count(view['tpm'])} (no limits set)"]
    per = "" if view.get("window_s", 60) == 60 else f" per {view['window_s']:g}s"
    parts = []
    for item in view["limits"]:
        bits = []
        if item["rpm"]:
            bits.append(f"RPM {count(item['rpm_used'])}/{count(item['rpm'])}")
        if item["tpm"]:
            bits.append(f"TPM {count(item['tpm_used'])}/{count(item['tpm'])}")
        bits.append(f"queue {item['queue_depth']}")
        parts.append(f"{item['model']}: " + " · ".join(bits) + per)
    return parts


def detail_lines(view: dict[str, Any]) -> list[str]:
    lines = [
        f"calls {view['calls']:,} · tokens {count(view['input_tokens'])} in / {count(view['output_tokens'])} out"
        f" · cache {view['cache_hits']:,} hits ({usd(view['saved_usd'])} saved)",
        *_rate_parts(view),
        f"latency p50 {ms(view['p50_ms'])} · p95 {ms(view['p95_ms'])} · retries {view['retries']:,}"
        f" · fallbacks {view['fallbacks']:,} · errors {view['errors']:,} · refused {view['refusals']:,}",
    ]
    return lines


def refusal_text(view: dict[str, Any]) -> str:
    last = view.get("last_refusal")
    return f"last refusal: {last}" if last else ""


def one_line(view: dict[str, Any]) -> str:
    """The terminal's summary: the widget's information on one line."""
    parts = [
        "llmguard",
        spend_text(view),
        f"{view['calls']:,} calls",
        f"{count(view['input_tokens'])}/{count(view['output_tokens'])} tok",
        f"cache {view['cache_hits']} ({usd(view['saved_usd'])} saved)",
    ]
    if view["limits"]:
        parts.extend(_rate_parts(view))
    parts.append(f"p50 {ms(view['p50_ms'])} p95 {ms(view['p95_ms'])}")
    parts.append(f"{view['retries']} retries {view['fallbacks']} fallbacks {view['errors']} errors")
    if view.get("last_refusal"):
        parts.append(refusal_text(view))
    return " · ".join(parts)


def details_html(view: dict[str, Any]) -> str:
    rows = "".join(f"<div>{html.escape(line)}</div>" for line in detail_lines(view))
    return f'<div style="font-size:12px;line-height:1.5;opacity:0.85">{rows}</div>'


def refusal_html(view: dict[str, Any]) -> str:
    text = refusal_text(view)
    if not text:
        return ""
    return f'<div style="font-size:12px;color:#c23030;white-space:pre-wrap">{html.escape(text)}</div>'
