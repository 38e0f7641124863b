"""OpenAI wire shapes: chat completions (JSON and SSE, text or tool calls, n choices), legacy text
completions, embeddings, models, errors, rate-limit headers, Azure's "Resource not found".

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
import string
from array import array
from dataclasses import dataclass, field
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


def text_completion_id() -> str:
    return f"cmpl-{random.getrandbits(116):029x}"


_ID_CHARS = string.ascii_letters + string.digits


def tool_call_id() -> str:
    """`call_` and 24 letters/digits, like the real API's tool-call ids."""
    return "call_" + "".join(random.choices(_ID_CHARS, k=24))


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text


@dataclass(frozen=True, slots=True)
class ChatChoice:
    """One answer of a chat completion. `pieces` is what a stream sends one chunk each: the content's
    tokens, or the tool call's argument fragments."""

    index: int
    finish: str
    content: str | None = None
    tool_call: ToolCall | None = None
    pieces: list[str] = field(default_factory=list)


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


def chat_completion(cid: str, created: int, model: str, text: str, finish: str, use: dict[str, Any] | None) -> bytes:
    """A `chat.completion` object; built from a template (this is the hot path of every benchmark).
    `use=None` leaves usage out (the no_usage fault)."""
    return (
        f'{{"id":{_quote(cid)},"object":"chat.completion","created":{created},"model":{_quote(model)},'
        f'"choices":[{{"index":0,"message":{{"role":"assistant","content":{_quote(text)},"refusal":null,'
        f'"annotations":[]}},"logprobs":null,"finish_reason":{_quote(finish)}}}],"usage":{_dumps(use) if use else "null"},'
        f'"service_tier":"default","system_fingerprint":"{SYSTEM_FINGERPRINT}"}}'
    ).encode()


def _message(choice: ChatChoice) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": choice.content, "refusal": None}
    if choice.tool_call is not None:
        call = choice.tool_call
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        ]
    message["annotations"] = []
    return message


def chat_completion_choices(
    cid: str, created: int, model: str, choices: list[ChatChoice], use: dict[str, Any] | None
) -> bytes:
    """A `chat.completion` with any number of choices, text or tool calls (`use=None`: no usage)."""
    return _dumps(
        {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": c.index, "message": _message(c), "logprobs": None, "finish_reason": c.finish} for c in choices
            ],
            "usage": use,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
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
    """A one-choice text stream (see `chat_stream_choices`)."""
    choice = ChatChoice(0, finish, "".join(pieces), None, pieces)
    return chat_stream_choices(cid, created, model, [choice], use, include_usage)


def chat_stream_choices(
    cid: str,
    created: int,
    model: str,
    choices: list[ChatChoice],
    use: dict[str, Any],
    include_usage: bool,
) -> tuple[bytes, list[bytes], bytes]:
    """(preamble, events, tail) of a `chat.completion.chunk` stream.

    Each chunk carries one choice, as the real API sends them. The preamble holds each choice's
    first chunk (role, and for a tool call its id, type and name with empty arguments); event `k`
    holds the k-th piece of every choice still going (choices are generated side by side); the tail
    holds each choice's finish chunk, the usage chunk when `include_usage` (then every chunk has
    `"usage":null`), and `data: [DONE]`.
    """
    head = (
        f'data: {{"id":{_quote(cid)},"object":"chat.completion.chunk","created":{created},'
        f'"model":{_quote(model)},"service_tier":"default","system_fingerprint":"{SYSTEM_FINGERPRINT}",'
        '"choices":[{"index":'
    )
    tail_null = "}" if not include_usage else ',"usage":null}'
    mid = ',"logprobs":null,"finish_reason":null}]' + tail_null + "\n\n"
    preamble: list[str] = []
    for c in choices:
        if c.tool_call is None:
            delta = '{"role":"assistant","content":"","refusal":null}'
        else:
            call = c.tool_call
            delta = (
                '{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":'
                f'{_quote(call.id)},"type":"function","function":{{"name":{_quote(call.name)},'
                '"arguments":""}}],"refusal":null}'
            )
        preamble.append(f'{head}{c.index},"delta":{delta}{mid}')
    events: list[bytes] = []
    longest = max((len(c.pieces) for c in choices), default=0)
    for k in range(longest):
        step = []
        for c in choices:
            if k < len(c.pieces):
                if c.tool_call is None:
                    delta = '{"content":' + _quote(c.pieces[k]) + "}"
                else:
                    delta = '{"tool_calls":[{"index":0,"function":{"arguments":' + _quote(c.pieces[k]) + "}}]}"
                step.append(f'{head}{c.index},"delta":{delta}{mid}')
        events.append("".join(step).encode())
    tail = "".join(
        f'{head}{c.index},"delta":{{}},"logprobs":null,"finish_reason":"{c.finish}"}}]{tail_null}\n\n' for c in choices
    )
    if include_usage:
        tail += (
            f'data: {{"id":{_quote(cid)},"object":"chat.completion.chunk","created":{created},'
            f'"model":{_quote(model)},"service_tier":"default","system_fingerprint":"{SYSTEM_FINGERPRINT}",'
            f'"choices":[],"usage":{_dumps(use)}}}\n\n'
        )
    tail += "data: [DONE]\n\n"
    return "".join(preamble).encode(), events, tail.encode()


# -- legacy text completions ---------------------------------------------------------------------


def completion_usage(prompt: int, completion: int) -> dict[str, Any]:
    """The legacy endpoint's usage: the three totals only."""
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def text_completion(
    cid: str, created: int, model: str, choices: list[tuple[str, str]], use: dict[str, Any] | None
) -> bytes:
    """A `text_completion` object; `choices` are (text, finish reason) in index order."""
    return _dumps(
        {
            "id": cid,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [
                {"text": text, "index": i, "logprobs": None, "finish_reason": finish}
                for i, (text, finish) in enumerate(choices)
            ],
            "usage": use,
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
    ).encode()


def text_completion_stream(
    cid: str,
    created: int,
    model: str,
    choices: list[tuple[list[str], str]],
    use: dict[str, Any],
    include_usage: bool,
) -> tuple[list[bytes], bytes]:
    """(events, tail) of a legacy stream: event `k` holds the k-th token of every choice still going
    (one `text_completion` chunk per choice); the tail holds each choice's finish chunk (empty text),
    the usage chunk when `include_usage`, and `data: [DONE]`. The legacy endpoint sends no role chunk."""
    head = f'data: {{"id":{_quote(cid)},"object":"text_completion","created":{created},"choices":[{{"text":'
    foot = f'"model":{_quote(model)},"system_fingerprint":"{SYSTEM_FINGERPRINT}"'
    foot += ',"usage":null}\n\n' if include_usage else "}\n\n"
    events: list[bytes] = []
    longest = max((len(pieces) for pieces, _ in choices), default=0)
    for k in range(longest):
        step = [
            f'{head}{_quote(pieces[k])},"index":{i},"logprobs":null,"finish_reason":null}}],{foot}'
            for i, (pieces, _) in enumerate(choices)
            if k < len(pieces)
        ]
        events.append("".join(step).encode())
    tail = "".join(
        f'{head}"","index":{i},"logprobs":null,"finish_reason":"{finish}"}}],{foot}'
        for i, (_, finish) in enumerate(choices)
    )
    if include_usage:
        tail += (
            f'data: {{"id":{_quote(cid)},"object":"text_completion","created":{created},"choices":[],'
            f'"model":{_quote(model)},"system_fingerprint":"{SYSTEM_FINGERPRINT}","usage":{_dumps(use)}}}\n\n'
        )
    tail += "data: [DONE]\n\n"
    return events, tail.encode()


# -- models --------------------------------------------------------------------------------------


def model_object(model_id: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


def models_list(models: list[dict[str, Any]]) -> bytes:
    return _dumps({"object": "list", "data": models}).encode()


def azure_not_found() -> bytes:
    """What Azure OpenAI answers for a path it does not serve, or one without `api-version`."""
    return _dumps({"error": {"code": "404", "message": "Resource not found"}}).encode()


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
