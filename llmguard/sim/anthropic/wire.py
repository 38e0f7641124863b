"""Anthropic wire shapes: messages (JSON and the SSE event sequence), errors, rate-limit headers.

Pure functions from values to bytes/headers; no I/O. An answer is a list of content blocks
(`Block`: thinking, text, tool_use). The stream follows the real event order: message_start,
content_block_start, ping, content_block_delta × N (text_delta, thinking_delta then one
signature_delta, or input_json_delta), content_block_stop, … for each further block …,
message_delta, message_stop, each as `event: <type>` + `data: <json>`.
"""

from __future__ import annotations

import datetime as _dt
import math
import random
import time
from dataclasses import dataclass
from typing import Any

from llmguard.sim.buckets import Admission
from llmguard.sim.wire import alnum, dumps, quote

BATCHES_MISSING = "llmguard.sim does not simulate the Message Batches API"


def message_id() -> str:
    return f"msg_01{random.getrandbits(88):022x}"


def request_id() -> str:
    return f"req_011C{random.getrandbits(80):020x}"


@dataclass(frozen=True, slots=True)
class Block:
    """One content block of an answer. `pieces` are what the stream sends one delta each: thinking
    or text pieces (one token each), or the `partial_json` fragments of a tool_use input."""

    type: str  # "thinking", "text" or "tool_use"
    pieces: list[str]
    signature: str = ""  # thinking
    tool_id: str = ""  # tool_use
    name: str = ""  # tool_use
    input: dict[str, Any] | None = None  # tool_use: the parsed input (the JSON body)

    def as_dict(self) -> dict[str, Any]:
        if self.type == "thinking":
            return {"type": "thinking", "thinking": "".join(self.pieces), "signature": self.signature}
        if self.type == "tool_use":
            return {"type": "tool_use", "id": self.tool_id, "name": self.name, "input": self.input or {}}
        return {"type": "text", "text": "".join(self.pieces)}

    def start(self) -> dict[str, Any]:
        """The empty block a stream's content_block_start carries."""
        if self.type == "thinking":
            return {"type": "thinking", "thinking": "", "signature": ""}
        if self.type == "tool_use":
            return {"type": "tool_use", "id": self.tool_id, "name": self.name, "input": {}}
        return {"type": "text", "text": ""}


def tool_use_id() -> str:
    return "toolu_01" + alnum(22)


def usage(
    input_tokens: int,
    output_tokens: int,
    cache_read: int = 0,
    cache_5m: int = 0,
    cache_1h: int = 0,
    thinking_tokens: int | None = None,
) -> dict[str, Any]:
    """`input_tokens` is the part after the last cache breakpoint, as Anthropic reports it; the cache
    writes are also split by TTL (`cache_creation`). `output_tokens_details` only with thinking."""
    use: dict[str, Any] = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_5m + cache_1h,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": cache_5m, "ephemeral_1h_input_tokens": cache_1h},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    if thinking_tokens is not None:
        use["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
    return use


def message(mid: str, model: str, blocks: list[Block], stop_reason: str, use: dict[str, Any] | None) -> bytes:
    """A Messages API answer; `use=None` sends `"usage": null` (the no_usage fault)."""
    return dumps(
        {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [b.as_dict() for b in blocks],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": use,
        }
    ).encode()


def _event(kind: str, data: str) -> str:
    return f"event: {kind}\ndata: {data}\n\n"


def _block_event(kind: str, index: int, **fields: Any) -> str:
    return _event(kind, dumps({"type": kind, "index": index, **fields}))


_DELTA_FIELD = {
    "thinking": ("thinking_delta", "thinking"),
    "text": ("text_delta", "text"),
    "tool_use": ("input_json_delta", "partial_json"),
}


def _deltas(index: int, block: Block) -> list[str]:
    kind, name = _DELTA_FIELD[block.type]
    head = (
        f'event: content_block_delta\ndata: {{"type":"content_block_delta","index":{index},'
        f'"delta":{{"type":"{kind}","{name}":'
    )
    return [head + quote(p) + "}}\n\n" for p in block.pieces]


def message_stream(
    mid: str,
    model: str,
    blocks: list[Block],
    stop_reason: str,
    use: dict[str, Any] | None,
) -> tuple[bytes, list[bytes], bytes]:
    """(preamble, one event per piece, tail), in the real order: message_start, then per block
    content_block_start, its deltas (a thinking block ends with a signature_delta) and
    content_block_stop, then message_delta and message_stop; a ping follows the first block start.
    The events between two blocks ride with the next piece, so each piece keeps one token's delay.

    `use=None` is the no_usage fault: both usage objects are sent empty (`{}`), the closest shape to
    "no usage" the SDK's stream accumulator survives (it writes `usage.output_tokens` on the
    snapshot from message_delta, so a null usage would crash it)."""
    start_usage, delta_usage = _stream_usage(use)
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
    head, events, pending = _block_events(blocks, _event("message_start", dumps(start)))
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": delta_usage,
    }
    tail = pending + _event("message_delta", dumps(delta)) + _event("message_stop", '{"type":"message_stop"}')
    return head.encode(), [e.encode() for e in events], tail.encode()


def _stream_usage(use: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The usage of message_start (output 1 so far) and of message_delta (the output total)."""
    if use is None:
        return {}, {}
    start_usage = {k: v for k, v in use.items() if k != "output_tokens_details"}
    start_usage["output_tokens"] = 1
    delta_usage = {"output_tokens": use["output_tokens"]}
    if "output_tokens_details" in use:
        delta_usage["output_tokens_details"] = use["output_tokens_details"]
    return start_usage, delta_usage


def _block_events(blocks: list[Block], head: str) -> tuple[str, list[str], str]:
    """(head with the first block's start and the ping, one event per piece, the events still
    waiting for a piece when the blocks end)."""
    events: list[str] = []
    pending = ""  # structural events waiting for the next piece
    for index, block in enumerate(blocks):
        opening = _block_event("content_block_start", index, content_block=block.start())
        if index == 0:
            head += opening + _event("ping", '{"type":"ping"}')
        else:
            pending += opening
        deltas = _deltas(index, block)
        if deltas:
            deltas[0] = pending + deltas[0]
            pending = ""
        events += deltas
        if block.type == "thinking":
            pending += _block_event(
                "content_block_delta", index, delta={"type": "signature_delta", "signature": block.signature}
            )
        pending += _block_event("content_block_stop", index)
    return head, events, pending


def error(message: str, type_: str = "invalid_request_error") -> bytes:
    return dumps({"type": "error", "error": {"type": type_, "message": message}}).encode()


_FAULT_ERRORS = {  # status: (message, error type)
    429: ("Number of requests has exceeded your rate limit (simulated fault).", "rate_limit_error"),
    529: ("Overloaded", "overloaded_error"),
    503: ("Service unavailable", "api_error"),
}


def fault_error(status: int) -> bytes:
    return error(*_FAULT_ERRORS.get(status, ("Internal server error", "api_error")))


def rate_limit_error(model: str, adm: Admission) -> bytes:
    kind, limit = adm.refusal()
    what = "input tokens" if kind == "tokens" else "requests"
    return error(
        f"This request would exceed the rate limit for your organization of {limit} {what} per minute "
        f"for {model}. Please reduce the prompt length or the maximum tokens requested, or try again later.",
        "rate_limit_error",
    )


def _rfc3339(seconds_from_now: float) -> str:
    moment = _dt.datetime.fromtimestamp(math.ceil(time.time() + seconds_from_now), tz=_dt.UTC)
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
