"""OpenAI wire format: pure functions on bytes and dicts, no I/O."""

from __future__ import annotations

import json
import re
from typing import Any

from llmguard.providers.base import CallRequest, StreamState, Usage, request_object
from llmguard.providers.base import noted_error_body as noted_error_body  # ProviderAdapter: the shape both share
from llmguard.types import RateLimitInfo

NAME = "openai"
SDK_MODULE = "openai"
# A chunk that carries generated text: chat deltas, legacy completions, Responses API text deltas.
_CONTENT = re.compile(r'"(?:content|text|delta)":\s*"[^"]')
_ENDPOINTS = (
    ("/chat/completions", "chat.completions"),
    ("/embeddings", "embeddings"),
    ("/responses", "responses"),
    ("/completions", "completions"),
)
LEGACY_DEFAULT_MAX_TOKENS = 16  # legacy completions stop at 16 tokens per choice unless told otherwise
_MAX_FIELDS = {
    "chat.completions": ("max_completion_tokens", "max_tokens"),
    "completions": ("max_tokens",),
    "responses": ("max_output_tokens",),
    "embeddings": (),
}


_WIRE_SUFFIXES = tuple(suffix.encode() for suffix, _ in _ENDPOINTS)


def recognises(path: bytes) -> bool:
    """An OpenAI-shaped call from any client (LiteLLM, mistralai, raw httpx, Azure deployments), by
    its path without the query; the body's shape is checked by the caller."""
    return path.endswith(_WIRE_SUFFIXES)


def endpoint_for_path(path: str) -> str | None:
    for suffix, endpoint in _ENDPOINTS:
        if path.endswith(suffix):
            return endpoint
    return None


def endpoint_from_path(path: str) -> str:
    """`/v1/chat/completions` -> `chat.completions` (for a request whose body could not be read)."""
    return path.rsplit("/v1/", 1)[-1].replace("/", ".")


# the field a default bound goes in: the current one of each endpoint (max_tokens is deprecated in chat)
_BOUND_FIELD = {
    "responses": "max_output_tokens",
    "chat.completions": "max_completion_tokens",
    "completions": "max_tokens",
}


def output_bound_changes(call: CallRequest, max_tokens: int) -> dict[str, Any]:
    field = _BOUND_FIELD.get(call.endpoint)
    return {} if field is None else {field: max_tokens}


def usage_option_changes(call: CallRequest) -> dict[str, Any]:
    """A chat stream reports its usage only when asked: ask (the meter drops the extra chunk)."""
    if not wants_usage_injection(call):
        return {}
    return {"stream_options": {**(call.body.get("stream_options") or {}), "include_usage": True}}


def path_for_model(raw_path: bytes, model: str) -> bytes | None:
    return None  # the model is the body's "model"


def retry_after_s(body: bytes) -> float | None:
    return None  # the wait is in the retry-after headers, read by the retry policy


def is_out_of_quota(body: bytes) -> bool:
    """OpenAI answers a spent account with 429 `insufficient_quota`."""
    return b"insufficient_quota" in body


def refusal_error_type(kind: str) -> str:
    return f"llmguard_{kind}"


def parse_request(path: str, body: bytes) -> CallRequest | None:
    """A CallRequest for a metered endpoint, None for anything else (files, models, ...)."""
    endpoint = endpoint_for_path(path)
    if endpoint is None:
        return None
    data = request_object(body)
    model = data["model"]
    max_tokens = max_field = None
    for name in _MAX_FIELDS[endpoint]:
        value = data.get(name)
        if value is not None:
            max_tokens, max_field = value, name
            break
    if endpoint == "completions" and max_tokens is None:
        max_tokens = LEGACY_DEFAULT_MAX_TOKENS  # the API's own bound; max_field stays None (not in the body)
    temperature = data.get("temperature")
    choices = data.get("n")
    if endpoint == "completions":
        if isinstance(data.get("best_of"), int):  # best_of are all billed
            choices = max(choices if isinstance(choices, int) else 1, data["best_of"])
        # every prompt of a batch gets its own choices, each bounded by max_tokens
        choices = (choices if isinstance(choices, int) else 1) * len(_legacy_prompts(data.get("prompt")))
    return CallRequest(
        provider=NAME,
        endpoint=endpoint,
        model=model,
        body=data,
        stream=bool(data.get("stream")),
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        max_tokens_field=max_field,
        temperature=float(temperature) if isinstance(temperature, int | float) else None,
        n=choices if isinstance(choices, int) and not isinstance(choices, bool) and choices > 1 else 1,
        seed=data.get("seed"),
    )


def prompt_cache_ttl(call: CallRequest) -> str | None:
    """OpenAI caches prompts by itself and bills reads at a discount, never writes: no surcharge."""
    return None


def prompt_messages(call: CallRequest) -> tuple[list[Any], Any]:
    """(messages, system) in a shape `tokens.count_messages` understands.

    Tool definitions and a JSON schema the answer must follow are part of the prompt the provider
    bills: each is one more message holding its JSON text (a little over what the API injects, so
    a worst case built on it still bounds the bill)."""
    body = call.body
    if call.endpoint == "chat.completions":
        extra = list(body.get("tools") or [])
        response_format = body.get("response_format")
        if isinstance(response_format, dict) and isinstance(response_format.get("json_schema"), dict):
            extra.append(response_format["json_schema"])
        return [*(body.get("messages") or []), *definitions_as_messages(extra)], None
    if call.endpoint == "responses":
        value = body.get("input")
        messages = value if isinstance(value, list) else [{"role": "user", "content": value or ""}]
        extra = list(body.get("tools") or [])
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            extra.append(fmt)
        return [*messages, *definitions_as_messages(extra)], body.get("instructions")
    if call.endpoint == "embeddings":
        value = body.get("input")
        items = value if isinstance(value, list) else [value]
        return [{"content": item} for item in items if isinstance(item, str)], None
    return [{"role": "user", "content": text} for text in _legacy_prompts(body.get("prompt"))], None


def definitions_as_messages(definitions: list[Any]) -> list[dict[str, str]]:
    """Tool definitions or schemas as messages of their JSON text, one each (counted separately)."""
    return [{"content": json.dumps(item, sort_keys=True, default=str)} for item in definitions]


def _legacy_prompts(prompt: Any) -> list[str]:
    """The prompts of a legacy completions call as texts (a token array as its JSON, a fair
    over-estimate): a string or a token array is one prompt, a list of either is several."""
    if isinstance(prompt, list) and prompt and all(isinstance(p, str | list) for p in prompt):
        return [p if isinstance(p, str) else json.dumps(p) for p in prompt]
    if isinstance(prompt, str):
        return [prompt]
    return [json.dumps(prompt) if prompt is not None else ""]


def usage_from_dict(usage: dict[str, Any] | None) -> Usage | None:
    """Usage from an OpenAI `usage` object (chat, completions, embeddings or responses)."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    if not isinstance(prompt, int):
        return None
    output = usage.get("completion_tokens", usage.get("output_tokens")) or 0
    prompt_details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    output_details = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    return Usage(
        input_tokens=prompt,
        cached_input_tokens=prompt_details.get("cached_tokens") or 0,
        output_tokens=output,
        reasoning_tokens=output_details.get("reasoning_tokens") or 0,
    )


_MODEL = re.compile(rb'"model"\s*:\s*"([^"]*)"')
_DECODER = json.JSONDecoder()


def parse_response(body: bytes) -> tuple[Usage | None, str | None]:
    """(usage, model) of a non-streaming response body; (None, None) when it cannot be read.

    Decodes only the `usage` object (found from the end, where the APIs put it) rather than the
    whole body, which for long answers is most of the metering cost.
    """
    at = body.rfind(b'"usage"')
    if at < 0:
        return None, None
    start = body.find(b"{", at)
    if start < 0:
        return None, None
    try:
        text = body[start:].decode("utf-8")
        usage, _ = _DECODER.raw_decode(text)
    except (ValueError, UnicodeDecodeError):
        return None, None
    model = _MODEL.search(body)
    return usage_from_dict(usage), model.group(1).decode("utf-8", "replace") if model else None


def wants_usage_injection(call: CallRequest) -> bool:
    """A chat or legacy completions stream that will not report usage unless asked to."""
    if not call.stream or call.endpoint not in ("chat.completions", "completions"):
        return False
    options = call.body.get("stream_options")
    return not (isinstance(options, dict) and options.get("include_usage"))


def inject_usage_option(body: dict[str, Any]) -> bytes:
    options = dict(body.get("stream_options") or {})
    options["include_usage"] = True
    return json.dumps({**body, "stream_options": options}, separators=(",", ":")).encode()


# A chunk's top-level "model" (a quote inside the answer's text is escaped, so it cannot match)
_MODEL_FIELD = re.compile(r'"model"\s*:\s*"((?:[^"\\]|\\.)*)"')


def observe_event(state: StreamState, name: str | None, data: str) -> bool:
    """Update `state` from one SSE event. True when the event is a usage-only chunk."""
    state.events += 1
    if data == "[DONE]":
        state.complete = True
        return False
    if _CONTENT.search(data):
        state.content_events += 1
    if '"usage"' not in data and '"response.completed"' not in data and '"error"' not in data:
        if state.model is None and '"model"' in data:
            found = _MODEL_FIELD.search(data)  # not json.loads of the first chunk: it delays the first token
            if found is not None:
                state.model = found.group(1)
        return False
    try:
        event = json.loads(data)
    except ValueError:
        return False
    if not isinstance(event, dict):
        return False
    kind = event.get("type")
    if isinstance(kind, str):  # Responses API: typed events
        _observe_responses_event(state, kind, event)
        return False
    if event.get("error"):
        state.error = str((event["error"] or {}).get("message") if isinstance(event["error"], dict) else event["error"])
    state.model = state.model or event.get("model")
    usage = usage_from_dict(event.get("usage"))
    if usage is None:
        return False
    state.usage, state.saw_usage = usage, True
    return event.get("choices") == []


# The events that end a Responses stream, each carrying the final response (and its usage).
_RESPONSES_FINAL = ("response.completed", "response.incomplete", "response.failed")


def _observe_responses_event(state: StreamState, kind: str, event: dict[str, Any]) -> None:
    """A Responses stream ends with completed, incomplete (the output cap was reached: the answer
    is whole and billed) or failed; an `error` event reports a failure without a response."""
    if kind == "error":
        state.error = str(event.get("message") or event.get("code") or "stream error")
        return
    response = event.get("response")
    if not isinstance(response, dict):
        return
    state.model = state.model or response.get("model")
    if kind not in _RESPONSES_FINAL:
        return
    usage = usage_from_dict(response.get("usage"))
    if usage is not None:
        state.usage, state.saw_usage = usage, True
    state.complete = True
    if kind == "response.failed":
        error = response.get("error")
        state.error = str((error.get("message") if isinstance(error, dict) else error) or "response failed")


def error_message(body: bytes) -> str | None:
    try:
        data = json.loads(body)
        error = data.get("error")
        return error.get("message") if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None


def error_body(message: str, kind: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str | None) -> float | None:
    """OpenAI's reset durations: `6m0s`, `1s`, `20ms`, `1h2m3.5s`."""
    if not text:
        return None
    parts = _DURATION.findall(text)
    if not parts:
        try:
            return float(text)
        except ValueError:
            return None
    return sum(float(value) * _UNIT_S[unit] for value, unit in parts)


def prefixed_headers(headers: Any, prefix: bytes) -> dict[str, str]:
    """Headers whose name starts with `prefix`, from one pass over the raw list (Headers.get
    normalises on every call, and most responses carry none of these)."""
    found = {}
    for key, value in getattr(headers, "raw", None) or headers.items():
        if isinstance(key, str):
            key, value = key.encode(), value.encode()
        key = key.lower()
        if key.startswith(prefix):
            found[key.decode("latin-1")] = value.decode("latin-1")
    return found


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def rate_limit_info(headers: Any) -> RateLimitInfo | None:
    """`x-ratelimit-*` headers as a RateLimitInfo, or None when there are none."""

    found = prefixed_headers(headers, b"x-ratelimit-")
    if not found:
        return None
    get = found.get
    limit_requests, limit_tokens = _int(get("x-ratelimit-limit-requests")), _int(get("x-ratelimit-limit-tokens"))
    if limit_requests is None and limit_tokens is None:
        return None
    return RateLimitInfo(
        limit_requests=limit_requests,
        limit_tokens=limit_tokens,
        remaining_requests=_int(get("x-ratelimit-remaining-requests")),
        remaining_tokens=_int(get("x-ratelimit-remaining-tokens")),
        reset_requests_s=parse_duration(get("x-ratelimit-reset-requests")),
        reset_tokens_s=parse_duration(get("x-ratelimit-reset-tokens")),
    )
