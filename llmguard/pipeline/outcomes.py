"""How a call ends: an answer settled and recorded, a refusal in the SDK's own shape, a transport
failure, an answer that is not JSON. Every end releases what the call reserved, once."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from llmguard.intercept.http import MAY_BE_BILLED, body_of, scrubbed_error_response
from llmguard.pipeline.call import _spent
from llmguard.pipeline.parts import GuardParts
from llmguard.pipeline.steps import CallState, MalformedResponse
from llmguard.providers import sdk_error
from llmguard.types import MeterReading, Usage


class Outcomes(GuardParts):
    """The ends of a call."""

    def _transport_failure(
        self, state: CallState, exc: BaseException, request: Any, sent: float, truncated: bool = False
    ) -> Any:
        event = state.event
        error = sdk_error(state.caller, exc, request)
        _spent.set((hashlib.blake2b(request.content, digest_size=16).digest(), error))
        name = type(exc).__name__
        event.status = "error"
        event.error_type = "truncated" if truncated else "timeout" if "Timeout" in name else "connection"
        event.error_message = self.scrub(f"{name}: {exc}", state.secrets)
        now = time.perf_counter()
        event.model_ms = (now - sent) * 1000
        event.total_ms = (now - state.started) * 1000
        if truncated or name in MAY_BE_BILLED:
            # the provider received the request and works on it (and bills it) whatever we read
            self._record_worst_case(state)
            event.error_message = (
                f"{event.error_message}; tokens and cost are the worst case, as the provider may bill it"
            )
        else:  # it never reached the provider: nothing is billed
            self.estimate_usage(event, state.call, output_tokens=0)
            event.cost_usd = 0.0
        self.complete(state)
        raise error from exc

    def _record_worst_case(self, state: CallState) -> None:
        """Estimated prompt and every allowed output token, priced, marked approximate."""
        event, call = state.event, state.call
        event.input_tokens = state.prompt_tokens or self._prompt_tokens(call)
        event.output_tokens = state.max_out or self._output_bound(call)
        event.cached_input_tokens = event.cache_write_tokens = event.reasoning_tokens = 0
        event.tokens_approximate = True
        worst = self.pricer.worst_case(
            call.provider,
            event.model,
            event.input_tokens,
            event.output_tokens,
            state.adapter.prompt_cache_ttl(call),
        )
        event.cost_usd = None if worst is None else float(worst)

    def _malformed_answer(
        self, state: CallState, response: Any, sent: float, exc: MalformedResponse
    ) -> tuple[Any, None]:
        """Attempts spent on answers that are not JSON: the SDK gets the body (and raises its own
        parse error); the row says what happened, with estimated tokens."""
        event = state.event
        event.status, event.error_type, event.http_status = (
            "error",
            "malformed_response",
            response.status_code,
        )
        event.error_message = f"llmguard: the provider answered {response.status_code} with {exc}"
        now = time.perf_counter()
        event.model_ms = (now - sent) * 1000
        event.total_ms = (now - state.started) * 1000
        self.estimate_usage(event, state.call, output_tokens=0)
        self.complete(state)
        return response, None

    def _refuse(self, state: CallState, lib: Any, kind: str, message: str) -> tuple[Any, None]:
        """A refusal made here, delivered as the SDK's own error type; nothing reaches the provider."""
        event = state.event
        self._release(state)
        self._end_flight(state)
        if kind == "deadline":
            event.status, event.decision, event.error_type, event.error_message = (
                "refused",
                "reject",
                kind,
                message,
            )
            event.total_ms = (time.perf_counter() - state.started) * 1000
            event.cost_usd = 0.0
            self._write_row(state)
            # the SDK's error carries the request it was for (openai>=3.60 reads its headers);
            # this one was never sent, so it has the method and URL and no headers, hence no key
            unsent = lib.Request("POST", state.endpoint_url or "https://llmguard.invalid/")
            error = sdk_error(state.caller, TimeoutError(message), unsent)
            # the Anthropic SDK retries a timeout by itself: its retry of this body fails fast, no new row
            _spent.set((hashlib.blake2b(state.raw_body, digest_size=16).digest(), error))
            raise error
        event.status, event.decision, event.error_type, event.error_message = (
            "refused",
            "reject",
            kind,
            message,
        )
        event.http_status = 429
        event.cost_usd = 0.0
        event.total_ms = (time.perf_counter() - state.started) * 1000
        self._write_row(state)
        error_kind = state.caller.refusal_error_type(kind)
        body = state.caller.error_body(message, error_kind, f"llmguard_{kind}")
        response = lib.Response(
            429,
            headers=[
                ("content-type", "application/json"),
                ("x-should-retry", "false"),
                ("llmguard-refusal", kind),
            ],
            content=body,
        )
        return response, None

    def _release(self, state: CallState) -> None:
        """Give back what this model's attempt held (nothing was billed)."""
        if state.reservation is not None:
            self.budget.settle(state.reservation, 0.0, 0)
            state.reservation = None
        if state.ticket is not None:
            self.limiter.reconcile(state.ticket, 0)
            state.ticket = None

    def complete(self, state: CallState) -> None:
        """A call is over: settle its budget and limiter holds with what it really cost, then record."""
        event = state.event
        if state.cache_key is not None and self.cache_layer is not None:
            if event.status == "ok" and state.body is not None and 200 <= (event.http_status or 200) < 300:
                from llmguard.cache.store import CachedResponse

                stored = CachedResponse(
                    status=event.http_status or 200,
                    headers=[("content-type", state.content_type)],
                    body=state.body,
                    is_stream=event.stream,
                    model=event.model,
                    provider=event.provider,
                    input_tokens=event.input_tokens,
                    cached_input_tokens=event.cached_input_tokens,
                    cache_write_tokens=event.cache_write_tokens,
                    output_tokens=event.output_tokens,
                    reasoning_tokens=event.reasoning_tokens,
                    cost_usd=event.cost_usd,
                )
                self.cache_layer.store(state.cache_key, stored, state.claim, state.led_across)
                state.cache_key = state.claim = None
                state.led_across = False
            else:  # errors, cut or abandoned streams are never stored
                self._end_flight(state)
        if state.reservation is not None:
            self.budget.settle(state.reservation, event.cost_usd or 0.0, event.input_tokens + event.output_tokens)
            state.reservation = None
        if state.ticket is not None:
            if self.settings.limit_charge == "usage":
                charged = event.input_tokens + event.output_tokens
            else:  # the provider charged prompt + max tokens at admission; fix only our prompt estimate
                charged = (event.input_tokens if not event.tokens_approximate else state.prompt_tokens) + state.max_out
            self.limiter.reconcile(state.ticket, charged)
            state.ticket = None
        self._write_row(state)

    def _scrubbed_error(self, state: CallState, lib: Any, response: Any) -> Any:
        """The provider's error for the SDK: no key quoted, llmguard's retry note (if any) first."""
        body = body_of(response)
        if state.retry_refusal is not None:
            body = state.adapter.noted_error_body(body, state.retry_refusal)
        return scrubbed_error_response(lib, response, state.secrets, body)

    def finish_call(self, state: CallState, reading: MeterReading, from_finalizer: bool = False) -> None:
        """The meter read the whole answer (or what came of it): price it, then `complete` the call.

        From a GC finalizer it is only handed to the finisher thread (finisher.py).
        """
        if from_finalizer:
            self.finisher.put(state, reading)
            return
        event = state.event
        event.model_ms, event.total_ms = reading.model_ms, reading.total_ms
        if reading.ttft_ms is not None:
            event.ttft_ms = reading.ttft_ms
        if reading.error_type is not None:
            event.status = "error"
            event.error_type = event.error_type or reading.error_type
            event.error_message = self.scrub(reading.error_text, state.secrets)
            if not reading.stream:  # an error body carries no usage: nothing to price
                self.complete(state)
                return
        if reading.model:
            event.model = reading.model
        if reading.stream and reading.ended_early:
            if event.status == "ok":
                event.status = "incomplete"
            event.error_message = event.error_message or reading.note
        elif reading.ended_early:
            event.status = "incomplete"
        elif reading.note and reading.usage is None:
            event.error_message = reading.note
        if reading.body is not None:
            state.body = reading.body
            if reading.content_type is not None:
                state.content_type = reading.content_type
        if reading.usage is not None:
            self._apply_usage(state, reading.usage)
            if reading.approximate:
                event.tokens_approximate = True
        else:
            self.estimate_usage(event, state.call, output_tokens=reading.estimated_output_tokens)
        self.complete(state)

    def _apply_usage(self, state: CallState, usage: Usage) -> None:
        event = state.event
        event.input_tokens = usage.input_tokens
        event.cached_input_tokens = usage.cached_input_tokens
        event.cache_write_tokens = usage.cache_write_tokens
        event.output_tokens = usage.output_tokens
        event.reasoning_tokens = usage.reasoning_tokens
        event.cost_usd = self.cost(event, usage)
