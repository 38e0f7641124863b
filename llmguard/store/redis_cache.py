"""Cached answers and in-flight leaders shared by every machine on one Redis (`store="redis://..."`).

The cache layer (`cache/stage.py`) keeps its disk cache and file markers for the processes of one
machine, and asks this second tier when the store is Redis: a local miss looks up
`llmguard:{namespace}:answer:{key}`, a stored answer is written there too (with the cache's TTL),
and one process on any machine leads each key (`...:lead:{key}`, `SET NX PX` with a token; only the
holder of the token releases it, a small Lua script). Values are `cache/entry.py`'s
own bytes (checksummed JSON and body, never a pickle: whatever else can write to that Redis cannot
make this process run code).

Redis unreachable: every lookup is a miss, every process leads its own call, answers stay on this
machine; one RuntimeWarning says so, and the tier is used again once Redis answers.
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
import warnings
from collections.abc import Iterable
from typing import Any

from llmguard.store import StoreUnavailable
from llmguard.store.redis_store import RedisStore

MAX_ANSWER_BYTES = 4 * 1024 * 1024  # a bigger answer stays on this machine (Redis memory is shared)

_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class RedisCacheTier:
    """The cache layer's view of Redis: answers by key, and one leader per key across machines."""

    def __init__(self, store: RedisStore, namespace: str) -> None:
        self.store = store
        self.label = store.label
        self._prefix = f"llmguard:{namespace}:"
        self._nonce = f"{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._serial = itertools.count()
        self._mine: dict[str, str] = {}  # key -> our lead token
        self._lock = threading.Lock()
        self._release = store.raw_client.register_script(_RELEASE)
        self._warned = False
        self.error: str | None = None

    # ---- answers ---------------------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        raw = self._quietly(lambda client: client.get(self._prefix + "answer:" + key), None)
        return raw if isinstance(raw, bytes) else None

    def put_many(self, items: Iterable[tuple[str, bytes]], ttl_s: float | None) -> None:
        """Store answers in one round trip (those over MAX_ANSWER_BYTES stay on this machine)."""
        kept = [(key, value) for key, value in items if len(value) <= MAX_ANSWER_BYTES]
        if not kept:
            return
        px = int(ttl_s * 1000) if ttl_s is not None else None

        def write(client: Any) -> None:
            pipe = client.pipeline(transaction=False)
            for key, value in kept:
                pipe.set(self._prefix + "answer:" + key, value, px=px)
            pipe.execute()

        self._quietly(write, None)

    def clear(self) -> int:
        """Remove every shared answer of this namespace (`llmguard cache clear`); StoreUnavailable if down."""

        def clear(client: Any) -> int:
            removed, batch = 0, []
            for name in client.scan_iter(match=self._prefix + "answer:*", count=500):
                batch.append(name)
                if len(batch) >= 500:
                    removed += client.unlink(*batch)
                    batch = []
            return removed + (client.unlink(*batch) if batch else 0)

        answer: int = self.store.run(clear)
        return answer

    # ---- one leader per key ----------------------------------------------------------------------
    def try_lead(self, key: str, ttl_s: float) -> bool:
        """True if this process now leads `key` on every machine (or Redis cannot tell); False if another does."""
        token = f"{self._nonce}:{next(self._serial)}"
        won = self._quietly(
            lambda client: client.set(self._prefix + "lead:" + key, token, nx=True, px=int(ttl_s * 1000)), True
        )
        if won:
            with self._lock:
                self._mine[key] = token
        return bool(won)

    def release(self, key: str) -> None:
        with self._lock:
            token = self._mine.pop(key, None)
        if token is not None:
            self._quietly(lambda c: self._release(keys=[self._prefix + "lead:" + key], args=[token], client=c), None)

    def is_led(self, key: str) -> bool:
        return bool(self._quietly(lambda client: client.exists(self._prefix + "lead:" + key), False))

    def close(self) -> None:
        """Close the tier's own connection to Redis (opened for it: budgets and rates have theirs)."""
        self.store.close()

    def _quietly(self, operation: Any, otherwise: Any) -> Any:
        try:
            answer = self.store.run(operation)
        except StoreUnavailable as exc:
            self.error = exc.reason
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"llmguard: the shared store {exc}; cached answers are shared on this machine only, and "
                    "identical calls on other machines are not deduplicated, until it answers again.",
                    RuntimeWarning,
                    stacklevel=4,
                )
            return otherwise
        if self.error is not None:
            self.error, self._warned = None, False
        return answer
