"""The records every part of the guard shares, and the ProviderAdapter protocol.

Nothing here does I/O or imports another llmguard module: the pipeline, the policies, the cache,
the ledger and the providers all depend on this module and never on each other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class CallRequest:
    """What a request asks for, parsed from its bytes by a provider adapter."""

    provider: str  # "openai" | "anthropic" | "google"
    endpoint: str  # "chat.completions" | "embeddings" | "messages" | "responses" | "completions" | "generate_content"
    model: str
    body: dict[str, Any]
    stream: bool = False
    max_tokens: int | None = None
    max_tokens_field: str | None = None  # the body field that carries the output bound
    temperature: float | None = None
    n: int = 1
    seed: int | None = None


@dataclass(slots=True)
class Usage:
    """Token usage as the provider bills it. `input_tokens` includes cached and cache-write tokens."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0  # every prompt-cache write, whatever its lifetime
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int = 0  # the part of cache_write_tokens kept for an hour (priced higher)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
        )


@dataclass(slots=True)
class StreamState:
    """What a stream has told us so far; filled event by event by an adapter."""

    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    complete: bool = False
    saw_usage: bool = False
    events: int = 0
    content_events: int = 0  # events that carried generated output (time to first token)
    error: str | None = None


class ProviderParseError(ValueError):
    """A request or response body the adapter cannot read."""


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What a response's rate-limit headers say (provider-neutral)."""

    limit_requests: int | None = None
    limit_tokens: int | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_s: float | None = None
    reset_tokens_s: float | None = None


@dataclass(slots=True)
class MeterReading:
    """What a response meter read from one answer: handed to the pipeline in one piece when the
    response is closed, so the meter never prices, scrubs or releases anything itself."""

    completed_read: bool  # the user's code read the answer to its end
    stream: bool = False  # an SSE stream (else one JSON body)
    usage: Usage | None = None  # as the provider billed it; None: it said nothing (tokens are estimated)
    model: str | None = None  # the model that answered, when the answer names one
    error_type: str | None = None  # the answer is an error: `http_429`, `stream_error`, ...
    error_text: str | None = None  # the provider's own words, not yet scrubbed of secrets
    ended_early: bool = False  # the answer stopped before its end (a cut stream or body)
    note: str | None = None  # llmguard's word on a cut answer or a missing usage
    approximate: bool = False  # usage from a cut stream: what it said before it ended
    estimated_output_tokens: int = 0  # for an estimate: the content events a stream carried
    body: bytes | None = None  # the complete answer as the user saw it, when it is to be cached
    content_type: str | None = None  # the stored answer's content type, when it differs
    ttft_ms: float | None = None
    model_ms: float = 0.0
    total_ms: float = 0.0


class ProviderAdapter(Protocol):
    """One wire format (OpenAI's, Anthropic's, Gemini's): everything the pipeline needs to know about it.

    An adapter is a module of pure functions on bytes, dicts and headers (mypy checks a module
    against this protocol); the pipeline calls these and never names a provider.
    """

    NAME: str  # the provider, as the ledger records it
    SDK_MODULE: str  # the SDK whose error types a refusal takes

    def parse_request(self, path: str, body: bytes) -> CallRequest | None:
        """The call a request body makes, None for an endpoint that is not a metered call."""
        ...

    def endpoint_from_path(self, path: str) -> str:
        """A ledger name for a path whose body could not be read (`chat.completions`, ...)."""
        ...

    def prompt_messages(self, call: CallRequest) -> tuple[list[Any], Any]:
        """(messages, system) as `tokens.count_messages` counts them."""
        ...

    def prompt_cache_ttl(self, call: CallRequest) -> str | None:
        """The longest prompt-cache write the call asks for ("5m", "1h") or None."""
        ...

    def output_bound_changes(self, call: CallRequest, max_tokens: int) -> dict[str, Any]:
        """The body fields that bound a call's output at `max_tokens` (a default the user left out)."""
        ...

    def usage_option_changes(self, call: CallRequest) -> dict[str, Any]:
        """Body fields that make a stream report its usage ({} when it does already)."""
        ...

    def parse_response(self, body: bytes) -> tuple[Usage | None, str | None]:
        """(usage, model) of a whole JSON answer."""
        ...

    def observe_event(self, state: StreamState, name: str | None, data: str) -> bool:
        """Update `state` from one SSE event; True: drop the event (a usage chunk we asked for)."""
        ...

    def rate_limit_info(self, headers: Any) -> RateLimitInfo | None:
        """The provider's rate-limit headers as a RateLimitInfo, or None."""
        ...

    def path_for_model(self, raw_path: bytes, model: str) -> bytes | None:
        """The request path asking `model` instead, where the path names the model (Gemini's
        `/models/{model}:generateContent`); None where the body does (`"model": ...`)."""
        ...

    def retry_after_s(self, body: bytes) -> float | None:
        """The wait a 429's body asks for (Gemini's RetryInfo), when no header says it."""
        ...

    def is_out_of_quota(self, body: bytes) -> bool:
        """A 429 that is a spent account, not a rate: waiting never helps."""
        ...

    def error_message(self, body: bytes) -> str | None:
        """The message of an error body."""
        ...

    def error_body(self, message: str, kind: str, code: str) -> bytes:
        """An error body in this provider's shape (the SDK builds its exception from it)."""
        ...

    def noted_error_body(self, body: bytes, note: str) -> bytes:
        """An error body with llmguard's `note` put before the provider's message."""
        ...

    def refusal_error_type(self, kind: str) -> str:
        """The error `type` of a refusal by llmguard (`budget`, `rate_limit`, ...)."""
        ...
