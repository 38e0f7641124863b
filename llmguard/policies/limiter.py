"""RPM/TPM limiter: continuous-refill token buckets, a priority queue, reserve → reconcile.

A call asks for 1 request and its estimated tokens (prompt + max tokens, as providers charge at
admission). It is admitted exactly when both buckets of its key hold enough and it is at the head
of the key's queue (interactive before background, then first come first served); otherwise it is
told how long to wait. Waiting itself happens in the guard's drivers (threads block on an Event,
asyncio tasks on a Future), so one limiter serves both at once. Provider headers tighten the local
view; a 429 pauses the key until its retry-after.

Given a shared store (`store="local"` or Redis), configured limits are shared by every process on
it: on top of its own buckets, a call must fit this process's lease of the key's capacity
(`store/rates_lease.py`), spent in memory; only a call that does not fit asks the store, outside
the lock. Queues and priorities stay per process; limits learnt from headers stay per process.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmguard.policies.buckets import TokenBucket, resized
from llmguard.policies.rate_headers import RateLimitInfo, learnt_window_s
from llmguard.policies.tickets import PRIORITY_RANK, Ticket

if TYPE_CHECKING:
    from llmguard.store import Store
    from llmguard.store.rates_lease import RateLease, RateLeases

# Admit only once a call fits with this much refill to spare. Under heavy thread contention the
# simulator refused, about once in five 500-call bursts, a call our bucket had admitted with 1.5-3 ms
# of refill still missing on its side; 5 ms of margin is a one-off shift, not a rate.
SAFETY_S = 0.005


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """A key's limits: requests and tokens per `window_s` seconds (None: not limited)."""

    rpm: float | None = None
    tpm: float | None = None
    window_s: float = 60.0


@dataclass
class _Key:
    """One limited key: its buckets, its queue of waiting calls and what it has admitted."""

    spec: LimitSpec
    requests: TokenBucket | None
    tokens: TokenBucket | None
    queue: list[Ticket] = field(default_factory=list)
    paused_until: float = 0.0
    admitted: int = 0
    max_queue_wait_s: float = 0.0
    last_admitted: Ticket | None = None
    learnt: bool = False  # the limit came from the provider's headers, not from settings
    lease: RateLease | None = None  # the limit is shared through the store


class Limiter:
    """Admission control for every limited key (a model, a model group or a deployment)."""

    def __init__(
        self,
        limits: dict[str, LimitSpec] | None = None,
        clock: Any = time.monotonic,
        store: Store | None = None,
        lease_ttl_s: float = 10.0,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, _Key] = {}
        self._seq = itertools.count()
        self._rates: RateLeases | None = None  # configured limits are shared through this store
        if store is not None:
            from llmguard.store.rates_lease import RateLeases

            self._rates = RateLeases(store, self._lock, lease_ttl_s)
        # calls in flight to keys with no limit yet: when a limit is learnt from the first answer,
        # the provider may not have counted the others against it yet, so they are taken off
        self._untracked: dict[str, int] = {}
        for key, spec in (limits or {}).items():
            self.set_limit(key, spec)

    # ---- configuration ---------------------------------------------------------------------
    def set_limit(self, key: str, spec: LimitSpec) -> None:
        now = self._clock()
        with self._lock:
            state = self._keys.get(key)
            if state is None:
                state = self._keys[key] = _Key(
                    spec,
                    TokenBucket(spec.rpm, spec.window_s, now) if spec.rpm else None,
                    TokenBucket(spec.tpm, spec.window_s, now) if spec.tpm else None,
                )
            else:
                state.spec = spec
                state.requests = resized(state.requests, spec.rpm, spec.window_s, now)
                state.tokens = resized(state.tokens, spec.tpm, spec.window_s, now)
            if self._rates is not None:
                state.lease = self._rates.lease(key, *_caps(spec)) if spec.rpm or spec.tpm else None
            self._wake_head(state)

    def close(self) -> None:
        """Give shared capacity back to the store and close it."""
        if self._rates is not None:
            self._rates.close()

    def limited(self, key: str) -> bool:
        return key in self._keys

    def untracked_sent(self, key: str) -> None:
        """A call with no limit to charge was sent (see `observe`)."""
        with self._lock:
            self._untracked[key] = self._untracked.get(key, 0) + 1

    def untracked_done(self, key: str) -> None:
        with self._lock:
            left = self._untracked.get(key, 0) - 1
            if left > 0:
                self._untracked[key] = left
            else:
                self._untracked.pop(key, None)

    def spec(self, key: str) -> LimitSpec | None:
        state = self._keys.get(key)
        return state.spec if state else None

    # ---- admission -------------------------------------------------------------------------
    def enqueue(self, key: str, tokens: int, priority: str = "interactive") -> Ticket:
        now = self._clock()
        ticket = Ticket(key, tokens, PRIORITY_RANK.get(priority, 0), next(self._seq), now)
        with self._lock:
            state = self._keys.get(key)
            if state is not None:
                heapq.heappush(state.queue, ticket)
        return ticket

    def try_admit(self, ticket: Ticket) -> float:
        """0.0 when admitted (capacity now reserved); else seconds to wait (inf: wait to be woken)."""
        for _ in range(3):
            result = self._try_admit(ticket)
            if isinstance(result, float):
                return result
            assert self._rates is not None  # the lease is short: ask the store, outside the lock
            wait = self._rates.refill(result, ticket.tokens)
            if wait > 0:
                return wait
        return 0.001

    def _try_admit(self, ticket: Ticket) -> float | RateLease:
        now = self._clock()
        with self._lock:
            state = self._keys.get(ticket.key)
            if state is None or ticket.admitted:
                ticket.admitted = True
                return 0.0
            self._drop_cancelled(state)
            if not state.queue or state.queue[0] is not ticket:
                return math.inf  # not our turn: the call ahead of us wakes us when it is admitted
            if now < state.paused_until:
                return state.paused_until - now
            wait = 0.0
            for bucket, amount in ((state.requests, 1), (state.tokens, ticket.tokens)):
                if bucket is not None:
                    bucket.refill(now)
                    need = amount + bucket.rate * SAFETY_S if amount < bucket.capacity else amount
                    wait = max(wait, bucket.wait_for(min(need, bucket.capacity)))
            if wait > 0:
                return wait
            lease = state.lease
            if lease is not None:
                leased = lease.fallback is None
                taken = lease.take(ticket.tokens, time.monotonic())
                if taken is None:
                    return lease
                if taken > 0:
                    return taken
                if leased:  # in flight in the lease until answered
                    ticket.lease = lease
            for bucket, amount in ((state.requests, 1), (state.tokens, ticket.tokens)):
                if bucket is not None:
                    if bucket.level >= bucket.capacity:
                        # The provider's bucket starts draining when this request *arrives*, which can be
                        # a third of a second after now (new connections, a busy event loop). Refilling
                        # from now would put us ahead of it; refill starts when the provider answers.
                        bucket.stamp = math.inf
                        ticket.starts_refill = True
                    bucket.level -= amount
            # Kept for header sync only while no later call was admitted: with calls overtaking each
            # other on the way, the provider's "remaining" cannot be matched to ours.
            if state.tokens is not None:
                ticket.level_after = state.tokens.level
            if state.requests is not None:
                ticket.requests_after = state.requests.level
            heapq.heappop(state.queue)
            ticket.admitted, ticket.admitted_at = True, now
            state.admitted += 1
            state.last_admitted = ticket
            state.max_queue_wait_s = max(state.max_queue_wait_s, now - ticket.enqueued)
            self._wake_head(state)
            return 0.0

    def never_fits(self, ticket: Ticket) -> str | None:
        """Why this call can never be admitted (it is bigger than the whole TPM bucket), or None."""
        state = self._keys.get(ticket.key)
        if state is not None and state.tokens is not None and ticket.tokens > state.tokens.capacity:
            return (
                f"the call needs {ticket.tokens:,} tokens (prompt + max tokens) but the {ticket.key} TPM limit is "
                f"{state.tokens.capacity:,.0f}"
            )
        return None

    def cancel(self, ticket: Ticket) -> None:
        """The call left the queue (it fell back, was refused or gave up)."""
        with self._lock:
            ticket.cancelled = True
            state = self._keys.get(ticket.key)
            if state is not None and not ticket.admitted:
                self._drop_cancelled(state)
                self._wake_head(state)

    def answered(self, ticket: Ticket) -> None:
        """The provider has seen this call (it answered, or the attempt ended)."""
        if ticket.lease is not None or ticket.starts_refill:
            with self._lock:
                self._land(ticket)
                if ticket.starts_refill:
                    self._start_refill(ticket)

    @staticmethod
    def _land(ticket: Ticket) -> None:
        """A call admitted from a rate lease leaves its holder's calls in flight (lock held)."""
        if ticket.lease is not None and not ticket.landed:
            ticket.landed = True
            ticket.lease.landed(ticket.tokens)

    def _start_refill(self, ticket: Ticket) -> None:
        ticket.starts_refill = False
        state = self._keys.get(ticket.key)
        if state is None:
            return
        now = self._clock()
        for bucket in (state.requests, state.tokens):
            if bucket is not None and bucket.stamp == math.inf:
                bucket.stamp = now
        self._wake_head(state)

    def reconcile(self, ticket: Ticket, charged_tokens: int) -> None:
        """Replace the estimate with what the provider really charged (the difference goes back)."""
        if not ticket.admitted:
            return
        with self._lock:
            state = self._keys.get(ticket.key)
            if ticket.starts_refill:
                self._start_refill(ticket)
            if ticket.lease is not None:
                self._land(ticket)
                ticket.lease.refund(ticket.tokens - charged_tokens)
                ticket.lease = None
            if state is None or state.tokens is None:
                return
            state.tokens.refill(self._clock())
            state.tokens.level = min(state.tokens.capacity, state.tokens.level + (ticket.tokens - charged_tokens))
            self._wake_head(state)

    # ---- learning from the provider ------------------------------------------------------------
    def observe(self, key: str, info: RateLimitInfo, ticket: Ticket | None, window_s: float) -> None:
        """Tighten the local view with what the provider says (never loosen it)."""
        now = self._clock()
        with self._lock:
            state = self._keys.get(key)
            if state is None:
                if info.limit_requests is None and info.limit_tokens is None:
                    return
                window_s = learnt_window_s(info, window_s)
                spec = LimitSpec(info.limit_requests, info.limit_tokens, window_s)
                state = self._keys[key] = _Key(
                    spec,
                    TokenBucket(spec.rpm, window_s, now) if spec.rpm else None,
                    TokenBucket(spec.tpm, window_s, now) if spec.tpm else None,
                    learnt=True,
                )
                if state.tokens is not None and info.remaining_tokens is not None:
                    state.tokens.level = min(state.tokens.level, info.remaining_tokens)
                if state.requests is not None and info.remaining_requests is not None:
                    state.requests.level = min(state.requests.level, info.remaining_requests)
                    # the other calls already on their way: the provider's `remaining` may not hold them
                    state.requests.level -= max(0, self._untracked.get(key, 0) - 1)
                return
            spec = state.spec
            if state.learnt:  # a later answer may say more precisely how fast the provider refills
                window = learnt_window_s(info, spec.window_s)
                if window < 0.9 * spec.window_s:
                    state.spec = spec = LimitSpec(spec.rpm, spec.tpm, window)
                    state.requests = resized(state.requests, spec.rpm, window, now)
                    state.tokens = resized(state.tokens, spec.tpm, window, now)
            if info.limit_tokens is not None and (spec.tpm is None or info.limit_tokens < spec.tpm):
                state.spec = spec = LimitSpec(spec.rpm, info.limit_tokens, spec.window_s)
                state.tokens = resized(state.tokens, info.limit_tokens, spec.window_s, now)
                if state.tokens is not None and info.remaining_tokens is not None:  # None: a limit of 0
                    state.tokens.level = min(state.tokens.level, info.remaining_tokens)
            if info.limit_requests is not None and (spec.rpm is None or info.limit_requests < spec.rpm):
                state.spec = spec = LimitSpec(info.limit_requests, spec.tpm, spec.window_s)
                state.requests = resized(state.requests, info.limit_requests, spec.window_s, now)
                if state.requests is not None and info.remaining_requests is not None:  # None: a limit of 0
                    state.requests.level = min(state.requests.level, info.remaining_requests)
            # The server saw this call at about its admission: if it held less than we did then,
            # someone else (another process, a colleague) spends from the same limit. Take it off.
            if ticket is not None and state.last_admitted is ticket:
                for bucket, ours, theirs, slack in (
                    (state.tokens, ticket.level_after, info.remaining_tokens, 16.0),
                    (state.requests, ticket.requests_after, info.remaining_requests, 1.0),
                ):
                    if bucket is None or ours is None or theirs is None:
                        continue
                    gap = min(ours, bucket.capacity) - theirs
                    if gap > max(slack, 0.01 * bucket.capacity):
                        bucket.refill(now)
                        bucket.level -= gap
                ticket.level_after = ticket.requests_after = None  # count each observation once
            if state.lease is not None:  # the shared book follows a limit the headers tightened
                state.lease.caps, state.lease.window_s = _caps(state.spec)

    def pause(self, key: str, seconds: float) -> None:
        """After a 429: nobody on this key is admitted until the provider's retry-after has passed."""
        with self._lock:
            state = self._keys.get(key)
            if state is not None:
                state.paused_until = max(state.paused_until, self._clock() + seconds)
                if state.tokens is not None:
                    state.tokens.level = min(state.tokens.level, 0.0)
                if state.lease is not None and self._rates is not None:
                    self._rates.paused(state.lease, seconds)

    # ---- visibility ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, dict[str, Any]]:
        now = self._clock()
        out = {}
        with self._lock:
            for key, state in self._keys.items():
                self._drop_cancelled(state)
                live = [t for t in state.queue if not t.cancelled]
                for bucket in (state.requests, state.tokens):
                    if bucket is not None:
                        bucket.refill(now)
                out[key] = {
                    "rpm": state.spec.rpm,
                    "tpm": state.spec.tpm,
                    "window_s": state.spec.window_s,
                    "queue_depth": len(live),
                    "oldest_wait_s": max((now - t.enqueued for t in live), default=0.0),
                    "requests_left": state.requests.level if state.requests else None,
                    "tokens_left": state.tokens.level if state.tokens else None,
                    "admitted": state.admitted,
                    "max_queue_wait_s": state.max_queue_wait_s,
                    "paused_s": max(0.0, state.paused_until - now),
                }
        return out

    # ---- internals -----------------------------------------------------------------------------
    @staticmethod
    def _drop_cancelled(state: _Key) -> None:
        while state.queue and state.queue[0].cancelled:
            heapq.heappop(state.queue)

    @staticmethod
    def _wake_head(state: _Key) -> None:
        Limiter._drop_cancelled(state)
        if state.queue:
            state.queue[0].notify()


def _caps(spec: LimitSpec) -> tuple[tuple[float, float], float]:
    """A spec as a rate book's (requests, tokens) caps (0: not limited) and window."""
    return (float(spec.rpm or 0), float(spec.tpm or 0)), spec.window_s
