"""Cost alerts: cost per answered call rose, split into model mix and per-model changes (they add up).

cost/call = sum_m share_m * c_m, so its change = sum (s'_m - s_m) c_m [mix] + sum s'_m (c'_m - c_m) [per model].
"""

from __future__ import annotations

from pathlib import Path

from llmguard.reporting.alerts.alert import Alert, rise_severity, rose
from llmguard.reporting.alerts.format import usd
from llmguard.reporting.alerts.window import Window
from llmguard.reporting.db import query

# model -> (calls, cost, mean input tokens, mean output tokens)
_ByModel = dict[str, tuple[int, float, float, float]]


def _cost_by_model(ledger_path: Path, window: Window) -> _ByModel:
    rows = query(
        ledger_path,
        f"""SELECT model, COUNT(*), SUM(COALESCE(cost_usd, 0)), AVG(input_tokens), AVG(output_tokens) FROM calls
            WHERE status != 'refused' AND cache_hit = 0 AND cost_usd IS NOT NULL{window.where} GROUP BY model""",
        window.params,
    )
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def _parts(now: _ByModel, before: _ByModel) -> dict[str, float]:
    """{"model mix": ..., "within <model>": ...}: the change of cost per call, split (see the module)."""
    n_now, n_before = sum(v[0] for v in now.values()), sum(v[0] for v in before.values())
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
    return {"model mix": mix, **{f"within {m}": v for m, v in within.items()}}


def _explain(top: str, share: float, now: _ByModel, before: _ByModel) -> tuple[str, str]:
    """(what drove the rise, what to check next) for the biggest part `top`."""
    n_now, n_before = sum(v[0] for v in now.values()), sum(v[0] for v in before.values())
    if top == "model mix":
        moved = sorted(now, key=lambda m: now[m][0] / n_now - (before[m][0] / n_before if m in before else 0.0))
        gainer = moved[-1]
        detail = (
            f"traffic shifted toward pricier models ({share:.0%} of the rise; `{gainer}` "
            f"{(before[gainer][0] / n_before if gainer in before else 0.0):.0%} → {now[gainer][0] / n_now:.0%} "
            "of calls)"
        )
        return detail, (
            "See which models gained calls (`llmguard report --by model`): fallbacks or routes sending traffic to "
            "a pricier model, or a feature that moved to it."
        )
    model = top[len("within ") :]
    old = before.get(model)
    tokens = (
        f"; input tokens/call {old[2]:,.0f} → {now[model][2]:,.0f}, output {old[3]:,.0f} → {now[model][3]:,.0f}"
        if old
        else ""
    )
    return f"`{model}` calls got pricier ({share:.0%} of the rise{tokens})", (
        f"Prompts or answers got longer on `{model}`: compare prompt versions and features "
        "(`llmguard report --by prompt_version,feature`), cap max_tokens, check cached-input use."
    )


def cost_alerts(ledger_path: Path, current: Window, previous: Window, t: dict[str, float]) -> list[Alert]:
    """Cost per answered call rose: split into model mix and per-model cost changes (they add up)."""
    now, before = _cost_by_model(ledger_path, current), _cost_by_model(ledger_path, previous)
    n_now, n_before = sum(v[0] for v in now.values()), sum(v[0] for v in before.values())
    if n_now < t["min_calls"] or n_before < t["min_calls"]:
        return []
    cpc_now = sum(v[1] for v in now.values()) / n_now
    cpc_before = sum(v[1] for v in before.values()) / n_before
    if cpc_before <= 0 or not rose(cpc_before, cpc_now, t["cost_rise"]):
        return []
    change = cpc_now - cpc_before
    parts = _parts(now, before)
    shares = {k: v / change for k, v in parts.items()}
    top = max(parts, key=lambda k: parts[k])
    detail, check = _explain(top, shares[top], now, before)
    return [
        Alert(
            kind="cost",
            severity=rise_severity(cpc_before, cpc_now, t["cost_rise"]),
            message=(
                f"cost per call rose {change / cpc_before:.0%} ({usd(cpc_before)} → {usd(cpc_now)}, "
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
