"""Live aggregates of this process's calls, for the widget, status lines and per-cell footers.

Updated on every call, so it only does O(1) work: counters (for the session and per notebook
cell), a bounded window of latencies (percentiles are computed when someone looks), the recent
calls that reached the provider (what rate limits count) and spend per time bucket.

A call "reached the provider" unless the cache answered it (a hit or a deduplicated flight) or
llmguard refused it: only those calls make latency percentiles and requests/tokens per window,
so a replayed run served from the cache does not read as a 1 ms provider.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, fields
from typing import Any

from llmguard.ledger.records import CallEvent

MAX_HORIZON_S = 3600.0  # the longest rate-limit window whose usage is kept
KEPT_CELLS = 256  # per-cell tallies kept (the oldest cells are forgotten first)
KEPT_RECENT = 50_000  # recent calls kept for windows (a bound on memory at extreme call rates)


def reached_provider(event: CallEvent) -> bool:
    """The call was sent to the provider (answered, failed or cut short), not served or refused here."""
    return event.decision not in ("cache", "replay", "reject") and event.status != "refused"


@dataclass(slots=True)
class Tally:
    """What a set of calls did: the session's, or one cell's."""

    calls: int = 0
    provider_calls: int = 0
    cache_hits: int = 0
    replays: int = 0  # of the cache hits, sampled calls replayed (a notebook's default for re-runs)
    dedup_hits: int = 0
    errors: int = 0
    refusals: int = 0
    retries: int = 0
    fallbacks: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    prompt_cache_read_tokens: int = 0  # the provider's prompt cache, not llmguard's response cache
    cost_usd: float = 0.0
    saved_usd: float = 0.0
    unpriced_calls: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, event: CallEvent) -> None:
        self.calls += 1
        self.provider_calls += reached_provider(event)
        if event.status == "error":
            self.errors += 1
        elif event.status == "refused":
            self.refusals += 1
        self.retries += event.retry_count
        self.fallbacks += bool(event.fallback_used)
        if event.cache_hit:
            self.cache_hits += 1
            self.replays += event.decision == "replay"
            self.saved_usd += event.saved_usd or 0.0
        self.dedup_hits += bool(event.dedup_hit)
        if event.cost_usd is None:
            self.unpriced_calls += 1
        else:
            self.cost_usd += event.cost_usd
        self.input_tokens += event.input_tokens
        self.output_tokens += event.output_tokens
        self.prompt_cache_read_tokens += event.cached_input_tokens

    def minus(self, earlier: Tally) -> Tally:
        """What happened between `earlier` and this tally of the same calls."""
        return Tally(**{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(Tally)})

    def copy(self) -> Tally:
        return Tally(**{f.name: getattr(self, f.name) for f in fields(Tally)})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(Tally)}


class SpendSeries:
    """Spend per time bucket since the session began, in at most `bars` buckets.

    Buckets start `bucket_s` wide; when the session outgrows them, neighbours merge and the width
    doubles, so the series always spans the whole session at a bounded size.
    """

    def __init__(self, bars: int = 30, bucket_s: float = 10.0, start: float | None = None) -> None:
        self.bars = bars
        self.bucket_s = bucket_s
        self.start = time.monotonic() if start is None else start
        self.values: list[float] = []

    def add(self, usd: float, now: float) -> None:
        index = self._index(now)
        self.values[index] += usd

    def read(self, now: float) -> dict[str, Any]:
        """`bucket_s`, `values` (oldest first) up to the bucket of `now`, the session's length and `bars`."""
        self._index(now)
        elapsed = max(0.0, now - self.start)
        return {"bucket_s": self.bucket_s, "values": list(self.values), "elapsed_s": elapsed, "bars": self.bars}

    def _index(self, now: float) -> int:
        """The bucket of `now`, merging buckets until it fits and filling the idle ones up to it."""
        index = int(max(0.0, now - self.start) // self.bucket_s)
        while index >= self.bars:
            self.values = [sum(self.values[i : i + 2]) for i in range(0, len(self.values), 2)]
            self.bucket_s *= 2
            index = int(max(0.0, now - self.start) // self.bucket_s)
        if len(self.values) <= index:
            self.values.extend([0.0] * (index + 1 - len(self.values)))
        return index


class Metrics:
    def __init__(self, window: int = 2048) -> None:
        self._lock = threading.Lock()
        self.total = Tally()
        self._cells: OrderedDict[int, Tally] = OrderedDict()
        self._provider_ms: deque[float] = deque(maxlen=window)  # total_ms of calls that reached the provider
        # (monotonic time, model, tokens) of calls that reached the provider, over the last `horizon_s`
        self._recent: deque[tuple[float, str, int]] = deque(maxlen=KEPT_RECENT)
        self.horizon_s = 60.0  # grows to the longest window anyone asked about (`in_window`)
        self._spend = SpendSeries()
        self.last_refusal: str | None = None
        self.version = 0  # bumped on every change; widgets poll it instead of being called per call

    def observe(self, event: CallEvent) -> None:
        with self._lock:
            self.version += 1
            self.total.add(event)
            if isinstance(event.cell, int):
                cell = self._cells.get(event.cell)
                if cell is None:
                    cell = self._cells[event.cell] = Tally()
                    while len(self._cells) > KEPT_CELLS:
                        self._cells.popitem(last=False)
                cell.add(event)
            if event.status == "refused":
                self.last_refusal = event.error_message
            now = time.monotonic()
            if event.cost_usd:
                self._spend.add(event.cost_usd, now)
            if reached_provider(event):
                if event.total_ms is not None:
                    self._provider_ms.append(event.total_ms)
                self._recent.append((now, event.model, event.input_tokens + event.output_tokens))
            while self._recent and self._recent[0][0] < now - self.horizon_s:
                self._recent.popleft()

    def totals(self) -> Tally:
        """A copy of the session's tally (diff two of them for what happened in between)."""
        with self._lock:
            return self.total.copy()

    def cell(self, number: int | None) -> Tally:
        """A copy of what the calls tagged with this notebook cell did so far (an empty tally if none)."""
        return self.cell_and_totals(number)[0]

    def cell_and_totals(self, number: int | None) -> tuple[Tally, Tally]:
        """This cell's tally and the session's, read at the same moment (their difference is other cells')."""
        with self._lock:
            found = self._cells.get(number) if isinstance(number, int) else None
            return (found.copy() if found is not None else Tally()), self.total.copy()

    def in_window(self, model: str, seconds: float) -> tuple[int, int]:
        """Requests and tokens of `model`'s calls that reached the provider in the last `seconds`.

        Usage is kept for the longest window asked about so far (at least a minute, at most an
        hour); the first look at a longer window may miss calls older than a minute.
        """
        with self._lock:
            self.horizon_s = max(self.horizon_s, min(float(seconds), MAX_HORIZON_S))
            since = time.monotonic() - seconds
            used = [tokens for t, name, tokens in self._recent if t >= since and name == model]
            return len(used), sum(used)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            latencies = sorted(self._provider_ms)
            now = time.monotonic()
            minute = [tokens for t, _, tokens in self._recent if t >= now - 60]
            return {
                **self.total.as_dict(),
                "rpm": len(minute),  # calls that reached the provider in the last minute
                "tpm": sum(minute),
                "p50_ms": _percentile(latencies, 50),  # of calls that reached the provider
                "p95_ms": _percentile(latencies, 95),
                "latency_calls": len(latencies),  # how many calls the percentiles are of
                "spend_series": self._spend.read(now),
                "last_refusal": self.last_refusal,
                "version": self.version,
            }


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (the value a call actually had), as the reports use."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]
