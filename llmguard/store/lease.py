"""A process's side of the leases: admit calls against leased money locally, talk to the store rarely.

Each shared limit (the session budget, a per-day quota) is a book in the store; this process holds a
lease on it: money the store keeps for this process alone. A call is admitted in memory when it fits
the lease's headroom (`held - reserved - unreported`), and only a call that does not fit asks the
store for more (`need` = that call's reservation, `want` = what this process reserved over the last
second, so a busy process asks about once a second). A keeper thread reports spend within
`REPORT_S` of a call settling, renews the lease every third of its TTL and shrinks it to recent
demand, so an idle process gives its headroom back.

Bounds, by the provider's books:
- Running processes never overspend: a lease is money the store reserved (`spent + leases <=
  limit` in the store, `reserved + spent <= lease` here), so together they spend at most the limit.
- The store unreachable: a lease is only spent until `VALID` of its TTL after the last good sync
  (the store may have expired it), then calls needing more are refused (`store_failure="closed"`),
  or admitted against the last known total (`"open"`, which can overspend by what others spend
  meanwhile).
- A process killed with `kill -9`: its lease expires after the TTL; what its calls in flight held
  at its last report counts as spent, the rest is free again. Spend it settled after its last
  report (at most `REPORT_S` of its calls) is the only money the store cannot know of.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from llmguard.store import Store, StoreUnavailable, SyncRequest
from llmguard.store.books import EPSILON

REPORT_S = 0.1  # spend reaches the store this long after a call settles, at most
VALID = 0.8  # a lease is spent locally for this fraction of its TTL after the last good sync
DEMAND_S = 1.0  # a lease is sized to this much of the process's recent demand


@dataclass
class Demand:
    """What this process reserved over the last second or so (two one-second windows)."""

    start: float = 0.0
    current: float = 0.0
    previous: float = 0.0

    def add(self, amount: float, now: float) -> None:
        self._roll(now)
        self.current += amount

    def estimate(self, now: float) -> float:
        self._roll(now)
        return max(self.current, self.previous)

    def _roll(self, now: float) -> None:
        if now - self.start >= DEMAND_S:
            self.previous = self.current if now - self.start < 2 * DEMAND_S else 0.0
            self.current, self.start = 0.0, now


@dataclass
class LeaseState:
    """One scope's lease, as this process knows it (changed only under the budget's lock)."""

    key: str
    seed: float = 0.0
    fresh_when_idle: bool = False
    keep_s: float = 86400.0
    gen: str | None = None
    held: float = 0.0  # leased from the store
    unreported: float = 0.0  # spent since the last sync
    others: float = 0.0  # what other processes held at the last sync
    valid_until: float = 0.0  # monotonic: the headroom may be spent until then
    synced_at: float = 0.0
    dirty: bool = False
    demand: Demand = field(default_factory=Demand)


class StoreRefusal(str):
    """A refusal because the store cannot be reached (the text is the whole message)."""


class Leases:
    """The leases of one budget; every method is called with the budget's lock held."""

    def __init__(self, store: Store, lock: threading.Lock, ttl_s: float, failure: str) -> None:
        self.store = store
        self.ttl_s = ttl_s if store.shared else math.inf
        self.failure = failure
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.error: str | None = None  # why the last sync failed; None once one succeeds
        self.warned = False
        self._lock = lock
        self._scopes: dict[str, Any] = {}  # scope name -> Scope: the leases to keep alive
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None

    def track(self, scope: Any) -> None:
        """Keep `scope`'s lease alive; the scope it replaces (the same quota, yesterday) is given back."""
        old = self._scopes.get(scope.name)
        self._scopes[scope.name] = scope
        if old is not None and old is not scope:
            self._sync_quietly(old, leave=True)
        if self.store.shared and self._keeper is None:
            self._keeper = threading.Thread(target=self._keep, name="llmguard-leases", daemon=True)
            self._keeper.start()

    def forget(self, scope: Any) -> None:
        """Give `scope`'s lease back (its limit was removed)."""
        name = scope.name
        if self._scopes.get(name) is scope:
            del self._scopes[name]
            self._sync_quietly(scope, leave=True)

    def join(self, scope: Any) -> None:
        """Take a lease of nothing: the book now counts this process as one of its holders."""
        self.track(scope)
        self._sync_quietly(scope)

    def void(self, scope: Any) -> None:
        """The limit changed: the next call asks the store before spending the headroom."""
        scope.lease.valid_until = 0.0

    def admit(self, scope: Any, amount: float) -> bool | StoreRefusal:
        """True if `amount` may be reserved against `scope` now; False if its limit would be exceeded."""
        lease = scope.lease
        now = time.monotonic()
        lease.demand.add(amount, now)
        if now < lease.valid_until and amount <= lease.held - scope.reserved - lease.unreported + EPSILON:
            return True
        want = math.inf if not self.store.shared else max(amount, lease.demand.estimate(now))
        try:
            granted = self._sync(scope, need=amount, want=want)
        except StoreUnavailable as exc:
            if not self.warned:
                self.warned = True
                import warnings

                warnings.warn(_warning(exc, self.failure), RuntimeWarning, stacklevel=5)
            if self.failure == "open":
                return amount <= scope.limit - scope.spent - scope.reserved + EPSILON
            return StoreRefusal(_refusal(scope.name, exc))
        return granted

    def spent(self, scope: Any, amount: float) -> None:
        scope.lease.unreported += amount
        scope.lease.dirty = True

    def close(self) -> None:
        """Stop the keeper and give every lease back (a lease not given back expires after its TTL)."""
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(timeout=5)
        with self._lock:
            for scope in list(self._scopes.values()):
                self._sync_quietly(scope, leave=True)
            self._scopes.clear()
            self.store.close()

    def _sync(self, scope: Any, need: float = 0.0, want: float = 0.0, leave: bool = False) -> bool:
        lease = scope.lease
        started = time.monotonic()
        grant = self.store.sync(
            SyncRequest(
                key=lease.key,
                holder=self.holder,
                limit=scope.limit,
                spent_delta=lease.unreported,
                hold=scope.reserved,
                need=need,
                want=0.0 if leave else want,
                ttl_s=self.ttl_s,
                gen=lease.gen,
                known=scope.spent - lease.unreported,  # the total as last seen
                seed=lease.seed,
                fresh_when_idle=lease.fresh_when_idle,
                leave=leave and scope.reserved <= 0,
                keep_s=lease.keep_s,
            )
        )
        lease.unreported = 0.0
        lease.dirty = False
        lease.gen, lease.held, lease.others = grant.gen, grant.held, grant.others
        scope.spent = grant.spent
        lease.synced_at = started
        lease.valid_until = started + self.ttl_s * VALID
        self.error = None
        self.warned = False
        return grant.granted

    def _sync_quietly(self, scope: Any, leave: bool = False) -> None:
        try:
            self._sync(scope, leave=leave)
        except StoreUnavailable as exc:
            self.error = exc.reason

    def _keep(self) -> None:
        """Report spend soon after it happens, renew leases before they expire, size them to demand."""
        renew_s = self.ttl_s / 3
        while not self._stop.wait(REPORT_S):
            with self._lock:
                now = time.monotonic()
                for scope in list(self._scopes.values()):
                    lease = scope.lease
                    due = now - lease.synced_at >= renew_s or (lease.dirty and now - lease.synced_at >= REPORT_S)
                    if not due:
                        continue
                    try:
                        self._sync(scope, want=lease.demand.estimate(now))
                    except StoreUnavailable as exc:
                        self.error = exc.reason
                        lease.synced_at = now  # try again at the next renewal, not at every tick


def _refusal(name: str, exc: StoreUnavailable) -> str:
    return (
        f"llmguard: the {name} is shared through the store {exc}, so this call was refused rather than "
        "risk spending money other processes may hold (store_failure='closed'). To continue, start the "
        "store or check its address, use store='local' (this machine's processes only) or "
        "store='process', or set store_failure='open' to spend against the last known total while it is down."
    )


def _warning(exc: StoreUnavailable, failure: str) -> str:
    then = (
        "calls are admitted against the last known totals until it returns (store_failure='open')"
        if failure == "open"
        else "calls that need more money than this process holds are refused until it returns"
    )
    return f"llmguard: the shared store {exc}; {then}."
