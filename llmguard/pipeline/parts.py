"""What the parts of the Guard (call, cache step, chain, retrying, outcomes) share.

The Guard is composed from one class per stage of a call; this base declares, once, the policies
they all read and the methods one stage calls on another, so each stage reads on its own and the
type checker sees every seam between them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Generator

    from llmguard.config import Settings
    from llmguard.intercept.meter import ResponseMeter
    from llmguard.ledger.metrics import Metrics
    from llmguard.ledger.sqlite import CallEvent, Ledger
    from llmguard.pipeline.finisher import Finisher
    from llmguard.pipeline.steps import CallState, MalformedResponse
    from llmguard.policies import retry
    from llmguard.policies.budget import Budget
    from llmguard.policies.limiter import Limiter
    from llmguard.policies.pricing import Pricer
    from llmguard.policies.routing import Router
    from llmguard.types import CallRequest, MeterReading, Usage


class GuardParts:
    settings: Settings
    pricer: Pricer
    metrics: Metrics
    ledger: Ledger | None
    limiter: Limiter
    budget: Budget
    router: Router
    retry_budgets: dict[str, retry.RetryBudget]
    cache_layer: Any
    enabled: bool
    finisher: Finisher

    if TYPE_CHECKING:  # implemented by the Guard and its parts

        def scrub(self, text: str | None, request_headers: Any) -> str | None: ...
        def cost(self, event: CallEvent, usage: Usage) -> float | None: ...
        def estimate_usage(self, event: CallEvent, call: CallRequest, output_tokens: int) -> None: ...
        def record(self, event: CallEvent) -> None: ...
        def _write_row(self, state: CallState) -> None: ...
        def _prompt_tokens(self, call: CallRequest) -> int: ...
        def _output_bound(self, call: CallRequest) -> int: ...
        def _apply_timeout(self, request: Any) -> None: ...
        def _record_unreadable(self, request: Any, adapter: Any, response: Any, why: str, started: float) -> None: ...
        def _end_flight(self, state: CallState, error: BaseException | None = None) -> None: ...
        def _release(self, state: CallState) -> None: ...
        def complete(self, state: CallState) -> None: ...
        def finish_call(self, state: CallState, reading: MeterReading, from_finalizer: bool = False) -> None: ...
        def _refuse(self, state: CallState, lib: Any, kind: str, message: str) -> tuple[Any, None]: ...
        def _record_worst_case(self, state: CallState) -> None: ...
        def _retry_budget(self, provider: str) -> retry.RetryBudget | None: ...
        def _retry_delay(self, state: CallState, attempt: int, headers: Any) -> float | None: ...
        def _throttle_delay(
            self, state: CallState, attempt: int, headers: Any, asked: float | None = None
        ) -> float | None: ...
        def _stale_answer(self, state: CallState, lib: Any, failure: str) -> tuple[Any, None] | None: ...
        def _malformed_answer(
            self, state: CallState, response: Any, sent: float, exc: MalformedResponse
        ) -> tuple[Any, None]: ...
        def _transport_failure(
            self, state: CallState, exc: BaseException, request: Any, sent: float, truncated: bool = False
        ) -> Any: ...
        def _scrubbed_error(self, state: CallState, lib: Any, response: Any) -> Any: ...
        def _cache_stage(
            self,
            state: CallState,
            call: CallRequest,
            body_changes: dict[str, Any],
            tags: dict[str, Any],
            mode: str,
            lib: Any,
        ) -> Generator[Any, Any, tuple[Any, None] | None]: ...
        def _send_through_chain(
            self,
            state: CallState,
            request: Any,
            call: CallRequest,
            body_changes: dict[str, Any],
            tags: dict[str, Any],
            lib: Any,
        ) -> Generator[Any, Any, tuple[Any, ResponseMeter | None]]: ...
