"""The limiter's arithmetic and ordering, on a fake clock."""

from __future__ import annotations

import math

import pytest

from llmguard.policies.budget import Budget, BudgetRefusal
from llmguard.policies.limiter import Limiter, LimitSpec, RateLimitInfo
from llmguard.policies.retry import RetryBudget, backoff_s, retry_after_s
from llmguard.policies.routing import Router
from llmguard.providers import anthropic, openai


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_weighted_call_is_admitted_exactly_when_capacity_exists():
    clock = Clock()
    limiter = Limiter({"m": LimitSpec(rpm=None, tpm=600, window_s=60)}, clock=clock)  # 10 tokens/s
    first = limiter.enqueue("m", 500)
    assert limiter.try_admit(first) == 0
    second = limiter.enqueue("m", 300)
    assert limiter.try_admit(second) == pytest.approx(20.0, abs=0.01)
    clock.now += 60
    assert limiter.try_admit(second) == pytest.approx(20.0, abs=0.01)  # no refill until the provider has seen the call
    limiter.answered(first)
    wait = limiter.try_admit(second)
    assert wait == pytest.approx(20.0, abs=0.01)  # needs 200 more tokens at 10/s
    clock.now += wait - 0.01
    assert limiter.try_admit(second) > 0
    clock.now += 0.01 + 1e-9
    assert limiter.try_admit(second) == 0


def test_interactive_calls_are_served_before_earlier_background_calls():
    clock = Clock()
    limiter = Limiter({"m": LimitSpec(rpm=60, window_s=60)}, clock=clock)  # 1 request/s, burst 60
    for _ in range(60):
        ticket = limiter.enqueue("m", 0)
        wait = limiter.try_admit(ticket)
        if wait:  # the last of the burst waits out the safety margin
            assert wait < 0.01
            clock.now += wait + 1e-9
            assert limiter.try_admit(ticket) == 0
        limiter.answered(ticket)
    background = [limiter.enqueue("m", 0, "background") for _ in range(3)]
    interactive = limiter.enqueue("m", 0, "interactive")
    assert limiter.try_admit(background[0]) == math.inf  # not its turn
    clock.now += 1.01
    assert limiter.try_admit(interactive) == 0
    clock.now += 1.01
    assert [limiter.try_admit(t) for t in background] == [0, pytest.approx(1.0, abs=0.03), math.inf]


def test_cancelled_tickets_leave_the_queue_and_wake_the_next():
    clock = Clock()
    limiter = Limiter({"m": LimitSpec(rpm=1, window_s=60)}, clock=clock)
    limiter.try_admit(limiter.enqueue("m", 0))
    a, b = limiter.enqueue("m", 0), limiter.enqueue("m", 0)
    limiter.cancel(a)
    assert b.notified
    assert limiter.snapshot()["m"]["queue_depth"] == 1


def test_reconcile_returns_what_was_not_charged_and_headers_only_tighten():
    clock = Clock()
    limiter = Limiter({"m": LimitSpec(tpm=1000, window_s=60)}, clock=clock)
    ticket = limiter.enqueue("m", 400)
    limiter.try_admit(ticket)
    limiter.reconcile(ticket, 100)
    assert limiter.snapshot()["m"]["tokens_left"] == pytest.approx(900)
    limiter.observe("m", RateLimitInfo(limit_tokens=5000, remaining_tokens=5000), None, 60)
    assert limiter.spec("m").tpm == 1000  # a higher server limit never loosens ours
    limiter.observe("m", RateLimitInfo(limit_requests=10, limit_tokens=500, remaining_tokens=400), None, 60)
    assert (limiter.spec("m").rpm, limiter.spec("m").tpm) == (10, 500)
    assert limiter.snapshot()["m"]["tokens_left"] <= 500


def test_someone_else_spending_the_same_limit_is_taken_off_our_view():
    clock = Clock()
    limiter = Limiter({"m": LimitSpec(tpm=10_000, window_s=60)}, clock=clock)
    ticket = limiter.enqueue("m", 1000)
    limiter.try_admit(ticket)  # we think 9000 are left
    limiter.observe("m", RateLimitInfo(limit_tokens=10_000, remaining_tokens=6000), ticket, 60)
    assert limiter.snapshot()["m"]["tokens_left"] == pytest.approx(6000)


def test_pause_after_429_and_never_fitting_calls():
    clock = Clock()
    limiter = Limiter({"m": LimitSpec(tpm=100, window_s=60)}, clock=clock)
    limiter.pause("m", 2.5)
    ticket = limiter.enqueue("m", 1)
    assert limiter.try_admit(ticket) == pytest.approx(2.5, abs=0.01)
    huge = limiter.enqueue("m", 101)
    assert "TPM limit is 100" in limiter.never_fits(huge)


def test_limits_are_learnt_from_headers_when_none_are_configured():
    limiter = Limiter()
    headers = {
        "x-ratelimit-limit-requests": "20",
        "x-ratelimit-limit-tokens": "4000",
        "x-ratelimit-remaining-requests": "19",
        "x-ratelimit-remaining-tokens": "3900",
        "x-ratelimit-reset-requests": "3s",
        "x-ratelimit-reset-tokens": "1m30s",
    }
    info = openai.rate_limit_info(headers)
    assert info.reset_tokens_s == 90 and info.reset_requests_s == 3
    limiter.observe("m", info, None, 60)
    assert limiter.spec("m") == LimitSpec(20, 4000, 60)
    assert (
        anthropic.rate_limit_info(
            {"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-tokens-limit": "1000"}
        ).limit_tokens
        == 1000
    )
    assert openai.parse_duration("20ms") == pytest.approx(0.02)


def test_budget_reserves_worst_case_and_settles_real_cost():
    budget = Budget(budget_usd=1.0, quotas={"tenant:acme": {"tokens_per_run": 1000}})
    first = budget.reserve(0.6, 100, {"tenant": "acme"})
    refusal = budget.reserve(0.6, 100, {"tenant": "acme"})
    assert isinstance(refusal, BudgetRefusal) and "session budget" in refusal.message and "$0.60" in refusal.message
    budget.settle(first, 0.1, 50)
    assert not isinstance(budget.reserve(0.6, 100, {"tenant": "acme"}), BudgetRefusal)
    tokens_refusal = budget.reserve(0.0, 900, {"tenant": "acme"})
    assert isinstance(tokens_refusal, BudgetRefusal) and "tenant:acme tokens_per_run" in tokens_refusal.message
    with pytest.raises(ValueError, match="tenant:NAME"):
        Budget(quotas={"acme": {"usd_per_day": 1}})


def test_retry_budget_caps_retries_to_a_fraction_of_calls():
    retries = RetryBudget(ratio=0.2, floor=2)
    for _ in range(20):
        retries.record_call()
    granted = sum(retries.try_spend() for _ in range(50))
    assert granted == 2 + 4 and retries.denied == 44


def test_backoff_grows_and_is_jittered():
    import random

    rng = random.Random(1)
    samples = [[backoff_s(attempt, 0.5, 60, rng) for _ in range(200)] for attempt in range(4)]
    for attempt, values in enumerate(samples):
        ceiling = 0.5 * 2**attempt
        assert all(ceiling / 2 <= v <= ceiling for v in values)
        assert len(set(values)) > 150  # jitter: clients do not retry in lockstep
    assert retry_after_s({"retry-after-ms": "1500"}) == 1.5 and retry_after_s({"retry-after": "3"}) == 3


def test_router_picks_by_tags_and_high_risk_forbids_fallback():
    router = Router([{"when": {"feature": "classification"}, "model": "gpt-4.1-nano"}], {"gpt-4o": ["gpt-4o-mini"]})
    assert router.route("gpt-4o", {"feature": "classification"}) == "gpt-4.1-nano"
    assert router.route("gpt-4o", {"feature": "summary"}) == "gpt-4o"
    assert router.fallback_chain("gpt-4o", {}) == ["gpt-4o-mini"]
    assert router.fallback_chain("gpt-4o", {"risk": "high"}) == []
