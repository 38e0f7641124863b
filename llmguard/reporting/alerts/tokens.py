"""Token alerts: tokens per call of a feature's newest prompt version vs the version it replaced."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from llmguard.reporting.alerts.alert import Alert, rise_severity, rose
from llmguard.reporting.alerts.format import usd
from llmguard.reporting.alerts.window import Window
from llmguard.reporting.db import query
from llmguard.reporting.filters import Filters

# A row per (feature, prompt_version): feature, version, first ts, last ts, calls, mean input,
# output and reasoning tokens, mean cost.
_Version = tuple[Any, ...]


def _versions(ledger_path: Path, current: Window, filters: Filters, t: dict[str, float]) -> dict[Any, list[_Version]]:
    """{feature: its prompt versions in the lookback} for the features that have one in the window."""
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
    by_feature: dict[Any, list[_Version]] = {}
    for row in rows:
        by_feature.setdefault(row[0], []).append(row)
    return by_feature


def _alert(feature: Any, new: _Version, old: _Version, threshold: float) -> Alert:
    """The alert for `feature`, whose tokens per call rose from version `old` to `new`."""
    before, after = old[5] + old[6], new[5] + new[6]
    d_in, d_out = new[5] - old[5], new[6] - old[6]
    change = after - before
    where = f"feature `{feature}`" if feature is not None else "calls without a feature"
    cause = (
        "the prompt itself grew (more instructions, examples or retrieved context); trim it or cap the "
        "context it includes."
        if d_in >= d_out
        else "the answers got longer; ask for shorter output or lower max_tokens for this feature."
    )
    return Alert(
        kind="tokens",
        severity=rise_severity(before, after, threshold),
        message=(
            f"tokens per call for {where} rose {change / before:.0%} after prompt_version `{new[1]}` "
            f"({before:,.0f} → {after:,.0f} per call vs `{old[1]}`; input {d_in:+,.0f}, output {d_out:+,.0f}; "
            f"cost per call {usd(old[8])} → {usd(new[8])})"
        ),
        check_next=(
            f"Diff prompt `{new[1]}` against `{old[1]}`: "
            + cause
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


def prompt_version_alerts(ledger_path: Path, current: Window, filters: Filters, t: dict[str, float]) -> list[Alert]:
    """Tokens per call of each feature's newest prompt version vs the version before it."""
    found = []
    for feature, versions in _versions(ledger_path, current, filters, t).items():
        if len(versions) < 2:
            continue
        versions.sort(key=lambda r: r[2])
        new, old = versions[-1], versions[-2]
        if current.start is not None and new[3] < current.start:
            continue  # the newest version has no calls in this window: nothing new to report
        if new[4] < t["min_version_calls"] or old[4] < t["min_version_calls"]:
            continue
        before, after = old[5] + old[6], new[5] + new[6]
        if before <= 0 or not rose(before, after, t["tokens_rise"]):
            continue
        found.append(_alert(feature, new, old, t["tokens_rise"]))
    return found
