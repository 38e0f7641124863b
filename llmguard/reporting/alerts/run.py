"""The entry points: `alerts()` for a ledger and filters as users give them, `evaluate()` for made ones.

Every family scans in parallel; critical alerts come first, then by kind (KIND_ORDER).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmguard.reporting.alerts.alert import KIND_ORDER, Alert
from llmguard.reporting.alerts.budget import budget_alerts
from llmguard.reporting.alerts.capacity import capacity_alerts
from llmguard.reporting.alerts.cost import cost_alerts
from llmguard.reporting.alerts.latency import latency_alerts, step_latency_alerts
from llmguard.reporting.alerts.reliability import reliability_alerts
from llmguard.reporting.alerts.thresholds import load_thresholds, project_settings
from llmguard.reporting.alerts.tokens import prompt_version_alerts
from llmguard.reporting.alerts.window import windows
from llmguard.reporting.db import has_calls_table, run_parallel
from llmguard.reporting.filters import Filters, make_filters, steps_apply


def alerts(
    ledger_path: Path,
    settings: Any = None,
    alert_thresholds: dict[str, Any] | None = None,
    now: float | None = None,
    **filters: Any,
) -> list[Alert]:
    """Alerts for a ledger; `filters` are those of reports (since, until, last_run, run_id, feature=...)."""
    ledger_path = Path(ledger_path)
    if not has_calls_table(ledger_path):
        return []
    now = time.time() if now is None else now
    if settings is None:
        settings = project_settings()
    thresholds = load_thresholds(alert_thresholds)
    made = make_filters(ledger_path, now=now, **filters)
    return evaluate(ledger_path, made, settings, thresholds, now)


def evaluate(
    ledger_path: Path, filters: Filters, settings: Any, thresholds: dict[str, float], now: float
) -> list[Alert]:
    """Every check, scanned in parallel; critical alerts first."""
    if not has_calls_table(ledger_path):
        return []
    current, previous = windows(ledger_path, filters, thresholds["window_s"], now)
    t = thresholds
    jobs: dict[str, Callable[[], list[Alert]]] = {
        "latency": lambda: latency_alerts(ledger_path, current, previous, t),
        "steps": lambda: step_latency_alerts(ledger_path, current, previous, t, steps_apply([], filters)),
        "tokens": lambda: prompt_version_alerts(ledger_path, current, filters, t),
        "cost": lambda: cost_alerts(ledger_path, current, previous, t),
        "reliability": lambda: reliability_alerts(ledger_path, current, previous, t),
        "capacity": lambda: capacity_alerts(ledger_path, current, settings, t),
        "budget": lambda: budget_alerts(ledger_path, settings, t, now, filters),
    }
    found = [a for batch in run_parallel(jobs).values() for a in batch]
    found.sort(key=lambda a: (a.severity != "critical", KIND_ORDER.index(a.kind)))
    return found
