"""OpenAI Responses API wire shapes: the response object (JSON) and its typed SSE event sequence.

Pure functions from values to dicts/bytes; no I/O. The shapes follow the real API (and the `openai`
SDK's `types/responses/`), so `Response`, `client.responses.stream(...)` and `responses.parse` accept
them. A stream is built as (preamble, one chunk per output token, tail) for `SimCore.stream_parts`:
each chunk is one delta event plus whatever framing events follow it before the next delta, and the
delta events are rendered from a per-item template plus one JSON-quoted piece, so a long stream costs
no `json.dumps` per token.
"""

from __future__ import annotations

import random
from typing import Any

from llmguard.sim.wire import dumps, quote

COMPLETED = "response.completed"
INCOMPLETE = "response.incomplete"


def _hex_id(prefix: str) -> str:
    return f"{prefix}_{random.getrandbits(192):048x}"


def response_id() -> str:
    return _hex_id("resp")


def message_id() -> str:
    return _hex_id("msg")


def reasoning_id() -> str:
    return _hex_id("rs")


def function_item_id() -> str:
    return _hex_id("fc")


def usage(input_tokens: int, cached: int, output_tokens: int, reasoning: int) -> dict[str, Any]:
    """`output_tokens` already includes the reasoning tokens, as OpenAI bills them."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


# -- output items ----------------------------------------------------------------------------------


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def message_item(mid: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": mid,
        "type": "message",
        "status": status,
        "content": [output_text(text)],
        "role": "assistant",
    }


def reasoning_item(rid: str) -> dict[str, Any]:
    return {"id": rid, "type": "reasoning", "summary": []}


def function_call_item(fid: str, cid: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": fid,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": cid,
        "name": name,
    }


# -- the response object ---------------------------------------------------------------------------


def response_object(
    rid: str,
    created_at: int,
    model: str,
    echo: dict[str, Any],
    status: str,
    output: list[dict[str, Any]],
    use: dict[str, Any] | None,
    completed_at: int | None,
) -> dict[str, Any]:
    """A `response` object. `echo` holds the request-derived fields (see `request_echo`);
    an incomplete status always means the output cap was reached."""
    obj: dict[str, Any] = {
        "id": rid,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "completed_at": completed_at,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "model": model,
        "output": output,
    }
    obj.update(echo)
    obj["usage"] = use
    return obj


def request_echo(body: dict[str, Any], tools: list[dict[str, Any]], reasoning: dict[str, Any]) -> dict[str, Any]:
    """The request parameters a response object repeats back, with the API's defaults filled in."""
    raw_text = body.get("text")
    text: dict[str, Any] = raw_text if isinstance(raw_text, dict) else {}
    fmt = text.get("format") if isinstance(text.get("format"), dict) else {"type": "text"}
    parallel = body.get("parallel_tool_calls")
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "parallel_tool_calls": True if parallel is None else parallel,
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": reasoning,
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store") is not False,
        "temperature": 1.0 if body.get("temperature") is None else body["temperature"],
        "text": {"format": fmt, "verbosity": text.get("verbosity") or "medium"},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": tools,
        "top_logprobs": body.get("top_logprobs") or 0,
        "top_p": 1.0 if body.get("top_p") is None else body["top_p"],
        "truncation": body.get("truncation") or "disabled",
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def response_json(obj: dict[str, Any]) -> bytes:
    return dumps(obj).encode()


# -- the event stream ------------------------------------------------------------------------------


class _Events:
    """Numbers events and splits them into (preamble, per-delta chunks, tail)."""

    def __init__(self) -> None:
        self.seq = 0
        self.preamble: list[str] = []
        self.deltas: list[list[str]] = []

    def _push(self, text: str, is_delta: bool) -> None:
        if is_delta:
            self.deltas.append([text])
        elif self.deltas:
            self.deltas[-1].append(text)
        else:
            self.preamble.append(text)

    def framing(self, kind: str, fields: dict[str, Any]) -> None:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        self._push(f"event: {kind}\ndata: {dumps(data)}\n\n", False)

    def delta(self, head: str, where: str, piece: str, close: str) -> None:
        """`head` + sequence number + `where` + the quoted piece + `close`: one delta event."""
        self._push(f"{head}{self.seq},{where}{quote(piece)}{close}", True)
        self.seq += 1

    def split(self) -> tuple[bytes, list[bytes], bytes]:
        if not self.deltas:
            return "".join(self.preamble).encode(), [], b""
        preamble = "".join(self.preamble).encode()
        last = self.deltas[-1]
        chunks = [(d[0] + "".join(d[1:])).encode() for d in self.deltas[:-1]]
        # the last delta is a chunk of its own; the framing after it is the tail
        chunks.append(last[0].encode())
        return preamble, chunks, "".join(last[1:]).encode()


def response_stream(final: dict[str, Any], pieces: list[list[str]]) -> tuple[bytes, list[bytes], bytes]:
    """The SSE events of one response, in the real order.

    `final` is the finished response object; `pieces[i]` are the one-token pieces of output item i
    (message text or function-call arguments; ignored for reasoning items). The lifecycle events
    carry an in-progress copy (empty output, no usage); the last event is `response.completed`, or
    `response.incomplete` when the output cap cut the answer.
    """
    ev = _Events()
    snapshot = {
        **final,
        "status": "in_progress",
        "completed_at": None,
        "incomplete_details": None,
        "output": [],
        "usage": None,
    }
    ev.framing("response.created", {"response": snapshot})
    ev.framing("response.in_progress", {"response": snapshot})
    for index, item in enumerate(final["output"]):
        kind = item["type"]
        if kind == "reasoning":
            ev.framing("response.output_item.added", {"output_index": index, "item": item})
            ev.framing("response.output_item.done", {"output_index": index, "item": item})
        elif kind == "message":
            _message_events(ev, index, item, pieces[index])
        elif kind == "function_call":
            _function_call_events(ev, index, item, pieces[index])
    terminal = COMPLETED if final["status"] == "completed" else INCOMPLETE
    ev.framing(terminal, {"response": final})
    return ev.split()


def _message_events(ev: _Events, index: int, item: dict[str, Any], pieces: list[str]) -> None:
    mid = item["id"]
    where = {"item_id": mid, "output_index": index, "content_index": 0}
    ev.framing(
        "response.output_item.added",
        {"output_index": index, "item": {**item, "status": "in_progress", "content": []}},
    )
    ev.framing("response.content_part.added", {**where, "part": output_text("")})
    head = 'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":'
    where_json = f'"item_id":{quote(mid)},"output_index":{index},"content_index":0,"delta":'
    for piece in pieces:
        ev.delta(head, where_json, piece, ',"logprobs":[]}\n\n')
    text = item["content"][0]["text"]
    ev.framing("response.output_text.done", {**where, "text": text, "logprobs": []})
    ev.framing("response.content_part.done", {**where, "part": output_text(text)})
    ev.framing("response.output_item.done", {"output_index": index, "item": item})


def _function_call_events(ev: _Events, index: int, item: dict[str, Any], pieces: list[str]) -> None:
    fid = item["id"]
    ev.framing(
        "response.output_item.added",
        {"output_index": index, "item": {**item, "status": "in_progress", "arguments": ""}},
    )
    head = (
        "event: response.function_call_arguments.delta\n"
        'data: {"type":"response.function_call_arguments.delta","sequence_number":'
    )
    where_json = f'"item_id":{quote(fid)},"output_index":{index},"delta":'
    for piece in pieces:
        ev.delta(head, where_json, piece, "}\n\n")
    where = {"item_id": fid, "output_index": index}
    ev.framing("response.function_call_arguments.done", {**where, "arguments": item["arguments"]})
    ev.framing("response.output_item.done", {"output_index": index, "item": item})
