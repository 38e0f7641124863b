"""How one figure reads in a terminal cell: a count with its share of the calls, a latency triple,
milliseconds. Money is `llmguard.money.usd`. Shared by the report's default view and its `--full`
tables; imports nothing, so `terminal` stays cheap to import."""

from __future__ import annotations

from typing import Any

# A caption for percentiles read from the rollup's latency histograms or from a sample (by what the
# range allows): both are estimates.
ESTIMATED = "≈ estimated (the range is large); --exact sorts them all"


def rate(count: int, calls: int) -> str:
    """`3 (8%)`, or `0`."""
    return f"{count:,} ({count / calls:.0%})" if calls and count else "0"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def triple(row: dict[str, Any], prefix: str, approx: bool = False) -> str:
    """`p50 / p95 / p99` of a latency figure, `≈ `-marked when estimated from a sample."""
    values = [row.get(f"{prefix}p{q}_ms") for q in (50, 95, 99)]
    if all(v is None for v in values):
        return "-"
    return ("≈ " if approx else "") + " / ".join("-" if v is None else f"{v:,.0f}" for v in values)
