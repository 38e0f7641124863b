"""Actionable alerts from the ledger: each says what changed, what caused it, and what to check next.

A window of calls is compared with the one before it (the last hour with the hour before, a
`--since` range with the same length before it, a run with the previous run), and the newest
prompt version of a feature with the version it replaced. Every alert carries its numbers
(`before`, `after`, `attribution`) so a widget or a script can show or act on them.

Latency attribution: p95 cannot be split into parts, so the rise is attributed on the calls that
p95 describes — those at or above each window's p95. Their mean latency is exactly the sum of
the means of its parts (queue wait + retry delay + model time + other call time), so the parts'
changes add up to the change of that tail mean, which is what `attribution["components_ms"]`
holds and `attribution["shares"]` divides (the shares add up to 1). A call's latency is its own
total: the `llmguard.step`s around it contain it (their time includes the call's), so they are
not added to it. Steps get their own latency alert instead, over the ledger's `steps` table: one
sample per run of a step, however many calls ran inside it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmguard.reporting import report
from llmguard.reporting.report import Filters, ReportError, query

# Thresholds, overridable under [tool.llmguard.alerts] in pyproject.toml or by `alert_thresholds=`.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "window_s": 3600.0,  # compare the last hour with the hour before when no range is given
    "min_calls": 20,  # fewer calls than this in a window: too few to compare, stay silent
    "latency_rise": 0.25,  # p95 must rise by this fraction ...
    "latency_min_ms": 50.0,  # ... and by at least this many milliseconds
    "tokens_rise": 0.20,  # tokens per call of a feature's new prompt version vs the previous one
    "min_version_calls": 10,  # calls each prompt version needs before it is compared
    "prompt_lookback_s": 7 * 86400.0,  # how far back the previous prompt version may be
    "cost_rise": 0.25,  # cost per answered call, window vs previous window
    "retry_rate": 0.05,  # share of calls that needed a retry
    "fallback_rate": 0.05,  # share of calls served by a fallback model
    "timeout_rate": 0.02,  # share of calls that timed out
    "rate_limited_rate": 0.02,  # share of calls the provider answered with a final 429
    "error_rate": 0.02,  # share of calls that ended in another provider error
    "refusal_rate": 0.05,  # share of calls llmguard refused (budget, rate limit, deadline)
    "rate_factor": 2.0,  # ... and at least this many times the previous window's rate
    "capacity_use": 0.8,  # peak RPM/TPM use as a fraction of the configured limit
    "queue_growth": 1.5,  # mean queue depth, second half of the window vs the first half ...
    "queue_min_depth": 1.0,  # ... when at least this many calls wait on average
    "job_age_s": 30.0,  # a call that waited longer than this in the queue
    "budget_horizon_s": 3600.0,  # session/run budgets: alert when they run out within this time
    "budget_rate_window_s": 3600.0,  # spend rate measured over this much recent time
}
KIND_ORDER = ("budget", "capacity", "reliability", "latency", "cost", "tokens")


@dataclass
class Alert:
    """One finding: what happened (`message`), where to look (`check_next`) and its numbers."""

    kind: str  # budget | capacity | reliability | latency | cost | tokens
    severity: str  # warning | critical
    message: str
    check_next: str
    metric: str
    before: float | None = None
    after: float | None = None
    attribution: dict[str, Any] = field(default_factory=dict)
    scope: dict[str, Any] = field(default_factory=dict)
    projected_at: float | None = None  # budget alerts: when the money or quota runs out

    @property
    def change(self) -> float | None:
        """Relative change after/before - 1 (None when there is no earlier value)."""
        if self.before in (None, 0) or self.after is None:
            return None
        return self.after / self.before - 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["change"] = self.change
        data["projected_at_iso"] = report._iso(self.projected_at)
        return data


# ---- thresholds ---------------------------------------------------------------------------------


def load_thresholds(overrides: dict[str, Any] | None = None, start: Path | None = None) -> dict[str, float]:
    """Defaults < `[tool.llmguard.alerts]` of the nearest pyproject.toml < `overrides`."""
    from llmguard.config import ConfigError, find_pyproject

    merged = dict(DEFAULT_THRESHOLDS)
    path = find_pyproject(start)
    sources = [(_pyproject_alerts(path), f"{path} [tool.llmguard.alerts]"), (overrides or {}, "alert_thresholds")]
    for table, source in sources:
        for raw, value in table.items():
            name = raw.replace("-", "_")
            if name not in DEFAULT_THRESHOLDS:
                raise ConfigError(
                    f"llmguard: unknown alert threshold {raw!r} from {source}; known: {', '.join(DEFAULT_THRESHOLDS)}"
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"llmguard: alert threshold {raw}={value!r} from {source} must be a number >= 0")
            merged[name] = float(value)
    return merged


def _pyproject_alerts(path: Path | None) -> dict[str, Any]:
    from llmguard.config import tool_table

    table = tool_table(path, strict=False).get("alerts", {})
    return dict(table) if isinstance(table, dict) else {}


def project_settings(start: Path | None = None) -> Any:
    """The project's Settings for reading the ledger ([tool.llmguard.alerts] is the alerts' own
    table, not a setting). A bad setting does not stop a reader: its default is used, and
    `project_settings_warning` says what was ignored."""
    from llmguard.config import load_settings_for_reading

    settings, warning = load_settings_for_reading(start=start)
    global _settings_warning
    _settings_warning = warning
    return settings


_settings_warning: str | None = None


def project_settings_warning() -> str | None:
    """What the last `project_settings()` ignored, or None."""
    return _settings_warning


# ---- windows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    label: str
    where: str  # " AND ..." conditions
    params: tuple[Any, ...]
    start: float | None
    end: float | None

    @property
    def length(self) -> float | None:
        return None if self.start is None or self.end is None else self.end - self.start


def windows(ledger_path: Path, filters: Filters, window_s: float, now: float) -> tuple[Window, Window]:
    """The window the alerts are about and the one it is compared with."""
    dims = Filters(where=filters.where)
    dim_where, dim_params = dims.sql()
    if filters.run_id is not None:
        first, last = report.span(ledger_path, Filters(run_id=filters.run_id, where=filters.where))
        current = Window(
            f"run {filters.run_id}", f" AND run_id = ?{dim_where}", (filters.run_id, *dim_params), first, last
        )
        previous = None
        if first is not None:
            found = query(ledger_path, "SELECT run_id FROM calls WHERE ts < ? ORDER BY ts DESC LIMIT 1", (first,))
            previous = found[0][0] if found else None
        if previous is None:
            return current, Window("no earlier run", " AND 0", (), None, None)
        p_first, p_last = report.span(ledger_path, Filters(run_id=previous, where=filters.where))
        return current, Window(
            f"run {previous}", f" AND run_id = ?{dim_where}", (previous, *dim_params), p_first, p_last
        )
    end = filters.until if filters.until is not None else now
    start = filters.since if filters.since is not None else end - window_s
    length = end - start
    label = f"the last {_duration(length)}" if filters.until is None else f"{_clock(start)} to {_clock(end)}"
    current = Window(label, f" AND ts >= ? AND ts < ?{dim_where}", (start, end, *dim_params), start, end)
    previous = Window(
        f"the {_duration(length)} before",
        f" AND ts >= ? AND ts < ?{dim_where}",
        (start - length, start, *dim_params),
        start - length,
        start,
    )
    return current, previous


# ---- entry points -------------------------------------------------------------------------------


def alerts(
    ledger_path: Path,
    settings: Any = None,
    alert_thresholds: dict[str, Any] | None = None,
    now: float | None = None,
    **filters: Any,
) -> list[Alert]:
    """Alerts for a ledger; `filters` are those of reports (since, until, last_run, run_id, feature=...)."""
    ledger_path = Path(ledger_path)
    if not report.has_calls_table(ledger_path):
        return []
    now = time.time() if now is None else now
    if settings is None:
        settings = project_settings()
    thresholds = load_thresholds(alert_thresholds)
    made = report.make_filters(ledger_path, now=now, **filters)
    return evaluate(ledger_path, made, settings, thresholds, now)


def describe(filters: Filters, thresholds: dict[str, float]) -> str:
    """What the alerts compare, in words (for "no alerts" lines)."""
    if filters.run_id is not None:
        return f"run {filters.run_id} vs the run before it"
    if filters.since is not None:
        return "this range vs the same length of time before it"
    length = _duration(thresholds["window_s"])
    return f"the last {length} vs the {length} before"


def evaluate(
    ledger_path: Path, filters: Filters, settings: Any, thresholds: dict[str, float], now: float
) -> list[Alert]:
    """Every check, scanned in parallel; critical alerts first."""
    if not report.has_calls_table(ledger_path):
        return []
    current, previous = windows(ledger_path, filters, thresholds["window_s"], now)
    t = thresholds
    jobs = {
        "latency": lambda: latency_alerts(ledger_path, current, previous, t),
        "steps": lambda: step_latency_alerts(ledger_path, current, previous, t, report.steps_apply([], filters)),
        "tokens": lambda: prompt_version_alerts(ledger_path, current, filters, t),
        "cost": lambda: cost_alerts(ledger_path, current, previous, t),
        "reliability": lambda: reliability_alerts(ledger_path, current, previous, t),
        "capacity": lambda: capacity_alerts(ledger_path, current, settings, t),
        "budget": lambda: budget_alerts(ledger_path, settings, t, now, filters),
    }
    found = [a for batch in report.run_parallel(jobs).values() for a in batch]
    found.sort(key=lambda a: (a.severity != "critical", KIND_ORDER.index(a.kind)))
    return found


# ---- latency ------------------------------------------------------------------------------------

_LATENCY_ROWS = "total_ms IS NOT NULL AND status != 'refused'"
_COMPONENT_LABELS = {
    "queue": "queue wait",
    "retry_delay": "retry delay",
    "model": "model time",
    "other": "other call time (failed attempts, connecting, llmguard)",
}


def _p95_and_tail(ledger_path: Path, window: Window) -> dict[str, Any] | None:
    n = query(ledger_path, f"SELECT COUNT(*) FROM calls WHERE {_LATENCY_ROWS}{window.where}", window.params)[0][0]
    if not n:
        return {"calls": 0}
    r = report.rank(n, 95)
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
    got = report.run_parallel(jobs)
    now, before = got["now"], got["before"]
    if now["calls"] < t["min_calls"] or before["calls"] < t["min_calls"]:
        return []
    rise = now["p95"] - before["p95"]
    if rise < t["latency_min_ms"] or now["p95"] < before["p95"] * (1 + t["latency_rise"]):
        return []
    names = list(dict.fromkeys([*before["components"], *now["components"]]))
    deltas = {n: now["components"].get(n, 0.0) - before["components"].get(n, 0.0) for n in names}
    tail_change = now["tail_mean"] - before["tail_mean"]
    shares = {n: d / tail_change for n, d in deltas.items()} if tail_change > 0 else {}
    ranked = sorted(deltas, key=lambda n: deltas[n], reverse=True)
    top = ranked[0]
    parts = [f"{_component_label(n)} {shares[n]:.0%}" for n in ranked[1:3] if shares and deltas[n] > 0]
    lead = f"; {_component_label(top)} accounts for {shares[top]:.0%} of the increase" if shares else ""
    message = (
        f"p95 latency rose {rise / before['p95']:.0%} ({_ms(before['p95'])} → {_ms(now['p95'])}, "
        f"{current.label} vs {previous.label}){lead}" + (f" ({', '.join(parts)})" if parts else "")
    )
    return [
        Alert(
            kind="latency",
            severity="critical" if now["p95"] >= before["p95"] * (1 + 2 * t["latency_rise"]) else "warning",
            message=message,
            check_next=_latency_next(top),
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


def _component_label(name: str) -> str:
    return _COMPONENT_LABELS[name]


def _latency_next(top: str) -> str:
    if top == "queue":
        return (
            "Calls wait for rate-limit capacity: compare RPM/TPM use with the limits (`llmguard report --by "
            "model,hour`), raise the tier or `limits`, move batch work to priority='background', or add a "
            "fallback model."
        )
    if top == "retry_delay":
        return (
            "Calls are retrying: look at provider 429s and errors by model (`llmguard report --by model "
            "--alerts`) and the provider's status page; fall back sooner or lower max_attempts."
        )
    if top == "model":
        return (
            "The provider answers more slowly: check output tokens per call (longer answers take longer) and "
            "the model mix (`llmguard report --by model,prompt_version`); stream answers or use a faster model."
        )
    return (
        "Time outside queue, retry waits and the final attempt grew: failed attempts before a success, slow "
        "connections or timeouts; check errors and timeouts by model (`llmguard report --by model,error_type`)."
    )


def _step_p95s(ledger_path: Path, window: Window) -> dict[str, tuple[int, float, float]]:
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
    if not applies or not report.has_steps_table(ledger_path):
        return []
    got = report.run_parallel(
        {"now": lambda: _step_p95s(ledger_path, current), "before": lambda: _step_p95s(ledger_path, previous)}
    )
    found = []
    for name in sorted(set(got["now"]) & set(got["before"])):
        (runs, after, calls), (runs_before, before, calls_before) = got["now"][name], got["before"][name]
        if runs < t["min_calls"] or runs_before < t["min_calls"]:
            continue
        rise = after - before
        if rise < t["latency_min_ms"] or after < before * (1 + t["latency_rise"]):
            continue
        by = f"rose {rise / before:.0%}" if before > 0 else "rose"
        more_calls = f"; it makes {calls:.1f} calls per run, {calls_before:.1f} before" if calls > calls_before else ""
        found.append(
            Alert(
                kind="latency",
                severity="critical" if after >= before * (1 + 2 * t["latency_rise"]) else "warning",
                message=(
                    f"p95 of step `{name}` {by} ({_ms(before)} → {_ms(after)}, {current.label} vs {previous.label}, "
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
        )
    return found


# ---- tokens per prompt version ------------------------------------------------------------------


def prompt_version_alerts(ledger_path: Path, current: Window, filters: Filters, t: dict[str, float]) -> list[Alert]:
    """Tokens per call of each feature's newest prompt version vs the version before it."""
    end = current.end if current.end is not None else time.time()
    dim_where, dim_params = Filters(where=filters.where).sql()
    start = current.start if current.start is not None else end - t["prompt_lookback_s"]
    rows = query(
        ledger_path,
        f"""SELECT feature, prompt_version, MIN(ts), MAX(ts), COUNT(*), AVG(input_tokens), AVG(output_tokens),
                   AVG(reasoning_tokens), AVG(COALESCE(cost_usd, 0))
            FROM calls WHERE prompt_version IS NOT NULL AND status != 'refused' AND cache_hit = 0
                 AND ts >= ? AND ts <= ? {dim_where}
                 AND COALESCE(feature, '') IN (
                     SELECT DISTINCT COALESCE(feature, '') FROM calls
                     WHERE prompt_version IS NOT NULL AND ts >= ? AND ts <= ? {dim_where})
            GROUP BY feature, prompt_version""",
        (end - t["prompt_lookback_s"], end, *dim_params, start, end, *dim_params),
    )
    by_feature: dict[Any, list[tuple]] = {}
    for row in rows:
        by_feature.setdefault(row[0], []).append(row)
    found = []
    for feature, versions in by_feature.items():
        if len(versions) < 2:
            continue
        versions.sort(key=lambda r: r[2])
        new, old = versions[-1], versions[-2]
        if current.start is not None and new[3] < current.start:
            continue  # the newest version has no calls in this window: nothing new to report
        if new[4] < t["min_version_calls"] or old[4] < t["min_version_calls"]:
            continue
        before, after = old[5] + old[6], new[5] + new[6]
        if before <= 0 or after < before * (1 + t["tokens_rise"]):
            continue
        d_in, d_out = new[5] - old[5], new[6] - old[6]
        change = after - before
        where = f"feature `{feature}`" if feature is not None else "calls without a feature"
        found.append(
            Alert(
                kind="tokens",
                severity="critical" if after >= before * (1 + 2 * t["tokens_rise"]) else "warning",
                message=(
                    f"tokens per call for {where} rose {change / before:.0%} after prompt_version `{new[1]}` "
                    f"({before:,.0f} → {after:,.0f} per call vs `{old[1]}`; input {d_in:+,.0f}, output {d_out:+,.0f}; "
                    f"cost per call {_usd(old[8])} → {_usd(new[8])})"
                ),
                check_next=(
                    f"Diff prompt `{new[1]}` against `{old[1]}`: "
                    + (
                        "the prompt itself grew (more instructions, examples or retrieved context); trim it or cap the "
                        "context it includes."
                        if d_in >= d_out
                        else "the answers got longer; ask for shorter output or lower max_tokens for this feature."
                    )
                    + " Compare them: `llmguard report --by prompt_version"
                    + (f" --where feature={feature}`." if feature is not None else "`.")
                ),
                metric="tokens_per_call",
                before=before,
                after=after,
                attribution={
                    "input_tokens_per_call": d_in,
                    "output_tokens_per_call": d_out,
                    "reasoning_tokens_per_call": new[7] - old[7],
                    "shares": {"input": d_in / change, "output": d_out / change},
                    "cost_per_call": {"before": old[8], "after": new[8]},
                    "calls": {"before": old[4], "after": new[4]},
                },
                scope={"feature": feature, "prompt_version": new[1], "previous_prompt_version": old[1]},
            )
        )
    return found


# ---- cost per call ------------------------------------------------------------------------------


def _cost_by_model(ledger_path: Path, window: Window) -> dict[str, tuple[int, float, float, float]]:
    rows = query(
        ledger_path,
        f"""SELECT model, COUNT(*), SUM(COALESCE(cost_usd, 0)), AVG(input_tokens), AVG(output_tokens) FROM calls
            WHERE status != 'refused' AND cache_hit = 0 AND cost_usd IS NOT NULL{window.where} GROUP BY model""",
        window.params,
    )
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def cost_alerts(ledger_path: Path, current: Window, previous: Window, t: dict[str, float]) -> list[Alert]:
    """Cost per answered call rose: split into model mix and per-model cost changes (they add up)."""
    now, before = _cost_by_model(ledger_path, current), _cost_by_model(ledger_path, previous)
    n_now, n_before = sum(v[0] for v in now.values()), sum(v[0] for v in before.values())
    if n_now < t["min_calls"] or n_before < t["min_calls"]:
        return []
    cpc_now = sum(v[1] for v in now.values()) / n_now
    cpc_before = sum(v[1] for v in before.values()) / n_before
    if cpc_before <= 0 or cpc_now < cpc_before * (1 + t["cost_rise"]):
        return []
    # cost/call = sum_m share_m * c_m; change = sum (s'_m - s_m) c_m  [mix]  +  sum s'_m (c'_m - c_m)  [per model]
    mix = 0.0
    within: dict[str, float] = {}
    for model in set(now) | set(before):
        s_now = now[model][0] / n_now if model in now else 0.0
        s_before = before[model][0] / n_before if model in before else 0.0
        c_now = now[model][1] / now[model][0] if model in now else None
        c_before = before[model][1] / before[model][0] if model in before else c_now
        mix += (s_now - s_before) * (c_before or 0.0)
        if c_now is not None:
            within[model] = s_now * (c_now - (c_before or 0.0))
    change = cpc_now - cpc_before
    parts = {"model mix": mix, **{f"within {m}": v for m, v in within.items()}}
    shares = {k: v / change for k, v in parts.items()}
    top = max(parts, key=lambda k: parts[k])
    if top == "model mix":
        moved = sorted(now, key=lambda m: now[m][0] / n_now - (before[m][0] / n_before if m in before else 0.0))
        gainer = moved[-1]
        detail = (
            f"traffic shifted toward pricier models ({shares[top]:.0%} of the rise; `{gainer}` "
            f"{(before[gainer][0] / n_before if gainer in before else 0.0):.0%} → {now[gainer][0] / n_now:.0%} "
            "of calls)"
        )
        check = (
            "See which models gained calls (`llmguard report --by model`): fallbacks or routes sending traffic to "
            "a pricier model, or a feature that moved to it."
        )
    else:
        model = top[len("within ") :]
        old = before.get(model)
        tokens = (
            f"; input tokens/call {old[2]:,.0f} → {now[model][2]:,.0f}, output {old[3]:,.0f} → {now[model][3]:,.0f}"
            if old
            else ""
        )
        detail = f"`{model}` calls got pricier ({shares[top]:.0%} of the rise{tokens})"
        check = (
            f"Prompts or answers got longer on `{model}`: compare prompt versions and features "
            "(`llmguard report --by prompt_version,feature`), cap max_tokens, check cached-input use."
        )
    return [
        Alert(
            kind="cost",
            severity="critical" if cpc_now >= cpc_before * (1 + 2 * t["cost_rise"]) else "warning",
            message=(
                f"cost per call rose {change / cpc_before:.0%} ({_usd(cpc_before)} → {_usd(cpc_now)}, "
                f"{current.label} vs {previous.label}): {detail}"
            ),
            check_next=check,
            metric="cost_per_call",
            before=cpc_before,
            after=cpc_now,
            attribution={"components_usd": parts, "shares": shares, "calls": {"before": n_before, "after": n_now}},
            scope={"window": current.label, "baseline": previous.label},
        )
    ]


# ---- reliability --------------------------------------------------------------------------------

_RELIABILITY = {  # kind -> (SQL condition, threshold key, denominator: provider calls or all calls)
    "retry": ("retry_count > 0", "retry_rate", "provider"),
    "fallback": ("fallback_used", "fallback_rate", "provider"),
    "timeout": ("error_type = 'timeout'", "timeout_rate", "provider"),
    "rate_limited": ("error_type = 'rate_limited'", "rate_limited_rate", "provider"),
    "error": (
        "status = 'error' AND COALESCE(error_type, '') NOT IN ('timeout', 'rate_limited')",
        "error_rate",
        "provider",
    ),
    "refusal": ("status = 'refused'", "refusal_rate", "all"),
}
_MODEL = "COALESCE(NULLIF(requested_model, ''), model)"


def _reliability_counts(ledger_path: Path, window: Window) -> list[tuple]:
    conds = ", ".join(f"SUM({cond})" for cond, _, _ in _RELIABILITY.values())
    return query(
        ledger_path,
        f"""SELECT {_MODEL}, COUNT(*), SUM(status = 'refused'), SUM(retry_count > 0 AND status = 'ok'), {conds}
            FROM calls WHERE cache_hit = 0 AND dedup_hit = 0{window.where} GROUP BY 1""",
        window.params,
    )


def reliability_alerts(ledger_path: Path, current: Window, previous: Window, t: dict[str, float]) -> list[Alert]:
    """Retries, fallbacks, timeouts, 429s, errors and refusals above their usual rate, attributed by model."""
    now_rows, before_rows = _reliability_counts(ledger_path, current), _reliability_counts(ledger_path, previous)

    def totals(rows: list[tuple]) -> tuple[int, int, int, list[int]]:
        calls = sum(r[1] for r in rows)
        refused = sum(r[2] or 0 for r in rows)
        recovered = sum(r[3] or 0 for r in rows)
        return calls, refused, recovered, [sum(r[4 + i] or 0 for r in rows) for i in range(len(_RELIABILITY))]

    calls, refused, recovered, counts = totals(now_rows)
    b_calls, b_refused, _, b_counts = totals(before_rows)
    found = []
    for i, (kind, (_, key, denominator)) in enumerate(_RELIABILITY.items()):
        n = calls if denominator == "all" else calls - refused
        b_n = b_calls if denominator == "all" else b_calls - b_refused
        if n < t["min_calls"] or not counts[i]:
            continue
        rate = counts[i] / n
        usual = b_counts[i] / b_n if b_n >= t["min_calls"] else None
        if rate < t[key] or (usual is not None and rate < usual * t["rate_factor"]):
            continue
        by_model = {r[0]: (r[4 + i] or 0) for r in now_rows if r[4 + i]}
        shares = {m: c / counts[i] for m, c in sorted(by_model.items(), key=lambda kv: -kv[1])}
        model_rates = {
            r[0]: (r[4 + i] or 0) / (r[1] if denominator == "all" else max(1, r[1] - (r[2] or 0)))
            for r in now_rows
            if r[4 + i]
        }
        top = next(iter(shares))
        details = {}
        if kind in ("error", "refusal"):
            details = _error_types(ledger_path, current, _RELIABILITY[kind][0])
        found.append(
            Alert(
                kind="reliability",
                severity="critical" if rate >= 4 * t[key] else "warning",
                message=_reliability_message(
                    kind,
                    rate,
                    usual,
                    counts[i],
                    n,
                    top,
                    model_rates[top],
                    shares[top],
                    recovered,
                    details,
                    current.label,
                ),
                check_next=_reliability_next(kind, top),
                metric=f"{kind}_rate",
                before=usual,
                after=rate,
                attribution={
                    "by_model_share": shares,
                    "by_model_rate": model_rates,
                    "calls": n,
                    "affected": counts[i],
                    **({"by_error_type": details} if details else {}),
                    **({"retried_then_ok": recovered} if kind == "retry" else {}),
                },
                scope={"window": current.label, "baseline": previous.label},
            )
        )
    return found


def _error_types(ledger_path: Path, window: Window, cond: str) -> dict[str, int]:
    rows = query(
        ledger_path,
        f"""SELECT COALESCE(error_type, 'unknown'), COUNT(*) FROM calls
            WHERE cache_hit = 0 AND dedup_hit = 0 AND {cond}{window.where} GROUP BY 1 ORDER BY 2 DESC""",
        window.params,
    )
    return dict(rows)


def _reliability_message(
    kind: str,
    rate: float,
    usual: float | None,
    count: int,
    n: int,
    top: str,
    top_rate: float,
    top_share: float,
    recovered: int,
    details: dict[str, int],
    label: str,
) -> str:
    was = f"up from {usual:.0%}" if usual is not None else "no earlier window to compare"
    where = f"`{top}`: {top_rate:.0%} of its calls, {top_share:.0%} of all"
    if kind == "retry":
        hidden = f"; {recovered} of the {count} then succeeded" if recovered else ""
        return (
            f"retries are hiding provider instability: {rate:.0%} of calls needed a retry, {was} "
            f"({label}; {where}{hidden})"
        )
    if kind == "fallback":
        return (
            f"fallbacks are used more than usual: {rate:.0%} of calls were served by a fallback model, {was} ({where})"
        )
    if kind == "timeout":
        return f"{rate:.0%} of calls timed out, {was} ({label}; {where})"
    if kind == "rate_limited":
        return f"the provider refused {rate:.0%} of calls with 429 after llmguard's retries, {was} ({where})"
    kinds = ", ".join(f"{k}: {v}" for k, v in list(details.items())[:3])
    if kind == "error":
        return f"provider errors on {rate:.0%} of calls, {was} ({kinds}; {where})"
    return f"llmguard refused {rate:.0%} of calls ({count} of {n}), {was} ({kinds}; {where})"


def _reliability_next(kind: str, model: str) -> str:
    return {
        "retry": (
            f"Check `{model}`'s error mix and the provider's status page; see `llmguard report --by "
            "model,hour`. If it persists, fall back sooner (lower max_attempts) or route to another model."
        ),
        "fallback": (
            f"The primary `{model}` is failing or at its limit: look at its errors, 429s and queue wait "
            "(`llmguard report --by requested_model,error_type`)."
        ),
        "timeout": (
            f"Compare timeout_s with `{model}`'s p99 latency (`llmguard report --by model`); look for long "
            "outputs (max_tokens) and hung streams; stream long answers."
        ),
        "rate_limited": (
            f"llmguard's limits for `{model}` are above your real tier: set `limits` to the provider's "
            "RPM/TPM so calls queue instead of failing, and keep learn_limits on."
        ),
        "error": (
            f"Read the error messages for `{model}` (`llmguard report --format jsonl --since 1h`); provider "
            "outages point to fallbacks, 4xx errors point to the request code."
        ),
        "refusal": (
            "Budget refusals: raise budget_usd/quotas or lower max_tokens; rate-limit refusals: raise "
            "max_wait_s, add fallbacks or tag batch work priority='background'."
        ),
    }[kind]


# ---- capacity -----------------------------------------------------------------------------------

_PROVIDER_CALLS = "cache_hit = 0 AND dedup_hit = 0 AND status != 'refused'"


def capacity_alerts(ledger_path: Path, current: Window, settings: Any, t: dict[str, float]) -> list[Alert]:
    """RPM/TPM peaks near the configured limits, a queue that grows, calls that waited too long."""
    return [
        *_limit_use(ledger_path, current, settings, t),
        *_queue_growth(ledger_path, current, t),
        *_job_age(ledger_path, current, t),
    ]


def _limit_use(ledger_path: Path, current: Window, settings: Any, t: dict[str, float]) -> list[Alert]:
    limits = dict(getattr(settings, "limits", None) or {})
    if not limits:
        return []
    size = float(getattr(settings, "window_s", 60.0) or 60.0)
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
    found = []
    for (model, unit), (used, bucket) in sorted(peaks.items()):
        limit = limits[model].get(unit)
        if not limit or used < t["capacity_use"] * limit:
            continue
        start = bucket * size
        shares = _shares(
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
                    f"{what} in the {_duration(size)} from {_clock(start)}"
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


def _shares(ledger_path: Path, dim: str, where: str, params: tuple, amount: str) -> dict[Any, float]:
    rows = query(
        ledger_path, f"SELECT {report.DIMENSIONS[dim]}, SUM({amount}) FROM calls WHERE {where} GROUP BY 1", params
    )
    total = sum(r[1] or 0 for r in rows)
    return {r[0]: (r[1] or 0) / total for r in sorted(rows, key=lambda r: -(r[1] or 0))} if total else {}


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
    shares = _shares(
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
                f"(first vs second half of {current.label}), mean wait {_ms(wait1)} → {_ms(wait2)}"
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
                f"the oldest job waited {_ms(oldest)} in the queue (threshold {_ms(limit_ms)}): {over} call(s) "
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


# ---- budget -------------------------------------------------------------------------------------


def budget_alerts(ledger_path: Path, settings: Any, t: dict[str, float], now: float, filters: Filters) -> list[Alert]:
    """Spend rate that will exhaust the session budget or a quota before its period ends."""
    found = []
    budget = getattr(settings, "budget_usd", None)
    if budget is not None:
        run = filters.run_id or report.last_run_id(ledger_path)
        if run is not None:
            alert = _project(
                ledger_path,
                "session budget",
                "run_id = ?",
                (run,),
                "usd",
                float(budget),
                None,
                t,
                now,
                {"run_id": run},
                ("feature", "tenant"),
            )
            found += [alert] if alert else []
    for key, units in (getattr(settings, "quotas", None) or {}).items():
        kind, _, value = key.partition(":")
        if kind not in ("tenant", "user", "feature") or not value:
            continue
        column = report.DIMENSIONS[kind]
        for unit, limit in units.items():
            amount = "usd" if unit.startswith("usd") else "tokens"
            name = f"{kind} `{value}` {unit} quota"
            if unit.endswith("per_day"):
                day_start = now - now % 86400
                alert = _project(
                    ledger_path,
                    name,
                    f"{column} = ? AND ts >= ?",
                    (value, day_start),
                    amount,
                    float(limit),
                    day_start + 86400,
                    t,
                    now,
                    {kind: value, "unit": unit},
                    ("feature", "model") if kind != "feature" else ("tenant", "model"),
                )
            else:
                found_run = query(
                    ledger_path, f"SELECT run_id FROM calls WHERE {column} = ? ORDER BY ts DESC LIMIT 1", (value,)
                )
                if not found_run:
                    continue
                alert = _project(
                    ledger_path,
                    name,
                    f"{column} = ? AND run_id = ?",
                    (value, found_run[0][0]),
                    amount,
                    float(limit),
                    None,
                    t,
                    now,
                    {kind: value, "unit": unit, "run_id": found_run[0][0]},
                    ("feature", "model") if kind != "feature" else ("tenant", "model"),
                )
            found += [alert] if alert else []
    return found


def _project(
    ledger_path: Path,
    name: str,
    where: str,
    params: tuple,
    amount: str,
    limit: float,
    period_end: float | None,
    t: dict[str, float],
    now: float,
    scope: dict[str, Any],
    drivers: tuple[str, str],
) -> Alert | None:
    """Spent so far + the recent rate -> when the limit is reached; an alert if that is too soon."""
    column = "COALESCE(cost_usd, 0)" if amount == "usd" else "input_tokens + output_tokens"
    recent_from = now - t["budget_rate_window_s"]
    spent, recent, first, refused = query(
        ledger_path,
        f"""SELECT SUM({column}), SUM(CASE WHEN ts >= ? THEN {column} END), MIN(ts),
                   SUM(status = 'refused' AND error_type = 'budget')
            FROM calls WHERE {where} AND ts <= ?""",
        (recent_from, *params, now),
    )[0]
    spent, recent = spent or 0.0, recent or 0.0
    fmt = _usd if amount == "usd" else (lambda v: f"{v:,.0f} tokens")
    if spent >= limit:
        return Alert(
            kind="budget",
            severity="critical",
            message=f"{name} is used up: {fmt(spent)} of {fmt(limit)} spent; {refused or 0} call(s) refused so far",
            check_next=_budget_next(name, scope, exhausted=True),
            metric=f"{amount}_spent",
            before=limit,
            after=spent,
            attribution={"spent": spent, "limit": limit, "rate_per_hour": None},
            scope=scope,
            projected_at=now,
        )
    if first is None or recent <= 0:
        return None
    elapsed = max(60.0, now - max(recent_from, first))
    rate = recent / elapsed
    at = now + (limit - spent) / rate
    if period_end is not None:
        if at >= period_end:
            return None
        when = f"{_duration(period_end - at)} before the day ends (UTC)"
    else:
        if at - now > t["budget_horizon_s"]:
            return None
        when = f"in {_duration(at - now)}"
    shares = _shares(ledger_path, drivers[0], f"{where} AND ts >= ? AND ts <= ?", (*params, recent_from, now), column)
    top = next(iter(shares), None)
    return Alert(
        kind="budget",
        severity="critical" if at - now <= 3600 else "warning",
        message=(
            f"{name} ({fmt(limit)}) will run out at {_clock(at)}, {when}: {fmt(spent)} spent, "
            f"{fmt(rate * 3600)}/h over the last {_duration(elapsed)}"
            + (f" ({drivers[0]} `{top}`: {shares[top]:.0%} of that)" if top is not None else "")
        ),
        check_next=_budget_next(name, scope),
        metric=f"{amount}_spent",
        before=limit,
        after=spent,
        attribution={"spent": spent, "limit": limit, "rate_per_hour": rate * 3600, f"by_{drivers[0]}_share": shares},
        scope=scope,
        projected_at=at,
    )


def _budget_next(name: str, scope: dict[str, Any], exhausted: bool = False) -> str:
    if name == "session budget":
        fix = "raise it (llmguard.install(budget_usd=...) or `%llmguard budget`)"
    else:
        kind = next(k for k in ("tenant", "user", "feature") if k in scope)
        fix = f"raise quotas['{kind}:{scope[kind]}']['{scope['unit']}']"
    when = "Its calls are being refused" if exhausted else "After that its calls are refused"
    return (
        f"{when}: {fix}, move its biggest feature to a cheaper model, or cache repeated "
        "prompts. See what drives the spend: `llmguard report --since 1h --by feature,model`."
    )


# ---- formatting ---------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


def _usd(value: float) -> str:
    from llmguard.money import usd

    return usd(value)


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        hours, minutes = divmod(int(seconds // 60), 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds / 86400:.1f} days"


def _clock(ts: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(ts))


__all__ = ["Alert", "DEFAULT_THRESHOLDS", "ReportError", "alerts", "evaluate", "load_thresholds", "project_settings"]
