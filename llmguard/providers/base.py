"""The provider-neutral shapes the guard works with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class CallRequest:
    """What a request asks for, parsed from its bytes by a provider adapter."""

    provider: str  # "openai" | "anthropic"
    endpoint: str  # "chat.completions" | "embeddings" | "messages" | "responses" | "completions"
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


def request_object(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object with a model, or a ProviderParseError saying what is wrong."""
    import json

    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProviderParseError(f"request body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ProviderParseError("request body is not a JSON object")
    if not isinstance(data.get("model"), str):
        raise ProviderParseError("request has no model")
    return data
