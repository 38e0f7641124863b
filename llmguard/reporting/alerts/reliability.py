"""Reliability alerts: retries, fallbacks, timeouts, 429s, errors and refusals above their usual rate.

Each is attributed by model (the one asked for: a fallback's calls count for the model they fell
back from). Provider-side rates are over the calls sent to a provider; refusals over all calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmguard.reporting.alerts.alert import Alert
from llmguard.reporting.alerts.window import Window
from llmguard.reporting.db import query

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


@dataclass(frozen=True)
class _Finding:
    """One kind's rate in the window, against its usual rate, and where it concentrates."""

    kind: str
    rate: float
    usual: float | None  # the previous window's rate (None: too few calls there)
    count: int  # calls affected
    n: int  # calls the rate is over
    top: str  # the model with most of them
    top_rate: float
    top_share: float
    recovered: int  # calls that retried, then succeeded
    details: dict[str, int]  # errors and refusals: by error type
    label: str  # the window


@dataclass(frozen=True)
class _Totals:
    calls: int
    refused: int
    recovered: int
    counts: list[int]  # per kind, in _RELIABILITY order

    @classmethod
    def of(cls, rows: list[tuple[Any, ...]]) -> _Totals:
        return cls(
            sum(r[1] for r in rows),
            sum(r[2] or 0 for r in rows),
            sum(r[3] or 0 for r in rows),
            [sum(r[4 + i] or 0 for r in rows) for i in range(len(_RELIABILITY))],
        )

    def over(self, denominator: str) -> int:
        """The calls a rate is over: all of them, or those a provider answered."""
        return self.calls if denominator == "all" else self.calls - self.refused


def _reliability_counts(ledger_path: Path, window: Window) -> list[tuple[Any, ...]]:
    conds = ", ".join(f"SUM({cond})" for cond, _, _ in _RELIABILITY.values())
    return query(
        ledger_path,
        f"""SELECT {_MODEL}, COUNT(*), SUM(status = 'refused'), SUM(retry_count > 0 AND status = 'ok'), {conds}
            FROM calls WHERE cache_hit = 0 AND dedup_hit = 0{window.where} GROUP BY 1""",
        window.params,
    )


def reliability_alerts(ledger_path: Path, current: Window, previous: Window, t: dict[str, float]) -> list[Alert]:
    """Retries, fallbacks, timeouts, 429s, errors and refusals above their usual rate, attributed by model."""
    now_rows = _reliability_counts(ledger_path, current)
    now, then = _Totals.of(now_rows), _Totals.of(_reliability_counts(ledger_path, previous))
    found = []
    for i, (kind, (cond, key, denominator)) in enumerate(_RELIABILITY.items()):
        n, b_n, count = now.over(denominator), then.over(denominator), now.counts[i]
        if n < t["min_calls"] or not count:
            continue
        rate = count / n
        usual = then.counts[i] / b_n if b_n >= t["min_calls"] else None
        if rate < t[key] or (usual is not None and rate < usual * t["rate_factor"]):
            continue
        by_model = {r[0]: (r[4 + i] or 0) for r in now_rows if r[4 + i]}
        shares = {m: c / count for m, c in sorted(by_model.items(), key=lambda kv: -kv[1])}
        model_rates = {
            r[0]: (r[4 + i] or 0) / (r[1] if denominator == "all" else max(1, r[1] - (r[2] or 0)))
            for r in now_rows
            if r[4 + i]
        }
        top = next(iter(shares))
        details = _error_types(ledger_path, current, cond) if kind in ("error", "refusal") else {}
        finding = _Finding(
            kind, rate, usual, count, n, top, model_rates[top], shares[top], now.recovered, details, current.label
        )
        found.append(
            Alert(
                kind="reliability",
                severity="critical" if rate >= 4 * t[key] else "warning",
                message=_message(finding),
                check_next=_next(kind, top),
                metric=f"{kind}_rate",
                before=usual,
                after=rate,
                attribution={
                    "by_model_share": shares,
                    "by_model_rate": model_rates,
                    "calls": n,
                    "affected": count,
                    **({"by_error_type": details} if details else {}),
                    **({"retried_then_ok": now.recovered} if kind == "retry" else {}),
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


def _message(f: _Finding) -> str:
    was = f"up from {f.usual:.0%}" if f.usual is not None else "no earlier window to compare"
    where = f"`{f.top}`: {f.top_rate:.0%} of its calls, {f.top_share:.0%} of all"
    if f.kind == "retry":
        hidden = f"; {f.recovered} of the {f.count} then succeeded" if f.recovered else ""
        return (
            f"retries are hiding provider instability: {f.rate:.0%} of calls needed a retry, {was} "
            f"({f.label}; {where}{hidden})"
        )
    if f.kind == "fallback":
        return (
            f"fallbacks are used more than usual: {f.rate:.0%} of calls were served by a fallback model, {was} "
            f"({where})"
        )
    if f.kind == "timeout":
        return f"{f.rate:.0%} of calls timed out, {was} ({f.label}; {where})"
    if f.kind == "rate_limited":
        return f"the provider refused {f.rate:.0%} of calls with 429 after llmguard's retries, {was} ({where})"
    kinds = ", ".join(f"{k}: {v}" for k, v in list(f.details.items())[:3])
    if f.kind == "error":
        return f"provider errors on {f.rate:.0%} of calls, {was} ({kinds}; {where})"
    return f"llmguard refused {f.rate:.0%} of calls ({f.count} of {f.n}), {was} ({kinds}; {where})"


def _next(kind: str, model: str) -> str:
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
