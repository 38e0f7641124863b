"""Anthropic Messages wire format: pure functions on bytes and dicts, no I/O."""

from __future__ import annotations

import json
from typing import Any

from llmguard.providers.base import CallRequest, StreamState, Usage, request_object
from llmguard.providers.base import noted_error_body as noted_error_body  # ProviderAdapter: the shape both share
from llmguard.types import RateLimitInfo

NAME = "anthropic"
SDK_MODULE = "anthropic"


def recognises(path: bytes) -> bool:
    """An Anthropic Messages call from any client (LiteLLM's `anthropic/` models, raw httpx), by its
    path without the query (`count_tokens`, batches and models are not calls to meter)."""
    return path.endswith(b"/v1/messages")


def endpoint_from_path(path: str) -> str:
    return path.rsplit("/v1/", 1)[-1].replace("/", ".")


def output_bound_changes(call: CallRequest, max_tokens: int) -> dict[str, Any]:
    return {"max_tokens": max_tokens} if call.endpoint == "messages" else {}


def usage_option_changes(call: CallRequest) -> dict[str, Any]:
    return {}  # Anthropic streams always carry usage


def path_for_model(raw_path: bytes, model: str) -> bytes | None:
    return None  # the model is the body's "model"


def retry_after_s(body: bytes) -> float | None:
    return None  # the wait is in the retry-after headers, read by the retry policy


def is_out_of_quota(body: bytes) -> bool:
    return False  # Anthropic says so with a 400/403, never a 429


def refusal_error_type(kind: str) -> str:
    """The SDK maps an error type to its exception class: a refusal reads as a rate limit."""
    return "rate_limit_error"


def parse_request(path: str, body: bytes) -> CallRequest | None:
    if not path.endswith("/v1/messages"):
        return None  # count_tokens, models, batches: not metered calls
    data = request_object(body)
    model = data["model"]
    max_tokens = data.get("max_tokens")
    temperature = data.get("temperature")
    return CallRequest(
        provider=NAME,
        endpoint="messages",
        model=model,
        body=data,
        stream=bool(data.get("stream")),
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        max_tokens_field="max_tokens",
        temperature=float(temperature) if isinstance(temperature, int | float) else None,
    )


def prompt_cache_ttl(call: CallRequest) -> str | None:
    """ "1h" or "5m" when the request marks blocks with `cache_control` (the longest TTL asked)."""
    found: str | None = None
    # a top-level `cache_control` (automatic caching) marks the whole prompt, like a last breakpoint
    body = call.body
    stack: list[Any] = [body.get("system"), body.get("tools"), body.get("messages")]
    stack.append({"cache_control": body.get("cache_control")})
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            control = item.get("cache_control")
            if isinstance(control, dict):
                if control.get("ttl") == "1h":
                    return "1h"
                found = "5m"
            content = item.get("content")
            if isinstance(content, list):
                stack.append(content)
    return found


def prompt_messages(call: CallRequest) -> tuple[list[Any], Any]:
    """(messages, system); the tool definitions are billed input too, one message of JSON each."""
    from llmguard.providers.openai import definitions_as_messages

    tools = call.body.get("tools")
    messages = call.body.get("messages") or []
    if isinstance(tools, list) and tools:
        messages = [*messages, *definitions_as_messages(tools)]
    return messages, call.body.get("system")


def usage_from_dict(usage: dict[str, Any] | None) -> Usage | None:
    """Anthropic reports uncached input apart from cache reads/writes; Usage folds them together."""
    if not isinstance(usage, dict) or not isinstance(usage.get("input_tokens"), int):
        return None
    cache_read = usage.get("cache_read_input_tokens") or 0
    cache_write = usage.get("cache_creation_input_tokens") or 0
    # Writes kept for an hour cost more than 5-minute ones: the split is in `cache_creation`.
    split = usage.get("cache_creation")
    written_1h = split.get("ephemeral_1h_input_tokens") if isinstance(split, dict) else None
    return Usage(
        input_tokens=usage["input_tokens"] + cache_read + cache_write,
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
        output_tokens=usage.get("output_tokens") or 0,
        reasoning_tokens=_thinking_tokens(usage) or 0,
        cache_write_1h_tokens=written_1h if isinstance(written_1h, int) else 0,
    )


def _thinking_tokens(usage: dict[str, Any]) -> int | None:
    """Extended thinking's share of `output_tokens` (already inside it, as billed)."""
    details = usage.get("output_tokens_details")
    value = details.get("thinking_tokens") if isinstance(details, dict) else None
    return value if isinstance(value, int) else None


def _merge_delta(state: StreamState, delta: dict[str, Any]) -> None:
    """A message_delta's usage is cumulative and partial: each field it carries replaces the one
    from message_start, as the SDK's own accumulator does; fields it leaves out (the 1-hour split
    of the writes is only in message_start's `cache_creation`) keep their value."""
    usage = state.usage
    read, written = usage.cached_input_tokens, usage.cache_write_tokens
    uncached = usage.input_tokens - read - written
    if isinstance(delta.get("input_tokens"), int):
        uncached = delta["input_tokens"]
    if isinstance(delta.get("cache_read_input_tokens"), int):
        read = delta["cache_read_input_tokens"]
    if isinstance(delta.get("cache_creation_input_tokens"), int):
        written = delta["cache_creation_input_tokens"]
    split = delta.get("cache_creation")
    if isinstance(split, dict) and isinstance(split.get("ephemeral_1h_input_tokens"), int):
        usage.cache_write_1h_tokens = split["ephemeral_1h_input_tokens"]
    usage.input_tokens = uncached + read + written
    usage.cached_input_tokens, usage.cache_write_tokens = read, written
    usage.cache_write_1h_tokens = min(usage.cache_write_1h_tokens, written)
    if isinstance(delta.get("output_tokens"), int):
        usage.output_tokens = delta["output_tokens"]
        state.saw_usage = True
    thinking = _thinking_tokens(delta)
    if thinking is not None:
        usage.reasoning_tokens = thinking


def parse_response(body: bytes) -> tuple[Usage | None, str | None]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    return usage_from_dict(data.get("usage")), data.get("model")


def observe_event(state: StreamState, name: str | None, data: str) -> bool:
    """Update `state` from one SSE event; Anthropic streams have no usage-only events to drop."""
    state.events += 1
    if name == "content_block_delta":
        state.content_events += 1
        return False
    if name not in ("message_start", "message_delta", "message_stop", "error"):
        return False
    try:
        event = json.loads(data) if data else {}
    except ValueError:
        return False
    if name == "message_start":
        message = event.get("message") or {}
        state.model = message.get("model") or state.model
        usage = usage_from_dict(message.get("usage"))
        if usage is not None:
            state.usage, state.saw_usage = usage, True
    elif name == "message_delta":
        delta_usage = event.get("usage")
        if isinstance(delta_usage, dict):
            _merge_delta(state, delta_usage)
    elif name == "message_stop":
        state.complete = True
    elif name == "error":
        state.error = str((event.get("error") or {}).get("message"))
    return False


def error_message(body: bytes) -> str | None:
    try:
        data = json.loads(body)
        return (data.get("error") or {}).get("message")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None


def error_body(message: str, kind: str, code: str) -> bytes:
    del code  # Anthropic errors carry only a type
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _seconds_until(stamp: str | None) -> float | None:
    if not stamp:
        return None
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def rate_limit_info(headers: Any) -> RateLimitInfo | None:
    """`anthropic-ratelimit-*` headers as a RateLimitInfo (tokens = the combined token bucket)."""
    from llmguard.providers.openai import prefixed_headers

    found = prefixed_headers(headers, b"anthropic-ratelimit-")
    if not found:
        return None
    get = found.get
    prefix = "anthropic-ratelimit-"
    limit_requests, limit_tokens = _int(get(prefix + "requests-limit")), _int(get(prefix + "tokens-limit"))
    if limit_requests is None and limit_tokens is None:
        return None
    return RateLimitInfo(
        limit_requests=limit_requests,
        limit_tokens=limit_tokens,
        remaining_requests=_int(get(prefix + "requests-remaining")),
        remaining_tokens=_int(get(prefix + "tokens-remaining")),
        reset_requests_s=_seconds_until(get(prefix + "requests-reset")),
        reset_tokens_s=_seconds_until(get(prefix + "tokens-reset")),
    )
