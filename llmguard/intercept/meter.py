"""Meters one response as the user's code reads it: usage, time to first token, then the ledger row.

Bytes pass through as they arrive. Only when llmguard asked an OpenAI chat stream for usage does
the meter rewrite the stream, at event boundaries, to drop the usage-only chunk the user did not
ask for.
"""

from __future__ import annotations

import time
import zlib
from typing import TYPE_CHECKING, Any

from llmguard.intercept.sse import SSESplitter, event_fields
from llmguard.providers.base import StreamState, Usage

if TYPE_CHECKING:
    from llmguard.pipeline.guard import CallState, Guard


def _decompressor(encoding: str | None) -> Any:
    if not encoding or encoding == "identity":
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return zlib.decompressobj()
    return False  # br, zstd: the SDK can read it, we cannot meter it


class ResponseMeter:
    __slots__ = (
        "guard",
        "call_state",
        "event",
        "call",
        "adapter",
        "started",
        "sent",
        "drop_usage_chunk",
        "secrets",
        "sse",
        "_state",
        "_splitter",
        "_chunks",
        "_decoder",
        "_done",
        "_ttft",
        "_keep",
    )

    def __init__(self, guard: Guard, call_state: CallState, sent: float, headers: Any) -> None:
        self.guard = guard
        self.call_state = call_state
        self.event = call_state.event
        self.call = call_state.call
        self.adapter = call_state.adapter
        self.started = call_state.started
        self.sent = sent
        self.secrets = call_state.secrets
        drop_usage_chunk = call_state.drop_usage_chunk
        content_type = encoding = None
        for key, value in headers.raw:  # one pass: Headers.get normalises on every lookup
            key = key.lower()
            if key == b"content-type":
                content_type = value
            elif key == b"content-encoding":
                encoding = value.decode("latin-1").strip().lower()
        self.sse = content_type is not None and b"text/event-stream" in content_type
        self._decoder = _decompressor(encoding)
        # Rewriting a compressed stream would need re-compression; we decode instead (see transport).
        self.drop_usage_chunk = drop_usage_chunk and self.sse
        self._state = StreamState()
        self._splitter = SSESplitter() if self.sse else None
        self._chunks: list[bytes] = []
        self._keep = call_state.cache_key is not None  # the answer will be stored: keep what the user sees
        self._done = False
        self._ttft: float | None = None

    @property
    def rewrites(self) -> bool:
        """The stream's bytes change (the transport must drop content-encoding/length)."""
        return self.drop_usage_chunk

    def _decoded(self, chunk: bytes) -> bytes | None:
        if self._decoder is None:
            return chunk
        if self._decoder is False:
            return None
        try:
            return self._decoder.decompress(chunk)
        except zlib.error:
            self._decoder = False
            return None

    def feed(self, chunk: bytes) -> bytes:
        """Observe one chunk; return what the user's code should receive."""
        if self._splitter is None:
            self._chunks.append(chunk)
            return chunk
        data = self._decoded(chunk)
        if data is None:
            return chunk
        events = self._splitter.feed(data)
        if not self.drop_usage_chunk:
            for raw in events:
                self._observe(raw)
            if self._keep:
                self._chunks.append(data)
            return chunk
        out = b"".join([raw for raw in events if not self._observe(raw)])
        if self._keep:
            self._chunks.append(out)
        return out

    def flush(self) -> bytes:
        """An unterminated last event, passed through as the SDK would have seen it."""
        if self._splitter is None or not self.drop_usage_chunk:
            return b""
        tail = self._splitter.pending
        if tail.strip():
            self._observe(tail)
        if self._keep:
            self._chunks.append(tail)
        return tail

    def _observe(self, raw: bytes) -> bool:
        name, data = event_fields(raw)
        before = self._state.events
        content_before = getattr(self._state, "content_events", 0)
        drop = self.adapter.observe_event(self._state, name, data)
        if self._ttft is None and self._state.events > before and self._state.content_events > content_before:
            self._ttft = time.perf_counter()
        return drop

    def finish(self, completed_read: bool) -> None:
        """Called once when the response is closed (read to the end, or abandoned)."""
        if self._done:
            return
        self._done = True
        now = time.perf_counter()
        event = self.event
        event.model_ms = (now - self.sent) * 1000
        event.total_ms = (now - self.started) * 1000
        if self._ttft is not None:
            event.ttft_ms = (self._ttft - self.started) * 1000
        status = event.http_status or 200
        if self._splitter is not None:
            self._finish_stream(completed_read)
        else:
            self._finish_body(status, completed_read)
        self.guard.complete(self.call_state)

    def _finish_body(self, status: int, completed_read: bool) -> None:
        event = self.event
        body = b"".join(self._chunks)
        if self._decoder is not None:
            body = self._decoded(body) or b""
        if status >= 400:
            event.status = "error"
            event.error_type = event.error_type or f"http_{status}"
            event.error_message = self.guard.scrub(self.adapter.error_message(body), self.secrets)
            return
        usage, model = self.adapter.parse_response(body)
        if model:
            event.model = model
        if self._keep and completed_read and usage is not None:
            self.call_state.body = body
        if usage is None:
            if not completed_read:
                event.status = "incomplete"
            else:
                event.error_message = "llmguard: the response carried no usage; tokens are estimated"
            self.guard.estimate_usage(event, self.call, output_tokens=0)
            return
        self._apply(usage)

    def _finish_stream(self, completed_read: bool) -> None:
        state, event = self._state, self.event
        if state.model:
            event.model = state.model
        if state.error:
            event.status = "error"
            event.error_type = event.error_type or "stream_error"
            event.error_message = self.guard.scrub(state.error, self.secrets)
        if not state.complete:
            if event.status == "ok":
                event.status = "incomplete"
            event.error_message = event.error_message or (
                "llmguard: the stream ended before its final event"
                if completed_read
                else "llmguard: the stream was closed before its final event"
            )
        if self._keep and state.complete:  # the SDK stops reading at the final event; that is complete
            self.call_state.body = b"".join(self._chunks)
            self.call_state.content_type = "text/event-stream; charset=utf-8"
        if state.saw_usage and (state.complete or state.usage.output_tokens):
            self._apply(state.usage)
            if not state.complete:
                event.tokens_approximate = True
        else:
            self.guard.estimate_usage(event, self.call, output_tokens=state.content_events)

    def _apply(self, usage: Usage) -> None:
        event = self.event
        event.input_tokens = usage.input_tokens
        event.cached_input_tokens = usage.cached_input_tokens
        event.cache_write_tokens = usage.cache_write_tokens
        event.output_tokens = usage.output_tokens
        event.reasoning_tokens = usage.reasoning_tokens
        event.cost_usd = self.guard.cost(event, usage)
