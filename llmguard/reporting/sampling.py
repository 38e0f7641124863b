"""When a report estimates from a sample instead of sorting every value, and which rows the sample holds.

Percentiles sort every value they cover, and SQLite sorts about a million rows a second: over a
1 M-call range, sorting would be most of a report. So when a figure has more than SAMPLE_ABOVE
values in range, its groups are estimated from deterministic samples of SAMPLE_BUDGET values
shared between them, at least SAMPLE_MIN each (one standard error at 4,000 values: 0.8% of the
group's ranks at p50, 0.34% at p95, 0.16% at p99; benchmarks/report.py prints the error in
values); groups no bigger than their share stay exact, and exact=True sorts everything.

Which rows are in the sample: Fibonacci hashing of the rowid, kept when below a group's
threshold. Its bits are spread evenly even when calls come in a fixed cycle (four steps per
document, say), which `rowid % n` would alias with; deterministic, so a ledger always gives the
same report. The SAMPLE_* settings are read when a report runs (tests lower them).
"""

from __future__ import annotations

from typing import Any

SAMPLE_ABOVE = 250_000
SAMPLE_BUDGET = 64_000
SAMPLE_MIN = 4_000
ALL = 2**32  # a threshold that keeps every row: the hash is below it


def row_hash(table: str) -> str:
    """SQL for the hash of a row of `table`, in [0, ALL)."""
    return f"(({table}.rowid * 2654435761) & 4294967295)"


def worth_sampling(values: int, exact: bool = False) -> bool:
    """Whether `values` values are too many to sort for one report (and `exact` does not insist)."""
    return not exact and values > SAMPLE_ABOVE


def sample_thresholds(
    counts: dict[Any, tuple[int, int]], exact: bool = False, rows: int | None = None
) -> dict[Any, int]:
    """Per group of one figure: calls whose hash is below this are sorted (ALL: every call, exact).

    Worth it over more than SAMPLE_ABOVE values; or, with `rows`, over a range of more than
    SAMPLE_ABOVE calls (from histograms, where what an exact figure costs is reading the calls, not
    sorting its values)."""
    if not worth_sampling(sum(n - z for n, z in counts.values()) if rows is None else rows, exact):
        return {}
    share = max(SAMPLE_MIN, SAMPLE_BUDGET // max(1, len(counts)))
    return {k: ALL if n - z <= share else ALL * share // (n - z) for k, (n, z) in counts.items()}


def budget_threshold(rows: int) -> int:
    """The hash threshold that keeps about SAMPLE_BUDGET of `rows` rows."""
    return ALL * SAMPLE_BUDGET // rows


def is_sampled(threshold: int) -> bool:
    """Whether a group's threshold leaves some of its rows out."""
    return threshold < ALL
