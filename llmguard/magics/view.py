"""What the widget, `%llmguard status` and the terminal summary show: one snapshot of a guard, formatted.

`collect` reads only the guard's own snapshots (metrics, budget, limiter): no ledger query, no
lock held for long, so a widget thread can call it a few times a second. Nothing here reads
settings that can hold secrets; API keys never reach a view.

Latency percentiles and requests/tokens per window count only calls that reached the provider;
cache hits and refusals are counted apart. "Cache hits" are llmguard's response cache; the
provider's prompt cache is "prompt-cache read tokens".
"""

from __future__ import annotations

import html
import math
from typing import Any

from llmguard.magics import sparkline
from llmguard.magics.output import count, ms, usd
from llmguard.money import DASH, duration, plural


def collect(guard: Any) -> dict[str, Any]:
    """A plain dict of everything a view shows, from the guard's live state."""
    metrics = guard.metrics.snapshot()
    session = guard.budget.session
    budget = None
    if session is not None and not math.isinf(session.limit):
        budget = {"limit": session.limit, "spent": session.spent, "reserved": session.reserved}
    limits = []
    for model, spec in sorted(guard.limiter.snapshot().items()):
        window = float(spec.get("window_s") or guard.settings.window_s)
        requests, tokens = guard.metrics.in_window(model, window)
        limits.append(
            {
                "model": model,
                "rpm": spec.get("rpm"),
                "tpm": spec.get("tpm"),
                "window_s": window,
                "rpm_used": requests,  # calls that reached the provider in the limit's window
                "tpm_used": tokens,  # and the tokens they used (not the bucket's level)
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
        "store": guard.budget.store_status() if hasattr(guard.budget, "store_status") else None,
    }


def budget_text(view: dict[str, Any]) -> str:
    """`$0.000075 of $0.50 budget used, since set`; "" without a budget.

    The session budget counts what was spent since it was set (`%llmguard budget`), which can be
    less than the session's spend.
    """
    budget = view.get("budget")
    if budget is None:
        return ""
    text = f"{usd(budget['spent'])} of {usd(budget['limit'])} budget used, since set"
    if budget.get("reserved"):
        text += f" ({usd(budget['reserved'])} held by calls in flight)"
    return text


def store_text(guard: Any) -> str:
    """`store: redis://***@host:6379/0 · namespace team-a · reachable`: where shared budgets keep their books."""
    status = guard.budget.store_status(ping=True)
    state = "reachable" if status["error"] is None else f"unreachable ({status['error']})"
    if status["kind"] == "process":
        return f"store: {status['label']}"
    return f"store: {status['label']} · namespace {guard.settings.namespace} · {state}"


def spend_text(view: dict[str, Any]) -> str:
    text = f"{usd(view['cost_usd'])} spent"
    if view.get("unpriced_calls"):
        text += f" (+{plural(view['unpriced_calls'], 'unpriced call')})"
    if view.get("budget") is not None:
        text += " · " + budget_text(view)
    if not view.get("enabled", True):
        text += " · llmguard is OFF"
    return text


def budget_fraction(view: dict[str, Any]) -> float | None:
    budget = view.get("budget")
    if budget is None or budget["limit"] <= 0:
        return None
    return min(1.0, (budget["spent"] + budget["reserved"]) / budget["limit"])


def _window(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 60 else duration(seconds)


def _limit_line(item: dict[str, Any]) -> str:
    """`gpt-4o-mini: RPM 3/500 · TPM 1.2k/100k · queue 0`, or for other windows
    `gpt-4o-mini, last 5 s: 3/50 requests · 1.2k/15k tokens · queue 7 (oldest waiting 2.1 s)`."""
    per_minute = item["window_s"] == 60
    bits = []
    if item["rpm"]:
        used, limit = count(item["rpm_used"]), count(item["rpm"])
        bits.append(f"RPM {used}/{limit}" if per_minute else f"{used}/{limit} requests")
    if item["tpm"]:
        used, limit = count(item["tpm_used"]), count(item["tpm"])
        bits.append(f"TPM {used}/{limit}" if per_minute else f"{used}/{limit} tokens")
    queue = f"queue {item['queue_depth']}"
    if item["queue_depth"] and item["oldest_wait_s"]:
        queue += f" (oldest waiting {duration(item['oldest_wait_s'])})"
    bits.append(queue)
    where = item["model"] if per_minute else f"{item['model']}, last {_window(item['window_s'])}"
    return f"{where}: " + " · ".join(bits)


def _rate_parts(view: dict[str, Any]) -> list[str]:
    if not view["limits"]:
        return [f"RPM {count(view['rpm'])} · TPM {count(view['tpm'])} (no limits set)"]
    return [_limit_line(item) for item in view["limits"]]


REPLAY_HINT = "`%llmguard fresh` for a new sample"


def cache_parts(hits: int, saved_usd: float, replays: int) -> list[str]:
    """`1 cache hit ($0.0000132 saved)`, then `2 replayed ($0) · %llmguard fresh ...` for replayed samples."""
    hits -= replays
    parts = [plural(hits, "cache hit") + (f" ({usd(saved_usd)} saved)" if hits else "")]
    if replays:
        parts.append(f"{replays:,} replayed ($0) · {REPLAY_HINT}")
    return parts


def calls_text(view: dict[str, Any]) -> str:
    """`calls 3: 2 to the provider · 1 cache hit ($0.0000132 saved)` (+ replayed, deduplicated, refused)."""
    parts = [f"{view['provider_calls']:,} to the provider"]
    parts += cache_parts(view["cache_hits"], view["saved_usd"], view.get("replays", 0))
    if view.get("dedup_hits"):
        parts.append(f"{view['dedup_hits']:,} shared an identical call in flight")
    if view["refusals"]:
        parts.append(f"{view['refusals']:,} refused by llmguard")
    return f"calls {view['calls']:,}: " + " · ".join(parts)


def tokens_text(view: dict[str, Any]) -> str:
    text = f"tokens {count(view['input_tokens'])} in / {count(view['output_tokens'])} out"
    if view.get("prompt_cache_read_tokens"):
        text += " · " + plural(view["prompt_cache_read_tokens"], "prompt-cache read token")
    return text


def latency_text(view: dict[str, Any]) -> str:
    """`latency p50 812 ms · p95 930 ms (2 provider calls)`: cache hits and refusals are not in it."""
    if not view.get("latency_calls"):
        return f"latency p50 {DASH} · p95 {DASH} (no provider calls yet)"
    counted = plural(view["latency_calls"], "provider call")
    return f"latency p50 {ms(view['p50_ms'])} · p95 {ms(view['p95_ms'])} ({counted})"


def detail_lines(view: dict[str, Any]) -> list[str]:
    lines = [
        calls_text(view),
        tokens_text(view),
        *_rate_parts(view),
        f"{latency_text(view)} · retries {view['retries']:,} · fallbacks {view['fallbacks']:,}"
        f" · errors {view['errors']:,}",
    ]
    shared = shared_store_text(view)
    return [*lines, shared] if shared else lines


def shared_store_text(view: dict[str, Any]) -> str:
    """`budget shared through local (.../store.sqlite3) · reachable`, where a budget is shared (no ping:
    the widget refreshes often; the last exchange's error is shown), or the store is failing."""
    store = view.get("store")
    if not store or store["kind"] == "process":
        return ""
    if store["error"] is None:
        return f"budget shared through {store['label']} · reachable" if view.get("budget") else ""
    return f"store {store['label']} unreachable: {store['error']}"


def spark_text(view: dict[str, Any]) -> str:
    """`spend ▁▃█▂ over 40 s, a bar per 10 s (peak $0.0012)`; "" until something was spent."""
    series = view.get("spend_series")
    return sparkline.text(series) if sparkline.has_spend(series) else ""


def spark_html(view: dict[str, Any]) -> str:
    series = view.get("spend_series")
    return sparkline.svg(series) if sparkline.has_spend(series) else ""


def refusal_text(view: dict[str, Any]) -> str:
    last = view.get("last_refusal")
    return f"last refusal: {last}" if last else ""


def one_line(view: dict[str, Any]) -> str:
    """The terminal's summary: the widget's information on one line (short until a call is made)."""
    if not view["calls"]:
        return " · ".join(["llmguard", spend_text(view), "0 calls", *(_rate_parts(view) if view["limits"] else [])])
    parts = [
        "llmguard",
        spend_text(view),
        plural(view["calls"], "call"),
        f"{view['provider_calls']:,} to the provider",
        *cache_parts(view["cache_hits"], view["saved_usd"], view.get("replays", 0)),
        f"{count(view['input_tokens'])} in / {count(view['output_tokens'])} out tokens",
    ]
    if view["refusals"]:
        parts.append(f"{view['refusals']:,} refused")
    if view["limits"]:
        parts.extend(_rate_parts(view))
    parts.append(latency_text(view))
    parts.append(
        f"{plural(view['retries'], 'retry', 'retries')} · {plural(view['fallbacks'], 'fallback')}"
        f" · {plural(view['errors'], 'error')}"
    )
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
