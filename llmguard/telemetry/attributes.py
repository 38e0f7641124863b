"""One finished call as OpenTelemetry GenAI attributes: the span's name, its attributes, the metrics'.

Pure functions of a `CallEvent` (and the request's output bound), so they cost nothing until the
export thread calls them and can be checked without an SDK. Names follow the GenAI semantic
conventions; llmguard's own figures sit under `llmguard.*`. Nothing secret is read: the host of
`base_url` without any user:password part, never headers, tags or the request's key.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from llmguard import redact
from llmguard.ledger.metrics import reached_provider
from llmguard.ledger.records import CallEvent

# ledger endpoint -> gen_ai.operation.name
OPERATIONS = {
    "chat.completions": "chat",
    "messages": "chat",
    "responses": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
    "generateContent": "generate_content",
    "streamGenerateContent": "generate_content",
    "generate_content": "generate_content",
}
# ledger provider -> gen_ai.provider.name (the conventions' well-known values)
PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini", "google": "gcp.gemini"}
FAILED = ("error", "refused", "cancelled")  # statuses whose span is an error (error.type set)
ERROR_DESCRIPTION_CHARS = 512

# Recommended bucket boundaries of the two GenAI client histograms.
TOKEN_BUCKETS = tuple(4.0**i for i in range(14))  # 1, 4, 16, ... 67,108,864 tokens
DURATION_BUCKETS = tuple(0.01 * 2.0**i for i in range(14))  # 0.01, 0.02, ... 81.92 s


def operation(event: CallEvent) -> str:
    return OPERATIONS.get(event.endpoint, event.endpoint or "chat")


def provider(event: CallEvent) -> str:
    host = _host(event.base_url)[0] or ""
    if event.provider == "openai" and host.endswith(".openai.azure.com"):
        return "azure.ai.openai"
    return PROVIDERS.get(event.provider, event.provider or "_OTHER")


def request_model(event: CallEvent) -> str:
    """The model the user's code asked for (routing and fallbacks show in the response model)."""
    return event.requested_model or event.model


def span_name(event: CallEvent) -> str:
    model = request_model(event)
    return f"{operation(event)} {model}" if model else operation(event)


def error_type(event: CallEvent) -> str | None:
    """`error.type` of a call that failed (an error, a refusal by llmguard, a cancelled call), else None."""
    if event.status in FAILED or (event.status == "incomplete" and event.error_type):
        return event.error_type or "_OTHER"
    return None


def error_description(event: CallEvent) -> str | None:
    """The row's message for a failed span's status, scrubbed again of anything key-shaped."""
    text = redact.scrub(event.error_message)
    return text[:ERROR_DESCRIPTION_CHARS] if text else None


def answered(event: CallEvent) -> bool:
    """A model produced this call's answer (the provider's, or the cached answer it gave earlier)."""
    return event.status in ("ok", "incomplete") and event.decision != "reject"


def _host(base_url: str) -> tuple[str | None, int | None]:
    try:
        parts = urlsplit(base_url)
        return parts.hostname, parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    except ValueError:  # a port that is not a number
        return None, None


def common_attributes(event: CallEvent) -> dict[str, Any]:
    """What spans and metrics share: operation, provider, models, server."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": operation(event),
        "gen_ai.provider.name": provider(event),
    }
    model = request_model(event)
    if model:
        attrs["gen_ai.request.model"] = model
    if event.model and answered(event):
        attrs["gen_ai.response.model"] = event.model
    host, port = _host(event.base_url)
    if host:
        attrs["server.address"] = host
        if port is not None:
            attrs["server.port"] = port
    return attrs


def span_attributes(event: CallEvent, call: Any = None) -> dict[str, Any]:
    """Every attribute of the call's span; `call` (its CallRequest, when known) adds the request's options."""
    attrs = common_attributes(event)
    if call is not None:
        if call.max_tokens is not None:
            attrs["gen_ai.request.max_tokens"] = call.max_tokens
        if call.temperature is not None:
            attrs["gen_ai.request.temperature"] = call.temperature
        if call.seed is not None:
            attrs["gen_ai.request.seed"] = call.seed
        if call.n != 1:
            attrs["gen_ai.request.choice.count"] = call.n
    if event.status != "refused":  # a refused call was never sent: it used no tokens, and says none
        attrs["gen_ai.usage.input_tokens"] = event.input_tokens
        attrs["gen_ai.usage.output_tokens"] = event.output_tokens
        if event.cached_input_tokens:
            attrs["gen_ai.usage.cache_read.input_tokens"] = event.cached_input_tokens
        if event.cache_write_tokens:
            attrs["gen_ai.usage.cache_creation.input_tokens"] = event.cache_write_tokens
        if event.reasoning_tokens:
            attrs["gen_ai.usage.reasoning.output_tokens"] = event.reasoning_tokens
    if event.stream and event.ttft_ms is not None:
        attrs["gen_ai.response.time_to_first_chunk"] = event.ttft_ms / 1000
    failure = error_type(event)
    if failure is not None:
        attrs["error.type"] = failure
    if event.http_status is not None:
        attrs["http.response.status_code"] = event.http_status
    attrs.update(_llmguard_attributes(event))
    return attrs


def _llmguard_attributes(event: CallEvent) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "llmguard.request_id": event.request_id,
        "llmguard.run_id": event.run_id,
        "llmguard.status": event.status,
        "llmguard.decision": event.decision,
        "llmguard.cache_hit": event.cache_hit,
        "llmguard.dedup_hit": event.dedup_hit,
        "llmguard.retries": event.retry_count,
        "llmguard.fallback_used": event.fallback_used,
        "llmguard.queue_ms": event.queue_ms,
        "llmguard.retry_ms": event.retry_delay_ms,
        "llmguard.stream": event.stream,
        "llmguard.priority": event.priority,
    }
    if event.cost_usd is None:
        attrs["llmguard.cost_unknown"] = True
    else:
        attrs["llmguard.cost_usd"] = event.cost_usd
    if event.saved_usd is not None:
        attrs["llmguard.saved_usd"] = event.saved_usd
    if event.tokens_approximate:
        attrs["llmguard.tokens_approximate"] = True
    if event.stale:
        attrs["llmguard.stale"] = True
    for name in ("tenant", "feature", "prompt_version", "notebook"):
        value = getattr(event, name)
        if value is not None:
            attrs[f"llmguard.{name}"] = value
    return attrs


def duration_attributes(event: CallEvent) -> dict[str, Any]:
    """`gen_ai.client.operation.duration`'s attributes: every call, as the user's code waited for it."""
    attrs = common_attributes(event)
    failure = error_type(event)
    if failure is not None:
        attrs["error.type"] = failure
    attrs["llmguard.decision"] = event.decision  # a cache hit's 1 ms is not the provider's latency
    return attrs


def token_usage(event: CallEvent) -> list[tuple[int, dict[str, Any]]]:
    """(tokens, attributes) for `gen_ai.client.token.usage`: only calls the provider served count."""
    if not reached_provider(event) or not (event.input_tokens or event.output_tokens):
        return []
    attrs = common_attributes(event)
    return [
        (event.input_tokens, {**attrs, "gen_ai.token.type": "input"}),
        (event.output_tokens, {**attrs, "gen_ai.token.type": "output"}),
    ]


def time_span_ns(event: CallEvent) -> tuple[int, int]:
    """The call's real start and end (wall clock, ns): when it began and how long it took."""
    start = int(event.ts * 1e9)
    return start, start + int((event.total_ms or 0.0) * 1e6)
