"""A retry the retry budget refuses says so, to the user and in the ledger; budgets are per provider."""

from __future__ import annotations

import anthropic
import openai
import pytest

import llmguard
from tests.conftest import anthropic_client, openai_client, rows

MSG = [{"role": "user", "content": "hi"}]


def _spend_openai_retry_budget(sim, guard) -> openai.InternalServerError:
    """An OpenAI outage: every call fails, until the budget (floor of 3 retries, ratio 0) says no."""
    sim.configure(faults={"500": 1.0})
    client = openai_client(sim, max_retries=0)
    last = None
    for _ in range(6):
        with pytest.raises(openai.InternalServerError) as failed:
            client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
        last = failed.value
    sim.configure(faults=None)
    return last


def test_a_retry_refused_by_the_retry_budget_says_so_to_the_user_and_in_the_ledger(fresh_sim, home):
    guard = llmguard.install(home=str(home), max_attempts=2, backoff_base_s=0.001, retry_budget=0.0)
    error = _spend_openai_retry_budget(fresh_sim, guard)
    assert "llmguard: retry budget spent" in str(error)
    assert "The server had an error" in str(error)  # the provider's own words are kept after ours
    last = rows(guard)[-1]
    assert last["retry_count"] == 0 and last["error_message"].startswith("llmguard: retry budget spent")


def test_one_providers_outage_does_not_stop_retries_to_another(fresh_sim, home):
    guard = llmguard.install(home=str(home), max_attempts=2, backoff_base_s=0.001, retry_budget=0.0)
    _spend_openai_retry_budget(fresh_sim, guard)
    fresh_sim.configure(faults=["529"])  # one overload at Anthropic: its retry budget is untouched
    answer = anthropic_client(fresh_sim, max_retries=0).messages.create(
        model="claude-3-5-haiku-latest", messages=MSG, max_tokens=5
    )
    assert answer.content[0].text
    assert rows(guard)[-1]["retry_count"] == 1
    assert isinstance(answer, anthropic.types.Message)


def test_a_call_stopped_by_max_retry_wait_s_says_so_in_the_sdks_error(fresh_sim, home):
    """The note reached the ledger but not the user: the SDK's error was the provider's 429 alone."""
    guard = llmguard.install(home=str(home), max_retry_wait_s=0.5)
    fresh_sim.configure(faults=["429", "429", "429"], fault_retry_after_s=0.3)
    client = openai_client(fresh_sim, max_retries=0)
    with pytest.raises(openai.RateLimitError) as stopped:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    note = (
        "llmguard: stopped waiting out 429s: max_retry_wait_s=0.5 reached (waited 0.3 s; the next wait of 0.3 s "
        "would pass it). Raise max_retry_wait_s to wait longer"
    )
    assert note in str(stopped.value)
    assert fresh_sim.stats["requests"] == 2  # one wait of 0.3 s fits in 0.5 s, a second does not
    last = rows(guard)[-1]
    assert last["error_message"].startswith(note + ". The provider said: Rate limit reached")
    assert last["retry_delay_ms"] == 300.0
    refusal = llmguard.errors.refusal_of(stopped.value)
    assert refusal is not None and refusal.kind == "retry_wait" and not refusal.refused
    assert refusal.parts() == (
        "max_retry_wait_s",
        "stopped waiting out 429s: max_retry_wait_s=0.5 reached (waited 0.3 s; the next wait of 0.3 s would pass it)",
        "raise max_retry_wait_s to wait longer",
    )
