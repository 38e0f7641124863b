"""A fallback to another provider's model is called in that provider's API and answered in the
caller's SDK shape; the books show the call where the provider billed it."""

from __future__ import annotations

import anthropic
import openai
import pytest

import llmguard
from llmguard.config import ConfigError
from tests.conftest import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, anthropic_client, openai_client, rows

MSG = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]


@pytest.fixture
def keys(monkeypatch, fresh_sim):
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fresh_sim.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fresh_sim.base_url + "/v1")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_openai_call_falls_back_to_claude_through_anthropics_api(fresh_sim, home, keys, stream):
    guard = llmguard.install(home=str(home), max_attempts=1, fallbacks={"gpt-4o-mini": ["claude-3-5-haiku-latest"]})
    fresh_sim.configure(faults=["500"])
    client = openai_client(fresh_sim, max_retries=0)
    if stream:
        chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=30, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        model = chunks[0].model
    else:
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=30)
        assert isinstance(answer, openai.types.chat.ChatCompletion)
        text, model = answer.choices[0].message.content, answer.model
    assert text and model == "claude-3-5-haiku-latest"
    billed = fresh_sim.stats["models"]
    assert set(billed) == {"claude-3-5-haiku-latest"} and billed["claude-3-5-haiku-latest"]["provider"] == "anthropic"
    [row] = rows(guard)
    assert (row["provider"], row["endpoint"], row["model"], row["requested_model"]) == (
        "anthropic",
        "messages",
        "claude-3-5-haiku-latest",
        "gpt-4o-mini",
    )
    assert row["fallback_used"] == 1 and row["status"] == "ok"
    claude = billed["claude-3-5-haiku-latest"]
    assert (row["input_tokens"], row["output_tokens"]) == (claude["input_tokens"], claude["output_tokens"])
    assert row["cost_usd"] == pytest.approx(claude["cost_usd"], rel=1e-12)


def test_a_claude_call_falls_back_to_an_openai_model_in_the_anthropic_shape(fresh_sim, home, keys):
    guard = llmguard.install(home=str(home), max_attempts=1, fallbacks={"claude-3-5-haiku-latest": ["gpt-4o-mini"]})
    fresh_sim.configure(faults=["529"])
    answer = anthropic_client(fresh_sim, max_retries=0).messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=30,
        system="Be brief.",
        messages=[{"role": "user", "content": "Name a colour."}],
    )
    assert isinstance(answer, anthropic.types.Message) and answer.content[0].text
    assert set(fresh_sim.stats["models"]) == {"gpt-4o-mini"}
    [row] = rows(guard)
    assert (row["provider"], row["model"], row["fallback_used"]) == ("openai", "gpt-4o-mini", 1)


def test_a_crossing_chain_without_the_other_providers_key_is_refused_at_install(home, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        llmguard.install(home=str(home), fallbacks={"gpt-4o-mini": ["claude-3-5-haiku-latest"]})


def test_a_call_that_cannot_be_translated_gets_a_clear_error(fresh_sim, home, keys):
    llmguard.install(home=str(home), max_attempts=1, fallbacks={"gpt-4o-mini": ["claude-3-5-haiku-latest"]})
    fresh_sim.configure(faults=["500"])
    with pytest.raises(openai.APIStatusError, match="n>1|n=3"):
        openai_client(fresh_sim, max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=MSG, max_tokens=30, n=3
        )
    assert fresh_sim.stats["statuses"] == {"500": 1}  # nothing was sent to Anthropic
