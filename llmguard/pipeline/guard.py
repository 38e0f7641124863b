"""The Guard: composes the policies for every intercepted call. It knows no wire format.

The per-call pipeline is one generator (call.py -> cache_step.py -> chain.py -> outcomes.py)
driven by a sync or an async driver (drivers.py), so threads and asyncio share every decision
without two copies of the logic. Provider specifics come from the call's ProviderAdapter.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any, Unpack

from llmguard import context, redact
from llmguard.config import Settings, SettingsKwargs
from llmguard.intercept.meter import ResponseMeter
from llmguard.ledger.metrics import Metrics
from llmguard.ledger.sqlite import CallEvent, Ledger
from llmguard.pipeline.cache_step import CacheStep
from llmguard.pipeline.call import CallFlow
from llmguard.pipeline.chain import ModelChain
from llmguard.pipeline.drivers import drive_async, drive_sync
from llmguard.pipeline.finisher import Finisher
from llmguard.pipeline.outcomes import Outcomes
from llmguard.pipeline.retrying import Retrying
from llmguard.pipeline.steps import CallState
from llmguard.policies import retry
from llmguard.policies.budget import Budget
from llmguard.policies.limiter import Limiter, LimitSpec
from llmguard.policies.pricing import Pricer, override_hint
from llmguard.policies.routing import Router
from llmguard.providers import adapter_for, adapter_named, crossing
from llmguard.telemetry import exporter_for
from llmguard.types import CallRequest, ProviderAdapter, Usage

__all__ = ["CallState", "Guard", "adapter_for"]

SDK_DEFAULT_TIMEOUT_S = 600.0


class Guard(CallFlow, CacheStep, ModelChain, Retrying, Outcomes):
    """Composes the policies for every intercepted call. One per `install()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pricer = Pricer(settings.prices)
        self.metrics = Metrics()
        self.ledger = Ledger(settings.home_path) if settings.ledger else None
        self._warned_models: set[str] = set()
        self.enabled = settings.enabled
        from llmguard.store.rates_lease import open_rate_store

        # configured rate limits are shared through the store too (its own connection), per process on "process"
        self.limiter = Limiter(store=open_rate_store(settings), lease_ttl_s=settings.lease_ttl_s)
        self.cache_layer: Any = None
        self.finisher = Finisher(self.finish_call)  # calls finished by a GC finalizer
        self._apply_policies(settings)

    def _apply_policies(self, settings: Settings) -> None:
        for model, spec in settings.limits.items():
            self.limiter.set_limit(model, LimitSpec(spec.get("rpm"), spec.get("tpm"), settings.window_s))
        if getattr(self, "budget", None) is None:
            from llmguard.store import open_store

            self._store_setting = (settings.store, settings.namespace)
            self.budget = Budget(
                settings.budget_usd,
                settings.quotas,
                spent_today=self._spent_today,
                allow_unpriced=settings.unpriced == "allow",
                store=open_store(settings.store, settings.namespace, settings.home_path),
                lease_ttl_s=settings.lease_ttl_s,
                store_failure=settings.store_failure,
            )
        else:  # new limits, same books: spend, per-run quotas and calls in flight are kept
            if (settings.store, settings.namespace) != self._store_setting:
                from llmguard.config import ConfigError

                raise ConfigError(
                    "llmguard: store and namespace are chosen at install; call llmguard.install(store=..., "
                    "namespace=...) to move the books"
                )
            self.budget.leases.failure = settings.store_failure
            self.budget.reconfigure(settings.budget_usd, settings.quotas, settings.unpriced == "allow")
        self.otel = exporter_for(settings, getattr(self, "otel", None))
        check_crossings(settings.fallbacks)
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
                shared=open_cache_tier(settings),
            )
        elif self.cache_layer is not None:
            self.cache_layer.cache_sampled = settings.cache_sampled
            self.cache_layer.key_tags = tuple(settings.cache_key_tags)
            self.cache_layer.cache.ttl_s = settings.cache_ttl_s

    def close(self) -> None:
        """Finish background writes and release files (uninstall calls it)."""
        self.finisher.close()
        self.budget.close()  # leases back to the store, then the store itself
        self.limiter.close()  # rate leases back to the store, then its connection
        if self.otel is not None:
            self.otel.close()
        if self.cache_layer is not None:
            self.cache_layer.close()
        if self.ledger is not None:
            self.ledger.close()

    def configure(self, **updates: Unpack[SettingsKwargs]) -> None:
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

        adapter = adapter_named(call.provider)
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
        if self.otel is not None:
            self.otel.submit(state.event, state.call, state.body)

    def record(self, event: CallEvent) -> None:
        if self.ledger is not None:
            self.ledger.record(event)
        self.metrics.observe(event)

    def handle(
        self, request: Any, send: Callable[[Any], Any], lib: Any, adapter: ProviderAdapter
    ) -> tuple[Any, ResponseMeter | None]:
        """Run the pipeline for a sync client."""
        return drive_sync(self._pipeline(request, lib, adapter), send)

    async def ahandle(
        self, request: Any, send: Callable[[Any], Any], lib: Any, adapter: ProviderAdapter
    ) -> tuple[Any, ResponseMeter | None]:
        """Run the pipeline for an async client."""
        return await drive_async(self._pipeline(request, lib, adapter), send)

    def _prompt_tokens(self, call: CallRequest) -> int:
        from llmguard.policies import tokens

        adapter = adapter_named(call.provider)
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
            endpoint=adapter.endpoint_from_path(url.path),
            base_url=f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}",
            status="error" if response.status_code >= 400 else "ok",
            http_status=response.status_code,
            error_type="unreadable_request",
            error_message=f"llmguard: could not read the request ({why}); it was sent unmetered",
            total_ms=(time.perf_counter() - started) * 1000,
            cost_usd=None,
        )
        self.record(event)


def check_crossings(fallbacks: dict[str, list[str]]) -> None:
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


def open_cache_tier(settings: Settings) -> Any:
    """With a Redis store, the tier that shares cached answers and in-flight leaders across machines."""
    if settings.store in ("process", "local"):
        return None
    from llmguard.store.redis_cache import RedisCacheTier
    from llmguard.store.redis_store import RedisStore

    return RedisCacheTier(RedisStore(settings.store, settings.namespace), settings.namespace)
