"""A process's side of shared rate limits: admit calls against leased capacity locally, rarely ask the store.

For each shared key (a model with `limits`), this process leases request and token capacity from the
store's rate book (`rates.py`). A call is admitted in memory when the unspent lease covers it (1
request, its tokens); only a call that does not fit asks the store (`need` = that call, `want` =
what this process admitted over the last `HORIZON_S`, so a busy process asks a few times a second
at most and a saturated one once per capacity that frees). A keeper thread reports what was
answered (a call stays in the lease while in flight: `rates.py` says why), tops leases up to recent
demand, renews them every third of the TTL, and gives an idle process's lease back after `IDLE_S`.

Bounds on over-admission (by the provider's buckets, for processes configured with the same limits):
- Running processes: none. Leased capacity is out of the shared bucket until spent or given back.
- A process killed with `kill -9`: its lease is spent by nobody; it is free again `lease_ttl_s` after
  its last renewal (as much as the provider has refilled since the holder could last spend it).
- The store unreachable: each process falls back to its own share, `limit / holders` (the processes
  it last saw on the book) per window, starting from what its lease still held; so only processes
  that joined during the outage can push the total past the limit. It warns once, retries the store
  every `RETRY_S` and, when it answers, resyncs (the book restarts empty, then refills).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
import warnings
from typing import Any

from llmguard.policies.buckets import TokenBucket
from llmguard.store import Store, StoreUnavailable
from llmguard.store.rates import EPS, RateGrant, RateRequest

HORIZON_S = 0.25  # a lease is sized to this much of the process's recent demand
REPORT_S = 0.1  # spent capacity reaches the store this long after the call, at most
IDLE_S = 0.2  # no call admitted for this long: the lease goes back to the store
RETRY_S = 0.5  # the store unreachable: asked again this often
VALID = 0.8  # a lease is spent for this fraction of its TTL after the last good sync
MARGIN_S = 0.005  # as the limiter's SAFETY_S


class Recent:
    """What was admitted over the last HORIZON_S or so (two windows): the lease to ask for."""

    __slots__ = ("start", "current", "previous")

    def __init__(self) -> None:
        self.start, self.current, self.previous = 0.0, [0.0, 0.0], [0.0, 0.0]

    def add(self, amounts: tuple[float, float], now: float) -> None:
        self._roll(now)
        self.current[0] += amounts[0]
        self.current[1] += amounts[1]

    def estimate(self, now: float) -> tuple[float, float]:
        self._roll(now)
        return max(self.current[0], self.previous[0]), max(self.current[1], self.previous[1])

    def _roll(self, now: float) -> None:
        if now - self.start >= HORIZON_S:
            fresh = now - self.start < 2 * HORIZON_S
            self.previous = self.current if fresh else [0.0, 0.0]
            self.current, self.start = [0.0, 0.0], now


class RateLease:
    """One key's lease as this process knows it; fields change under the limiter's lock.

    The store's lease is `held` (unspent at the last sync) plus `inflight` (admitted, not answered).
    A call moves from the unspent part to `inflight` when admitted (`taken`), and out of the lease
    when answered (`answered`, reported to the store as spent at the next sync).
    """

    def __init__(self, key: str, caps: tuple[float, float], window_s: float) -> None:
        self.key, self.caps, self.window_s = key, caps, window_s
        self.held = [0.0, 0.0]  # unspent lease at the last sync
        self.taken = [0.0, 0.0]  # admitted from `held` since the last sync
        self.inflight = [0.0, 0.0]  # admitted from a lease, not answered yet
        self.answered = [0.0, 0.0]  # answered since the last sync: spent, it leaves the lease
        self.valid_until = 0.0
        self.synced_at = 0.0
        self.last_admit = 0.0
        self.gen: str | None = None
        self.holders = 1
        self.recent = Recent()
        self.pause_s = 0.0
        self.fallback: list[TokenBucket | None] | None = None  # the store is unreachable: our share
        self.sync_lock = threading.Lock()
        # while a sync is in flight the store may give back all but `target` of the unspent lease:
        # calls taken meanwhile must fit in that (`taken` counted from `taken_at_sync`)
        self.target: tuple[float, float] | None = None
        self.taken_at_sync = (0.0, 0.0)

    def take(self, tokens: int, now: float) -> float | None:
        """0.0: admitted (taken from the lease); seconds to wait (fallback share); None: ask the store."""
        amounts = (1.0, float(tokens))
        if self.fallback is not None:
            wait = 0.0
            for bucket, amount in zip(self.fallback, amounts, strict=True):
                if bucket is not None:
                    bucket.refill(now)
                    wait = max(wait, bucket.wait_for(min(amount, bucket.capacity)))
            if wait > 0:
                return wait
            for bucket, amount in zip(self.fallback, amounts, strict=True):
                if bucket is not None:
                    bucket.level -= amount
            self._count(amounts, now)
            return 0.0
        if now >= self.valid_until:
            return None
        for i in (0, 1):
            if self.caps[i] > 0 and self.held[i] - self.taken[i] + EPS < amounts[i]:
                return None
            target = self.target
            if target is not None and self.caps[i] > 0:
                if self.taken[i] - self.taken_at_sync[i] + amounts[i] > target[i] + EPS:
                    return None  # wait for the sync (the store may give back what this would spend)
        for i in (0, 1):
            self.taken[i] += amounts[i]
            self.inflight[i] += amounts[i]
        self._count(amounts, now)
        return 0.0

    def landed(self, tokens: float) -> None:
        """A call admitted from the lease was answered (or its attempt ended): it is spent."""
        for i, amount in enumerate((1.0, tokens)):
            self.inflight[i] = max(0.0, self.inflight[i] - amount)
            self.answered[i] += amount

    def refund(self, tokens: float) -> None:
        """The provider charged `tokens` fewer than were admitted (negative: more): the rest is unspent again."""
        self.answered[1] -= tokens
        self.taken[1] -= tokens

    def unspent(self) -> tuple[float, float]:
        return self.held[0] - self.taken[0], self.held[1] - self.taken[1]

    def _count(self, amounts: tuple[float, float], now: float) -> None:
        self.recent.add(amounts, now)
        self.last_admit = now


class RateLeases:
    """The rate leases of one limiter; `lock` is the limiter's."""

    def __init__(self, store: Store, lock: threading.Lock, ttl_s: float) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.error: str | None = None
        self._lock = lock
        self._leases: dict[str, RateLease] = {}
        self._warned = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._keeper: threading.Thread | None = None

    # ---- called by the limiter with its lock held ------------------------------------------------
    def lease(self, key: str, caps: tuple[float, float], window_s: float) -> RateLease:
        lease = self._leases.get(key)
        if lease is None:
            lease = self._leases[key] = RateLease(key, caps, window_s)
        else:
            lease.caps, lease.window_s, lease.valid_until = caps, window_s, 0.0
        if self._keeper is None:
            self._keeper = threading.Thread(target=self._keep, name="llmguard-rate-leases", daemon=True)
            self._keeper.start()
        return lease

    def paused(self, lease: RateLease, seconds: float) -> None:
        """The provider answered 429: every process holds off (and its bucket counts as empty)."""
        lease.pause_s = max(lease.pause_s, seconds)
        self._wake.set()

    # ---- called without the limiter's lock ---------------------------------------------------------
    def refill(self, lease: RateLease, tokens: int) -> float:
        """Ask the store for the capacity one call needs: 0.0 to try again now, else seconds to wait."""
        with lease.sync_lock:
            with self._lock:
                unspent = lease.unspent()
                fits = lease.fallback is not None or (
                    time.monotonic() < lease.valid_until
                    and all(lease.caps[i] <= 0 or unspent[i] + EPS >= need for i, need in enumerate((1.0, tokens)))
                )
            if fits:
                return 0.0
            grant = self._sync(lease, need=(1.0, float(tokens)))
            if grant is None or grant.granted:
                return 0.0
            return grant.wait_s

    def close(self) -> None:
        """Stop the keeper and give every lease back (one not given back expires after its TTL)."""
        self._stop.set()
        self._wake.set()
        if self._keeper is not None:
            self._keeper.join(timeout=5)
        for lease in list(self._leases.values()):
            if lease.fallback is None:
                with lease.sync_lock:
                    self._sync(lease, leave=True)
        self._leases.clear()
        self.store.close()

    def _sync(self, lease: RateLease, need: tuple[float, float] = (0.0, 0.0), leave: bool = False) -> RateGrant | None:
        """One round trip; None if the store could not be reached (the lease then falls back)."""
        with self._lock:
            now = time.monotonic()
            used = (lease.answered[0], lease.answered[1])
            taken = (lease.taken[0], lease.taken[1])
            hold = (lease.inflight[0], lease.inflight[1])
            pause = lease.pause_s
            lease.pause_s = 0.0
            resync = lease.fallback is not None
            idle = now - lease.last_admit >= IDLE_S and need == (0.0, 0.0)
            want = (0.0, 0.0) if idle or leave else lease.recent.estimate(now)
            lease.target = (0.0, 0.0) if leave else (max(want[0], need[0]), max(want[1], need[1]))
            lease.taken_at_sync = taken
            request = RateRequest(
                key=lease.key,
                holder=self.holder,
                caps=lease.caps,
                window_s=lease.window_s,
                used=used,
                hold=hold,
                need=need,
                want=want,
                ttl_s=self.ttl_s,
                valid_s=self.ttl_s * VALID,
                margin_s=MARGIN_S,
                gen=lease.gen,
                pause_s=pause,
                resync=resync,
                leave=leave,
                keep_s=max(86400.0, 10 * lease.window_s),
            )
        try:
            grant = self.store.sync_rates(request)
        except StoreUnavailable as exc:
            with self._lock:
                lease.target = None
                lease.pause_s = max(lease.pause_s, pause)
                lease.synced_at = now
                self.error = exc.reason
                if lease.fallback is None:
                    self._fall_back(lease, exc)
            return None
        except BaseException:
            with self._lock:
                lease.target = None
            raise
        with self._lock:
            lease.target = None
            if resync:  # the fallback admitted on its own buckets: nothing of it is in the lease
                lease.fallback = None
                lease.taken, lease.answered = [0.0, 0.0], [0.0, 0.0]
                self._warned = False
            else:
                lease.taken = [lease.taken[i] - taken[i] for i in (0, 1)]
                lease.answered = [lease.answered[i] - used[i] for i in (0, 1)]
            lease.held = [grant.held[0], grant.held[1]]
            lease.gen, lease.holders = grant.gen, grant.holders
            lease.synced_at = now
            lease.valid_until = now + self.ttl_s * VALID
            self.error = None
        return grant

    def _fall_back(self, lease: RateLease, exc: StoreUnavailable) -> None:
        """Admit on this process's share of the limit until the store answers again (lock held)."""
        now = time.monotonic()
        share = max(1, lease.holders)
        unspent = lease.unspent() if now < lease.valid_until else (0.0, 0.0)
        buckets: list[TokenBucket | None] = []
        for i in (0, 1):
            if lease.caps[i] <= 0:
                buckets.append(None)
                continue
            bucket = TokenBucket(lease.caps[i] / share, lease.window_s, now)
            if share > 1:
                bucket.level = min(bucket.capacity, max(0.0, unspent[i]))
            buckets.append(bucket)
        lease.fallback = buckets
        if not self._warned:
            self._warned = True
            warnings.warn(_warning(exc, lease, share), RuntimeWarning, stacklevel=2)

    def _keep(self) -> None:
        """Report spend, top leases up to demand, renew them, give idle ones back, restart refills."""
        renew_s = self.ttl_s / 3
        while not self._stop.is_set():
            self._wake.wait(REPORT_S / 2)
            self._wake.clear()
            if self._stop.is_set():
                return
            for lease in list(self._leases.values()):
                now = time.monotonic()
                since = now - lease.synced_at
                if lease.fallback is not None:
                    due = since >= RETRY_S
                else:
                    spent = lease.answered[0] != 0 or lease.answered[1] != 0
                    idle = now - lease.last_admit >= IDLE_S and (lease.held[0] > EPS or lease.held[1] > EPS)
                    due = lease.pause_s > 0 or since >= renew_s or idle
                    due = due or (spent and since >= REPORT_S)
                if due and lease.sync_lock.acquire(blocking=False):
                    try:
                        self._sync(lease)
                    finally:
                        lease.sync_lock.release()


def _warning(exc: StoreUnavailable, lease: RateLease, share: int) -> str:
    of = f"1/{share} of " if share > 1 else ""
    return (
        f"llmguard: the shared store {exc}; the {lease.key} rate limit falls back to {of}its limit in this "
        "process until the store answers again (then it is shared again)."
    )


def open_rate_store(settings: Any) -> Store | None:
    """The store rate limits are shared through, or None (each process its own limits).

    `store` decides, as for budgets. `shared_limits=True` (before stores, it shared limits between
    the processes of one home) is kept as an alias of the local store for rate limits, with a
    FutureWarning: it is no longer needed, since rate limits now follow `store`.
    """
    from llmguard.store import open_store

    setting = settings.store
    if settings.shared_limits:
        if setting == "process":
            setting = "local"
            advice = "use store='local' (shares budgets too) instead"
        else:
            advice = f"rate limits are already shared through store={describe_store(setting)!r}; remove it"
        warnings.warn(f"llmguard: shared_limits is deprecated: {advice}.", FutureWarning, stacklevel=4)
    if setting == "process":
        return None
    store = open_store(setting, settings.namespace, settings.home_path)
    return store if store.shared else None


def describe_store(setting: str) -> str:
    from llmguard.store import describe

    return describe(setting)
