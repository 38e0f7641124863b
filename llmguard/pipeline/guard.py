"""The Guard: the per-call pipeline. It owns the policies and knows no wire format.

The pipeline is one generator that yields what it needs done (`Send` a request, `Sleep`) and is
driven by a sync or an async driver, so threads and asyncio share every decision without two
copies of the logic.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable, Generator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from llmguard import context, redact
from llmguard.config import Settings
from llmguard.intercept.meter import ResponseMeter
from llmguard.ledger.metrics import Metrics
from llmguard.ledger.sqlite import CallEvent, Ledger, safe_str
from llmguard.pipeline import crossing
from llmguard.policies import retry
from llmguard.policies.budget import Budget, BudgetRefusal, Reservation
from llmguard.policies.limiter import Limiter, LimitSpec, Ticket
from llmguard.policies.pricing import Pricer, override_hint
from llmguard.policies.routing import Router
from llmguard.providers import anthropic as anthropic_adapter
from llmguard.providers import openai as openai_adapter
from llmguard.providers.base import CallRequest, ProviderParseError, Usage

_ADAPTERS = {"openai": openai_adapter, "anthropic": anthropic_adapter}

SDK_DEFAULT_TIMEOUT_S = 600.0


@dataclass(slots=True)
class Send:
    request: Any


@dataclass(slots=True)
class Sleep:
    seconds: float


@dataclass(slots=True)
class Wait:
    """Wait (at most `timeout` s) for the limiter to wake this call's ticket."""

    ticket: Ticket
    timeout: float


@dataclass(slots=True)
class WaitFlight:
    """Wait (at most `timeout` s) for the identical call already running in this process."""

    claim: Any
    timeout: float


@dataclass(slots=True)
class CallState:
    """What one call holds while it runs: its event, and the budget and limiter capacity it reserved."""

    call: CallRequest
    adapter: Any
    event: CallEvent
    started: float
    secrets: Any
    drop_usage_chunk: bool = False
    prompt_tokens: int = 0
    max_out: int = 0
    reservation: Reservation | None = None
    ticket: Ticket | None = None
    cache_key: str | None = None  # set when this call's answer is to be stored
    claim: Any = None  # this call leads the in-process flight of its cache key
    led_across: bool = False  # this call holds the cross-process marker of its cache key
    lookup_key: str | None = None  # the call's cache key, for a stale answer when the provider is down
    body: bytes | None = None  # the complete answer as the user saw it (for the cache)
    content_type: str = "application/json"
    caller: Any = None  # the adapter of the SDK that made the call (refusals take its shape)
    endpoint_url: str = ""  # scheme://host/path?query of the request, for the cache key
    steps: tuple[Any, ...] = ()  # the open step() frames around this call
    retry_refusal: str | None = None  # why a retry was not made, told to the user with the error
    sent: bool = False  # a request of this call reached the provider, which may bill it
    closed: bool = False  # the call's row is written and its holds released: never twice


@dataclass(slots=True)
class ReadBody:
    """Read a JSON answer inside the pipeline, so a cut body is retried here, not by the SDK (whose
    retries would pass the guard as new calls); the driver sends back the exception, or None."""

    response: Any


class MalformedResponse(Exception):
    """A 2xx answer whose body is not JSON: worth another attempt, never an "ok" call."""


@dataclass(slots=True)
class Drain:
    """Read and close a response we are about to retry, so its connection can be reused."""

    response: Any


_NEXT_MODEL = object()  # an outcome of _admit: this model cannot serve the call now, try the next one

# The last call in this context whose attempts llmguard spent on a transport error. The Anthropic
# SDK retries such errors itself; its retry of the same body fails fast here instead of multiplying.
_spent: ContextVar[tuple[bytes, BaseException] | None] = ContextVar("llmguard_spent", default=None)


def adapter_for(request: Any) -> Any:
    """The provider adapter for an SDK request, or None for anything that is not an SDK call.

    One pass over the raw header list: httpx's Headers lookups normalise on every access and cost
    several microseconds each, which the hot path cannot spare.
    """
    sdk = anthropic = False
    for key, _ in request.headers.raw:
        key = key.lower()
        if key == b"x-stainless-lang":
            sdk = True
        elif key == b"anthropic-version":
            anthropic = True
    if not sdk:
        return None
    return anthropic_adapter if anthropic else openai_adapter


def _sdk_error(adapter: Any, exc: BaseException, request: Any) -> BaseException:
    """The SDK's own error for a transport failure, which the SDK then raises without retrying."""
    import sys

    module = sys.modules.get("anthropic" if adapter is anthropic_adapter else "openai")
    if module is None:
        return exc
    is_timeout = "Timeout" in type(exc).__name__
    try:
        if is_timeout:
            error = module.APITimeoutError(request=request)
        else:
            error = module.APIConnectionError(message=f"Connection error: {exc}", request=request)
    except Exception:  # an SDK release with another signature: keep the transport error
        return exc
    error.__cause__ = exc
    return error


class Guard:
    """Composes the policies for every intercepted call. One per `install()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pricer = Pricer(settings.prices)
        self.metrics = Metrics()
        self.ledger = Ledger(settings.home_path) if settings.ledger else None
        self._warned_models: set[str] = set()
        self.enabled = settings.enabled
        shared = None
        if settings.shared_limits:
            from llmguard.policies.shared_state import SharedBuckets

            shared = SharedBuckets(settings.home_path / "limits.sqlite3")
        self.limiter = Limiter(shared=shared)
        self.cache_layer: Any = None
        self._apply_policies(settings)

    def _apply_policies(self, settings: Settings) -> None:
        for model, spec in settings.limits.items():
            self.limiter.set_limit(model, LimitSpec(spec.get("rpm"), spec.get("tpm"), settings.window_s))
        if getattr(self, "budget", None) is None:
            self.budget = Budget(
                settings.budget_usd,
                settings.quotas,
                spent_today=self._spent_today,
                allow_unpriced=settings.unpriced == "allow",
            )
        else:  # new limits, same books: spend, per-run quotas and calls in flight are kept
            self.budget.reconfigure(settings.budget_usd, settings.quotas, settings.unpriced == "allow")
        _check_crossings(settings.fallbacks)
        self.router = Router(settings.routes, settings.fallbacks)
        # one retry budget per provider: one provider's outage must not stop retries to another
        ratio = settings.retry_budget
        kept = getattr(self, "retry_budgets", {})
        self.retry_budgets: dict[str, retry.RetryBudget] = {}
        if ratio is not None:
            for provider, budget in kept.items():
                budget.ratio = ratio
                self.retry_budgets[provider] = budget
        if self.cache_layer is None and settings.cache != "off" and self.ledger is not None and self.ledger.available:
            from llmguard.cache.stage import CacheLayer

            self.cache_layer = CacheLayer(
                settings.home_path,
                settings.cache_ttl_s,
                int(settings.cache_size_mb * 1024 * 1024),
                settings.cache_sampled,
                settings.cache_key_tags,
            )
        elif self.cache_layer is not None:
            self.cache_layer.cache_sampled = settings.cache_sampled
            self.cache_layer.key_tags = tuple(settings.cache_key_tags)
            self.cache_layer.cache.ttl_s = settings.cache_ttl_s

    def close(self) -> None:
        """Finish background writes and release files (uninstall calls it)."""
        if self.cache_layer is not None:
            self.cache_layer.close()
        if self.ledger is not None:
            self.ledger.close()

    # ---- configuration -------------------------------------------------------------------
    def configure(self, **updates: Any) -> None:
        """Change settings on a running guard (limits, budget, quotas, fallbacks, retries, ...)."""
        self.settings = self.settings.with_updates(updates)
        if "prices" in updates:
            for model, prices in updates["prices"].items():
                self.pricer.set_override(model, prices)
        if "enabled" in updates:
            self.enabled = self.settings.enabled
        self._apply_policies(self.settings)

    def _spent_today(self, kind: str, value: str, unit: str) -> float:
        """Today's spend (UTC) of a tenant/user/feature, from the ledger: quotas survive restarts."""
        if self.ledger is None or not self.ledger.available:
            return 0.0
        midnight = time.time() // 86400 * 86400  # UTC midnight: a UTC day is 86,400 s, DST or not
        column = "COALESCE(cost_usd, 0)" if unit == "usd" else "input_tokens + output_tokens"
        return self.ledger.scalar(f"SELECT SUM({column}) FROM calls WHERE {kind} = ? AND ts >= ?", (value, midnight))

    # ---- bookkeeping used by the meter ----------------------------------------------------
    def scrub(self, text: str | None, request_headers: Any) -> str | None:
        """`text` without the request's own key or anything key-shaped (computed only when needed)."""
        if not text:
            return text
        return redact.scrub(text, redact.secrets_of(request_headers))

    def cost(self, event: CallEvent, usage: Usage) -> float | None:
        cost = self.pricer.cost(event.provider, event.model, usage)
        if cost is None and event.requested_model and event.requested_model != event.model:
            cost = self.pricer.cost(event.provider, event.requested_model, usage)
        if cost is None:
            self._warn_unknown_price(event.model)
            return None
        return float(cost)

    def _warn_unknown_price(self, model: str) -> None:
        if model in self._warned_models:
            return
        self._warned_models.add(model)
        warnings.warn(
            f"llmguard: no price is known for model {model!r}; its calls are recorded with tokens and "
            f"cost unknown. To price it, {override_hint(model)}.",
            RuntimeWarning,
            stacklevel=2,
        )

    def estimate_usage(self, event: CallEvent, call: CallRequest, output_tokens: int) -> None:
        """Fill tokens from a local count when the provider told us none (marked approximate)."""
        from llmguard.policies import tokens

        adapter = anthropic_adapter if call.provider == "anthropic" else openai_adapter
        messages, system = adapter.prompt_messages(call)
        try:
            counted = tokens.count_messages(messages, call.model, system=system)
            event.input_tokens = counted.tokens
        except Exception:
            event.input_tokens = 0
        event.output_tokens = output_tokens
        event.tokens_approximate = True
        event.cost_usd = self.cost(event, Usage(input_tokens=event.input_tokens, output_tokens=output_tokens))

    def _write_row(self, state: CallState) -> None:
        """The one place a call's row is written: with the steps around it, once."""
        if state.steps:
            state.event.steps = context.step_durations(state.steps)
        state.closed = True
        self.record(state.event)

    def record(self, event: CallEvent) -> None:
        if self.ledger is not None:
            self.ledger.record(event)
        self.metrics.observe(event)

    # ---- drivers -------------------------------------------------------------------------
    def handle(
        self, request: Any, send: Callable[[Any], Any], lib: Any, adapter: Any
    ) -> tuple[Any, ResponseMeter | None]:
        """Run the pipeline for a sync client."""
        pipeline = self._pipeline(request, lib, adapter)
        try:
            action = next(pipeline)
            while True:
                if type(action) is Send:
                    try:
                        result = send(action.request)
                    except Exception as exc:  # handed to the pipeline, which decides
                        action = pipeline.throw(exc)
                        continue
                    action = pipeline.send(result)
                elif type(action) is Wait:
                    action.ticket.wait_sync(action.timeout)
                    action = pipeline.send(None)
                elif type(action) is WaitFlight:
                    action = pipeline.send(action.claim.wait(action.timeout))
                elif type(action) is Sleep:
                    time.sleep(action.seconds)
                    action = pipeline.send(None)
                elif type(action) is ReadBody:
                    action = pipeline.send(_read_sync(action.response))
                else:
                    _drain_sync(action.response)
                    action = pipeline.send(None)
        except StopIteration as done:
            return done.value
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: the pipeline lets go, then it goes on
            _abandon(pipeline, exc)
            raise

    async def ahandle(
        self, request: Any, send: Callable[[Any], Any], lib: Any, adapter: Any
    ) -> tuple[Any, ResponseMeter | None]:
        """Run the pipeline for an async client."""
        pipeline = self._pipeline(request, lib, adapter)
        try:
            action = next(pipeline)
            while True:
                if type(action) is Send:
                    try:
                        result = await send(action.request)
                    except Exception as exc:
                        action = pipeline.throw(exc)
                        continue
                    action = pipeline.send(result)
                elif type(action) is Wait:
                    await action.ticket.wait_async(action.timeout)
                    action = pipeline.send(None)
                elif type(action) is WaitFlight:
                    action = pipeline.send(await action.claim.await_async(action.timeout))
                elif type(action) is Sleep:
                    await _async_sleep(action.seconds)
                    action = pipeline.send(None)
                elif type(action) is ReadBody:
                    action = pipeline.send(await _read_async(action.response))
                else:
                    await _drain_async(action.response)
                    action = pipeline.send(None)
        except StopIteration as done:
            return done.value
        except BaseException as exc:  # CancelledError above all: the pipeline lets go, then it goes on
            _abandon(pipeline, exc)
            raise

    # ---- the pipeline --------------------------------------------------------------------
    def _pipeline(self, request: Any, lib: Any, adapter: Any) -> Generator[Any, Any, tuple[Any, ResponseMeter | None]]:
        started = time.perf_counter()
        try:
            body = request.content
        except Exception:  # a streaming upload (files): not a metered call
            body = None
        call = None
        parse_error = None
        if body is not None:
            try:
                call = adapter.parse_request(request.url.path, body)
            except ProviderParseError as exc:
                parse_error = str(exc)
        if call is None:
            response = yield Send(request)
            if parse_error is not None:
                self._record_unreadable(request, adapter, response, parse_error, started)
            return response, None

        spent = _spent.get()
        if spent is not None and request.headers.get("x-stainless-retry-count", "0") != "0":
            if spent[0] == hashlib.blake2b(body, digest_size=16).digest():
                raise spent[1]  # the SDK retrying what llmguard already retried: fail fast
        if spent is not None:
            _spent.set(None)

        tags = context.current_tags() if context._session_tags or context._tags.get() else {}
        url = request.url
        event = CallEvent(
            provider=call.provider,
            endpoint=call.endpoint,
            base_url=f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}",
            model=call.model,
            requested_model=call.model,
            stream=call.stream,
        )
        if tags:
            _apply_tags(event, tags)
        secrets = request.headers  # scrubbed against lazily, only if an error message is recorded
        state = CallState(call=call, adapter=adapter, event=event, started=started, secrets=secrets, caller=adapter)
        # the whole URL keys the cache: path-routed gateways, Azure deployments and proxied accounts
        # share a host but not their answers
        state.endpoint_url = f"{event.base_url}{url.raw_path.decode('ascii', 'replace')}"
        state.steps = context.open_steps()  # the steps this call runs inside, timed when it ends

        try:
            return (yield from self._guarded(state, request, call, tags, lib))
        except BaseException as exc:
            self._end_flight(state, exc)  # followers of this call are never left waiting
            if not state.closed:  # cancelled, interrupted, or a failure of ours: still one row
                self._close_abandoned(state, exc)
            raise

    def _guarded(
        self, state: CallState, request: Any, call: CallRequest, tags: dict[str, Any], lib: Any
    ) -> Generator[Any, Any, tuple[Any, ResponseMeter | None]]:
        """Routing, length policy, cache, then the fallback chain for one parsed call."""
        adapter, event = state.adapter, state.event
        body_changes: dict[str, Any] = {}
        routed = self.router.route(call.model, tags) if self.router.routes else call.model
        if routed != call.model:
            body_changes["model"] = routed
            event.model = routed
        if (
            self.settings.default_max_tokens is not None
            and call.max_tokens is None
            and call.endpoint in ("chat.completions", "messages", "responses", "completions")
        ):
            field = {"responses": "max_output_tokens", "chat.completions": "max_completion_tokens"}.get(
                call.endpoint, "max_tokens"
            )
            body_changes[field] = call.max_tokens = self.settings.default_max_tokens
        if adapter is openai_adapter and openai_adapter.wants_usage_injection(call):
            body_changes["stream_options"] = {
                **(call.body.get("stream_options") or {}),
                "include_usage": True,
            }
            state.drop_usage_chunk = True
        if self.cache_layer is not None:
            mode = safe_str(tags.get("cache", self.settings.cache))
            if mode != "off":
                served = yield from self._cache_stage(state, call, body_changes, tags, mode, lib)
                if served is not None:
                    return served

        if body_changes:  # only a call that is sent needs its request rewritten
            request = _rebuild(lib, request, _json_body({**call.body, **body_changes}))
        self._apply_timeout(request)
        return (yield from self._send_through_chain(state, request, call, body_changes, tags, lib))

    def _close_abandoned(self, state: CallState, exc: BaseException) -> None:
        """The call left the pipeline without an answer: release its holds once and write its row.

        A request the provider received is billed by it even if nobody reads the answer, so such a
        call is recorded (and charged to the budget) at its worst case, marked approximate.
        """
        event = state.event
        if isinstance(exc, KeyboardInterrupt):
            kind = "interrupted"
        elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
            kind = "cancelled"
        else:
            kind = "llmguard_error"
        event.status = "cancelled" if kind != "llmguard_error" else "error"
        event.error_type = kind
        event.total_ms = (time.perf_counter() - state.started) * 1000
        cost = 0.0
        if state.sent:
            self._record_worst_case(state)
            cost = event.cost_usd or 0.0
            what = "after it was sent; recorded at its worst case, as the provider may bill it"
        else:
            event.cost_usd = 0.0
            what = "before it was sent; nothing was billed"
        event.error_message = f"llmguard: the call was {kind.replace('_', ' ')} {what}"
        if kind == "llmguard_error":
            event.error_message = self.scrub(f"llmguard: internal error {type(exc).__name__}: {exc}", state.secrets)
        if state.reservation is not None:
            self.budget.settle(state.reservation, cost, event.input_tokens + event.output_tokens)
            state.reservation = None
        if state.ticket is not None:
            charged = (event.input_tokens + event.output_tokens) if state.sent else 0
            self.limiter.answered(state.ticket)  # its bucket must start refilling even so
            self.limiter.reconcile(state.ticket, charged)
            state.ticket = None
        self._write_row(state)

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
                body = {**call.body, **body_changes, "model": model}
                if target is not None and target != state.caller.NAME:
                    try:
                        request, crossed = self._cross(state, lib, original, call, body, model, target)
                    except (crossing.TranslationError, crossing.CrossingError) as exc:
                        if not last:
                            continue
                        return self._refuse(state, lib, "fallback", f"{exc} (the fallback after {event.model} failed)")
                else:
                    self._uncross(state, call)
                    request = _rebuild(lib, original, _json_body(body))
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
        state.call, state.adapter, state.secrets = crossed_call, _ADAPTERS[target], request.headers
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
        is_stream = _is_event_stream(response)
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

    def _cache_stage(
        self,
        state: CallState,
        call: CallRequest,
        body_changes: dict[str, Any],
        tags: dict[str, Any],
        mode: str,
        lib: Any,
    ) -> Generator[Any, Any, tuple[Any, None] | None]:
        """Serve a stored answer, or wait for the identical call already running, or lead this one."""
        from llmguard.cache.inflight import GONE, HIT, FollowerPoll
        from llmguard.cache.store import reads, writes

        layer = self.cache_layer
        assert layer is not None
        answer_changes = {k: v for k, v in body_changes.items() if k != "stream_options"}
        keyed = call if not answer_changes else _replace_body(call, {**call.body, **answer_changes})
        key = layer.key_for(keyed, state.endpoint_url, tags, mode)
        if key is None:
            return None
        state.lookup_key = key
        if reads(mode):
            hit = layer.lookup(key)
            if hit is not None:
                return self._serve_cached(state, hit, lib, "hit")
        if not writes(mode):
            return None
        state.cache_key = key
        if not reads(mode):  # write / refresh: send, then store what comes back
            return None
        claim = layer.flights.claim(key)
        if not claim.is_leader:
            outcome = yield WaitFlight(claim, self.settings.dedup_wait_s)
            if outcome.ok:
                state.cache_key = None
                return self._serve_cached(state, outcome.response, lib, "dedup")
            return None  # the leader failed or took too long: send our own (and store it)
        state.claim = claim
        hit = layer.lookup(key, count=False)  # the previous leader may have stored it since our first look
        if hit is not None:
            claim.finish(hit)
            state.claim = state.cache_key = None
            return self._serve_cached(state, hit, lib, "hit")
        if layer.lead_across_processes(key):
            state.led_across = True
            return None
        poll = FollowerPoll(time.monotonic() + self.settings.dedup_wait_s)
        while True:  # another process is sending this call: wait for its answer in the cache
            delay = poll.next_delay()
            if delay is None:
                return None
            yield Sleep(delay)
            seen = layer.poll(key)
            if seen.state == HIT:
                claim.finish(seen.response)
                state.claim = state.cache_key = None
                return self._serve_cached(state, seen.response, lib, "dedup")
            if seen.state == GONE:
                state.led_across = layer.lead_across_processes(key)
                return None

    def _serve_cached(self, state: CallState, hit: Any, lib: Any, how: str) -> tuple[Any, None]:
        """Answer from the cache (a hit, a deduplicated flight, or a stale answer): free, recorded."""
        event = state.event
        event.decision = "cache"
        event.cache_hit = how in ("hit", "stale")
        event.dedup_hit = how == "dedup"
        event.stale = how == "stale"
        event.model = hit.model or event.model
        event.cost_usd = 0.0
        event.saved_usd = hit.cost_usd
        event.total_ms = (time.perf_counter() - state.started) * 1000
        if event.cache_hit and self.cache_layer is not None:
            self.cache_layer.counted_hit(hit.cost_usd)
        self._release(state)
        self._write_row(state)
        headers = [*hit.headers, ("x-should-retry", "false"), ("llmguard-cache", how)]
        return lib.Response(hit.status, headers=headers, content=hit.body), None

    def _stale_answer(self, state: CallState, lib: Any, failure: str) -> tuple[Any, None] | None:
        """Retries and fallbacks are spent: an expired cached answer beats an error, if allowed."""
        if not self.settings.serve_stale or state.lookup_key is None or self.cache_layer is None:
            return None
        stale = self.cache_layer.stale(state.lookup_key)
        if stale is None:
            return None
        self._end_flight(state)
        state.event.error_message = f"llmguard: the provider failed ({failure}); served a stale cached answer"
        return self._serve_cached(state, stale, lib, "stale")

    def _end_flight(self, state: CallState, error: BaseException | None = None) -> None:
        if state.cache_key is not None and self.cache_layer is not None:
            self.cache_layer.failed(state.cache_key, state.claim, state.led_across, error)
        state.cache_key = state.claim = None
        state.led_across = False

    def _one_model(
        self, state: CallState, request: Any, model: str, lib: Any, last: bool
    ) -> Generator[Any, Any, tuple[Any, ResponseMeter | None] | None]:
        """Budget, limiter and attempts for one model of the chain; None means "try the next model"."""
        settings, event, call, adapter = self.settings, state.event, state.call, state.adapter
        tags_for_budget = {"tenant": event.tenant, "user": event.user, "feature": event.feature}
        extra_scopes = context.current_budget_scopes()
        budgeted = self.budget.active or bool(extra_scopes)
        if event.estimated_tokens is None and (budgeted or self.limiter.limited(model)):
            # counted only when a limit or budget needs it: on small prompts this is most of our cost
            state.prompt_tokens = self._prompt_tokens(call)
            state.max_out = self._output_bound(call)
            event.estimated_tokens = state.prompt_tokens + state.max_out

        if budgeted:
            worst = self.pricer.worst_case(
                call.provider, model, state.prompt_tokens, state.max_out, adapter.prompt_cache_ttl(call)
            )
            held = self.budget.reserve(
                None if worst is None else float(worst),
                state.prompt_tokens + state.max_out,
                tags_for_budget,
                extra=extra_scopes,
                model=model,
            )
            if isinstance(held, BudgetRefusal):
                if not last and settings.on_budget == "fallback":
                    return None
                return self._refuse(state, lib, "budget", held.message)
            state.reservation = held
            event.reserved_usd = held.usd

        outcome = yield from self._admit(state, model, lib, last)
        if outcome is not None:
            return outcome if outcome is not _NEXT_MODEL else None

        retry_budget = self._retry_budget(call.provider)
        if event.retry_count == 0 and retry_budget is not None:
            retry_budget.record_call()
        attempt = waits = 0  # attempts spent on failures; waits on provider 429s
        while True:
            sent = time.perf_counter()
            state.sent = True
            reading = False
            untracked = state.ticket is None and settings.learn_limits
            if untracked:
                self.limiter.untracked_sent(model)
            try:
                response = yield Send(request)
                if response.status_code < 300 and not _is_event_stream(response):
                    reading = True
                    failure = yield ReadBody(response)
                    if failure is not None:
                        raise failure
                    if _malformed(response.content):
                        raise MalformedResponse(f"{len(response.content)} bytes that are not JSON")
            except BaseException as exc:
                if untracked:
                    self.limiter.untracked_done(model)
                if not isinstance(exc, Exception):
                    raise
                if _is_transient(exc):
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
            if status == 429:
                asked = retry.retry_after_s(response.headers)
                self.limiter.pause(model, asked if asked is not None else 1.0)
            throttled = status == 429
            if throttled:
                yield Drain(response)
                throttled = not _out_of_quota(response)  # a spent quota is a bill, not a rate: no retry
            if throttled or (status != 429 and status >= 400 and retry.is_retryable_status(status)):
                if throttled:  # a 429 the guard could not prevent: waited out, not an outage to budget
                    delay = self._throttle_delay(state, waits, response.headers)
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
                        return outcome if outcome is not _NEXT_MODEL else None
                    continue
            break

        if last and (status >= 500 or status == 429) and self.settings.serve_stale:
            stale = self._stale_answer(state, lib, f"HTTP {status}")
            if stale is not None:
                yield Drain(response)
                return stale
        if status >= 400:  # llmguard owns retries; the SDK must not add more (it never retries a success)
            yield Drain(response)  # error bodies are small: read them so no key reaches the SDK's error
            response = _scrubbed_error(lib, response, state.secrets, state.retry_refusal)
        event.http_status = status
        if status == 429:
            event.error_type = "rate_limited"
        meter = ResponseMeter(self, state, sent, response.headers)
        return response, meter

    def _admit(self, state: CallState, model: str, lib: Any, last: bool) -> Generator[Any, Any, Any]:
        """Wait for rate-limit capacity: None when admitted, else a refusal outcome or _NEXT_MODEL."""
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
                    return _NEXT_MODEL
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

    def _retry_delay(self, state: CallState, attempt: int, headers: Any) -> float | None:
        """How long to wait before the next attempt, or None when retrying is over for this model."""
        settings, event = self.settings, state.event
        if attempt + 1 >= settings.max_attempts:
            return None
        delay = retry.delay_before_retry(
            attempt, headers, settings.backoff_base_s, settings.backoff_max_s, settings.retry_after_cap_s
        )
        if event.retry_delay_ms / 1000 + delay > settings.max_retry_wait_s:
            event.error_message = f"llmguard: stopped retrying: max_retry_wait_s={settings.max_retry_wait_s} reached"
            return None
        deadline = context.current_deadline()
        if deadline is not None and time.monotonic() + delay >= deadline:
            return None
        budget = self._retry_budget(state.call.provider)
        if budget is not None and not budget.try_spend():
            state.retry_refusal = (
                f"llmguard: retry budget spent (retries to {state.call.provider} may add "
                f"{settings.retry_budget:.0%} of its calls; it looks unhealthy), so this call was not retried. "
                "Raise retry_budget if the failures are yours to ride out"
            )
            event.error_message = state.retry_refusal
            return None
        event.retry_count += 1
        event.retry_delay_ms += delay * 1000
        return delay

    def _throttle_delay(self, state: CallState, attempt: int, headers: Any) -> float | None:
        """How long to wait out a provider 429 before trying again, or None when waiting is over.

        Rate limits are not outages: such retries spend neither `max_attempts` nor the retry
        budget, only time, bounded by `max_retry_wait_s` and the call's deadline."""
        settings, event = self.settings, state.event
        delay = retry.delay_before_retry(
            attempt, headers, settings.backoff_base_s, settings.backoff_max_s, settings.retry_after_cap_s
        )
        if event.retry_delay_ms / 1000 + delay > settings.max_retry_wait_s:
            event.error_message = (
                f"llmguard: stopped waiting out 429s: max_retry_wait_s={settings.max_retry_wait_s} reached"
            )
            return None
        deadline = context.current_deadline()
        if deadline is not None and time.monotonic() + delay >= deadline:
            return None
        event.retry_count += 1
        event.retry_delay_ms += delay * 1000
        return delay

    def _retry_budget(self, provider: str) -> retry.RetryBudget | None:
        ratio = self.settings.retry_budget
        if ratio is None:
            return None
        budget = self.retry_budgets.get(provider)
        if budget is None:
            budget = self.retry_budgets.setdefault(provider, retry.RetryBudget(ratio))
        return budget

    def _transport_failure(
        self, state: CallState, exc: BaseException, request: Any, sent: float, truncated: bool = False
    ) -> Any:
        event = state.event
        error = _sdk_error(state.caller, exc, request)
        _spent.set((hashlib.blake2b(request.content, digest_size=16).digest(), error))
        name = type(exc).__name__
        event.status = "error"
        event.error_type = "truncated" if truncated else "timeout" if "Timeout" in name else "connection"
        event.error_message = self.scrub(f"{name}: {exc}", state.secrets)
        now = time.perf_counter()
        event.model_ms = (now - sent) * 1000
        event.total_ms = (now - state.started) * 1000
        if truncated or name in _MAY_BE_BILLED:
            # the provider received the request and works on it (and bills it) whatever we read
            self._record_worst_case(state)
            event.error_message += "; tokens and cost are the worst case, as the provider may bill it"
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
            error = _sdk_error(state.caller, TimeoutError(message), None)
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
        error_kind = "rate_limit_error" if state.caller is anthropic_adapter else f"llmguard_{kind}"
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

    def _prompt_tokens(self, call: CallRequest) -> int:
        from llmguard.policies import tokens

        adapter = anthropic_adapter if call.provider == "anthropic" else openai_adapter
        messages, system = adapter.prompt_messages(call)
        try:
            if call.endpoint == "embeddings":
                return sum(tokens.count_text(m["content"], call.model).tokens for m in messages)
            return tokens.count_messages(messages, call.model, system=system).tokens
        except Exception:
            return 0

    def _output_bound(self, call: CallRequest) -> int:
        """The most output a call may be billed: its max tokens (thinking and reasoning included,
        as the providers bound them) times the number of choices it asks for."""
        if call.endpoint == "embeddings":
            return 0
        bound = call.max_tokens if call.max_tokens is not None else self.settings.assumed_max_tokens
        return bound * max(1, call.n)

    def _apply_timeout(self, request: Any) -> None:
        """Replace the SDK's 10-minute default with `timeout_s`, and never outlive the deadline."""
        timeout = request.extensions.get("timeout")
        if not isinstance(timeout, dict):
            return
        limit = None
        configured = self.settings.timeout_s
        read = timeout.get("read")
        if configured is not None and (read is None or read >= SDK_DEFAULT_TIMEOUT_S):
            limit = configured
        deadline = context.current_deadline()
        if deadline is not None:
            left = max(0.001, deadline - time.monotonic())
            limit = left if limit is None else min(limit, left)
        if limit is None:
            return
        request.extensions = {
            **request.extensions,
            "timeout": {k: (limit if v is None or v > limit else v) for k, v in timeout.items()},
        }

    def _record_unreadable(self, request: Any, adapter: Any, response: Any, why: str, started: float) -> None:
        url = request.url
        event = CallEvent(
            provider=adapter.NAME,
            endpoint=url.path.rsplit("/v1/", 1)[-1].replace("/", "."),
            base_url=f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}",
            status="error" if response.status_code >= 400 else "ok",
            http_status=response.status_code,
            error_type="unreadable_request",
            error_message=f"llmguard: could not read the request ({why}); it was sent unmetered",
            total_ms=(time.perf_counter() - started) * 1000,
            cost_usd=None,
        )
        self.record(event)


def _apply_tags(event: CallEvent, tags: dict[str, Any]) -> None:
    extra = {}
    for key, value in tags.items():
        if key in ("tenant", "user", "feature", "prompt_version", "notebook"):
            setattr(event, key, None if value is None else safe_str(value))  # a bad __str__ loses no row
        elif key == "cell":
            event.cell = value if isinstance(value, int) else None
        elif key == "priority":
            event.priority = value
        else:
            extra[key] = value
    if extra:
        event.tags = extra


# Transport failures after the request reached the provider (it may bill them); a connect error or
# a write timeout means it never did.
_MAY_BE_BILLED = frozenset({"ReadTimeout", "RemoteProtocolError", "ReadError"})


def _out_of_quota(response: Any) -> bool:
    """OpenAI answers a spent account with 429 `insufficient_quota`: waiting never helps."""
    try:
        return b"insufficient_quota" in response.content
    except Exception:
        return False


def _is_event_stream(response: Any) -> bool:
    for key, value in response.headers.raw:
        if key.lower() == b"content-type":
            return b"text/event-stream" in value
    return False


def _malformed(body: bytes) -> bool:
    """True when a 2xx body is not JSON. An object ending in `}` is taken as read (parsing it all
    here would double the metering cost); anything else is parsed to be sure."""
    tail = body.rstrip()
    if tail.endswith(b"}"):
        return False
    try:
        json.loads(body)
    except ValueError:
        return True
    return False


def _read_sync(response: Any) -> BaseException | None:
    try:
        response.read()
    except Exception as exc:
        response.close()
        return exc
    return None


async def _read_async(response: Any) -> BaseException | None:
    try:
        await response.aread()
    except Exception as exc:
        await response.aclose()
        return exc
    return None


def _check_crossings(fallbacks: dict[str, list[str]]) -> None:
    """A chain that crosses providers needs the other provider's key: say so at install, not mid-outage."""
    from llmguard.config import ConfigError

    for model, chain in fallbacks.items():
        source = crossing.provider_of(model)
        for fallback in chain:
            target = crossing.provider_of(fallback)
            if source is None or target is None or target == source:
                continue
            why = crossing.missing_credentials(target)
            if why is not None:
                raise ConfigError(
                    f"llmguard: fallbacks[{model!r}] includes {fallback!r}, a {target} model, which llmguard "
                    f"calls in {target}'s own API (the answer comes back in {source}'s shape): {why}, "
                    f"or choose a {source} fallback"
                )


def _abandon(pipeline: Generator[Any, Any, Any], exc: BaseException) -> None:
    """Hand an exception that ended a driver to the pipeline, so it releases and records the call."""
    try:
        pipeline.throw(exc)
    except BaseException:  # it re-raises what it was given (or has already finished)
        pass


def _is_transient(exc: BaseException) -> bool:
    """Timeouts and connection failures may recover; anything else (our bugs, SDK errors) will not."""
    name = type(exc).__name__
    return any(
        part in name
        for part in (
            "Timeout",
            "Connect",
            "RemoteProtocol",
            "ReadError",
            "WriteError",
            "NetworkError",
            "Malformed",
        )
    )


def _drain_sync(response: Any) -> None:
    try:
        response.read()
    except Exception:
        pass
    finally:
        response.close()


async def _drain_async(response: Any) -> None:
    try:
        await response.aread()
    except Exception:
        pass
    finally:
        await response.aclose()


def _scrubbed_error(lib: Any, response: Any, request_headers: Any, note: str | None = None) -> Any:
    """An error response whose body no longer quotes the request's key (some gateways echo it in
    full), with llmguard's `note` before the provider's message; the SDK builds its exception
    message from this body."""
    try:
        body = response.content
    except Exception:  # the body could not be read (a cut connection): nothing to quote
        body = b""
    if note is not None:
        body = _noted_error_body(body, note)
    text = body.decode("utf-8", "replace")
    clean = redact.scrub(text, redact.secrets_of(request_headers)) or ""
    headers = [
        (k, v)
        for k, v in response.headers.multi_items()
        if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    headers.append(("x-should-retry", "false"))
    content = body if clean == text else clean.encode()
    return lib.Response(response.status_code, headers=headers, content=content, extensions=response.extensions)


def _noted_error_body(body: bytes, note: str) -> bytes:
    """`note` put before `error.message` (the OpenAI and Anthropic error shapes both have one)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        error["message"] = f"{note}. The provider said: {error['message']}"
        return _json_body(data)
    text = body.decode("utf-8", "replace")
    return _json_body({"error": {"message": f"{note}. The provider said: {text}", "type": "llmguard_retry_budget"}})


def _replace_body(call: CallRequest, body: dict[str, Any]) -> CallRequest:
    import dataclasses

    return dataclasses.replace(call, body=body, model=body.get("model", call.model))


def _json_body(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _rebuild(lib: Any, request: Any, body: bytes) -> Any:
    headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length"]
    rebuilt = lib.Request(request.method, request.url, headers=headers, content=body, extensions=request.extensions)
    return rebuilt


async def _async_sleep(seconds: float) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio or another loop via anyio
        import anyio

        await anyio.sleep(seconds)
        return
    await asyncio.sleep(seconds)
