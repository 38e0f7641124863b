"""Live aggregates of this process's calls, for widgets and status lines.

Updated on every call, so it only does O(1) work: counters and a bounded window of latencies
(percentiles are computed when someone looks).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from llmguard.ledger.records import CallEvent


class Metrics:
    def __init__(self, window: int = 2048) -> None:
        self._lock = threading.Lock()
        self._latencies: deque[float] = deque(maxlen=window)
        self._recent: deque[tuple[float, int]] = deque()  # (monotonic time, tokens) over the last 60 s
        self.calls = 0
        self.errors = 0
        self.refusals = 0
        self.retries = 0
        self.fallbacks = 0
        self.cache_hits = 0
        self.saved_usd = 0.0
        self.cost_usd = 0.0
        self.unpriced_calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.last_refusal: str | None = None
        self.version = 0  # bumped on every change; widgets poll it instead of being called per call

    def observe(self, event: CallEvent) -> None:
        with self._lock:
            self.calls += 1
            self.version += 1
            if event.status == "error":
                self.errors += 1
            elif event.status == "refused":
                self.refusals += 1
                self.last_refusal = event.error_message
            self.retries += event.retry_count
            self.fallbacks += bool(event.fallback_used)
            if event.cache_hit:
                self.cache_hits += 1
                self.saved_usd += event.saved_usd or 0.0
            if event.cost_usd is None:
                self.unpriced_calls += 1
            else:
                self.cost_usd += event.cost_usd
            self.input_tokens += event.input_tokens
            self.output_tokens += event.output_tokens
            if event.total_ms is not None:
                self._latencies.append(event.total_ms)
            now = time.monotonic()
            self._recent.append((now, event.input_tokens + event.output_tokens))
            while self._recent and self._recent[0][0] < now - 60:
                self._recent.popleft()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            latencies = sorted(self._latencies)
            now = time.monotonic()
            recent = [(t, n) for t, n in self._recent if t >= now - 60]
            return {
                "calls": self.calls,
                "errors": self.errors,
                "refusals": self.refusals,
                "retries": self.retries,
                "fallbacks": self.fallbacks,
                "cache_hits": self.cache_hits,
                "saved_usd": self.saved_usd,
                "cost_usd": self.cost_usd,
                "unpriced_calls": self.unpriced_calls,
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "rpm": len(recent),
                "tpm": sum(n for _, n in recent),
                "p50_ms": _percentile(latencies, 50),
                "p95_ms": _percentile(latencies, 95),
                "last_refusal": self.last_refusal,
                "version": self.version,
            }


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (the value a call actually had), as the reports use."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]
