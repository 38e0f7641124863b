"""The Guard: the per-call pipeline. It owns the policies and knows no wire format.

The pipeline is one generator that yields what it needs done (`Send` a request, `Sleep`) and is
driven by a sync or an async driver, so threads and asyncio share every decision without two
copies of the logic.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import warnings
from collections.abc import Callable, Generator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from llmguard import context, redact, retry
from llmguard.config import Settings
from llmguard.ledger import CallEvent, Ledger
from llmguard.meter import ResponseMeter
from llmguard.metrics import Metrics
from llmguard.pricing import Pricer, override_hint
from llmguard.providers import anthropic as anthropic_adapter
from llmguard.providers import openai as openai_adapter
from llmguard.providers.base import CallRequest, ProviderParseError, Usage

SDK_DEFAULT_TIMEOUT_S = 600.0


@dataclass(slots=True)
class Send:
    request: Any


@dataclass(slots=True)
class Sleep:
    seconds: float


@dataclass(slots=True)
class Drain:
    """Read and close a response we are about to retry, so its connection can be reused."""

    response: Any


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

    # ---- configuration -------------------------------------------------------------------
    def configure(self, **updates: Any) -> None:
        self.settings = self.settings.with_updates(updates)
        if "prices" in updates:
            for model, prices in updates["prices"].items():
                self.pricer.set_override(model, prices)
        if "enabled" in updates:
            self.enabled = self.settings.enabled

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
        from llmguard import tokens

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

    def record(self, event: CallEvent, call: CallRequest | None = None) -> None:
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
                elif type(action) is Sleep:
                    time.sleep(action.seconds)
                    action = pipeline.send(None)
                else:
                    _drain_sync(action.response)
                    action = pipeline.send(None)
        except StopIteration as done:
            return done.value

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
                elif type(action) is Sleep:
                    await _async_sleep(action.seconds)
                    action = pipeline.send(None)
                else:
                    await _drain_async(action.response)
                    action = pipeline.send(None)
        except StopIteration as done:
            return done.value

    # ---- the pipeline --------------------------------------------------------------------
    def _pipeline(
        self, request: Any, lib: Any, adapter: Any
    ) -> Generator[Any, Any, tuple[Any, ResponseMeter | None]]:
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
        steps = context.current_steps()
        if steps:
            event.steps = steps
        secrets = request.headers  # scrubbed against lazily, only if an error message is recorded

        drop_usage_chunk = False
        if adapter is openai_adapter and openai_adapter.wants_usage_injection(call):
            request = _rebuild(lib, request, openai_adapter.inject_usage_option(call.body))
            drop_usage_chunk = True
        self._apply_timeout(request)

        settings = self.settings
        attempt = 0
        while True:
            sent = time.perf_counter()
            try:
                response = yield Send(request)
            except Exception as exc:
                if attempt + 1 < settings.max_attempts and _is_transient(exc):
                    delay = retry.backoff_s(attempt, settings.backoff_base_s, settings.backoff_max_s)
                    attempt += 1
                    event.retry_count = attempt
                    event.retry_delay_ms += delay * 1000
                    yield Sleep(delay)
                    continue
                error = _sdk_error(adapter, exc, request)
                _spent.set((hashlib.blake2b(body, digest_size=16).digest(), error))
                event.status = "error"
                event.error_type = "timeout" if "Timeout" in type(exc).__name__ else "connection"
                event.error_message = self.scrub(f"{type(exc).__name__}: {exc}", secrets)
                now = time.perf_counter()
                event.model_ms = (now - sent) * 1000
                event.total_ms = (now - started) * 1000
                self.estimate_usage(event, call, output_tokens=0)
                event.cost_usd = 0.0  # nothing was answered, nothing is billed
                self.record(event, call)
                raise error from exc
            status = response.status_code
            if status >= 400 and retry.is_retryable_status(status) and attempt + 1 < settings.max_attempts:
                delay = retry.delay_before_retry(
                    attempt, response.headers, settings.backoff_base_s, settings.backoff_max_s,
                    settings.retry_after_cap_s,
                )
                yield Drain(response)
                attempt += 1
                event.retry_count = attempt
                event.retry_delay_ms += delay * 1000
                yield Sleep(delay)
                continue
            break

        response.headers["x-should-retry"] = "false"  # llmguard owns retries; the SDK must not add more
        event.http_status = status
        if status == 429:
            event.error_type = "rate_limited"
        meter = ResponseMeter(
            self, event, call, adapter, started, sent, response.headers, drop_usage_chunk, secrets
        )
        return response, meter

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
            setattr(event, key, None if value is None else str(value))
        elif key == "cell":
            event.cell = value if isinstance(value, int) else None
        elif key == "priority":
            event.priority = value
        else:
            extra[key] = value
    if extra:
        event.tags = extra


def _is_transient(exc: BaseException) -> bool:
    """Timeouts and connection failures may recover; anything else (our bugs, SDK errors) will not."""
    name = type(exc).__name__
    return any(part in name for part in ("Timeout", "Connect", "RemoteProtocol", "ReadError", "WriteError", "NetworkError"))


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
