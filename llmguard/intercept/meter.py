"""Meters one response as the user's code reads it: usage, time to first token, the answer to cache.

Bytes pass through as they arrive. Only when llmguard asked an OpenAI chat stream for usage does
the meter rewrite the stream, at event boundaries, to drop the usage-only chunk the user did not
ask for. When the response is closed the meter hands one `MeterReading` to the pipeline's
callback: it never prices, scrubs, releases or records anything itself. A stream dropped unclosed
is finished from its finalizer, which only reads and hands over (`finish(..., from_finalizer=True)`).
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llmguard.intercept.sse import SSESplitter, event_fields
from llmguard.types import MeterReading, StreamState

if TYPE_CHECKING:
    from llmguard.pipeline.steps import CallState

# (the call's state, what was read, whether a GC finalizer is running) -> None
OnFinish = Callable[["CallState", MeterReading, bool], None]

# The usage-only chunk the guard asked for (`include_usage`) has no choices. Every other chunk of
# such a stream carries `"usage": null`, so "usage" alone would pick them all.
_NO_CHOICES = re.compile(rb'"choices"\s*:\s*\[\s*\]')


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
        "on_finish",
        "call_state",
        "adapter",
        "started",
        "sent",
        "drop_usage_chunk",
        "sse",
        "_state",
        "_splitter",
        "_chunks",
        "_decoder",
        "_done",
        "_ttft",
        "_keep",
        "_unread",
    )

    def __init__(self, on_finish: OnFinish, call_state: CallState, sent: float, headers: Any) -> None:
        self.on_finish = on_finish
        self.call_state = call_state
        self.adapter = call_state.adapter
        self.started = call_state.started
        self.sent = sent
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
        # Events passed on but not yet looked at, with when they arrived: looked at on the next
        # read or at the end, so a chunk reaches the SDK before the meter parses it (a provider may
        # send the whole answer in one read: parsing it all first delayed the first token).
        self._unread: list[tuple[bytes, float]] = []

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
        if self._unread:
            self.catch_up()
        arrived = time.perf_counter()
        events = self._splitter.feed(data)
        if not self.drop_usage_chunk:
            self._unread.extend([(raw, arrived) for raw in events])
            if self._keep:
                self._chunks.append(data)
            return chunk
        kept: list[bytes] = []
        for raw in events:
            if _NO_CHOICES.search(raw):  # may be the usage-only chunk the user did not ask for: decide now
                if self._observe(raw, arrived):
                    continue
            else:
                self._unread.append((raw, arrived))
            kept.append(raw)
        out = b"".join(kept)
        if self._keep:
            self._chunks.append(out)
        return out

    def catch_up(self) -> None:
        """Look at the events already passed on."""
        unread, self._unread = self._unread, []
        for raw, arrived in unread:
            self._observe(raw, arrived)

    def flush(self) -> bytes:
        """An unterminated last event, passed through as the SDK would have seen it."""
        if self._splitter is None or not self.drop_usage_chunk:
            return b""
        self.catch_up()
        tail = self._splitter.pending
        if tail.strip():
            self._observe(tail, time.perf_counter())
        if self._keep:
            self._chunks.append(tail)
        return tail

    def _observe(self, raw: bytes, arrived: float) -> bool:
        name, data = event_fields(raw)
        before = self._state.events
        content_before = getattr(self._state, "content_events", 0)
        drop = self.adapter.observe_event(self._state, name, data)
        if self._state.events > before and self._state.content_events > content_before:
            if self._ttft is None or arrived < self._ttft:  # usage events are looked at early
                self._ttft = arrived
        return drop

    def finish(self, completed_read: bool, from_finalizer: bool = False) -> None:
        """Called once when the response is closed (read to the end, or abandoned)."""
        if self._done:
            return
        self._done = True
        now = time.perf_counter()
        self.catch_up()
        reading = MeterReading(
            completed_read,
            model_ms=(now - self.sent) * 1000,
            total_ms=(now - self.started) * 1000,
            ttft_ms=None if self._ttft is None else (self._ttft - self.started) * 1000,
        )
        if self._splitter is not None:
            self._read_stream(reading)
        else:
            self._read_body(reading, self.call_state.event.http_status or 200)
        self.on_finish(self.call_state, reading, from_finalizer)

    def _read_body(self, reading: MeterReading, status: int) -> None:
        body = b"".join(self._chunks)
        if self._decoder is not None:
            body = self._decoded(body) or b""
        if status >= 400:
            reading.error_type = f"http_{status}"
            reading.error_text = self.adapter.error_message(body)
            return
        reading.usage, reading.model = self.adapter.parse_response(body)
        if self._keep and reading.completed_read and reading.usage is not None:
            reading.body = body
        if reading.usage is None:
            if not reading.completed_read:
                reading.ended_early = True
            else:
                reading.note = "llmguard: the response carried no usage; tokens are estimated"

    def _read_stream(self, reading: MeterReading) -> None:
        state = self._state
        reading.stream = True
        reading.model = state.model
        if state.error:
            reading.error_type, reading.error_text = "stream_error", state.error
        if not state.complete:
            reading.ended_early = True
            reading.note = (
                "llmguard: the stream ended before its final event"
                if reading.completed_read
                else "llmguard: the stream was closed before its final event"
            )
        if self._keep and state.complete:  # the SDK stops reading at the final event; that is complete
            reading.body = b"".join(self._chunks)
            reading.content_type = "text/event-stream; charset=utf-8"
        if state.saw_usage and (state.complete or state.usage.output_tokens):
            reading.usage = state.usage
            reading.approximate = not state.complete
        else:
            reading.estimated_output_tokens = state.content_events
