"""One whole report as plain data (`Report`): the breakdown, spend over time, cost drivers, steps, alerts.

The terminal, JSON and HTML render the same `Report`; `build_report` runs its scans in parallel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmguard.reporting import histograms
from llmguard.reporting.costs import spend_over_time, top_cost_drivers
from llmguard.reporting.db import run_parallel
from llmguard.reporting.filters import Filters, parse_by
from llmguard.reporting.queries import breakdown, totals
from llmguard.reporting.steps import step_figures
from llmguard.reporting.timerange import iso

PARTS = ("spend", "drivers", "steps")  # beyond the breakdown, what a whole report holds
BREAKDOWN_ONLY: tuple[str, ...] = ()


@dataclass
class Report:
    """Everything one report shows, as plain data (JSON, the terminal and HTML render it)."""

    ledger: str
    by: list[str]
    filters: Filters
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: dict[str, Any] = field(default_factory=dict)
    spend: dict[str, Any] = field(default_factory=dict)
    drivers: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[Any] = field(default_factory=list)
    generated_at: float = field(default_factory=time.time)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)  # the steps of the whole range
    steps_sampled: bool = False  # their percentiles were estimated from a sample

    def to_dict(self) -> dict[str, Any]:
        return {
            "ledger": self.ledger,
            "generated_at": iso(self.generated_at),
            "range": self.filters.describe(),
            "by": self.by,
            "alerts": [a.to_dict() if hasattr(a, "to_dict") else a for a in self.alerts],
            "total": self.total,
            "rows": self.rows,
            "spend_over_time": self.spend,
            "top_cost_drivers": self.drivers,
            "steps": self.steps,
            "steps_sampled": self.steps_sampled,
        }


def build_report(
    ledger_path: Path,
    by: str | list[str] | None = "model",
    filters: Filters | None = None,
    alerts: Callable[[], list[Any]] | None = None,
    exact: bool = False,
    parts: tuple[str, ...] = PARTS,
) -> Report:
    """The breakdown, spend over time, top cost drivers, the range's steps and (optionally) alerts,
    scanned in parallel. `parts` leaves out what a view does not show (the terminal's default view
    shows only the breakdown and alerts); what is left out stays empty."""
    names = parse_by(by)
    filters = filters or Filters()
    jobs: dict[str, Callable[[], Any]] = {
        "rows": lambda: breakdown(ledger_path, names, filters, steps="steps" in parts, exact=exact),
        "spend": lambda: spend_over_time(ledger_path, filters),
        "drivers": lambda: top_cost_drivers(ledger_path, filters, exact=exact),
        "steps": lambda: (
            histograms.step_figures(ledger_path, filters, exact) or step_figures(ledger_path, filters, exact)
        ),
    }
    for name in ("spend", "drivers", "steps"):
        if name not in parts:
            del jobs[name]
    if alerts is not None:
        jobs["alerts"] = alerts
    done = run_parallel(jobs)
    return Report(
        ledger=str(ledger_path),
        by=names,
        filters=filters,
        rows=done["rows"],
        total=totals(done["rows"]),
        spend=done.get("spend", {}),
        drivers=done.get("drivers", []),
        alerts=done.get("alerts", []),
        steps=done.get("steps", ({}, False))[0],
        steps_sampled=done.get("steps", ({}, False))[1],
    )
