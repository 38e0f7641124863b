"""Capacity alerts: RPM/TPM peaks near the configured limits, a queue that grows, calls that waited too long."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmguard.reporting.alerts.alert import Alert
from llmguard.reporting.alerts.attribution import shares as shares_of
from llmguard.reporting.alerts.format import clock, duration, ms
from llmguard.reporting.alerts.window import Window
from llmguard.reporting.db import query

_PROVIDER_CALLS = "cache_hit = 0 AND dedup_hit = 0 AND status != 'refused'"


def capacity_alerts(ledger_path: Path, current: Window, settings: Any, t: dict[str, float]) -> list[Alert]:
    """RPM/TPM peaks near the configured limits, a queue that grows, calls that waited too long."""
    return [
        *_limit_use(ledger_path, current, settings, t),
        *_queue_growth(ledger_path, current, t),
        *_job_age(ledger_path, current, t),
    ]


def _peaks(
    ledger_path: Path, current: Window, limits: dict[str, Any], size: float
) -> dict[tuple[str, str], tuple[float, int]]:
    """{(model, "rpm" | "tpm"): (the most used in one limit window, that window's number)}."""
    marks = ", ".join("?" for _ in limits)
    rows = query(
        ledger_path,
        f"""SELECT model, CAST(ts / ? AS INTEGER), SUM(1 + retry_count), SUM(input_tokens + output_tokens)
            FROM calls WHERE {_PROVIDER_CALLS} AND model IN ({marks}){current.where} GROUP BY 1, 2""",
        (size, *limits, *current.params),
    )
    peaks: dict[tuple[str, str], tuple[float, int]] = {}
    for model, bucket, requests, tokens in rows:
        for unit, used in (("rpm", requests), ("tpm", tokens or 0)):
            if used > peaks.get((model, unit), (-1, 0))[0]:
                peaks[(model, unit)] = (used, bucket)
    return peaks


def _limit_use(ledger_path: Path, current: Window, settings: Any, t: dict[str, float]) -> list[Alert]:
    limits = dict(getattr(settings, "limits", None) or {})
    if not limits:
        return []
    size = float(getattr(settings, "window_s", 60.0) or 60.0)
    found = []
    for (model, unit), (used, bucket) in sorted(_peaks(ledger_path, current, limits, size).items()):
        limit = limits[model].get(unit)
        if not limit or used < t["capacity_use"] * limit:
            continue
        start = bucket * size
        shares = shares_of(
            ledger_path,
            "feature",
            f"{_PROVIDER_CALLS} AND model = ? AND ts >= ? AND ts < ?",
            (model, start, start + size),
            "1 + retry_count" if unit == "rpm" else "input_tokens + output_tokens",
        )
        what = "requests" if unit == "rpm" else "tokens"
        top = next(iter(shares), None)
        found.append(
            Alert(
                kind="capacity",
                severity="critical" if used >= 0.95 * limit else "warning",
                message=(
                    f"`{model}` used {used / limit:.0%} of its {unit.upper()} limit: {used:,.0f} of {limit:,.0f} "
                    f"{what} in the {duration(size)} from {clock(start)}"
                    + (f" (feature `{top}`: {shares[top]:.0%})" if top is not None else "")
                ),
                check_next=(
                    "At 100% calls queue, then fall back or are refused: raise the provider tier and `limits`, "
                    "move batch work to priority='background' or off-peak, cache repeated prompts, or route "
                    "part of the traffic to another model" + (f" (`fallbacks` for `{model}`)." if model else ".")
                ),
                metric=f"{unit}_use",
                before=float(limit),
                after=float(used),
                attribution={
                    "limit": limit,
                    "peak": used,
                    "use": used / limit,
                    "peak_start": start,
                    "by_feature_share": shares,
                },
                scope={"model": model, "window": current.label},
            )
        )
    return found


def _queue_growth(ledger_path: Path, current: Window, t: dict[str, float]) -> list[Alert]:
    """Mean number of waiting calls (queue time / elapsed time), first half of the window vs the second."""
    if current.start is None or current.end is None or current.end - current.start <= 0:
        return []
    mid = (current.start + current.end) / 2
    half = (current.end - current.start) / 2
    rows = query(
        ledger_path,
        f"""SELECT ts >= ?, SUM(COALESCE(queue_ms, 0)), SUM(queue_ms > 0) FROM calls
            WHERE 1=1{current.where} GROUP BY 1""",
        (mid, *current.params),
    )
    halves = {bool(h): (waited or 0.0, queued or 0) for h, waited, queued in rows}
    first, second = halves.get(False, (0.0, 0)), halves.get(True, (0.0, 0))
    depth1, depth2 = first[0] / 1000 / half, second[0] / 1000 / half
    if depth2 < t["queue_min_depth"] or depth2 < depth1 * t["queue_growth"] or second[1] == 0:
        return []
    shares = shares_of(
        ledger_path, "model", f"queue_ms > 0 AND ts >= ?{current.where}", (mid, *current.params), "queue_ms"
    )
    wait1 = first[0] / first[1] if first[1] else 0.0
    wait2 = second[0] / second[1]
    top = next(iter(shares), None)
    return [
        Alert(
            kind="capacity",
            severity="critical"
            if depth2 >= depth1 * 2 * t["queue_growth"] and depth2 >= 2 * t["queue_min_depth"]
            else "warning",
            message=(
                f"the queue is growing faster than it drains: {depth1:.1f} → {depth2:.1f} calls waiting on average "
                f"(first vs second half of {current.label}), mean wait {ms(wait1)} → {ms(wait2)}"
                + (f" (`{top}`: {shares[top]:.0%} of the waiting)" if top is not None else "")
            ),
            check_next=(
                "Calls arrive faster than the rate limit admits them; interactive ones will start to fall back "
                "or be refused. Check RPM/TPM use (`llmguard report --by model,hour`), slow down batch jobs "
                "(priority='background', fewer workers), or raise `limits` / add a deployment."
            ),
            metric="queue_depth",
            before=depth1,
            after=depth2,
            attribution={
                "mean_wait_ms": {"before": wait1, "after": wait2},
                "queued_calls": {"before": first[1], "after": second[1]},
                "by_model_share": shares,
            },
            scope={"window": current.label},
        )
    ]


def _job_age(ledger_path: Path, current: Window, t: dict[str, float]) -> list[Alert]:
    limit_ms = t["job_age_s"] * 1000
    oldest, over = query(
        ledger_path,
        f"SELECT MAX(queue_ms), SUM(queue_ms >= ?) FROM calls WHERE 1=1{current.where}",
        (limit_ms, *current.params),
    )[0]
    if oldest is None or oldest < limit_ms:
        return []
    rows = query(
        ledger_path,
        f"""SELECT priority, model, COUNT(*) FROM calls WHERE queue_ms >= ?{current.where}
            GROUP BY 1, 2 ORDER BY 3 DESC""",
        (limit_ms, *current.params),
    )
    groups = {f"{p} · {m}": n for p, m, n in rows}
    top = next(iter(groups))
    return [
        Alert(
            kind="capacity",
            severity="critical" if oldest >= 4 * limit_ms else "warning",
            message=(
                f"the oldest job waited {ms(oldest)} in the queue (threshold {ms(limit_ms)}): {over} call(s) "
                f"waited longer, most of them {top} ({groups[top]})"
            ),
            check_next=(
                "Jobs starve behind other traffic or a limit that is too low: raise `limits`, spread batch work "
                "out, or give such calls a deadline (llmguard.tag(deadline=...)) so they fail fast."
            ),
            metric="oldest_job_age_ms",
            before=limit_ms,
            after=oldest,
            attribution={"over_threshold": over, "by_priority_model": groups},
            scope={"window": current.label},
        )
    ]
