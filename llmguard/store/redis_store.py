"""The Redis store: books shared by every process on every machine that points at one Redis.

Each lease change is one Lua script (`redis_lua.SYNC`, registered with `register_script`, so a
restarted server that forgot it is sent it again) run on the server's clock, so machines whose
clocks disagree still agree on when a lease expires. Keys are `llmguard:{namespace}:book:{key}`
and `...:leases`. The client is imported only when such a store is configured; its exceptions never
leave this module (they become `StoreUnavailable`), and the URL is only ever shown without its
password. After a failure the store is not asked again for `RETRY_S`, so calls refused while it
is down are refused at once instead of each waiting out a timeout.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from typing import Any

from llmguard import redact
from llmguard.store import Grant, StoreUnavailable, SyncRequest
from llmguard.store.rates import RateGrant, RateRequest
from llmguard.store.rates_lua import SYNC_RATES
from llmguard.store.redis_lua import SYNC

TIMEOUT_S = 1.0  # connect and read timeout of one round trip
RETRY_S = 0.5  # after a failure, answer "unavailable" without trying for this long


class RedisStore:
    kind = "redis"
    shared = True

    def __init__(self, url: str, namespace: str) -> None:
        from llmguard.config import ConfigError

        self.label = redact.url_without_password(url)
        try:
            import redis
        except ImportError:
            raise ConfigError(
                f"llmguard: store={self.label!r} needs the Redis client: pip install 'llmguard[redis]'"
            ) from None
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        try:
            self._client = redis.Redis.from_url(
                url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S, decode_responses=True
            )
            # cached answers are bytes: a second client that does not decode them (`redis_cache.py`)
            self.raw_client = redis.Redis.from_url(
                url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S, decode_responses=False
            )
        except (ValueError, *self._errors) as exc:
            raise ConfigError(f"llmguard: store={self.label!r} is not a usable Redis URL ({_reason(exc)})") from None
        self._script = self._client.register_script(SYNC)
        self._rates_script = self._client.register_script(SYNC_RATES)
        self._prefix = f"llmguard:{namespace}:"
        self._down_until = 0.0
        self._last_reason = ""
        self._lock = threading.Lock()

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        with self._lock:
            self._down_until = time.monotonic() + RETRY_S
            self._last_reason = _reason(exc)
        return StoreUnavailable(self.label, self._last_reason)

    def run(self, operation: Any) -> Any:
        """`operation(raw_client)`, with this store's circuit: StoreUnavailable, never a redis error."""
        self._check_down()
        try:
            return operation(self.raw_client)
        except self._errors as exc:
            raise self._unavailable(exc) from None

    def _check_down(self) -> None:
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(self.label, self._last_reason)

    def sync(self, request: SyncRequest) -> Grant:
        self._check_down()
        book = f"{self._prefix}book:{request.key}"
        args = [
            request.holder,
            _num(request.limit),
            _num(request.spent_delta),
            _num(request.hold),
            _num(request.need),
            _num(min(request.want, request.limit)),
            _num(request.ttl_s),
            request.gen or "",
            _num(request.known),
            _num(request.seed),
            "1" if request.fresh_when_idle else "0",
            "1" if request.leave else "0",
            "0.5",
            str(int(request.keep_s * 1000)),
            uuid.uuid4().hex[:12],
        ]
        try:
            held, spent, others, gen, granted = self._script(keys=[book, book + ":leases"], args=args)
        except self._errors as exc:
            raise self._unavailable(exc) from None
        return Grant(float(held), float(spent), float(others), str(gen), granted == "1")

    def sync_rates(self, request: RateRequest) -> RateGrant:
        """One `rates_lua.SYNC_RATES` run on `llmguard:{namespace}:rate:{key}`."""
        self._check_down()
        try:
            answer = self._rates_script(
                keys=[f"{self._prefix}rate:{request.key}"], args=[request.to_json(), uuid.uuid4().hex[:12]]
            )
        except self._errors as exc:
            raise self._unavailable(exc) from None
        return RateGrant.from_json(answer)

    def ping(self) -> None:
        try:
            self._client.ping()
        except self._errors as exc:
            raise self._unavailable(exc) from None

    def close(self) -> None:
        for client in (self._client, self.raw_client):
            try:
                client.close()
            except self._errors:
                pass


def _num(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else "1e308"


def _reason(exc: BaseException) -> str:
    """The exception's kind and message, without any password the URL carried."""
    text = redact.scrub(f"{type(exc).__name__}: {exc}") or type(exc).__name__
    return text[:200]
