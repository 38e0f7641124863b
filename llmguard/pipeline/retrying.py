"""How long to wait before another attempt: failures spend attempts and the retry budget, 429s only time."""

from __future__ import annotations

import time
from typing import Any

from llmguard import context
from llmguard.pipeline.parts import GuardParts
from llmguard.pipeline.steps import CallState
from llmguard.policies import retry


class Retrying(GuardParts):
    """Retry and throttle delays, bounded by attempts, time, the deadline and the retry budget."""

    def _retry_delay(self, state: CallState, attempt: int, headers: Any) -> float | None:
        """How long to wait before the next attempt, or None when retrying is over for this model."""
        settings, event = self.settings, state.event
        if attempt + 1 >= settings.max_attempts:
            return None
        delay = retry.delay_before_retry(
            attempt, headers, settings.backoff_base_s, settings.backoff_max_s, settings.retry_after_cap_s
        )
        if event.retry_delay_ms / 1000 + delay > settings.max_retry_wait_s:
            self._stop_waiting(state, "stopped retrying", delay)
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

    def _throttle_delay(self, state: CallState, attempt: int, headers: Any, asked: float | None = None) -> float | None:
        """How long to wait out a provider 429 before trying again, or None when waiting is over.

        `asked` is the wait the provider asked for (its headers or its body), honoured up to
        `retry_after_cap_s`. Rate limits are not outages: such retries spend neither
        `max_attempts` nor the retry budget, only time, bounded by `max_retry_wait_s` and the
        call's deadline."""
        settings, event = self.settings, state.event
        if asked is not None:
            delay = min(asked, settings.retry_after_cap_s)
        else:
            delay = retry.delay_before_retry(
                attempt, headers, settings.backoff_base_s, settings.backoff_max_s, settings.retry_after_cap_s
            )
        if event.retry_delay_ms / 1000 + delay > settings.max_retry_wait_s:
            self._stop_waiting(state, "stopped waiting out 429s", delay)
            return None
        deadline = context.current_deadline()
        if deadline is not None and time.monotonic() + delay >= deadline:
            return None
        event.retry_count += 1
        event.retry_delay_ms += delay * 1000
        return delay

    def _stop_waiting(self, state: CallState, what: str, delay: float) -> None:
        """The note told to the user (before the provider's error) and kept in the ledger."""
        limit = self.settings.max_retry_wait_s
        waited = state.event.retry_delay_ms / 1000
        state.retry_refusal = (
            f"llmguard: {what}: max_retry_wait_s={limit:g} reached (waited {waited:.1f} s; the next wait "
            f"of {delay:.1f} s would pass it). Raise max_retry_wait_s to wait longer"
        )
        state.event.error_message = state.retry_refusal

    def _retry_budget(self, provider: str) -> retry.RetryBudget | None:
        ratio = self.settings.retry_budget
        if ratio is None:
            return None
        budget = self.retry_budgets.get(provider)
        if budget is None:
            budget = self.retry_budgets.setdefault(provider, retry.RetryBudget(ratio))
        return budget
