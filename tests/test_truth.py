"""Absolute truth: dollars computed by hand from the providers' published prices, waits of exactly
the provider's `retry-after`, keys that appear nowhere.

Every figure here is a literal. The simulator bills with genai-prices' own `calc_price`
(independent of `llmguard.policies.pricing`), and both its bill and the guard's ledger must equal the
literal, so a mistake on either side fails, not only a disagreement between them. Token counts are
the simulator's (tiktoken, cl100k); the arithmetic in each comment is what a reader can redo.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import anthropic
import openai
import pytest

import llmguard
from tests.conftest import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, anthropic_client, openai_client, rows

# 160 clauses of contract text: 1,937 prompt tokens with the user turn (cl100k, OpenAI's 3-per-message rule)
CONTRACT = " ".join(f"Clause {i}: the supplier shall deliver goods on time." for i in range(160))
CONTRACT_MESSAGES = [
    {"role": "system", "content": CONTRACT},
    {"role": "user", "content": "Summarise the contract."},
]


def _usd(value: float | None) -> float:
    assert value is not None, "the call was not priced"
    return round(value, 12)


def _call_openai(sim, mode: str, **kw):
    """One chat call through the real SDK, as the user would make it in `mode`; returns the text."""
    if mode == "sync":
        return openai_client(sim).chat.completions.create(**kw).choices[0].message.content
    if mode == "stream":
        chunks = openai_client(sim).chat.completions.create(stream=True, **kw)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    async def run():
        client = openai_client(sim, asynchronous=True)
        answer = await client.chat.completions.create(**kw)
        await client.close()
        return answer.choices[0].message.content

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_openai_cached_input_tokens_are_billed_at_the_cached_rate(fresh_sim, guard, mode):
    fresh_sim.reset_cache()
    for _ in range(2):  # sampled (no temperature): the guard's response cache stays out of it
        _call_openai(fresh_sim, mode, model="gpt-4o-mini", messages=CONTRACT_MESSAGES, max_tokens=60)
    first, second = rows(guard)
    # gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per million tokens.
    # 1st: 1,937 input uncached, 60 output: 1937*0.15 + 60*0.60 = 290.55 + 36 = 326.55 -> $0.00032655
    assert (first["input_tokens"], first["cached_input_tokens"], first["output_tokens"]) == (1937, 0, 60)
    assert _usd(first["cost_usd"]) == 0.00032655
    # 2nd: 1,920 of them cached (1024 + 7*128): 17*0.15 + 1920*0.075 + 60*0.60 = 2.55 + 144 + 36 = 182.55
    assert (second["input_tokens"], second["cached_input_tokens"], second["output_tokens"]) == (1937, 1920, 60)
    assert _usd(second["cost_usd"]) == 0.00018255
    billed = fresh_sim.stats["models"]["gpt-4o-mini"]
    assert billed["cost_decimal"] == "0.00050910"  # 326.55 + 182.55 = 509.10 micro-dollars
    assert (billed["input_tokens"], billed["cached_tokens"], billed["output_tokens"]) == (3874, 1920, 120)


def test_reasoning_tokens_are_output_tokens(fresh_sim, guard):
    openai_client(fresh_sim).chat.completions.create(
        model="o4-mini", messages=[{"role": "user", "content": "Prove it."}], max_completion_tokens=2000
    )
    [row] = rows(guard)
    # o4-mini: $1.10 input, $4.40 output per million; 448 hidden reasoning tokens are inside the 550 output.
    # 11*1.10 + 550*4.40 = 12.1 + 2420 = 2432.1 -> $0.0024321
    assert (row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (11, 550, 448)
    assert _usd(row["cost_usd"]) == 0.0024321
    assert fresh_sim.stats["models"]["o4-mini"]["cost_decimal"] == "0.0024321"


def test_a_tiered_price_model_over_200k_tokens_is_billed_at_the_long_context_rate(fresh_sim, guard):
    anthropic_client(fresh_sim).messages.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "word " * 209_990}]
    )
    [row] = rows(guard)
    # claude-sonnet-4-5: $3/$15 per million up to 200k input tokens, $6/$22.50 for the whole call above.
    # 209,998 input: 209998*6 + 100*22.5 = 1,259,988 + 2,250 = 1,262,238 micro-dollars -> $1.262238
    assert (row["input_tokens"], row["output_tokens"]) == (209_998, 100)
    assert _usd(row["cost_usd"]) == 1.262238
    assert fresh_sim.stats["models"]["claude-sonnet-4-5"]["cost_decimal"] == "1.262238"


def test_the_guard_waits_exactly_the_retry_after_the_provider_asks_for(fresh_sim, home):
    # backoff of its own would be 2-4 s here (base 4 s, equal jitter): only reading retry-after gives 0.3 s
    guard = llmguard.install(home=str(home), max_attempts=2, backoff_base_s=4.0, backoff_max_s=8.0)
    fresh_sim.configure(faults=["429"], fault_retry_after_s=0.3)
    try:
        openai_client(fresh_sim, max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=5
        )
    finally:
        fresh_sim.configure(fault_retry_after_s=None)
    [row] = rows(guard)
    assert row["status"] == "ok" and row["retry_count"] == 1
    assert 290 <= row["retry_delay_ms"] <= 450, row["retry_delay_ms"]  # 0 s or 2 s both fail
    assert row["total_ms"] >= 290
    assert fresh_sim.stats["statuses"] == {"429": 1, "200": 1}


def _files_under(folder: Path) -> list[Path]:
    return [Path(root) / name for root, _, names in os.walk(folder) for name in names]


def _fragments(key: str, size: int = 8) -> set[str]:
    """Every 8-character piece of the key's secret part: a partial echo must not survive either."""
    secret = key.split("-test-", 1)[-1]
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_error_that_echoes_the_api_key_leaves_no_fragment_of_it_anywhere(fresh_sim, home, provider):
    guard = llmguard.install(home=str(home))
    fresh_sim.configure(faults=["echo_key"])
    key = FAKE_OPENAI_KEY if provider == "openai" else FAKE_ANTHROPIC_KEY
    if provider == "openai":
        with pytest.raises(openai.AuthenticationError) as caught:
            openai_client(fresh_sim).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=5
            )
    else:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            anthropic_client(fresh_sim).messages.create(
                model="claude-3-5-haiku-latest", messages=[{"role": "user", "content": "hi"}], max_tokens=5
            )
    error = caught.value
    seen_by_user = " ".join([str(error), repr(error.body), error.response.text, repr(error.message)])
    assert "Incorrect API key provided" in seen_by_user  # the provider's sentence still reaches the user
    pieces = _fragments(key)
    assert not [p for p in pieces if p in seen_by_user], seen_by_user
    [row] = rows(guard)
    assert row["status"] == "error" and row["http_status"] == 401
    assert "[redacted]" in row["error_message"]
    llmguard.uninstall()  # flush the journal, ledger and cache to disk
    for path in _files_under(home):
        data = path.read_bytes()
        leaked = [p for p in pieces if p.encode() in data]
        assert not leaked, f"{path} holds {leaked}"
