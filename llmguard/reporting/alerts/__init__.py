"""Actionable alerts from the ledger: each says what changed, what caused it, and what to check next.

A window of calls is compared with the one before it (the last hour with the hour before, a
`--since` range with the same length before it, a run with the previous run), and the newest
prompt version of a feature with the version it replaced. Every alert carries its numbers
(`before`, `after`, `attribution`) so a widget or a script can show or act on them.

One module per family (latency, tokens, cost, reliability, capacity, budget); `thresholds` holds
what they judge by, `window` what they compare, `run` runs them all. The names below are the
package's interface: import them from `llmguard.reporting.alerts`.
"""

from __future__ import annotations

from llmguard.reporting.alerts.alert import KIND_ORDER, Alert
from llmguard.reporting.alerts.budget import budget_alerts
from llmguard.reporting.alerts.capacity import capacity_alerts
from llmguard.reporting.alerts.cost import cost_alerts
from llmguard.reporting.alerts.latency import latency_alerts, step_latency_alerts
from llmguard.reporting.alerts.reliability import reliability_alerts
from llmguard.reporting.alerts.run import alerts, evaluate
from llmguard.reporting.alerts.thresholds import (
    DEFAULT_THRESHOLDS,
    load_thresholds,
    project_settings,
    project_settings_warning,
)
from llmguard.reporting.alerts.tokens import prompt_version_alerts
from llmguard.reporting.alerts.window import Window, describe, windows
from llmguard.reporting.errors import ReportError

__all__ = [
    "Alert",
    "DEFAULT_THRESHOLDS",
    "KIND_ORDER",
    "ReportError",
    "Window",
    "alerts",
    "budget_alerts",
    "capacity_alerts",
    "cost_alerts",
    "describe",
    "evaluate",
    "latency_alerts",
    "load_thresholds",
    "project_settings",
    "project_settings_warning",
    "prompt_version_alerts",
    "reliability_alerts",
    "step_latency_alerts",
    "windows",
]
