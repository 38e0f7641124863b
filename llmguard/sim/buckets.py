"""OpenAI-style rate limiting: per model, one requests bucket and one tokens bucket.

Both refill continuously (capacity = limit, refill = limit / window per second), the way OpenAI
describes its limits: a request is admitted only when both buckets hold enough, and is then charged
1 request and `prompt_tokens + max_tokens` tokens up front. The window is configurable so tests can
use one-second windows.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


class TokenBucket:
    """The provider's bucket: holds up to `capacity`, refills at `capacity / window_s` per second.

    Written here rather than shared with the guard's limiter: the simulator is the oracle the guard
    is checked against, so it must not inherit the guard's arithmetic (or its mistakes).
    """

    __slots__ = ("capacity", "rate", "level", "stamp")

    def __init__(self, capacity: float, window_s: float, now: float) -> None:
        self.capacity = float(capacity)
        self.rate = self.capacity / window_s
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` fits; inf when it never can."""
        if amount > self.capacity:
            return math.inf
        return max(0.0, (amount - self.level) / self.rate)

    def time_to_full(self) -> float:
        return (self.capacity - self.level) / self.rate if self.rate else 0.0


@dataclass(frozen=True, slots=True)
class BucketView:
    """What the rate-limit headers report about one bucket."""

    limit: int
    remaining: int
    reset_s: float  # seconds until the bucket is full again


@dataclass(frozen=True, slots=True)
class Admission:
    """The outcome of one admission check."""

    allowed: bool
    requests: BucketView | None = None
    tokens: BucketView | None = None
    retry_after_s: float = 0.0
    limited_by: str | None = None  # "requests" | "tokens" when refused
    used: int = 0  # how much of the refusing bucket is in use (for the error message)
    requested: int = 0

    def refusal(self) -> tuple[str, int]:
        """(the bucket that refused: "requests" or "tokens", its limit), for the 429's message."""
        kind = self.limited_by or "requests"
        view = self.tokens if kind == "tokens" else self.requests
        return kind, view.limit if view else 0


def _view(bucket: TokenBucket | None) -> BucketView | None:
    if bucket is None:
        return None
    return BucketView(int(bucket.capacity), max(0, int(bucket.level)), bucket.time_to_full())


class RateLimiter:
    """Per-model RPM/TPM buckets. `limits` overrides the global rpm/tpm for named models."""

    def __init__(
        self,
        rpm: int | None = None,
        tpm: int | None = None,
        window_s: float = 60.0,
        limits: dict[str, dict[str, int | None]] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[TokenBucket | None, TokenBucket | None]] = {}
        self.rpm, self.tpm, self.window_s, self.limits = rpm, tpm, float(window_s), dict(limits or {})

    def reconfigure(
        self,
        rpm: int | None,
        tpm: int | None,
        window_s: float,
        limits: dict[str, dict[str, int | None]] | None,
    ) -> None:
        """New limits start from full buckets."""
        with self._lock:
            self.rpm, self.tpm, self.window_s, self.limits = rpm, tpm, float(window_s), dict(limits or {})
            self._buckets.clear()

    @property
    def active(self) -> bool:
        return bool(self.rpm or self.tpm or self.limits)

    def limits_for(self, model: str) -> tuple[int | None, int | None]:
        override = self.limits.get(model) or {}
        rpm = override["rpm"] if "rpm" in override else self.rpm
        tpm = override["tpm"] if "tpm" in override else self.tpm
        return rpm, tpm

    def _buckets_for(self, model: str, now: float) -> tuple[TokenBucket | None, TokenBucket | None]:
        pair = self._buckets.get(model)
        if pair is None:
            rpm, tpm = self.limits_for(model)
            pair = (
                TokenBucket(rpm, self.window_s, now) if rpm else None,
                TokenBucket(tpm, self.window_s, now) if tpm else None,
            )
            self._buckets[model] = pair
        return pair

    def admit(self, model: str, tokens: int, now: float | None = None) -> Admission:
        """Charge 1 request and `tokens` tokens if both fit; otherwise charge nothing and say when."""
        if not self.active:
            return Admission(True)
        with self._lock:
            # read the clock under the lock: a stamp taken before waiting for it is stale, and refill
            # only moves forward, so a thread that waited would see (and refuse on) an emptier bucket
            now = time.monotonic() if now is None else now
            req, tok = self._buckets_for(model, now)
            if req is None and tok is None:
                return Admission(True)
            for bucket in (req, tok):
                if bucket is not None:
                    bucket.refill(now)
            wait_req = req.wait_for(1) if req else 0.0
            wait_tok = tok.wait_for(tokens) if tok else 0.0
            if wait_req or wait_tok:
                by_tokens = wait_tok > wait_req
                bucket = tok if by_tokens else req
                assert bucket is not None
                retry = max(wait_req, wait_tok)
                if math.isinf(retry):
                    retry = self.window_s  # never fits: a real API would answer "request too large"
                return Admission(
                    False,
                    _view(req),
                    _view(tok),
                    retry_after_s=retry,
                    limited_by="tokens" if by_tokens else "requests",
                    used=int(bucket.capacity - bucket.level),
                    requested=tokens if by_tokens else 1,
                )
            if req:
                req.level -= 1
            if tok:
                tok.level -= tokens
            return Admission(True, _view(req), _view(tok))


def go_duration(seconds: float) -> str:
    """A duration the way OpenAI's reset headers write it: `20ms`, `1s`, `1.5s`, `6m0s`, `1h2m3s`."""
    if seconds <= 0:
        return "0s"
    ms = math.ceil(seconds * 1000)
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    total_s = math.ceil(ms / 1000)
    h, rest = divmod(total_s, 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h" if h else "") + f"{m}m{s}s"
