"""The limiter's token bucket: capacity `limit`, refilled continuously at `limit / window_s`.

llmguard/sim/buckets.py keeps its own bucket on purpose: the simulator is the oracle the guard is
checked against, so it must not share the guard's arithmetic (or its mistakes).
"""

from __future__ import annotations

import math


class TokenBucket:
    """Capacity `limit`, refilled continuously at `limit / window_s` per second. Caller holds the lock."""

    __slots__ = ("capacity", "rate", "level", "stamp")

    def __init__(self, capacity: float, window_s: float, now: float) -> None:
        self.capacity = float(capacity)
        self.rate = self.capacity / window_s
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:  # a stamp of +inf: refill has not started (see Limiter.try_admit)
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available; inf when it can never fit."""
        if amount > self.capacity:
            return math.inf
        if amount <= self.level:
            return 0.0
        return (amount - self.level) / self.rate

    def time_to_full(self) -> float:
        return (self.capacity - self.level) / self.rate if self.rate else 0.0

    def resize(self, capacity: float, window_s: float) -> None:
        self.level = min(self.level, capacity)
        self.capacity = float(capacity)
        self.rate = self.capacity / window_s


def resized(bucket: TokenBucket | None, limit: float | None, window_s: float, now: float) -> TokenBucket | None:
    """`bucket` refilled and resized to `limit` (created when missing); None when there is no limit."""
    if not limit:
        return None
    if bucket is None:
        return TokenBucket(limit, window_s, now)
    bucket.refill(now)
    bucket.resize(limit, window_s)
    return bucket
