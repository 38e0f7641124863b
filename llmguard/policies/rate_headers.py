"""What a response's rate-limit headers say (provider-neutral), and the refill window they imply."""

from __future__ import annotations

from llmguard.types import RateLimitInfo

__all__ = ["RateLimitInfo", "learnt_window_s"]


def learnt_window_s(info: RateLimitInfo, fallback: float) -> float:
    """The window a provider's limit refills over, from its headers, erring long (slow is safe).

    A bucket `limit - level` short and full again in `reset` seconds refills `limit` in
    `limit * reset / (limit - level)`. Headers round the level down to `remaining`, so the level
    lies in [remaining, remaining + 1): the window is at most `limit * reset / (limit - remaining -
    1)`. Token limits are large enough for that bound to be tight; request limits only bound it
    once a few calls have been made. Without a usable pair, `fallback` (the configured window)."""
    estimates = [
        limit * reset / (limit - remaining - 1)
        for limit, remaining, reset in (
            (info.limit_requests, info.remaining_requests, info.reset_requests_s),
            (info.limit_tokens, info.remaining_tokens, info.reset_tokens_s),
        )
        if limit and remaining is not None and reset and limit - remaining - 1 > 0
    ]
    return min(fallback, max(0.05, min(estimates))) if estimates else fallback
