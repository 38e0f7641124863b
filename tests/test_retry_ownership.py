"""The guard owns every retry: a cut body, malformed JSON or a reset connection count against
`max_attempts`, and one user call is one ledger row however many attempts it took."""

from __future__ import annotations

import openai
import pytest

import llmguard
from tests.conftest import anthropic_client, openai_client, rows

MSG = [{"role": "user", "content": "Summarise the plan."}]


def _ask(sim, **client_kw):
    return openai_client(sim, **client_kw).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=20)


def test_a_cut_body_is_not_retried_by_the_sdk_behind_the_guards_back(fresh_sim, home):
    guard = llmguard.install(home=str(home), max_attempts=1)
    fresh_sim.configure(faults={"cut": 1.0})
    try:
        for _ in range(3):
            with pytest.raises(openai.APIConnectionError):
                _ask(fresh_sim)  # the SDK's default max_retries=2 is left as users leave it
    finally:
        fresh_sim.configure(faults=None)
    assert fresh_sim.stats["requests"] == 3  # 1.00x, not 3.00x
    events = rows(guard)
    assert len(events) == 3
    assert all(e["status"] == "error" and e["retry_count"] == 0 for e in events)
    assert all(e["error_type"] == "truncated" for e in events)


def test_cut_bodies_and_malformed_json_count_against_max_attempts(fresh_sim, home):
    guard = llmguard.install(home=str(home), max_attempts=3, backoff_base_s=0.01)
    fresh_sim.configure(faults=["cut", "malformed"])
    answer = _ask(fresh_sim)
    assert answer.choices[0].message.content
    assert fresh_sim.stats["requests"] == 3
    [row] = rows(guard)
    assert row["status"] == "ok" and row["retry_count"] == 2


def test_a_malformed_200_is_an_error_not_ok(fresh_sim, home):
    guard = llmguard.install(home=str(home), max_attempts=1)
    fresh_sim.configure(faults=["malformed"])
    with pytest.raises((openai.APIResponseValidationError, ValueError, openai.APIError)):
        _ask(fresh_sim).choices[0].message.content  # noqa: B018 - the SDK must not hand back a result
    [row] = rows(guard)
    assert row["status"] == "error" and row["error_type"] == "malformed_response"
    assert row["tokens_approximate"] == 1
    assert fresh_sim.stats["requests"] == 1


def test_a_reset_connection_is_one_attempt_and_one_row(fresh_sim, home):
    guard = llmguard.install(home=str(home), max_attempts=2, backoff_base_s=0.01)
    fresh_sim.configure(faults=["drop", "drop"])
    with pytest.raises(openai.APIConnectionError):
        _ask(fresh_sim)
    assert fresh_sim.stats["requests"] == 2
    [row] = rows(guard)
    assert row["status"] == "error" and row["retry_count"] == 1


def test_an_anthropic_cut_body_is_retried_by_the_guard_only(fresh_sim, home):
    guard = llmguard.install(home=str(home), max_attempts=2, backoff_base_s=0.01)
    fresh_sim.configure(faults=["cut", "cut", "cut"])
    import anthropic

    with pytest.raises(anthropic.APIConnectionError):
        anthropic_client(fresh_sim).messages.create(model="claude-3-5-haiku-latest", max_tokens=20, messages=MSG)
    fresh_sim.configure(faults=None)
    assert fresh_sim.stats["requests"] == 2
    [row] = rows(guard)
    assert row["status"] == "error" and row["retry_count"] == 1


def test_a_call_that_timed_out_after_it_was_sent_keeps_its_estimated_tokens(fresh_sim, home):
    guard = llmguard.install(home=str(home), timeout_s=0.3, max_attempts=1, budget_usd=1.0)
    fresh_sim.configure(latency_ms=1500)
    try:
        with pytest.raises(openai.APITimeoutError):
            _ask(fresh_sim)
    finally:
        fresh_sim.configure(latency_ms=0)
    [row] = rows(guard)
    assert row["status"] == "error" and row["error_type"] == "timeout"
    # the provider works on (and bills) a request it received: the worst case is recorded, marked
    assert row["tokens_approximate"] == 1 and row["input_tokens"] > 0 and row["output_tokens"] == 20
    assert row["cost_usd"] == pytest.approx((row["input_tokens"] * 0.15 + 20 * 0.60) / 1e6, rel=1e-9)
    assert guard.budget.snapshot()["session budget"]["spent"] == pytest.approx(row["cost_usd"], rel=1e-9)
