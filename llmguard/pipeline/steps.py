"""The steps the pipeline yields for a driver to carry out, and what one call holds while it runs.

The pipeline is a generator: it yields `Send`, `Sleep`, `Wait`, ... and the sync or async driver
(drivers.py) does the I/O and sends the result back, so both share every decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmguard.ledger.sqlite import CallEvent
from llmguard.policies.budget import Reservation
from llmguard.policies.limiter import Ticket
from llmguard.types import CallRequest, ProviderAdapter


@dataclass(slots=True)
class Send:
    request: Any


@dataclass(slots=True)
class Sleep:
    seconds: float


@dataclass(slots=True)
class Wait:
    """Wait (at most `timeout` s) for the limiter to wake this call's ticket."""

    ticket: Ticket
    timeout: float


@dataclass(slots=True)
class WaitFlight:
    """Wait (at most `timeout` s) for the identical call already running in this process."""

    claim: Any
    timeout: float


@dataclass(slots=True)
class ReadBody:
    """Read a JSON answer inside the pipeline, so a cut body is retried here, not by the SDK (whose
    retries would pass the guard as new calls); the driver sends back the exception, or None."""

    response: Any


@dataclass(slots=True)
class Drain:
    """Read and close a response we are about to retry, so its connection can be reused."""

    response: Any


class MalformedResponse(Exception):
    """A 2xx answer whose body is not JSON: worth another attempt, never an "ok" call."""


@dataclass(slots=True)
class CallState:
    """What one call holds while it runs: its event, and the budget and limiter capacity it reserved."""

    call: CallRequest
    adapter: ProviderAdapter
    event: CallEvent
    started: float
    secrets: Any
    drop_usage_chunk: bool = False
    prompt_tokens: int = 0
    max_out: int = 0
    reservation: Reservation | None = None
    ticket: Ticket | None = None
    cache_key: str | None = None  # set when this call's answer is to be stored
    claim: Any = None  # this call leads the in-process flight of its cache key
    led_across: bool = False  # this call holds the cross-process marker of its cache key
    lookup_key: str | None = None  # the call's cache key, for a stale answer when the provider is down
    body: bytes | None = None  # the complete answer as the user saw it (for the cache)
    content_type: str = "application/json"
    caller: Any = None  # the adapter of the SDK that made the call (refusals take its shape)
    endpoint_url: str = ""  # scheme://host/path?query of the request, for the cache key
    steps: tuple[Any, ...] = ()  # the open step() frames around this call
    retry_refusal: str | None = None  # why a retry was not made, told to the user with the error
    sent: bool = False  # a request of this call reached the provider, which may bill it
    raw_body: bytes = b""  # the request as sent: the SDK's own retry of a refused call is recognised by it
    closed: bool = False  # the call's row is written and its holds released: never twice


NEXT_MODEL = object()  # an outcome of admission: this model cannot serve the call now, try the next one
