"""Latency alerts: a call's p95 rose (split across queue, retries, model, other), or a step's p95 rose.

p95 cannot be split into parts, so the rise is attributed on the calls that p95 describes — those
at or above each window's p95. Their mean latency is exactly the sum of the means of its parts
(queue wait + retry delay + model time + other call time), so the parts' changes add up to the
change of that tail mean, which is what `attribution["components_ms"]` holds and
`attribution["shares"]` divides (the shares add up to 1). A call's latency is its own total: the
`llmguard.step`s around it contain it, so they are not added to it. Steps get their own alert,
over the ledger's `steps` table: one sample per run of a step, however many calls ran inside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmguard.reporting.alerts.alert import Alert, rise_severity, rose
from llmguard.reporting.alerts.format import ms
from llmguard.reporting.alerts.window import Window
from llmguard.reporting.db import has_steps_table, query, run_parallel
from llmguard.reporting.percentiles import rank

_LATENCY_ROWS = "total_ms IS NOT NULL AND status != 'refused'"
_COMPONENT_LABELS = {
    "queue": "queue wait",
    "retry_delay": "retry delay",
    "model": "model time",
    "other": "other call time (failed attempts, connecting, llmguard)",
}
_NEXT = {
    "queue": (
        "Calls wait for rate-limit capacity: compare RPM/TPM use with the limits (`llmguard report --by "
        "model,hour`), raise the tier or `limits`, move batch work to priority='background', or add a "
        "fallback model."
    ),
    "retry_delay": (
        "Calls are retrying: look at provider 429s and errors by model (`llmguard report --by model "
        "--alerts`) and the provider's status page; fall back sooner or lower max_attempts."
    ),
    "model": (
        "The provider answers more slowly: check output tokens per call (longer answers take longer) and "
        "the model mix (`llmguard report --by model,prompt_version`); stream answers or use a faster model."
    ),
    "other": (
        "Time outside queue, retry waits and the final attempt grew: failed attempts before a success, slow "
        "connections or timeouts; check errors and timeouts by model (`llmguard report --by model,error_type`)."
    ),
}


def _p95_and_tail(ledger_path: Path, window: Window) -> dict[str, Any]:
    n = query(ledger_path, f"SELECT COUNT(*) FROM calls WHERE {_LATENCY_ROWS}{window.where}", window.params)[0][0]
    if not n:
        return {"calls": 0}
    r = rank(n, 95)
    p95 = query(
        ledger_path,
        f"SELECT total_ms FROM calls WHERE {_LATENCY_ROWS}{window.where} ORDER BY total_ms LIMIT 1 OFFSET ?",
        (*window.params, r - 1),
    )[0][0]
    count, mean, queue, retry, model = query(
        ledger_path,
        f"""SELECT COUNT(*), AVG(total_ms), AVG(COALESCE(queue_ms, 0)), AVG(COALESCE(retry_delay_ms, 0)),
                   AVG(COALESCE(model_ms, 0)) FROM calls WHERE {_LATENCY_ROWS}{window.where} AND total_ms >= ?""",
        (*window.params, p95),
    )[0]
    components = {"queue": queue, "retry_delay": retry, "model": model, "other": mean - queue - retry - model}
    return {"calls": n, "p95": p95, "tail_calls": count, "tail_mean": mean, "components": components}


def latency_alerts(ledger_path: Path, current: Window, previous: Window, t: dict[str, float]) -> list[Alert]:
    """p95 latency rose: split the rise of the tail's mean across queue, retries, model, other."""
    jobs = {"now": lambda: _p95_and_tail(ledger_path, current), "before": lambda: _p95_and_tail(ledger_path, previous)}
    got = run_parallel(jobs)
    now, before = got["now"], got["before"]
    if now["calls"] < t["min_calls"] or before["calls"] < t["min_calls"]:
        return []
    rise = now["p95"] - before["p95"]
    if rise < t["latency_min_ms"] or not rose(before["p95"], now["p95"], t["latency_rise"]):
        return []
    names = list(dict.fromkeys([*before["components"], *now["components"]]))
    deltas = {n: now["components"].get(n, 0.0) - before["components"].get(n, 0.0) for n in names}
    tail_change = now["tail_mean"] - before["tail_mean"]
    shares = {n: d / tail_change for n, d in deltas.items()} if tail_change > 0 else {}
    ranked = sorted(deltas, key=lambda n: deltas[n], reverse=True)
    top = ranked[0]
    parts = [f"{_COMPONENT_LABELS[n]} {shares[n]:.0%}" for n in ranked[1:3] if shares and deltas[n] > 0]
    lead = f"; {_COMPONENT_LABELS[top]} accounts for {shares[top]:.0%} of the increase" if shares else ""
    message = (
        f"p95 latency rose {rise / before['p95']:.0%} ({ms(before['p95'])} → {ms(now['p95'])}, "
        f"{current.label} vs {previous.label}){lead}" + (f" ({', '.join(parts)})" if parts else "")
    )
    return [
        Alert(
            kind="latency",
            severity=rise_severity(before["p95"], now["p95"], t["latency_rise"]),
            message=message,
            check_next=_NEXT.get(top, _NEXT["other"]),
            metric="p95_latency_ms",
            before=before["p95"],
            after=now["p95"],
            attribution={
                "basis": "mean latency of the calls at or above each window's p95 (the call's own total)",
                "before_ms": before["tail_mean"],
                "after_ms": now["tail_mean"],
                "change_ms": tail_change,
                "components_ms": deltas,
                "shares": shares,
                "before_components_ms": before["components"],
                "after_components_ms": now["components"],
                "calls": {"before": before["calls"], "after": now["calls"]},
            },
            scope={"window": current.label, "baseline": previous.label},
        )
    ]


_Step = tuple[int, float, float]  # (runs, p95 duration, mean calls per run)


def _step_p95s(ledger_path: Path, window: Window) -> dict[str, _Step]:
    """Per step name in the window: (runs, nearest-rank p95 of their durations, mean calls per run)."""
    rows = query(
        ledger_path,
        f"""SELECT name, n, v, c FROM (
                SELECT name, duration_ms AS v, ROW_NUMBER() OVER (PARTITION BY name ORDER BY duration_ms) AS rn,
                       COUNT(*) OVER (PARTITION BY name) AS n, AVG(COALESCE(calls, 0)) OVER (PARTITION BY name) AS c
                FROM steps WHERE duration_ms IS NOT NULL{window.where})
            WHERE rn = (n * 95 + 99) / 100""",
        window.params,
    )
    return {name: (n, v, c) for name, n, v, c in rows}


def _step_alert(name: str, now: _Step, then: _Step, current: Window, previous: Window, threshold: float) -> Alert:
    """The alert for step `name`, whose figures went from `then` to `now`; `threshold` is latency_rise."""
    (runs, after, calls), (runs_before, before, calls_before) = now, then
    rise = after - before
    by = f"rose {rise / before:.0%}" if before > 0 else "rose"
    more_calls = f"; it makes {calls:.1f} calls per run, {calls_before:.1f} before" if calls > calls_before else ""
    return Alert(
        kind="latency",
        severity=rise_severity(before, after, threshold),
        message=(
            f"p95 of step `{name}` {by} ({ms(before)} → {ms(after)}, {current.label} vs {previous.label}, "
            f"{runs:,} runs){more_calls}"
        ),
        check_next=(
            f"Your own step `{name}` got slower. Its time includes the model calls made inside it: if "
            "the calls' latency and the calls per run held steady (`llmguard report --by feature`), "
            "profile the step's own code and dependencies (retrieval store, tools, validation)."
        ),
        metric="step_p95_latency_ms",
        before=before,
        after=after,
        attribution={
            "basis": "durations of the step's runs (one sample per run, the calls inside it included)",
            "runs": {"before": runs_before, "after": runs},
            "calls_per_run": {"before": calls_before, "after": calls},
        },
        scope={"step": name, "window": current.label, "baseline": previous.label},
    )


def step_latency_alerts(
    ledger_path: Path,
    current: Window,
    previous: Window,
    t: dict[str, float],
    applies: bool = True,
) -> list[Alert]:
    """A step's p95 duration rose (its runs in the steps table, window vs the one before).

    `applies` is False when the alerts are filtered by what a step does not record (a model): then
    no step can be said to belong to the filtered calls. A ledger without a steps table has none.
    """
    if not applies or not has_steps_table(ledger_path):
        return []
    got = run_parallel(
        {"now": lambda: _step_p95s(ledger_path, current), "before": lambda: _step_p95s(ledger_path, previous)}
    )
    found = []
    for name in sorted(set(got["now"]) & set(got["before"])):
        (runs, after, _), (runs_before, before, _) = got["now"][name], got["before"][name]
        if runs < t["min_calls"] or runs_before < t["min_calls"]:
            continue
        if after - before < t["latency_min_ms"] or not rose(before, after, t["latency_rise"]):
            continue
        found.append(_step_alert(name, got["now"][name], got["before"][name], current, previous, t["latency_rise"]))
    return found
