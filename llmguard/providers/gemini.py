"""Google Gemini (Developer API) wire format: pure functions on bytes and dicts, no I/O.

The wire: `POST /{v1|v1beta|v1alpha}/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
`:embedContent`, `:batchEmbedContents` and `:countTokens`. The model is in the path, not the body;
the output cap is `generationConfig.maxOutputTokens` (thinking included); usage is `usageMetadata`
on the answer and on every stream chunk (cumulative), and a stream ends with a chunk whose candidate
carries a `finishReason` (there is no `[DONE]`). Google's JSON parser takes proto field names in
camelCase or snake_case (the google-genai SDK sends `thinking_budget`), so both are read.

Requests are recognised by their path whatever the client (`recognises`): google-genai sends no
header a cheaper check could use. The key (`x-goog-api-key` or `?key=`) is a secret, as any key is.
"""

from __future__ import annotations

import json
import re
from typing import Any

from llmguard.providers.base import CallRequest, StreamState, Usage, json_body, json_object
from llmguard.providers.base import noted_error_body as noted_error_body  # ProviderAdapter: error.message
from llmguard.types import RateLimitInfo

NAME = "google"  # genai-prices' provider id, so the ledger's provider prices the call
SDK_MODULE = "google.genai"
# /<version>/models/<model>:<method>, with any gateway prefix before it and any query after it
_PATH = re.compile(
    r"/v1(?:beta|alpha)?/models/([^/:?]+):"
    r"(generateContent|streamGenerateContent|countTokens|embedContent|batchEmbedContents)(?:\?|$)"
)
_ENDPOINTS = {
    "generateContent": "generate_content",
    "streamGenerateContent": "generate_content",
    "embedContent": "embeddings",
    "batchEmbedContents": "embeddings",
    "countTokens": "count_tokens",
}
_RETRY_DELAY = re.compile(r'"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"')
_MODEL_VERSION = re.compile(r'"modelVersion"\s*:\s*"([^"]*)"')
_DECODER = json.JSONDecoder()


def recognises(method: str, raw_path: bytes) -> bool:
    """A Gemini API call, from its path alone (checked only for requests with no SDK header).

    `:` after `/models/` is rare outside this API, so the regex runs on almost nothing else."""
    return method == "POST" and b"/models/" in raw_path and _PATH.search(raw_path.decode("latin-1")) is not None


def _route(path: str) -> tuple[str, str] | None:
    """(model, method) of a Gemini path, or None."""
    found = _PATH.search(path)
    return None if found is None else (found.group(1), found.group(2))


def path_for_model(raw_path: bytes, model: str) -> bytes | None:
    """The same call asking `model`: Gemini names the model in the path, not the body."""
    found = _PATH.search(raw_path.decode("latin-1"))
    if found is None:
        return raw_path
    start, end = found.span(1)
    return raw_path[:start] + model.encode("ascii", "strict") + raw_path[end:]


def endpoint_from_path(path: str) -> str:
    route = _route(path)
    return _ENDPOINTS[route[1]] if route else "generate_content"


def _get(data: dict[str, Any], camel: str, snake: str) -> Any:
    value = data.get(camel)
    return data.get(snake) if value is None else value


def _config(body: dict[str, Any]) -> dict[str, Any]:
    config = _get(body, "generationConfig", "generation_config")
    return config if isinstance(config, dict) else {}


def _config_field(body: dict[str, Any]) -> str:
    return "generation_config" if "generation_config" in body and "generationConfig" not in body else "generationConfig"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_request(path: str, body: bytes) -> CallRequest | None:
    """A generateContent or embedding call; None for countTokens (free: not a metered call)."""
    route = _route(path)
    if route is None:
        return None
    model, method = route
    endpoint = _ENDPOINTS[method]
    if endpoint == "count_tokens":
        return None
    data = json_object(body)  # the model is in the path, not the body
    config = _config(data)
    temperature = config.get("temperature")
    candidates = _int(_get(config, "candidateCount", "candidate_count"))
    return CallRequest(
        provider=NAME,
        endpoint=endpoint,
        model=model,
        body=data,
        stream=method == "streamGenerateContent",
        max_tokens=_int(_get(config, "maxOutputTokens", "max_output_tokens")),
        max_tokens_field="generationConfig.maxOutputTokens" if endpoint == "generate_content" else None,
        temperature=float(temperature) if isinstance(temperature, int | float) else None,
        n=candidates if candidates is not None and candidates > 1 else 1,
        seed=_int(config.get("seed")),
    )


def prompt_cache_ttl(call: CallRequest) -> str | None:
    """Gemini's context caches are made ahead of time (cachedContents), not written by a call."""
    return None


def output_bound_changes(call: CallRequest, max_tokens: int) -> dict[str, Any]:
    if call.endpoint != "generate_content":
        return {}
    field = _config_field(call.body)
    return {field: {**_config(call.body), "maxOutputTokens": max_tokens}}


def usage_option_changes(call: CallRequest) -> dict[str, Any]:
    return {}  # every Gemini chunk carries usageMetadata


def _texts(content: Any) -> list[Any]:
    """A Content's parts as chat-message content: text parts as text, others as their JSON."""
    if isinstance(content, str):
        return [content]
    parts = content.get("parts") if isinstance(content, dict) else content
    if not isinstance(parts, list):
        return []
    return [
        part["text"] if isinstance(part, dict) and isinstance(part.get("text"), str) else json.dumps(part, default=str)
        for part in parts
    ]


def prompt_messages(call: CallRequest) -> tuple[list[Any], Any]:
    """(messages, system) for the local count: one message per Content, tools as their JSON."""
    body = call.body
    if call.endpoint == "embeddings":
        requests = body.get("requests")
        inputs = [r.get("content") for r in requests if isinstance(r, dict)] if isinstance(requests, list) else []
        return [{"content": text} for item in inputs or [body.get("content")] for text in _texts(item)], None
    messages: list[Any] = []
    contents = body.get("contents")
    for content in contents if isinstance(contents, list) else [contents]:
        if content is not None:
            messages.append({"content": "".join(_texts(content))})
    tools = body.get("tools")
    if isinstance(tools, list):
        messages += [{"content": json.dumps(tool, sort_keys=True, default=str)} for tool in tools]
    system = _get(body, "systemInstruction", "system_instruction")
    return messages, "".join(_texts(system)) if system is not None else None


def usage_from_dict(meta: Any) -> Usage | None:
    """`usageMetadata`: the prompt includes the cached content; thoughts are billed as output."""
    if not isinstance(meta, dict):
        return None
    prompt = _int(meta.get("promptTokenCount"))
    if prompt is None:
        return None
    thoughts = _int(meta.get("thoughtsTokenCount")) or 0
    return Usage(
        input_tokens=prompt + (_int(meta.get("toolUsePromptTokenCount")) or 0),
        cached_input_tokens=_int(meta.get("cachedContentTokenCount")) or 0,
        output_tokens=(_int(meta.get("candidatesTokenCount")) or 0) + thoughts,
        reasoning_tokens=thoughts,
    )


def _usage_near_end(text: str) -> Usage | None:
    """The last `usageMetadata` object of a body or chunk, decoded alone (not the whole answer)."""
    at = text.rfind('"usageMetadata"')
    if at < 0:
        return None
    start = text.find("{", at)
    if start < 0:
        return None
    try:
        meta, _ = _DECODER.raw_decode(text, start)
    except ValueError:
        return None
    return usage_from_dict(meta)


def parse_response(body: bytes) -> tuple[Usage | None, str | None]:
    """(usage, model) of an answer (a JSON array of chunks, too: its last usage is the total)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None, None
    model = _MODEL_VERSION.search(text)
    return _usage_near_end(text), model.group(1) if model else None


def observe_event(state: StreamState, name: str | None, data: str) -> bool:
    """One chunk: its usage is cumulative (the latest wins); a `finishReason` ends the answer."""
    state.events += 1
    if '"error"' in data[:12]:
        try:
            error = json.loads(data).get("error")
        except (ValueError, AttributeError):
            error = None
        state.error = str(error.get("message") if isinstance(error, dict) else error or "stream error")
        return False
    if '"text"' in data:
        state.content_events += 1
    if state.model is None:
        model = _MODEL_VERSION.search(data)
        if model:
            state.model = model.group(1)
    usage = _usage_near_end(data)
    if usage is not None:
        state.usage, state.saw_usage = usage, True
    if '"finishReason"' in data:
        state.complete = True
    return False


def rate_limit_info(headers: Any) -> RateLimitInfo | None:
    return None  # the Gemini API sends no rate-limit headers


def retry_after_s(body: bytes) -> float | None:
    """The wait a 429 asks for in its `google.rpc.RetryInfo` detail (`"retryDelay": "12s"`)."""
    found = _RETRY_DELAY.search(body.decode("utf-8", "replace")) if b"retryDelay" in body else None
    return float(found.group(1)) if found else None


def is_out_of_quota(body: bytes) -> bool:
    """A spent daily quota: waiting the minute RetryInfo offers does not bring it back."""
    return b"PerDay" in body and b"PerMinute" not in body


def error_message(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, list) and data:  # a streamed error comes as a one-element array
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    return error.get("message") if isinstance(error, dict) else None


def refusal_error_type(kind: str) -> str:
    """The status of a refusal: google-genai raises its ClientError for a 4xx, whatever the status."""
    return "RESOURCE_EXHAUSTED"


def error_body(message: str, kind: str, code: str) -> bytes:
    """Google's error shape, with llmguard's reason as an ErrorInfo detail."""
    detail = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": code, "domain": "llmguard"}
    return json_body({"error": {"code": 429, "message": message, "status": kind, "details": [detail]}})
