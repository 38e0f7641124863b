"""OpenAI wire shapes: chat completions (JSON and SSE), embeddings, errors, rate-limit headers.

Pure functions from values to bytes/headers; no I/O. The shapes follow the real API closely enough
that the `openai` SDK parses them into its own objects. Stream chunks are built from a per-response
template plus one JSON-quoted token, because a full `json.dumps` per chunk would make a 300-token
stream cost milliseconds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
from array import array
from typing import Any

from llmguard.sim.buckets import Admission, go_duration

_dumps = json.JSONEncoder(separators=(",", ":")).encode
_quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
SYSTEM_FINGERPRINT = "fp_llmguardsim"
JSON = "application/json"
EVENT_STREAM = "text/event-stream; charset=utf-8"


def completion_id() -> str:
    return f"chatcmpl-{random.getrandbits(116):029x}"


def request_id() -> str:
    return f"req_{random.getrandbits(128):032x}"


def usage(prompt: int, cached: int, completion: int, reasoning: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(
    cid: str, created: int, model: str, text: str, finish: str, use: dict[str, Any] | None
) -> bytes:
    """A `chat.completion` object; built from a template (this is the hot path of every benchmark).
    `use=None` leaves usage out (the no_usage fault)."""
    return (
        f'{{"id":{_quote(cid)},"object":"chat.completion","created":{created},"model":{_quote(model)},'
        f'"choices":[{{"index":0,"message":{{"role":"assistant","content":{_quote(text)},"refusal":null,'
        f'"annotations":[]}},"logprobs":null,"finish_reason":{_quote(finish)}}}],"usage":{_dumps(use) if use else "null"},'
        f'"service_tier":"default","system_fingerprint":"{SYSTEM_FINGERPRINT}"}}'
    ).encode()


def chat_stream(
    cid: str,
    created: int,
    model: str,
    pieces: list[str],
    finish: str,
    use: dict[str, Any],
    include_usage: bool,
) -> tuple[bytes, list[bytes], bytes]:
    """(preamble, one event per token, tail). The tail holds the finish chunk, the usage chunk when
    `include_usage` (then every chunk has `"usage":null`), and `data: [DONE]`."""
    head = (
        f'data: {{"id":{_quote(cid)},"object":"chat.completion.chunk","created":{created},'
        f'"model":{_quote(model)},"service_tier":"default","system_fingerprint":"{SYSTEM_FINGERPRINT}",'
        '"choices":[{"index":0,"delta":'
    )
    tail_null = "}" if not include_usage else ',"usage":null}'
    mid = ',"logprobs":null,"finish_reason":null}]' + tail_null + "\n\n"
    preamble = (head + '{"role":"assistant","content":"","refusal":null}' + mid).encode()
    events = [(head + '{"content":' + _quote(p) + "}" + mid).encode() for p in pieces]
    tail = head + "{}" + f',"logprobs":null,"finish_reason":"{finish}"}}]' + tail_null + "\n\n"
    if include_usage:
        tail += (
            f'data: {{"id":{_quote(cid)},"object":"chat.completion.chunk","created":{created},'
            f'"model":{_quote(model)},"service_tier":"default","system_fingerprint":"{SYSTEM_FINGERPRINT}",'
            f'"choices":[],"usage":{_dumps(use)}}}\n\n'
        )
    tail += "data: [DONE]\n\n"
    return preamble, events, tail.encode()


def embedding_vector(text_key: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for an input (same input → same vector)."""
    raw = hashlib.shake_256(text_key.encode()).digest(dimensions * 2)
    values = array("h", raw)
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def embeddings(model: str, vectors: list[list[float]], prompt_tokens: int, encoding_format: str) -> bytes:
    data = []
    for i, vector in enumerate(vectors):
        value: Any = vector
        if encoding_format == "base64":
            value = base64.b64encode(array("f", vector).tobytes()).decode()
        data.append({"object": "embedding", "index": i, "embedding": value})
    return _dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    ).encode()


def error(
    message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> bytes:
    return _dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()


def fault_error(status: int) -> bytes:
    if status == 429:
        return error(
            "Rate limit reached (simulated fault). Please try again shortly.",
            "requests",
            None,
            "rate_limit_exceeded",
        )
    if status == 503:
        return error("The server is overloaded or not ready yet.", "server_error")
    if status == 529:
        return error("The engine is currently overloaded, please try again later.", "server_error")
    return error("The server had an error while processing your request. Sorry about that!", "server_error")


def rate_limit_error(model: str, adm: Admission) -> bytes:
    kind = adm.limited_by or "requests"
    view = adm.tokens if kind == "tokens" else adm.requests
    limit = view.limit if view else 0
    short = "TPM" if kind == "tokens" else "RPM"
    if adm.requested > limit:
        message = (
            f"Request too large for {model} on {kind} per min ({short}): Limit {limit}, "
            f"Requested {adm.requested}. The input or output tokens must be reduced in order to run successfully."
        )
    else:
        message = (
            f"Rate limit reached for {model} in organization org-llmguard-sim on {kind} per min ({short}): "
            f"Limit {limit}, Used {adm.used}, Requested {adm.requested}. "
            f"Please try again in {go_duration(adm.retry_after_s)}."
        )
    return error(message, kind, None, "rate_limit_exceeded")


def ratelimit_headers(adm: Admission) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for name, view in (("requests", adm.requests), ("tokens", adm.tokens)):
        if view is not None:
            headers += [
                (f"x-ratelimit-limit-{name}", str(view.limit)),
                (f"x-ratelimit-remaining-{name}", str(view.remaining)),
                (f"x-ratelimit-reset-{name}", go_duration(view.reset_s)),
            ]
    return headers
