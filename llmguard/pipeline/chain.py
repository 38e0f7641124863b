"""The fallback chain and, for each model of it, budget, rate-limit admission and the attempts."""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from typing import Any

from llmguard import context
from llmguard.intercept.http import (
    body_of,
    is_event_stream,
    is_malformed_json,
    is_transient,
    rebuild_request,
)
from llmguard.intercept.meter import ResponseMeter
from llmguard.pipeline.parts import GuardParts
from llmguard.pipeline.steps import NEXT_MODEL, CallState, Drain, MalformedResponse, ReadBody, Send, Sleep, Wait
from llmguard.policies import retry
from llmguard.policies.budget import BudgetRefusal
from llmguard.providers import adapter_named, crossing
from llmguard.providers.base import json_body
from llmguard.types import CallRequest


class ModelChain(GuardParts):
    """Models tried in order until one answers, each within its budget and rate limit."""

    def _send_through_chain(
        self,
        state: CallState,
        request: Any,
        call: CallRequest,
        body_changes: dict[str, Any],
        tags: dict[str, Any],
        lib: Any,
    ) -> Generator[Any, Any, tuple[Any, ResponseMeter | None]]:
        event = state.event
        models = [event.model] + self.router.fallback_chain(event.model, tags)
        original = request
        for index, model in enumerate(models):
            last = index == len(models) - 1
            crossed = None
            if index:
                target = crossing.provider_of(model)
                moved = state.adapter.path_for_model(original.url.raw_path, model)
                body = {**call.body, **body_changes} | ({"model": model} if moved is None else {})
                if target is not None and target != state.caller.NAME:
                    try:
                        request, crossed = self._cross(state, lib, original, call, body, model, target)
                    except (crossing.TranslationError, crossing.CrossingError) as exc:
                        if not last:
                            continue
                        return self._refuse(state, lib, "fallback", f"{exc} (the fallback after {event.model} failed)")
                else:
                    self._uncross(state, call)
                    request = rebuild_request(lib, original, json_body(body), moved)
                self._apply_timeout(request)
                event.model, event.fallback_used, event.decision = model, True, "fallback"
                event.status, event.http_status, event.error_type, event.error_message = "ok", None, None, None
            outcome = yield from self._one_model(state, request, model, lib, last)
            if outcome is not None:
                if crossed is not None:
                    return (yield from self._answer_in_callers_shape(state, outcome, crossed, lib))
                return outcome
        raise AssertionError("unreachable: the last model always returns an outcome")  # pragma: no cover

    def _cross(
        self,
        state: CallState,
        lib: Any,
        original: Any,
        call: CallRequest,
        body: dict[str, Any],
        model: str,
        target: str,
    ) -> tuple[Any, crossing.Crossing]:
        """Point this call at another provider's model: its wire format, its books, no cache."""
        request, crossed_call, crossed = crossing.cross_request(lib, original, call, body, model, target)
        self._end_flight(state)  # a translated answer is not stored under the caller's request
        state.call, state.adapter, state.secrets = crossed_call, adapter_named(target), request.headers
        state.drop_usage_chunk = False
        event = state.event
        event.provider, event.endpoint, event.estimated_tokens = target, crossed_call.endpoint, None
        return request, crossed

    def _uncross(self, state: CallState, call: CallRequest) -> None:
        if state.call is not call:  # an earlier fallback crossed: back to the caller's own wire
            state.call, state.adapter = call, state.caller
            state.event.provider, state.event.endpoint, state.event.estimated_tokens = (
                call.provider,
                call.endpoint,
                None,
            )

    def _answer_in_callers_shape(
        self, state: CallState, outcome: tuple[Any, ResponseMeter | None], crossed: crossing.Crossing, lib: Any
    ) -> Generator[Any, Any, tuple[Any, None]]:
        """Meter the other provider's answer as it billed it, then hand it over in the caller's shape."""
        response, meter = outcome
        if meter is None:  # a refusal made here: already in the caller's shape
            return response, None
        is_stream = is_event_stream(response)
        failure = yield ReadBody(response)  # a crossed answer is read whole (streams too), then translated
        content = b"" if failure is not None else response.content
        meter.feed(content)
        meter.flush()
        meter.finish(failure is None)
        body, content_type = crossing.translate_answer(crossed, response.status_code, content, is_stream)
        headers = [
            ("content-type", content_type),
            ("x-should-retry", "false"),
            ("llmguard-fallback", f"{crossed.target}:{crossed.model}"),
        ]
        return lib.Response(response.status_code, headers=headers, content=body), None

    def _one_model(
        self, state: CallState, request: Any, model: str, lib: Any, last: bool
    ) -> Generator[Any, Any, tuple[Any, ResponseMeter | None] | None]:
        """Budget, limiter and attempts for one model of the chain; None means "try the next model"."""
        event, call = state.event, state.call
        extra_scopes = context.current_budget_scopes()
        budgeted = self.budget.active or bool(extra_scopes)
        if event.estimated_tokens is None and (budgeted or self.limiter.limited(model)):
            # counted only when a limit or budget needs it: on small prompts this is most of our cost
            state.prompt_tokens = self._prompt_tokens(call)
            state.max_out = self._output_bound(call)
            event.estimated_tokens = state.prompt_tokens + state.max_out

        if budgeted:
            refused = self._reserve(state, model, extra_scopes, lib, last)
            if refused is not None:
                return None if refused is NEXT_MODEL else refused

        outcome = yield from self._admit(state, model, lib, last)
        if outcome is not None:
            return outcome if outcome is not NEXT_MODEL else None
        return (yield from self._attempts(state, request, model, lib, last))

    def _reserve(
        self, state: CallState, model: str, extra_scopes: Any, lib: Any, last: bool
    ) -> Any:  # None | NEXT_MODEL | a refusal outcome
        """Hold the call's worst-case cost in the budget: None when held, else a refusal or NEXT_MODEL."""
        event, call = state.event, state.call
        worst = self.pricer.worst_case(
            call.provider, model, state.prompt_tokens, state.max_out, state.adapter.prompt_cache_ttl(call)
        )
        held = self.budget.reserve(
            None if worst is None else float(worst),
            state.prompt_tokens + state.max_out,
            {"tenant": event.tenant, "user": event.user, "feature": event.feature},
            extra=extra_scopes,
            model=model,
        )
        if isinstance(held, BudgetRefusal):
            if not last and self.settings.on_budget == "fallback":
                return NEXT_MODEL
            return self._refuse(state, lib, "budget", held.message)
        state.reservation = held
        event.reserved_usd = held.usd
        return None

    def _attempts(
        self, state: CallState, request: Any, model: str, lib: Any, last: bool
    ) -> Generator[Any, Any, tuple[Any, ResponseMeter | None] | None]:
        """Send until an answer to hand over, retrying failures and waiting out 429s; None: next model.

        One loop (~80 lines) on purpose: every way an attempt ends decides, in one place, what the
        attempt held (ticket, reservation) and whether the next one waits, goes on, or gives up.
        """
        settings, event, call, adapter = self.settings, state.event, state.call, state.adapter
        retry_budget = self._retry_budget(call.provider)
        if event.retry_count == 0 and retry_budget is not None:
            retry_budget.record_call()
        attempt = waits = 0  # attempts spent on failures; waits on provider 429s
        response: Any = None  # the last answer (the loop below always sets it before it breaks)
        while True:
            sent = time.perf_counter()
            state.sent = True
            reading = False
            untracked = state.ticket is None and settings.learn_limits
            if untracked:
                self.limiter.untracked_sent(model)
            try:
                response = yield Send(request)
                if response.status_code < 300 and not is_event_stream(response):
                    reading = True
                    failure = yield ReadBody(response)
                    if failure is not None:
                        raise failure
                    if is_malformed_json(response.content):
                        raise MalformedResponse(f"{len(response.content)} bytes that are not JSON")
            except BaseException as exc:
                if untracked:
                    self.limiter.untracked_done(model)
                if not isinstance(exc, Exception):
                    raise
                if is_transient(exc):
                    delay = self._retry_delay(state, attempt, None)
                    if delay is not None:
                        attempt += 1
                        yield Sleep(delay)
                        continue
                    if not last:
                        self._release(state)
                        return None
                stale = self._stale_answer(state, lib, f"{type(exc).__name__}: {exc}")
                if stale is not None:
                    return stale
                if isinstance(exc, MalformedResponse):
                    return self._malformed_answer(state, response, sent, exc)
                return self._transport_failure(state, exc, request, sent, truncated=reading)
            status = response.status_code
            if state.ticket is not None:
                self.limiter.answered(state.ticket)
            if settings.learn_limits:
                info = adapter.rate_limit_info(response.headers)
                if info is not None:
                    self.limiter.observe(model, info, state.ticket, settings.window_s)
            if untracked:
                self.limiter.untracked_done(model)
            throttled = status == 429
            asked = None
            if throttled:
                yield Drain(response)
                body = body_of(response)
                asked = retry.retry_after_s(response.headers)
                if asked is None:  # some providers say it in the body (Gemini's RetryInfo)
                    asked = state.adapter.retry_after_s(body)
                self.limiter.pause(model, asked if asked is not None else 1.0)
                throttled = not state.adapter.is_out_of_quota(body)  # a spent quota is a bill, not a rate: no retry
            if throttled or (status != 429 and status >= 400 and retry.is_retryable_status(status)):
                if throttled:  # a 429 the guard could not prevent: waited out, not an outage to budget
                    delay = self._throttle_delay(state, waits, response.headers, asked)
                else:
                    delay = self._retry_delay(state, attempt, response.headers)
                if delay is not None or not last:
                    yield Drain(response)
                    if state.ticket is not None:
                        # a 429 was not charged by the provider; other failures may have been
                        self.limiter.reconcile(state.ticket, 0 if status == 429 else state.ticket.tokens)
                        state.ticket = None
                    if delay is None:  # retries spent on this model: try the next one
                        self._release(state)
                        return None
                    if throttled:
                        waits += 1
                    else:
                        attempt += 1
                    yield Sleep(delay)
                    outcome = yield from self._admit(state, model, lib, last)  # each attempt takes capacity
                    if outcome is not None:
                        return outcome if outcome is not NEXT_MODEL else None
                    continue
            break
        return (yield from self._deliver(state, response, sent, lib, last))

    def _deliver(
        self, state: CallState, response: Any, sent: float, lib: Any, last: bool
    ) -> Generator[Any, Any, tuple[Any, ResponseMeter | None]]:
        """The last attempt's answer to the SDK: a stale one if allowed, errors scrubbed, a meter on it."""
        event, status = state.event, response.status_code
        if last and (status >= 500 or status == 429) and self.settings.serve_stale:
            stale = self._stale_answer(state, lib, f"HTTP {status}")
            if stale is not None:
                yield Drain(response)
                return stale
        if status >= 400:  # llmguard owns retries; the SDK must not add more (it never retries a success)
            yield Drain(response)  # error bodies are small: read them so no key reaches the SDK's error
            response = self._scrubbed_error(state, lib, response)
        event.http_status = status
        if status == 429:
            event.error_type = "rate_limited"
        meter = ResponseMeter(self.finish_call, state, sent, response.headers)
        return response, meter

    def _admit(self, state: CallState, model: str, lib: Any, last: bool) -> Generator[Any, Any, Any]:
        """Wait for rate-limit capacity: None when admitted, else a refusal outcome or NEXT_MODEL."""
        if not self.limiter.limited(model):
            return None
        settings, event = self.settings, state.event
        ticket = self.limiter.enqueue(model, state.prompt_tokens + state.max_out, event.priority)
        why = self.limiter.never_fits(ticket)
        if why:
            self.limiter.cancel(ticket)
            return self._refuse(state, lib, "rate_limit", f"llmguard: {why}. Lower max_tokens or split the input.")
        queued = time.monotonic()
        interactive = event.priority != "background"
        deadline = context.current_deadline()
        while True:
            wait = self.limiter.try_admit(ticket)
            if wait == 0:
                break
            now = time.monotonic()
            allowed = queued + settings.max_wait_s - now if interactive else math.inf
            if deadline is not None:
                allowed = min(allowed, deadline - now)
            if allowed <= 0 or (wait != math.inf and wait > allowed):
                self.limiter.cancel(ticket)
                event.queue_ms += (now - queued) * 1000
                self._release(state)
                if deadline is not None and deadline - now <= allowed + 1e-9:
                    return self._refuse(
                        state,
                        lib,
                        "deadline",
                        f"llmguard: the call's deadline passes before {model} has capacity. "
                        "Raise the step/tag deadline or the rate limit, or send less.",
                    )
                if not last and settings.on_limit == "fallback":
                    return NEXT_MODEL
                return self._refuse(
                    state,
                    lib,
                    "rate_limit",
                    f"llmguard: {model} is at its rate limit and this interactive call would wait "
                    f"{'until capacity frees' if wait == math.inf else f'{wait:.1f}s'} (max_wait_s="
                    f"{settings.max_wait_s}). Configure fallbacks={{{model!r}: [...]}}, raise max_wait_s, "
                    "or tag batch work priority='background'.",
                )
            try:
                yield Wait(ticket, min(wait, allowed, 1.0))
            except BaseException:  # cancelled while queued: its place goes to the next call
                self.limiter.cancel(ticket)
                event.queue_ms += (time.monotonic() - queued) * 1000
                raise
        waited = time.monotonic() - queued
        event.queue_ms += waited * 1000
        if waited > 0.001 and event.decision == "process":
            event.decision = "queue"
        state.ticket = ticket
        return None
