"""Budget alerts: a spend rate that will use up the session budget or a quota before its period ends."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmguard.reporting.alerts.alert import Alert
from llmguard.reporting.alerts.attribution import shares as shares_of
from llmguard.reporting.alerts.format import clock, duration, usd
from llmguard.reporting.db import last_run_id, query
from llmguard.reporting.filters import DIMENSIONS, Filters


@dataclass(frozen=True)
class Allowance:
    """One budget or quota: the calls that spend it, how much they may, and by when."""

    name: str  # "session budget", "tenant `acme` usd_per_day quota"
    where: str  # SQL condition on calls
    params: tuple[Any, ...]
    amount: str  # usd | tokens
    limit: float
    period_end: float | None  # quotas per day: the end of the UTC day; None for a run
    scope: dict[str, Any]
    drivers: tuple[str, str]  # dimensions that drive the spend, the first one shown


def _allowances(ledger_path: Path, settings: Any, filters: Filters, now: float) -> Iterator[Allowance]:
    """The session budget (for the run in question) and every tenant, user and feature quota."""
    budget = getattr(settings, "budget_usd", None)
    if budget is not None:
        run = filters.run_id or last_run_id(ledger_path)
        if run is not None:
            yield Allowance(
                "session budget",
                "run_id = ?",
                (run,),
                "usd",
                float(budget),
                None,
                {"run_id": run},
                ("feature", "tenant"),
            )
    for key, units in (getattr(settings, "quotas", None) or {}).items():
        kind, _, value = key.partition(":")
        if kind not in ("tenant", "user", "feature") or not value:
            continue
        column = DIMENSIONS[kind]
        drivers = ("feature", "model") if kind != "feature" else ("tenant", "model")
        for unit, limit in units.items():
            amount = "usd" if unit.startswith("usd") else "tokens"
            name = f"{kind} `{value}` {unit} quota"
            if unit.endswith("per_day"):
                day_start = now - now % 86400
                where, params = f"{column} = ? AND ts >= ?", (value, day_start)
                yield Allowance(
                    name, where, params, amount, float(limit), day_start + 86400, {kind: value, "unit": unit}, drivers
                )
                continue
            found_run = query(
                ledger_path, f"SELECT run_id FROM calls WHERE {column} = ? ORDER BY ts DESC LIMIT 1", (value,)
            )
            if not found_run:
                continue
            run = found_run[0][0]
            scope = {kind: value, "unit": unit, "run_id": run}
            yield Allowance(
                name, f"{column} = ? AND run_id = ?", (value, run), amount, float(limit), None, scope, drivers
            )


def budget_alerts(ledger_path: Path, settings: Any, t: dict[str, float], now: float, filters: Filters) -> list[Alert]:
    """Spend rate that will exhaust the session budget or a quota before its period ends."""
    found = []
    for allowance in _allowances(ledger_path, settings, filters, now):
        alert = _project(ledger_path, allowance, t, now)
        found += [alert] if alert else []
    return found


def _project(ledger_path: Path, a: Allowance, t: dict[str, float], now: float) -> Alert | None:
    """Spent so far + the recent rate -> when the limit is reached; an alert if that is too soon."""
    column = "COALESCE(cost_usd, 0)" if a.amount == "usd" else "input_tokens + output_tokens"
    recent_from = now - t["budget_rate_window_s"]
    spent, recent, first, refused = query(
        ledger_path,
        f"""SELECT SUM({column}), SUM(CASE WHEN ts >= ? THEN {column} END), MIN(ts),
                   SUM(status = 'refused' AND error_type = 'budget')
            FROM calls WHERE {a.where} AND ts <= ?""",
        (recent_from, *a.params, now),
    )[0]
    spent, recent = spent or 0.0, recent or 0.0
    fmt = usd if a.amount == "usd" else (lambda v: f"{v:,.0f} tokens")
    if spent >= a.limit:
        return Alert(
            kind="budget",
            severity="critical",
            message=f"{a.name} is used up: {fmt(spent)} of {fmt(a.limit)} spent; {refused or 0} call(s) refused so far",
            check_next=_budget_next(a.name, a.scope, exhausted=True),
            metric=f"{a.amount}_spent",
            before=a.limit,
            after=spent,
            attribution={"spent": spent, "limit": a.limit, "rate_per_hour": None},
            scope=a.scope,
            projected_at=now,
        )
    if first is None or recent <= 0:
        return None
    elapsed = max(60.0, now - max(recent_from, first))
    rate = recent / elapsed
    at = now + (a.limit - spent) / rate
    if a.period_end is not None:
        if at >= a.period_end:
            return None
        when = f"{duration(a.period_end - at)} before the day ends (UTC)"
    else:
        if at - now > t["budget_horizon_s"]:
            return None
        when = f"in {duration(at - now)}"
    by = a.drivers[0]
    shares = shares_of(ledger_path, by, f"{a.where} AND ts >= ? AND ts <= ?", (*a.params, recent_from, now), column)
    top = next(iter(shares), None)
    return Alert(
        kind="budget",
        severity="critical" if at - now <= 3600 else "warning",
        message=(
            f"{a.name} ({fmt(a.limit)}) will run out at {clock(at)}, {when}: {fmt(spent)} spent, "
            f"{fmt(rate * 3600)}/h over the last {duration(elapsed)}"
            + (f" ({by} `{top}`: {shares[top]:.0%} of that)" if top is not None else "")
        ),
        check_next=_budget_next(a.name, a.scope),
        metric=f"{a.amount}_spent",
        before=a.limit,
        after=spent,
        attribution={"spent": spent, "limit": a.limit, "rate_per_hour": rate * 3600, f"by_{by}_share": shares},
        scope=a.scope,
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
