"""In-flight deduplication: an identical cacheable call already running is waited for, not repeated.

Two layers, used in this order by the guard after a cache miss:

1. In this process, `InflightRegistry.claim(key)` makes the first caller the leader; later callers
   are followers that wait (`Claim.wait` in threads, `await Claim.await_async` in asyncio — both
   at once work) until the leader calls `Claim.finish(response)` or `Claim.finish(None, error)`.
2. Across processes sharing LLMGUARD_HOME, the in-process leader calls `try_lead(key, ttl_s)` on
   `open_leads(home / "inflight")` (a byte-range lock per key; marker files where locks are
   missing). If another process leads, it polls with `poll_leader` (the other leader stores its
   answer in the response cache, then lets go), sleeping `FollowerPoll.next_delay()` between polls,
   which the sans-io pipeline turns into `Sleep` actions. A crashed leader's lock ends with it.

A leader claim takes this machine's lead and only then looks the cache up, once: a leader
elsewhere stores the answer in the cache first and then lets go of its lead and finishes its
claim, so a lookup made while holding the lead sees any answer stored before it, and a follower
that sees the lead gone and still finds no answer knows the leader failed.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmguard.cache.entry import CachedResponse


class LeaderFailed(RuntimeError):
    """The identical call this one waited for ended without an answer that can be shared."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a follower gets: the leader's answer, the leader's failure, or its own timeout."""

    response: CachedResponse | None = None
    error: BaseException | None = None
    timed_out: bool = False
    stored: bool = False  # the leader found the answer already stored: its followers hit the cache too

    @property
    def ok(self) -> bool:
        return self.response is not None


_TIMED_OUT = Outcome(timed_out=True)


def _settle(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


class _Flight:
    """One running call and everyone waiting for it, in threads or on any number of event loops."""

    __slots__ = ("_lock", "_event", "_outcome", "_futures", "followers")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._outcome: Outcome | None = None
        self._futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Outcome]]] = []
        self.followers = 0

    def resolve(self, outcome: Outcome) -> bool:
        """Wake every waiter; False if the flight was already resolved (the first outcome wins)."""
        with self._lock:
            if self._outcome is not None:
                return False
            self._outcome = outcome
            futures, self._futures = self._futures, []
        self._event.set()
        for loop, future in futures:
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # that loop is closed: nobody is waiting there any more
                pass
        return True

    def wait(self, timeout: float | None) -> Outcome:
        if self._event.wait(timeout):
            assert self._outcome is not None
            return self._outcome
        return _TIMED_OUT

    async def await_async(self, timeout: float | None) -> Outcome:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio or another loop via anyio: wait in a worker thread
            import anyio

            return await anyio.to_thread.run_sync(self.wait, timeout)
        future: asyncio.Future[Outcome] = loop.create_future()
        entry = (loop, future)
        with self._lock:
            if self._outcome is not None:
                return self._outcome
            self._futures.append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return _TIMED_OUT
        finally:
            with self._lock:
                if entry in self._futures:
                    self._futures.remove(entry)


class Claim:
    """A caller's place in a flight: the leader sends the call, followers wait for its outcome.

    A leader must finish exactly once; `with claim:` finishes it as failed if the block raises or
    ends without finishing, so followers are never left waiting for a leader that is gone.
    """

    __slots__ = ("key", "is_leader", "_flight", "_registry")

    def __init__(self, key: str, is_leader: bool, flight: _Flight, registry: InflightRegistry) -> None:
        self.key = key
        self.is_leader = is_leader
        self._flight = flight
        self._registry = registry

    @property
    def followers(self) -> int:
        return self._flight.followers

    def wait(self, timeout: float | None) -> Outcome:
        """Block until the leader finishes or `timeout` seconds pass (followers only)."""
        self._require(leader=False)
        return self._flight.wait(timeout)

    async def await_async(self, timeout: float | None) -> Outcome:
        """Await the leader's outcome without blocking the event loop (followers only)."""
        self._require(leader=False)
        return await self._flight.await_async(timeout)

    def finish(self, response: CachedResponse | None, error: BaseException | None = None, stored: bool = False) -> None:
        """Hand the leader's answer (or failure) to every follower and end the flight.

        `stored`: the answer came from the cache, not from a call (followers report a hit).
        """
        self._require(leader=True)
        self._registry._finish(self.key, self._flight, _outcome(response, error, stored))

    def abandon(self, error: BaseException | None = None) -> None:
        """End a leader's flight without an answer (idempotent: a finished flight stays finished)."""
        if self.is_leader:
            self._registry._finish(self.key, self._flight, _outcome(None, error))

    def _require(self, leader: bool) -> None:
        if self.is_leader != leader:
            role = "the leader" if leader else "a follower"
            raise RuntimeError(f"llmguard: only {role} of an in-flight call may do this")

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.abandon(exc)


def _outcome(response: CachedResponse | None, error: BaseException | None, stored: bool = False) -> Outcome:
    if response is None and error is None:
        error = LeaderFailed("llmguard: the identical call this one waited for got no cacheable answer")
    return Outcome(response=response, error=error, stored=stored)


class InflightRegistry:
    """Calls running in this process by cache key. Thread-safe and loop-agnostic."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}

    def claim(self, key: str) -> Claim:
        """Lead the call for `key` if nobody runs it yet, else follow whoever does."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = _Flight()
                return Claim(key, True, flight, self)
            flight.followers += 1
            return Claim(key, False, flight, self)

    def finish(self, key: str, response: CachedResponse | None, error: BaseException | None = None) -> None:
        """End whatever flight runs for `key` (prefer `Claim.finish`, which cannot end a newer one)."""
        with self._lock:
            flight = self._flights.pop(key, None)
        if flight is not None:
            flight.resolve(_outcome(response, error))

    def _finish(self, key: str, flight: _Flight, outcome: Outcome) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.resolve(outcome)

    def __len__(self) -> int:
        return len(self._flights)

    def __contains__(self, key: object) -> bool:
        return key in self._flights


# Across processes: see lock_leads.py and markers.py (re-exported here, where callers look).
from llmguard.cache.lock_leads import LockLeads, open_leads  # noqa: E402
from llmguard.cache.markers import (  # noqa: E402
    GONE,
    HIT,
    WAITING,
    FollowerPoll,
    Leads,
    MarkerLeads,
    Poll,
    next_poll_delay,
    poll_leader,
)

__all__ = [
    "GONE",
    "HIT",
    "WAITING",
    "Claim",
    "FollowerPoll",
    "InflightRegistry",
    "LeaderFailed",
    "Leads",
    "LockLeads",
    "MarkerLeads",
    "Outcome",
    "Poll",
    "next_poll_delay",
    "open_leads",
    "poll_leader",
]
