"""One call's place in a limiter queue, and the handle its driver (a thread or a task) waits on."""

from __future__ import annotations

import threading
from typing import Any

PRIORITY_RANK = {"interactive": 0, "background": 1}


class Ticket:
    """One call's place in a key's queue; also the handle its driver waits on."""

    __slots__ = (
        "key",
        "tokens",
        "rank",
        "seq",
        "enqueued",
        "admitted",
        "cancelled",
        "notified",
        "_event",
        "_future",
        "_loop",
        "admitted_at",
        "level_after",
        "requests_after",
        "starts_refill",
        "lease",
        "landed",
    )

    def __init__(self, key: str, tokens: int, rank: int, seq: int, now: float) -> None:
        self.key, self.tokens, self.rank, self.seq, self.enqueued = key, tokens, rank, seq, now
        self.admitted = self.cancelled = self.notified = False
        self._event: threading.Event | None = None
        self._future: Any = None
        self._loop: Any = None
        self.admitted_at: float | None = None
        self.level_after: float | None = None  # local tokens left right after admission (header sync)
        self.requests_after: float | None = None
        self.starts_refill = False  # this call drained a full bucket: its answer starts the refill
        self.lease: Any = None  # the rate lease (a RateLease) it was admitted from, until reconciled
        self.landed = False  # it has left the lease's calls in flight

    def __lt__(self, other: Ticket) -> bool:
        return (self.rank, self.seq) < (other.rank, other.seq)

    # waking, for both kinds of driver; `notified` closes the race between "must wait" and "waiting"
    def notify(self) -> None:
        self.notified = True
        event, future, loop = self._event, self._future, self._loop
        if event is not None:
            event.set()
        if future is not None and loop is not None:
            loop.call_soon_threadsafe(_resolve, future)

    def wait_sync(self, timeout: float) -> None:
        if self._event is None:
            self._event = threading.Event()
        if self.notified:
            self.notified = False
            return
        self._event.wait(timeout)
        self._event.clear()
        self.notified = False

    async def wait_async(self, timeout: float) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._loop, self._future = loop, future
        if self.notified:
            self.notified = False
            return
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            self._future = None
            self.notified = False


def _resolve(future: Any) -> None:
    if not future.done():
        future.set_result(None)
