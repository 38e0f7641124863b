"""The record every alert family returns (`Alert`), the order alerts are shown in, and how severe a rise is."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from llmguard.reporting.timerange import iso

KIND_ORDER = ("budget", "capacity", "reliability", "latency", "cost", "tokens")


@dataclass
class Alert:
    """One finding: what happened (`message`), where to look (`check_next`) and its numbers."""

    kind: str  # budget | capacity | reliability | latency | cost | tokens
    severity: str  # warning | critical
    message: str
    check_next: str
    metric: str
    before: float | None = None
    after: float | None = None
    attribution: dict[str, Any] = field(default_factory=dict)
    scope: dict[str, Any] = field(default_factory=dict)
    projected_at: float | None = None  # budget alerts: when the money or quota runs out

    @property
    def change(self) -> float | None:
        """Relative change after/before - 1 (None when there is no earlier value)."""
        if self.before in (None, 0) or self.after is None:
            return None
        return self.after / self.before - 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["change"] = self.change
        data["projected_at_iso"] = iso(self.projected_at)
        return data


def rose(before: float, after: float, fraction: float) -> bool:
    """Whether `after` is at least `fraction` above `before` (a threshold such as latency_rise)."""
    return after >= before * (1 + fraction)


def rise_severity(before: float, after: float, fraction: float) -> str:
    """critical when the rise is twice its threshold `fraction`, else warning."""
    return "critical" if rose(before, after, 2 * fraction) else "warning"
