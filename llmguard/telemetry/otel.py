"""Finished calls as OpenTelemetry spans and GenAI client metrics, off the caller's path.

`submit` only appends the finished call to a bounded queue (a full queue drops the call and
counts it); a daemon thread turns queued calls into spans and metric points through the GLOBAL
tracer and meter providers (`trace.get_tracer`, `metrics.get_meter`), so whatever the user
configured (OTLP, Langfuse, Phoenix, Datadog, an in-memory exporter) receives them. The thread
wakes every `interval_s`, not per call, and lets go of the GIL every 0.2 ms of work, so a caller
whose answer arrives is not held up by span building (the interpreter alone would wait 5 ms). Each span starts and ends when the call did (its
`ts` and `total_ms`), under the span that was current where the call ended. `flush` and `close`
(uninstall, interpreter exit) export what is queued.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import warnings
import weakref
from collections import deque
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmguard.ledger.records import CallEvent
from llmguard.telemetry import attributes, content

SCOPE = "llmguard"
SCOPE_VERSION = "0.1.0"
DEFAULT_CAPACITY = 8192  # calls waiting for the export thread; beyond it calls are dropped (and counted)
YIELD_EVERY_S = 0.0002  # the export thread lets go of the GIL at least this often while it works
_live: weakref.WeakSet[OtelExporter] = weakref.WeakSet()


class _Flush:
    """A marker in the queue: set when the export thread reaches it (everything before it is exported)."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class OtelExporter:
    """Turns each finished call into one GenAI span and its metric points, on a thread of its own."""

    def __init__(self, content: bool = False, capacity: int = DEFAULT_CAPACITY, interval_s: float = 0.1) -> None:
        self.content = content
        self.capacity = capacity
        self.interval_s = interval_s
        self.dropped = 0  # calls not exported because the queue was full
        self.exported = 0
        self.failures = 0  # calls whose export raised (a misbehaving exporter or processor)
        self._drop_lock = threading.Lock()
        self._tracer = trace.get_tracer(SCOPE, SCOPE_VERSION)
        meter = metrics.get_meter(SCOPE, SCOPE_VERSION)
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=attributes.TOKEN_BUCKETS,
        )
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=attributes.DURATION_BUCKETS,
        )
        self._closed = False
        self._start_thread()
        atexit.register(self._at_exit)
        _live.add(self)

    def _start_thread(self) -> None:
        self._pending: deque[Any] = deque()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmguard-otel", daemon=True)
        self._thread.start()

    # ---- the caller's side: O(1), no I/O, no lock ----------------------------------------------

    def submit(self, event: CallEvent, call: Any = None, answer: bytes | None = None) -> None:
        """Queue a finished call (its CallRequest and, when the guard kept it, its answer's bytes)."""
        if len(self._pending) >= self.capacity or self._closed:
            with self._drop_lock:
                self.dropped += 1
            return
        self._pending.append((event, call, answer, otel_context.get_current()))

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Export everything queued so far, then flush the global providers; False on timeout."""
        marker = _Flush()
        self._pending.append(marker)
        self._wake.set()
        done = marker.done.wait(timeout_s) if self._thread.is_alive() else False
        _flush_providers(timeout_s)
        return done

    def close(self, timeout_s: float = 10.0) -> None:
        """Export what is queued and stop the thread (uninstall); says so if calls were dropped."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._at_exit)
        self._pending.append(_STOP)
        self._wake.set()
        self._thread.join(timeout_s)
        _flush_providers(timeout_s)
        if self.dropped:
            warnings.warn(
                f"llmguard: {self.dropped:,} call(s) were not exported to OpenTelemetry because "
                f"{self.capacity:,} were already waiting for the export thread; the ledger has them all. "
                "If this repeats, check that the configured span exporter keeps up.",
                RuntimeWarning,
                stacklevel=2,
            )

    def _at_exit(self) -> None:
        self.close(timeout_s=5.0)

    def _after_fork_in_child(self) -> None:
        """A forked child has no export thread: start its own, with an empty queue."""
        if not self._closed:
            self._start_thread()

    # ---- the export thread ---------------------------------------------------------------------

    def _run(self) -> None:
        pending, wake = self._pending, self._wake
        while True:
            wake.wait(self.interval_s)
            wake.clear()
            worked_since = time.perf_counter()
            while pending:
                item = pending.popleft()
                if item is _STOP:
                    return
                if isinstance(item, _Flush):
                    item.done.set()
                    continue
                try:
                    self._export(*item)
                    self.exported += 1
                except Exception:
                    self.failures += 1  # an exporter's failure never stops the thread
                if time.perf_counter() - worked_since > YIELD_EVERY_S:
                    time.sleep(0)  # a caller waiting for the GIL gets it (instead of after 5 ms)
                    worked_since = time.perf_counter()

    def _export(self, event: CallEvent, call: Any, answer: bytes | None, parent: Any) -> None:
        attrs = attributes.span_attributes(event, call)
        if answer:
            said = content.read_answer(answer)
            reasons = said.reasons()
            if reasons:
                attrs["gen_ai.response.finish_reasons"] = reasons
            if self.content:
                attrs.update(content.answer_attributes(said))
        if self.content and call is not None and isinstance(call.body, dict):
            attrs.update(content.prompt_attributes(call.body))
        start, end = attributes.time_span_ns(event)
        span = self._tracer.start_span(
            attributes.span_name(event), context=parent, kind=SpanKind.CLIENT, attributes=attrs, start_time=start
        )
        if "error.type" in attrs:
            span.set_status(Status(StatusCode.ERROR, attributes.error_description(event)))
        span.end(end_time=end)
        self._duration.record((event.total_ms or 0.0) / 1000, attributes.duration_attributes(event))
        for tokens, token_attrs in attributes.token_usage(event):
            self._tokens.record(tokens, token_attrs)


def _flush_providers(timeout_s: float) -> None:
    """Ask the global providers to push what they hold (an SDK provider has force_flush; the API's not)."""
    millis = int(timeout_s * 1000)
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is not None:
            try:
                force_flush(millis)
            except Exception:
                pass  # a provider already shut down at exit: nothing more can be sent


def _restart_threads_in_child() -> None:
    for exporter in list(_live):
        exporter._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_threads_in_child)
