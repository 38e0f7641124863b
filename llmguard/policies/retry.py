"""Which failures are worth another attempt, and how long to wait before it.

Bounded attempts, exponential backoff with jitter, the provider's Retry-After honoured up to a cap.
Client errors (400, 401, 403, 404, 422, context length) never recover by waiting, so they are never
retried: doing so only spends time and money.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

RETRYABLE_STATUS = frozenset({408, 409, 429})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds the provider asked us to wait (`retry-after-ms`, `retry-after` seconds or HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


def backoff_s(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, so clients spread out."""
    ceiling = min(cap, base * (2**attempt))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def delay_before_retry(
    attempt: int, headers: Mapping[str, str] | None, base: float, cap: float, retry_after_cap: float
) -> float:
    asked = retry_after_s(headers) if headers is not None else None
    if asked is not None:
        return min(asked, retry_after_cap)
    return backoff_s(attempt, base, cap)


class RetryBudget:
    """Retries may add at most `ratio` of the calls in a sliding window (plus a small floor).

    During an outage every call fails; without this, every call also retries and the provider
    sees a multiple of the normal load exactly when it can least take it (a retry storm).
    """

    def __init__(self, ratio: float = 0.2, window_s: float = 60.0, floor: int = 3) -> None:
        import collections
        import threading

        self.ratio, self.window_s, self.floor = ratio, window_s, floor
        self._calls: collections.deque[float] = collections.deque()
        self._retries: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self.denied = 0

    def _trim(self, now: float) -> None:
        edge = now - self.window_s
        for queue in (self._calls, self._retries):
            while queue and queue[0] < edge:
                queue.popleft()

    def record_call(self) -> None:
        now = time.monotonic()
        with self._lock:
            self._calls.append(now)
            self._trim(now)

    def try_spend(self) -> bool:
        """Take one retry from the budget, or say no (the caller then falls back or fails)."""
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            allowed = self.floor + self.ratio * len(self._calls)
            if len(self._retries) + 1 > allowed:
                self.denied += 1
                return False
            self._retries.append(now)
            return True
