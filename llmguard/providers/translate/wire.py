"""Wire-level pieces both directions use: compact and spaced JSON encoders, the finish/stop reason
maps, tolerant JSON parsing and SSE framing."""

from __future__ import annotations

import json
from typing import Any

compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# An answer's tool input as text, spaced the way Anthropic streams it (so a streamed answer and the
# JSON one read the same)
spaced_json = json.JSONEncoder(ensure_ascii=False).encode

FINISH_REASON = {  # Anthropic stop_reason → OpenAI finish_reason
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


STOP_REASON = {  # OpenAI finish_reason → Anthropic stop_reason
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def parse_json(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


def sse_data(payload: dict[str, Any]) -> bytes:
    return b"data: " + compact_json(payload).encode() + b"\n\n"


def sse_event(kind: str, payload: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: ".encode() + compact_json(payload).encode() + b"\n\n"


def as_object(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (stream events may omit any part)."""
    return value if isinstance(value, dict) else {}
