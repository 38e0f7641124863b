"""Without configured limits the guard learns the provider's from its headers (window included),
and a 429 it could not prevent is waited out without spending the retry budget meant for outages."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

import llmguard
from llmguard.sim import SimProvider
from tests.conftest import openai_client, rows

MSG = [{"role": "user", "content": "Name one colour."}]


@pytest.fixture
def own_sim():
    with SimProvider() as provider:
        yield provider


def test_a_learnt_limit_refills_over_the_providers_window_not_a_minute(own_sim, home):
    own_sim.configure(rpm=10, tpm=10_000, window_s=2.0)
    guard = llmguard.install(home=str(home))
    client = openai_client(own_sim)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    # 10,000 tokens, 16 charged (11 prompt + 5 max): 9,984 left, full again in 16 / 5,000 per s =
    # 3.2 ms; the bound errs long, never short, and is nowhere near the 60 s default
    # the header says "4ms" (3.2 ms rounded up): 10,000 * 0.004 / 15 = 2.667 s
    assert guard.limiter.spec("gpt-4o-mini").window_s == pytest.approx(2.6667, rel=1e-3)
    assert guard.limiter.spec("gpt-4o-mini").rpm == 10


def test_unconfigured_limits_let_no_429_reach_user_code_and_spend_no_retry_budget(own_sim, home):
    own_sim.configure(rpm=60, tpm=40_000, window_s=1.0)
    guard = llmguard.install(home=str(home), retry_budget=0.0, max_attempts=1, max_wait_s=60)
    client = openai_client(own_sim, max_retries=0)

    def one(i: int):
        with llmguard.tag(priority="background"):
            return client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}], max_tokens=16
            )

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(one, range(240)))
    assert all(a.choices[0].message.content for a in answers)  # 0 failed calls
    events = rows(guard)
    assert len(events) == 240 and all(e["status"] == "ok" for e in events)
    assert guard.retry_budgets["openai"].denied == 0
    assert own_sim.stats["rate_limited"] <= 0.05 * 240  # the provider's 429s before the limit is learnt


def test_a_429_the_guard_could_not_prevent_is_waited_out_without_the_outage_budget(own_sim, home):
    guard = llmguard.install(home=str(home), retry_budget=0.0, max_attempts=1)
    own_sim.configure(faults=["429", "429"])  # a neighbour on the same account spent the limit
    answer = openai_client(own_sim, max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=MSG, max_tokens=5
    )
    assert answer.choices[0].message.content
    [row] = rows(guard)
    assert row["status"] == "ok" and row["retry_count"] == 2
    assert row["retry_delay_ms"] == pytest.approx(100.0)  # 2 x the sim's retry-after-ms: 50
    assert guard.retry_budgets.get("openai") is None or guard.retry_budgets["openai"].denied == 0


def test_an_exhausted_quota_429_is_not_retried(own_sim, home):
    import openai

    guard = llmguard.install(home=str(home), max_attempts=3)
    own_sim.configure(faults=["quota", "quota", "quota"])
    with pytest.raises(openai.RateLimitError, match="exceeded your current quota"):
        openai_client(own_sim, max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert own_sim.stats["requests"] == 1  # waiting never pays a bill
    [row] = rows(guard)
    assert row["status"] == "error" and row["retry_count"] == 0
