"""What the simulated provider has seen and billed, for tests and rehearsals to compare against.

Costs are summed as Decimal per request, each priced by genai-prices' own `calc_price`
(`billing.py`), independently of the guard's pricing code, so a test that compares the guard's
meter with this bill checks the guard against an outside authority. A snapshot is a plain,
JSON-ready dict (floats for USD) and never shares state with the live counters; `models[m]["price"]`
says which genai-prices entry billed that model.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from decimal import Decimal
from typing import Any

from llmguard.sim.billing import BilledUsage, price_call

_TIMING_SAMPLES = 10_000


class _ModelStats:
    __slots__ = (
        "provider",
        "requests",
        "input_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cost",
        "price",
    )

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.requests = self.input_tokens = self.cached_tokens = self.output_tokens = 0
        self.cache_write_tokens = self.cache_write_1h_tokens = self.reasoning_tokens = 0
        self.cost: Decimal | None = Decimal(0)
        self.price: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "cached_tokens": self.cached_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": None if self.cost is None else float(self.cost),
            "cost_decimal": None if self.cost is None else str(self.cost),
            "priced": self.cost is not None,
            "price": dict(self.price) if self.price else None,
        }


class SimStats:
    """Thread-safe counters. `input_tokens` always includes cached tokens (OpenAI semantics)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._first_request_ts: float | None = None  # wall clock, for makespan measurements
            self._connections = 0
            self._rate_limited = 0
            self._faults: dict[str, int] = {}
            self._statuses: dict[str, int] = {}
            self._models: dict[str, _ModelStats] = {}
            self._internal_errors = 0
            self._server_ns = 0
            self._handled = 0
            self._samples: deque[int] = deque(maxlen=_TIMING_SAMPLES)

    def received(self) -> None:
        with self._lock:
            self._requests += 1
            if self._first_request_ts is None:
                self._first_request_ts = time.time()

    def connected(self) -> None:
        with self._lock:
            self._connections += 1

    def responded(self, status: int) -> None:
        key = str(status)
        with self._lock:
            self._statuses[key] = self._statuses.get(key, 0) + 1
            if status == 429:
                self._rate_limited += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] = self._faults.get(kind, 0) + 1

    def internal_error(self) -> None:
        with self._lock:
            self._internal_errors += 1

    def timing(self, busy_ns: int) -> None:
        with self._lock:
            self._server_ns += busy_ns
            self._handled += 1
            self._samples.append(busy_ns)

    def bill(self, provider: str, model: str, usage: BilledUsage) -> Decimal | None:
        """Record one successfully answered call and its price; returns the price (None: unknown)."""
        bill = price_call(provider, model, usage)
        price = bill.cost
        with self._lock:
            entry = self._models.get(model)
            if entry is None:
                entry = self._models[model] = _ModelStats(provider)
            entry.requests += 1
            entry.input_tokens += usage.input_tokens
            entry.cached_tokens += usage.cached_tokens
            entry.cache_write_tokens += usage.cache_write_tokens
            entry.cache_write_1h_tokens += usage.cache_write_1h_tokens
            entry.output_tokens += usage.output_tokens
            entry.reasoning_tokens += usage.reasoning_tokens
            if price is None:
                entry.cost = None
            elif entry.cost is not None:
                entry.cost += price
            entry.price = entry.price or bill.price
        return price

    def cost_decimal(self) -> Decimal:
        """Exact total of the priced models."""
        with self._lock:
            return sum((m.cost for m in self._models.values() if m.cost is not None), Decimal(0))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            models = {name: m.as_dict() for name, m in self._models.items()}
            total = sum((m.cost for m in self._models.values() if m.cost is not None), Decimal(0))
            samples = list(self._samples)
            snap: dict[str, Any] = {
                "requests": self._requests,
                "first_request_ts": self._first_request_ts,
                "connections": self._connections,
                "rate_limited": self._rate_limited,
                "faults": dict(self._faults),
                "statuses": dict(self._statuses),
                "models": models,
                "cost_usd": float(total),
                "unpriced_models": sorted(n for n, m in self._models.items() if m.cost is None),
                "internal_errors": self._internal_errors,
                "handled": self._handled,
                "server_us": self._server_ns / 1000,
            }
        snap["server_us_median"] = statistics.median(samples) / 1000 if samples else None
        return snap
