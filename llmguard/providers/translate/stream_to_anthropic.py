"""Streams, OpenAI `chat.completion.chunk` SSE → Anthropic Messages SSE: one small stateful
translator, fed payload by payload (the answer arrives in pieces, so it cannot be a pure function)."""

from __future__ import annotations

from typing import Any

from llmguard.intercept.sse import SSESplitter, event_fields
from llmguard.providers.translate.error_bodies import anthropic_error_dict
from llmguard.providers.translate.usage import openai_usage_to_anthropic
from llmguard.providers.translate.wire import STOP_REASON, as_object, parse_json, sse_event


class OpenAIToAnthropicStream:
    """OpenAI `chat.completion.chunk` SSE payloads in, Anthropic Messages SSE events out.

    Feed each `data:` payload (`feed`, or raw bytes with `feed_raw`). Text and each tool call become
    content blocks; message_start carries zero input tokens (OpenAI reports usage only at the end),
    and message_delta, sent at `[DONE]`, carries the whole usage (the request must ask for
    `include_usage`, as `anthropic_to_openai_chat` does for streams)."""

    def __init__(self, requested_model: str) -> None:
        self.requested_model = requested_model
        self.done = False
        self._started = False
        self._open: int | None = None  # the Anthropic index of the block open now
        self._text_block: int | None = None
        self._tools: dict[int, int] = {}  # OpenAI tool call index → Anthropic block index
        self._next = 0
        self._stop = "end_turn"
        self._usage: dict[str, Any] | None = None
        self._splitter = SSESplitter()

    def feed_raw(self, chunk: bytes) -> list[bytes]:
        out: list[bytes] = []
        for raw in self._splitter.feed(chunk):
            _, data = event_fields(raw)
            if data:
                out += self.feed(data)
        return out

    def feed(self, data: str | bytes) -> list[bytes]:
        """The Anthropic events for one OpenAI SSE payload (a chunk, an error or `[DONE]`)."""
        if self.done:
            return []
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        if text.strip() == "[DONE]":
            return self._finish()
        chunk = parse_json(text)
        if not isinstance(chunk, dict):
            return []
        if isinstance(chunk.get("error"), dict):
            self.done = True
            return [sse_event("error", anthropic_error_dict(chunk["error"], None))]
        out = [] if self._started else [self._start(chunk)]
        self._started = True
        if isinstance(chunk.get("usage"), dict):
            self._usage = openai_usage_to_anthropic(chunk["usage"])
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out += self._choice(choice)
        return out

    def _start(self, chunk: dict[str, Any]) -> bytes:
        model = chunk.get("model") if isinstance(chunk.get("model"), str) else self.requested_model
        # the simulator (llmguard/sim) writes the same message_start on purpose: it is the
        # oracle the guard is checked against, so it shares no code with llmguard
        message: dict[str, Any] = {
            "id": str(chunk.get("id") or ""),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return sse_event("message_start", {"type": "message_start", "message": message})

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        index, self._open = self._open, None
        return [sse_event("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _open_block(self, block: dict[str, Any]) -> tuple[int, list[bytes]]:
        """(the new block's index, the events closing the open block and starting this one)."""
        out = self._close()
        index = self._open = self._next
        self._next += 1
        out.append(
            sse_event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        return index, out

    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        delta = as_object(choice.get("delta"))
        for key in ("content", "refusal"):
            piece = delta.get(key)
            if isinstance(piece, str) and piece:
                if key == "refusal":
                    self._stop = "refusal"
                if self._text_block is None or self._open != self._text_block:
                    self._text_block, opened = self._open_block({"type": "text", "text": ""})
                    out += opened
                out.append(self._delta({"type": "text_delta", "text": piece}))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if not isinstance(call, dict):
                continue
            position = call.get("index", 0)
            if not isinstance(position, int):
                continue
            function = as_object(call.get("function"))
            if position not in self._tools:
                opening = {
                    "type": "tool_use",
                    "id": str(call.get("id") or f"toolu_{position}"),
                    "name": str(function.get("name") or ""),
                    "input": {},
                }
                self._tools[position], opened = self._open_block(opening)
                out += opened
            arguments = function.get("arguments")
            if isinstance(arguments, str) and arguments:
                out.append(self._delta({"type": "input_json_delta", "partial_json": arguments}, self._tools[position]))
        finish = choice.get("finish_reason")
        if isinstance(finish, str):
            if self._stop != "refusal":
                self._stop = STOP_REASON.get(finish, "end_turn")
            out += self._close()
        return out

    def _delta(self, delta: dict[str, Any], index: int | None = None) -> bytes:
        at = self._open if index is None else index
        return sse_event("content_block_delta", {"type": "content_block_delta", "index": at, "delta": delta})

    def _finish(self) -> list[bytes]:
        self.done = True
        if not self._started:
            return []
        out = self._close()
        usage: dict[str, Any] = self._usage if self._usage is not None else {}
        out.append(
            sse_event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._stop, "stop_sequence": None},
                    "usage": usage,
                },
            )
        )
        out.append(sse_event("message_stop", {"type": "message_stop"}))
        return out
