"""Anthropic wire shapes: messages (JSON and the SSE event sequence), errors, rate-limit headers.

Pure functions from values to bytes/headers; no I/O. The stream follows the real event order:
message_start, content_block_start, ping, content_block_delta × N, content_block_stop,
message_delta, message_stop, each as `event: <type>` + `data: <json>`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import random
import time
from typing import Any

from llmguard.sim.buckets import Admission

_dumps = json.JSONEncoder(separators=(",", ":")).encode
_quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
JSON = "application/json"
EVENT_STREAM = "text/event-stream; charset=utf-8"


def message_id() -> str:
    return f"msg_01{random.getrandbits(88):022x}"


def request_id() -> str:
    return f"req_011C{random.getrandbits(80):020x}"


def usage(input_tokens: int, cache_read: int, output_tokens: int, cache_creation: int = 0) -> dict[str, Any]:
    """`input_tokens` is the uncached part, as Anthropic reports it."""
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message(mid: str, model: str, text: str, stop_reason: str, use: dict[str, Any]) -> bytes:
    return _dumps(
        {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": use,
        }
    ).encode()


def _event(kind: str, data: str) -> str:
    return f"event: {kind}\ndata: {data}\n\n"


def message_stream(
    mid: str, model: str, pieces: list[str], stop_reason: str, use: dict[str, Any]
) -> tuple[bytes, list[bytes], bytes]:
    """(preamble, one content_block_delta per token, tail)."""
    start_usage = dict(use, output_tokens=1)
    start = {
        "type": "message_start",
        "message": {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start_usage,
        },
    }
    preamble = (
        _event("message_start", _dumps(start))
        + _event(
            "content_block_start",
            '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
        )
        + _event("ping", '{"type":"ping"}')
    ).encode()
    delta_head = 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
    events = [(delta_head + _quote(p) + "}}\n\n").encode() for p in pieces]
    tail = (
        _event("content_block_stop", '{"type":"content_block_stop","index":0}')
        + _event(
            "message_delta",
            _dumps(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": use["output_tokens"]},
                }
            ),
        )
        + _event("message_stop", '{"type":"message_stop"}')
    )
    return preamble, events, tail.encode()


def error(message: str, type_: str = "invalid_request_error") -> bytes:
    return _dumps({"type": "error", "error": {"type": type_, "message": message}}).encode()


def fault_error(status: int) -> bytes:
    if status == 429:
        return error("Number of requests has exceeded your rate limit (simulated fault).", "rate_limit_error")
    if status == 529:
        return error("Overloaded", "overloaded_error")
    if status == 503:
        return error("Service unavailable", "api_error")
    return error("Internal server error", "api_error")


def rate_limit_error(model: str, adm: Admission) -> bytes:
    kind = adm.limited_by or "requests"
    view = adm.tokens if kind == "tokens" else adm.requests
    limit = view.limit if view else 0
    what = "input tokens" if kind == "tokens" else "requests"
    return error(
        f"This request would exceed the rate limit for your organization of {limit} {what} per minute "
        f"for {model}. Please reduce the prompt length or the maximum tokens requested, or try again later.",
        "rate_limit_error",
    )


def _rfc3339(seconds_from_now: float) -> str:
    moment = _dt.datetime.fromtimestamp(math.ceil(time.time() + seconds_from_now), tz=_dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ratelimit_headers(adm: Admission) -> list[tuple[str, str]]:
    """anthropic-ratelimit-* headers. One simulated token bucket stands for tokens, input and output."""
    headers: list[tuple[str, str]] = []
    req, tok = adm.requests, adm.tokens
    if req is not None:
        headers += [
            ("anthropic-ratelimit-requests-limit", str(req.limit)),
            ("anthropic-ratelimit-requests-remaining", str(req.remaining)),
            ("anthropic-ratelimit-requests-reset", _rfc3339(req.reset_s)),
        ]
    if tok is not None:
        reset = _rfc3339(tok.reset_s)
        for name in ("tokens", "input-tokens", "output-tokens"):
            headers += [
                (f"anthropic-ratelimit-{name}-limit", str(tok.limit)),
                (f"anthropic-ratelimit-{name}-remaining", str(tok.remaining)),
                (f"anthropic-ratelimit-{name}-reset", reset),
            ]
    return headers
