"""Streams, Anthropic Messages SSE → OpenAI `chat.completion.chunk` SSE: one small stateful
translator, fed event by event (the answer arrives in pieces, so it cannot be a pure function)."""

from __future__ import annotations

import time
from typing import Any

from llmguard.intercept.sse import SSESplitter, event_fields
from llmguard.providers.translate.error_bodies import openai_error_dict
from llmguard.providers.translate.usage import anthropic_usage_to_openai
from llmguard.providers.translate.wire import FINISH_REASON, as_object, parse_json, sse_data


class AnthropicToOpenAIStream:
    """Anthropic Messages SSE events in, OpenAI `chat.completion.chunk` SSE lines out.

    Feed each event (`feed(name, data)`, or raw bytes with `feed_raw`); send what comes back to the
    caller. The first chunk carries the role, tool calls open with their id and name, the finish
    chunk follows message_delta, and message_stop ends with a usage chunk (`choices: []`, only when
    the caller asked for `include_usage` and the stream reported usage) and `data: [DONE]`. An
    `error` event becomes an OpenAI error payload, which the openai SDK raises as `APIError`."""

    def __init__(
        self,
        requested_model: str,
        include_usage: bool = False,
        json_tool: str | None = None,
        created: int | None = None,
    ) -> None:
        self.requested_model = requested_model
        self.include_usage = include_usage
        self.json_tool = json_tool
        self.created = int(time.time()) if created is None else created
        self.id = ""
        self.model = requested_model
        self.done = False
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, tuple[str, int]] = {}  # Anthropic block index → (kind, tool call index)
        self._calls = 0
        self._splitter = SSESplitter()

    @property
    def usage(self) -> dict[str, Any] | None:
        """The usage reported so far, in OpenAI's shape (None while unknown)."""
        return anthropic_usage_to_openai(self._usage)

    def feed_raw(self, chunk: bytes) -> list[bytes]:
        out: list[bytes] = []
        for raw in self._splitter.feed(chunk):
            name, data = event_fields(raw)
            if data:
                out += self.feed(name, data)
        return out

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        payload: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            payload["usage"] = None
        return sse_data(payload)

    def feed(self, event_name: str | None, data: str | bytes) -> list[bytes]:
        """The OpenAI SSE lines for one Anthropic event (often none: ping, block stops, thinking)."""
        if self.done:
            return []
        event = parse_json(data)
        if not isinstance(event, dict):
            return []
        kind = event.get("type") or event_name
        if kind == "message_start":
            message = as_object(event.get("message"))
            self.id = str(message.get("id") or "")
            if isinstance(message.get("model"), str):
                self.model = message["model"]
            self._merge_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": "", "refusal": None})]
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._block_delta(event)
        if kind == "message_delta":
            self._merge_usage(event.get("usage"))
            delta = as_object(event.get("delta"))
            stop = delta.get("stop_reason")
            finish = FINISH_REASON.get(stop, "stop") if isinstance(stop, str) else "stop"
            if finish == "tool_calls" and self.json_tool is not None and self._calls == 0:
                finish = "stop"
            return [self._chunk({}, finish)]
        if kind == "message_stop":
            self.done = True
            out = []
            usage = self.usage
            if self.include_usage and usage is not None:
                out.append(
                    sse_data(
                        {
                            "id": self.id,
                            "object": "chat.completion.chunk",
                            "created": self.created,
                            "model": self.model,
                            "system_fingerprint": None,
                            "choices": [],
                            "usage": usage,
                        }
                    )
                )
            out.append(b"data: [DONE]\n\n")
            return out
        if kind == "error":
            self.done = True
            error = as_object(event.get("error"))
            return [sse_data(openai_error_dict(error, None))]
        return []  # ping, content_block_stop, unknown events

    def _merge_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    def _block_start(self, event: dict[str, Any]) -> list[bytes]:
        index = event.get("index")
        block = as_object(event.get("content_block"))
        kind = block.get("type")
        if not isinstance(index, int):
            return []
        if kind == "tool_use" and block.get("name") == self.json_tool and self.json_tool is not None:
            self._blocks[index] = ("json", -1)
            return []
        if kind == "tool_use":
            call = self._calls
            self._calls += 1
            self._blocks[index] = ("tool_use", call)
            opening = {
                "index": call,
                "id": str(block.get("id") or ""),
                "type": "function",
                "function": {"name": str(block.get("name") or ""), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [opening]})]
        self._blocks[index] = (str(kind), -1)
        text = block.get("text")
        if kind == "text" and isinstance(text, str) and text:
            return [self._chunk({"content": text})]
        return []

    def _block_delta(self, event: dict[str, Any]) -> list[bytes]:
        delta = as_object(event.get("delta"))
        index = event.get("index")
        kind, call = self._blocks.get(index, ("", -1)) if isinstance(index, int) else ("", -1)
        if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
            return [self._chunk({"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and isinstance(delta.get("partial_json"), str):
            piece = delta["partial_json"]
            if kind == "json":
                return [self._chunk({"content": piece})]
            if kind == "tool_use" and piece:
                return [self._chunk({"tool_calls": [{"index": call, "function": {"arguments": piece}}]})]
        return []  # thinking, signature and citations deltas have no chat.completion.chunk field
