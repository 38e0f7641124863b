"""What the alerts judge by: their thresholds (defaults < `[tool.llmguard.alerts]` < `alert_thresholds=`)
and the project's settings (limits, budgets, quotas), read the way a reader reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DEFAULT_THRESHOLDS: dict[str, float] = {
    "window_s": 3600.0,  # compare the last hour with the hour before when no range is given
    "min_calls": 20,  # fewer calls than this in a window: too few to compare, stay silent
    "latency_rise": 0.25,  # p95 must rise by this fraction ...
    "latency_min_ms": 50.0,  # ... and by at least this many milliseconds
    "tokens_rise": 0.20,  # tokens per call of a feature's new prompt version vs the previous one
    "min_version_calls": 10,  # calls each prompt version needs before it is compared
    "prompt_lookback_s": 7 * 86400.0,  # how far back the previous prompt version may be
    "cost_rise": 0.25,  # cost per answered call, window vs previous window
    "retry_rate": 0.05,  # share of calls that needed a retry
    "fallback_rate": 0.05,  # share of calls served by a fallback model
    "timeout_rate": 0.02,  # share of calls that timed out
    "rate_limited_rate": 0.02,  # share of calls the provider answered with a final 429
    "error_rate": 0.02,  # share of calls that ended in another provider error
    "refusal_rate": 0.05,  # share of calls llmguard refused (budget, rate limit, deadline)
    "rate_factor": 2.0,  # ... and at least this many times the previous window's rate
    "capacity_use": 0.8,  # peak RPM/TPM use as a fraction of the configured limit
    "queue_growth": 1.5,  # mean queue depth, second half of the window vs the first half ...
    "queue_min_depth": 1.0,  # ... when at least this many calls wait on average
    "job_age_s": 30.0,  # a call that waited longer than this in the queue
    "budget_horizon_s": 3600.0,  # session/run budgets: alert when they run out within this time
    "budget_rate_window_s": 3600.0,  # spend rate measured over this much recent time
}


def load_thresholds(overrides: dict[str, Any] | None = None, start: Path | None = None) -> dict[str, float]:
    """Defaults < `[tool.llmguard.alerts]` of the nearest pyproject.toml < `overrides`."""
    from llmguard.config import ConfigError, find_pyproject

    merged = dict(DEFAULT_THRESHOLDS)
    path = find_pyproject(start)
    sources = [(_pyproject_alerts(path), f"{path} [tool.llmguard.alerts]"), (overrides or {}, "alert_thresholds")]
    for table, source in sources:
        for raw, value in table.items():
            name = raw.replace("-", "_")
            if name not in DEFAULT_THRESHOLDS:
                raise ConfigError(
                    f"llmguard: unknown alert threshold {raw!r} from {source}; known: {', '.join(DEFAULT_THRESHOLDS)}"
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"llmguard: alert threshold {raw}={value!r} from {source} must be a number >= 0")
            merged[name] = float(value)
    return merged


def _pyproject_alerts(path: Path | None) -> dict[str, Any]:
    from llmguard.config import tool_table

    table = tool_table(path, strict=False).get("alerts", {})
    return dict(table) if isinstance(table, dict) else {}


_settings_warning: str | None = None


def project_settings(start: Path | None = None) -> Any:
    """The project's Settings for reading the ledger ([tool.llmguard.alerts] is the alerts' own
    table, not a setting). A bad setting does not stop a reader: its default is used, and
    `project_settings_warning` says what was ignored."""
    from llmguard.config import load_settings_for_reading

    settings, warning = load_settings_for_reading(start=start)
    global _settings_warning
    _settings_warning = warning
    return settings


def project_settings_warning() -> str | None:
    """What the last `project_settings()` ignored, or None."""
    return _settings_warning
