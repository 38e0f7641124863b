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
