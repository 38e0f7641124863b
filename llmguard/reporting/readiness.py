"""`llmguard check`: the seed article's production readiness checklist, evaluated for one project.

Evidence comes from three places (`evidence`): the project's settings (`[tool.llmguard]`), the
linter's findings on its code, and its ledger (what the guard actually recorded over the last 30
days). Settings only matter for calls that go through the guard, so a first line checks that the
code installs it. Each line (`checklist`) is pass, fail or n/a (nothing to judge yet), with the
reason and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmguard.reporting.checklist import (
    Item,
    cache_item,
    cost_item,
    dedup_item,
    fallback_item,
    guard_item,
    latency_item,
    length_item,
    limit_item,
    ms,
    of_calls,
    quota_item,
    recorded_item,
    retry_item,
    stream_item,
    timeout_item,
)
from llmguard.reporting.evidence import LOOKBACK_S, SLOW_UNSTREAMED_MS, Evidence, gather

__all__ = ["LOOKBACK_S", "SLOW_UNSTREAMED_MS", "Evidence", "Item", "Readiness", "check", "evaluate", "gather"]


@dataclass
class Readiness:
    evidence: Evidence
    items: list[Item]

    @property
    def failed(self) -> list[Item]:
        return [i for i in self.items if i.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        ev = self.evidence
        return {
            "project": str(ev.root),
            "pyproject": str(ev.pyproject) if ev.pyproject else None,
            "ledger": str(ev.ledger),
            "ledger_calls": ev.calls.get("calls", 0),
            "lint_findings": len(ev.findings),
            "store": dict(ev.store),
            "passed": sum(i.status == "pass" for i in self.items),
            "failed": len(self.failed),
            "items": [i.to_dict() for i in self.items],
        }


def evaluate(ev: Evidence) -> list[Item]:
    """Every item of the checklist, in its order (0, the guard runs, then 1..15).

    Long because it is the checklist itself: one statement per item, read top to bottom.
    """
    s = ev.settings
    guarded = bool(ev.installs) or ev.calls.get("calls", 0) > 0
    recorded = guarded and bool(getattr(s, "ledger", True))
    no_guard = (
        "llmguard is not installed in this code (no `llmguard.install()` or `%load_ext llmguard`, "
        "no recorded calls), so nothing measures this"
    )
    items = [guard_item(ev, guarded)]
    items += [
        limit_item(ev, 1, "rpm", "Requests per minute limits are handled."),
        limit_item(ev, 2, "tpm", "Tokens per minute limits are handled."),
    ]
    items.append(quota_item(ev))
    items.append(
        recorded_item(
            ev,
            4,
            "Token usage is tracked per request.",
            recorded,
            no_guard,
            "every call's input, cached, output and reasoning tokens are in the ledger"
            + of_calls(ev, "with_tokens", "with tokens")
            + (f", {ev.calls['approximate']:,} estimated locally" if ev.calls.get("approximate") else ""),
        )
    )
    items.append(cost_item(ev, recorded, no_guard))
    items.append(length_item(ev))
    items.append(cache_item(ev, guarded, no_guard))
    items.append(dedup_item(ev, guarded, no_guard))
    items.append(retry_item(ev))
    items.append(
        recorded_item(
            ev,
            10,
            "Queue depth and job age are monitored.",
            recorded,
            no_guard,
            "each call's queue wait is recorded; alerts fire when the queue grows or a job waits "
            "too long"
            + (f" (longest wait in 30 days: {ms(ev.calls['max_queue_ms'])})" if ev.calls.get("calls") else ""),
        )
    )
    items.append(timeout_item(ev, guarded))
    items.append(stream_item(ev, guarded))
    items.append(fallback_item(ev))
    items.append(
        recorded_item(
            ev,
            14,
            "Rate-limit errors and provider errors are monitored.",
            recorded,
            no_guard,
            "429s, refusals and provider errors are recorded per call and alerted on"
            + (
                f" (30 days: {ev.calls['rate_limited']:,} final 429s, {ev.calls['errors']:,} errors)"
                if ev.calls.get("calls")
                else ""
            ),
        )
    )
    items.append(latency_item(ev, recorded, no_guard))
    return items


def check(
    path: Path | str = ".", home: Path | str | None = None, settings: Any = None, now: float | None = None
) -> Readiness:
    """Evaluate the checklist for the project at `path` (its ledger under `home`, or the settings' home)."""
    evidence = gather(Path(path), Path(home) if home else None, settings, now)
    return Readiness(evidence, evaluate(evidence))
