"""Step figures from the ledger's `steps` table: one sample per run of a step, however many calls ran inside it.

A step that made no call is there too; a call inside two steps doubles neither. A step row knows
its tags, run and time, not the model or provider of the calls inside it, so grouping or
filtering by those cannot split steps (`filters.steps_apply`). A ledger an older llmguard made
has no steps table: no step figures, no error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmguard.reporting.db import has_steps_table, query
from llmguard.reporting.filters import DIMENSIONS, Filters, key_sql, steps_apply
from llmguard.reporting.percentiles import STEPS, Counts, Ranked, Scan, percentile_job
from llmguard.reporting.sampling import is_sampled, sample_thresholds


def count_sql(by: list[str], where: str) -> str:
    """Per group and step: its runs (what the step percentiles rank against) and the calls inside them."""
    return f"""
        SELECT {key_sql(by)}, name, COUNT(*), 0, SUM(COALESCE(calls, 0)) FROM steps
        WHERE duration_ms IS NOT NULL {where} GROUP BY {", ".join([DIMENSIONS[n] for n in by] + ["name"])}
    """


def counts(counted: list[tuple[Any, ...]]) -> Counts:
    """{(group key, step name): (runs, zeros)} from the rows of `count_sql`."""
    return {(k, name): (n, z) for k, name, n, z, _ in counted}


def by_group(counted: list[tuple[Any, ...]], ranked: Ranked) -> dict[str, dict[str, dict[str, Any]]]:
    """{group key: {step name: {runs, calls, p50_ms, p95_ms, p99_ms}}}: `calls` is how many ran inside."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for k, name, runs, _, calls in counted:
        p50, p95, p99 = ranked[k, name]
        out.setdefault(k, {})[name] = {"runs": runs, "calls": calls or 0, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}
    return out


def step_figures(
    ledger_path: Path,
    filters: Filters | None = None,
    exact: bool = False,
) -> tuple[dict[str, dict[str, Any]], bool]:
    """The steps of the whole range, {name: {runs, calls, p50_ms, p95_ms, p99_ms}}, and whether they
    were estimated from a sample. Empty when the filters name what a step does not record (a model)
    or the ledger has no steps table."""
    filters = filters or Filters()
    if not steps_apply([], filters) or not has_steps_table(ledger_path):
        return {}, False
    where, params = filters.sql()
    counted = query(ledger_path, count_sql([], where), params)
    found = counts(counted)
    thresholds = sample_thresholds(found, exact)
    ranked = percentile_job(Scan(ledger_path, [], where, params), STEPS, found, thresholds)()
    figures = by_group(counted, ranked).get("[]", {})  # the one group: json_array() of nothing
    return dict(sorted(figures.items())), any(is_sampled(t) for t in thresholds.values())
