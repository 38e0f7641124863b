"""The shared-state seam: where budgets and quotas keep the money every process shares.

One small protocol (`Store`), three implementations chosen by the `store` setting:

- `"process"` (`memory.py`): this process only, as llmguard always was.
- `"local"` (`local.py`, the default): every process sharing `LLMGUARD_HOME` on this machine, in
  `<home>/store.sqlite3` (WAL, `synchronous=NORMAL`; a transaction only when a lease changes).
- `"redis://..."` / `"rediss://..."` (`redis_store.py`, extra `llmguard[redis]`): every process on
  every machine pointing at that Redis; `namespace` separates teams or projects in one Redis.

A store holds *books*, one per limit (a session budget, a tenant's quota for a day): what was spent,
and the *leases* processes hold. A lease is money reserved in the store for one process, which then
admits calls against it locally with no round trip (`lease.py`). `books.py` is the arithmetic every
store applies atomically (the Redis store in Lua), so the sum of spent money and live leases never
exceeds the limit. Rate limits keep *rate books* the same way (`rates.py`: leased request and token
capacity; `rates_lease.py` is a process's side). Policies talk only to this seam, never to SQLite or Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from llmguard.store.rates import RateGrant, RateRequest

from llmguard.redact import url_without_password

__all__ = ["Grant", "Store", "StoreUnavailable", "SyncRequest", "describe", "open_store"]


@dataclass(frozen=True)
class SyncRequest:
    """One atomic step on one book: report spend, keep what calls in flight hold, ask for more.

    `hold` is what this process's calls in flight have reserved (always kept), `need` the least
    extra money that admits the call waiting on it (0: none waits), `want` the extra headroom this
    process would like (sized from its recent demand). `gen` and `known` are the book's generation
    and its total as this process last saw them: if the store lost the book (a Redis restart), the
    total is rebuilt from what the processes still running knew, without counting anything twice.
    """

    key: str
    holder: str
    limit: float
    spent_delta: float = 0.0  # spent since the last sync (moves from the lease into the book)
    hold: float = 0.0
    need: float = 0.0
    want: float = 0.0
    ttl_s: float = 10.0
    gen: str | None = None
    known: float = 0.0
    seed: float = 0.0  # a new book starts at this (today's spend from the ledger, for per-day quotas)
    fresh_when_idle: bool = False  # a book nobody holds starts over (a session budget's new session)
    leave: bool = False  # nothing held any more: drop this process's lease
    keep_s: float = 86400.0  # how long a book no one touches is kept (Redis expiry)


@dataclass(frozen=True)
class Grant:
    """What the store answered: this process's lease now, the book's total, what others hold."""

    held: float
    spent: float
    others: float
    gen: str
    granted: bool  # the `need` was met


class StoreUnavailable(Exception):
    """The store cannot be reached; the message names it (never with its password) and why."""

    def __init__(self, label: str, reason: str) -> None:
        super().__init__(f"{label} cannot be reached ({reason})")
        self.label = label
        self.reason = reason


class Store(Protocol):
    kind: str  # "process" | "local" | "redis"
    label: str  # how messages name it: "local (/home/u/.llmguard/store.sqlite3)", "redis://***@h:6379/0"
    shared: bool  # other processes see the same books (leases then expire and are kept small)

    def sync(self, request: SyncRequest) -> Grant:
        """Apply `request` to its book atomically; StoreUnavailable if the store cannot be reached."""
        ...

    def sync_rates(self, request: RateRequest) -> RateGrant:
        """Apply `request` to its rate book atomically (`rates.py`); StoreUnavailable as `sync`."""
        ...

    def ping(self) -> None:
        """Return if the store answers, else raise StoreUnavailable."""
        ...

    def close(self) -> None: ...


def describe(setting: str, home: Any = None) -> str:
    """The store setting as it may be shown: a Redis URL without its password."""
    if setting == "local" and home is not None:
        return f"local ({home}/store.sqlite3)"
    return url_without_password(setting)


def open_store(setting: str, namespace: str, home: Any) -> Store:
    """The store a `store` setting names (a ConfigError if its client library is missing)."""
    if setting == "process":
        from llmguard.store.memory import ProcessStore

        return ProcessStore()
    if setting == "local":
        from llmguard.store.local import open_local

        return open_local(home, namespace)
    from llmguard.store.redis_store import RedisStore

    return RedisStore(setting, namespace)
