"""llmguard.sim against the real openai and anthropic SDKs over real HTTP on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from llmguard.policies.pricing import genai_cost
from llmguard.policies.tokens import count_messages, count_text, encoding_for_model
from llmguard.providers.base import Usage
from llmguard.sim import SimProvider, cli
from llmguard.sim.buckets import RateLimiter, go_duration
from llmguard.sim.faults import FaultPlan
from llmguard.sim.text import WORDS, completion_pieces, target_length

MODEL = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4-6"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say something."}]
CLAUDE_MESSAGES = [{"role": "user", "content": "Say something."}]


@pytest.fixture
def sim():
    with SimProvider() as provider:
        yield provider


def oai(sim: SimProvider, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.base_url + "/v1", api_key="sk-test", max_retries=0, **kw)


def ant(sim: SimProvider, **kw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sim.base_url, api_key="sk-ant-test", max_retries=0, **kw)


def raw_post(url: str, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, data=data, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def long_prompt(tokens: int) -> str:
    """A user message of about `tokens` tokens (each ' wordN' piece is one or two tokens)."""
    text = " ".join(WORDS[i % len(WORDS)] for i in range(tokens))
    assert abs(count_text(text, MODEL).tokens - tokens) <= 1
    return text


# -- the text model ------------------------------------------------------------------------------


def test_every_word_is_one_cl100k_token_in_every_form():
    encoding, _ = encoding_for_model("gpt-4")
    for word in WORDS:
        for form in (word, " " + word, word.capitalize(), " " + word.capitalize()):
            assert len(encoding.encode_ordinary(form)) == 1, form


def test_generated_text_token_count_is_exact():
    for i in range(300):
        digest = i.to_bytes(4, "little") * 4
        pieces = completion_pieces(digest, target_length(digest))
        assert 20 <= len(pieces) <= 300
        assert count_text("".join(pieces), "gpt-4").tokens == len(pieces)


# -- OpenAI chat ---------------------------------------------------------------------------------


def test_openai_chat_parses_and_usage_matches_stats(sim):
    raw = oai(sim).chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    response = raw.parse()
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["openai-processing-ms"]) >= 0
    assert "x-ratelimit-limit-requests" not in raw.headers  # no limits configured
    assert isinstance(response, openai.types.chat.ChatCompletion)
    assert response.id.startswith("chatcmpl-") and response.object == "chat.completion"
    assert response.model == MODEL and abs(response.created - time.time()) < 60
    choice = response.choices[0]
    assert choice.message.role == "assistant" and choice.message.refusal is None
    assert choice.finish_reason == "stop"
    usage = response.usage
    assert usage.prompt_tokens == count_messages(MESSAGES, MODEL).tokens
    assert usage.completion_tokens == count_text(choice.message.content, MODEL).tokens
    assert 20 <= usage.completion_tokens <= 300
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0
    stats = sim.stats
    assert stats["requests"] == 1
    model = stats["models"][MODEL]
    assert model["requests"] == 1
    assert model["input_tokens"] == usage.prompt_tokens
    assert model["output_tokens"] == usage.completion_tokens
    assert model["cached_tokens"] == 0 and model["priced"] is True


def test_same_request_same_text_and_streams_match(sim):
    client = oai(sim)
    a = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    b = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    other = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Something else."}])
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.id != b.id
    assert other.choices[0].message.content != a.choices[0].message.content
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        if c.choices
    )
    assert streamed == a.choices[0].message.content
    with SimProvider() as other_sim:  # determinism holds across servers with the same seed
        again = oai(other_sim).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert again.choices[0].message.content == a.choices[0].message.content


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_bound_gives_finish_reason_length(sim, field):
    response = oai(sim).chat.completions.create(model=MODEL, messages=MESSAGES, **{field: 7})
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 7
    assert count_text(response.choices[0].message.content, MODEL).tokens == 7


def test_stream_with_include_usage(sim):
    client = oai(sim)
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=12, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert chunks[-2].choices[0].finish_reason == "length"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert last.usage.completion_tokens == 12 == count_text(text, MODEL).tokens
    assert last.usage.prompt_tokens == count_messages(MESSAGES, MODEL).tokens
    assert sim.stats["models"][MODEL]["output_tokens"] == 12
    # the wire: every chunk carries "usage": null, the usage chunk comes right before [DONE]
    with client.chat.completions.with_streaming_response.create(
        model=MODEL, messages=MESSAGES, max_tokens=3, stream=True, stream_options={"include_usage": True}
    ) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in raw.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line[6:]) for line in lines[:-1]]
    assert all("usage" in e for e in events)
    assert all(e["usage"] is None for e in events[:-1]) and events[-1]["usage"]["completion_tokens"] == 3


def test_stream_without_include_usage_has_no_usage(sim):
    with oai(sim).chat.completions.with_streaming_response.create(
        model=MODEL, messages=MESSAGES, max_tokens=5, stream=True
    ) as raw:
        lines = [line for line in raw.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert not any("usage" in line for line in lines)
    assert len(lines) == 1 + 5 + 1 + 1  # role chunk, 5 tokens, finish chunk, [DONE]
    assert sim.stats["models"][MODEL]["output_tokens"] == 5  # billed although the client saw no usage


def test_stream_with_latency_sends_same_events(sim):
    sim.configure(latency_ms=5, per_token_ms=1)
    client = oai(sim)
    plain = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=15)
    chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=15, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == plain.choices[0].message.content
    assert sum(1 for c in chunks if c.choices[0].delta.content) == 15


def test_keep_alive_reuses_one_connection(sim):
    client, claude = oai(sim), ant(sim)
    for _ in range(4):
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)
        list(claude.messages.create(model=CLAUDE, max_tokens=5, messages=CLAUDE_MESSAGES, stream=True))
    # the openai SDK stops reading at `data: [DONE]` and so drops its connection after each stream
    # (it does the same with the real API); every other call keeps its connection
    assert sim.stats["connections"] == 2
    assert sim.stats["handled"] > 0 and sim.stats["server_us"] > 0 and sim.stats["server_us_median"] > 0


def test_async_openai_plain_and_stream(sim):
    async def main():
        client = openai.AsyncOpenAI(base_url=sim.base_url + "/v1", api_key="sk-test", max_retries=0)
        plain, stream = await asyncio.gather(
            client.chat.completions.create(model=MODEL, messages=MESSAGES),
            client.chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            ),
        )
        chunks = [c async for c in stream]
        await client.close()
        return plain, chunks

    plain, chunks = asyncio.run(main())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == plain.choices[0].message.content
    assert chunks[-1].usage.model_dump() == plain.usage.model_dump()
    assert sim.stats["models"][MODEL]["output_tokens"] == 2 * plain.usage.completion_tokens


def test_reasoning_model_counts_reasoning_inside_completion(sim):
    client = oai(sim)
    response = client.chat.completions.create(model="o3-mini", messages=MESSAGES)
    usage = response.usage
    reasoning = usage.completion_tokens_details.reasoning_tokens
    assert reasoning > 0 and reasoning % 64 == 0
    visible = count_text(response.choices[0].message.content, "o3-mini").tokens
    assert usage.completion_tokens == reasoning + visible
    assert sim.stats["models"]["o3-mini"]["reasoning_tokens"] == reasoning
    bounded = client.chat.completions.create(model="o3-mini", messages=MESSAGES, max_completion_tokens=70)
    assert bounded.usage.completion_tokens <= 70
    assert bounded.choices[0].finish_reason == "length"


def test_prefix_caching_openai(sim):
    client = oai(sim)
    messages = [{"role": "user", "content": long_prompt(1100)}]
    first = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=5)
    second = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=5)
    assert first.usage.prompt_tokens >= 1100
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == 1024
    # a longer prompt sharing the prefix hits in 128-token steps; another model has its own cache
    longer = [
        {"role": "user", "content": messages[0]["content"]},
        {"role": "user", "content": long_prompt(300)},
    ]
    third = client.chat.completions.create(model=MODEL, messages=longer, max_tokens=5)
    assert third.usage.prompt_tokens_details.cached_tokens == 1024
    fourth = client.chat.completions.create(model=MODEL, messages=longer, max_tokens=5)
    expected = 1024 + 128 * ((fourth.usage.prompt_tokens - 1024) // 128)
    assert fourth.usage.prompt_tokens_details.cached_tokens == expected > 1024
    other = client.chat.completions.create(model="gpt-4.1-mini", messages=messages, max_tokens=5)
    assert other.usage.prompt_tokens_details.cached_tokens == 0
    model = sim.stats["models"][MODEL]
    assert model["cached_tokens"] == 1024 + 1024 + expected
    assert model["input_tokens"] == sum(r.usage.prompt_tokens for r in (first, second, third, fourth))


def test_unknown_model_is_counted_but_not_priced(sim):
    oai(sim).chat.completions.create(model="my-local-llm", messages=MESSAGES)
    stats = sim.stats
    assert stats["models"]["my-local-llm"]["cost_usd"] is None
    assert stats["models"]["my-local-llm"]["priced"] is False
    assert stats["unpriced_models"] == ["my-local-llm"]
    assert stats["cost_usd"] == 0.0


def test_cost_equals_genai_prices_arithmetic(sim):
    client = oai(sim)
    messages = [{"role": "user", "content": long_prompt(1100)}]
    usages = []
    for _ in range(2):
        u = client.chat.completions.create(model=MODEL, messages=messages).usage
        usages.append(
            (
                "openai",
                MODEL,
                Usage(
                    input_tokens=u.prompt_tokens,
                    cached_input_tokens=u.prompt_tokens_details.cached_tokens,
                    output_tokens=u.completion_tokens,
                ),
            )
        )
    m = ant(sim).messages.create(model=CLAUDE, max_tokens=50, messages=CLAUDE_MESSAGES).usage
    usages.append(("anthropic", CLAUDE, Usage(input_tokens=m.input_tokens, output_tokens=m.output_tokens)))
    expected = sum((genai_cost(*args) for args in usages), Decimal(0))
    assert usages[1][2].cached_input_tokens == 1024
    assert sim.cost_decimal() == expected
    assert sim.stats["cost_usd"] == float(expected) > 0
    per_model = sim.stats["models"][MODEL]["cost_usd"]
    assert per_model == float(genai_cost(*usages[0]) + genai_cost(*usages[1]))


# -- embeddings ----------------------------------------------------------------------------------


def test_embeddings_base64_float_and_token_lists(sim):
    client = oai(sim)
    texts = ["hello world", "a longer sentence about rivers"]
    default = client.embeddings.create(model="text-embedding-3-small", input=texts)  # SDK asks for base64
    floats = client.embeddings.create(model="text-embedding-3-small", input=texts, encoding_format="float")
    assert [d.index for d in default.data] == [0, 1]
    assert len(default.data[0].embedding) == 1536
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert math.isclose(sum(v * v for v in floats.data[1].embedding), 1.0, rel_tol=1e-6)
    assert default.data[0].embedding != default.data[1].embedding
    expected = sum(count_text(t, "text-embedding-3-small").tokens for t in texts)
    assert default.usage.prompt_tokens == default.usage.total_tokens == expected
    single = client.embeddings.create(model="text-embedding-3-small", input="hello world", dimensions=8)
    assert len(single.data[0].embedding) == 8
    tokens = client.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 3], [4, 5]])
    assert tokens.usage.prompt_tokens == 5
    model = sim.stats["models"]["text-embedding-3-small"]
    assert model["requests"] == 4 and model["input_tokens"] == 2 * expected + single.usage.prompt_tokens + 5
    assert model["output_tokens"] == 0 and model["cost_usd"] > 0


# -- Anthropic -----------------------------------------------------------------------------------


def test_anthropic_message_parses_and_usage_matches_stats(sim):
    raw = ant(sim).messages.with_raw_response.create(
        model=CLAUDE, max_tokens=1000, system="Be brief.", messages=CLAUDE_MESSAGES
    )
    message = raw.parse()
    assert raw.headers["request-id"].startswith("req_")
    assert isinstance(message, anthropic.types.Message)
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == CLAUDE and message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    usage = message.usage
    assert usage.input_tokens == count_messages(CLAUDE_MESSAGES, CLAUDE, system="Be brief.").tokens
    assert usage.output_tokens == count_text(message.content[0].text, CLAUDE).tokens
    assert usage.cache_read_input_tokens == 0 and usage.cache_creation_input_tokens == 0
    model = sim.stats["models"][CLAUDE]
    assert model["provider"] == "anthropic"
    assert (model["input_tokens"], model["output_tokens"]) == (usage.input_tokens, usage.output_tokens)
    cut = ant(sim).messages.create(model=CLAUDE, max_tokens=4, messages=CLAUDE_MESSAGES)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 4


def test_anthropic_stream_event_sequence(sim):
    client = ant(sim)
    with client.messages.with_streaming_response.create(
        model=CLAUDE, max_tokens=6, messages=CLAUDE_MESSAGES, stream=True
    ) as raw:
        body = raw.read().decode()
    blocks = [b for b in body.split("\n\n") if b]
    kinds = [b.split("\n")[0].removeprefix("event: ") for b in blocks]
    assert kinds == ["message_start", "content_block_start", "ping"] + ["content_block_delta"] * 6 + [
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    for block, kind in zip(blocks, kinds, strict=True):
        assert json.loads(block.split("\n")[1].removeprefix("data: "))["type"] == kind
    events = list(client.messages.create(model=CLAUDE, max_tokens=6, messages=CLAUDE_MESSAGES, stream=True))
    start = events[0]
    assert start.type == "message_start" and start.message.usage.output_tokens == 1
    assert start.message.usage.input_tokens == count_messages(CLAUDE_MESSAGES, CLAUDE).tokens
    assert events[-2].type == "message_delta" and events[-2].delta.stop_reason == "max_tokens"
    assert events[-2].usage.output_tokens == 6
    with client.messages.stream(model=CLAUDE, max_tokens=500, messages=CLAUDE_MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    plain = client.messages.create(model=CLAUDE, max_tokens=500, messages=CLAUDE_MESSAGES)
    assert text == final.content[0].text == plain.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == plain.usage.output_tokens
    assert sim.stats["models"][CLAUDE]["output_tokens"] == 6 + 6 + 2 * plain.usage.output_tokens


def test_async_anthropic_stream(sim):
    async def main():
        client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="sk-ant-test", max_retries=0)
        async with client.messages.stream(model=CLAUDE, max_tokens=300, messages=CLAUDE_MESSAGES) as stream:
            final = await stream.get_final_message()
        plain = await client.messages.create(model=CLAUDE, max_tokens=300, messages=CLAUDE_MESSAGES)
        await client.close()
        return final, plain

    final, plain = asyncio.run(main())
    assert final.content[0].text == plain.content[0].text
    assert final.usage.output_tokens == plain.usage.output_tokens


def test_anthropic_prefix_caching_needs_cache_control(sim):
    client = ant(sim)
    text = long_prompt(2100)  # past claude-sonnet-4-6's 2048-token minimum
    plain = [{"role": "user", "content": text}]
    marked = [{"role": "user", "content": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]}]
    for _ in range(2):
        uncached = client.messages.create(model=CLAUDE, max_tokens=5, messages=plain).usage
    assert uncached.cache_read_input_tokens == uncached.cache_creation_input_tokens == 0
    first = client.messages.create(model=CLAUDE, max_tokens=5, messages=marked).usage
    second = client.messages.create(model=CLAUDE, max_tokens=5, messages=marked).usage
    prefix = uncached.input_tokens - 3  # up to the breakpoint; the reply priming stays uncached
    assert (first.input_tokens, first.cache_creation_input_tokens, first.cache_read_input_tokens) == (3, prefix, 0)
    assert (second.input_tokens, second.cache_creation_input_tokens, second.cache_read_input_tokens) == (3, 0, prefix)
    model = sim.stats["models"][CLAUDE]
    assert (model["cached_tokens"], model["cache_write_tokens"]) == (prefix, prefix)
    assert model["input_tokens"] == 4 * uncached.input_tokens


def test_anthropic_count_tokens(sim):
    result = ant(sim).messages.count_tokens(model=CLAUDE, messages=CLAUDE_MESSAGES, system="Be brief.")
    assert result.input_tokens == count_messages(CLAUDE_MESSAGES, CLAUDE, system="Be brief.").tokens


# -- errors in the providers' shapes -------------------------------------------------------------


def test_bad_requests_and_unknown_routes(sim):
    url = sim.base_url
    status, _, body = raw_post(
        url + "/v1/messages",
        json.dumps({"model": CLAUDE, "messages": CLAUDE_MESSAGES}).encode(),
        {"content-type": "application/json"},
    )
    assert status == 400
    assert body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }
    status, _, body = raw_post(url + "/v1/messages", b"{not json")
    assert status == 400 and body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    status, _, body = raw_post(url + "/v1/chat/completions", b"{not json")
    assert status == 400 and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    status, _, body = raw_post(url + "/v1/chat/completions", json.dumps({"model": MODEL}).encode())
    assert status == 400 and body["error"]["param"] == "messages"
    status, _, body = raw_post(url + "/v1/chat/completions", json.dumps({"messages": MESSAGES}).encode())
    assert status == 400 and body["error"]["param"] == "model"
    with pytest.raises(openai.NotFoundError) as caught:
        oai(sim).post("/nowhere", body={}, cast_to=object)
    assert caught.value.body["type"] == "invalid_request_error"
    with pytest.raises(anthropic.NotFoundError) as caught:
        ant(sim).post("/v1/nowhere", body={}, cast_to=object)
    assert caught.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(openai.BadRequestError):
        oai(sim).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=0)
    stats = sim.stats
    assert stats["requests"] == 8 and stats["models"] == {} and stats["statuses"] == {"400": 6, "404": 2}


# -- rate limiting -------------------------------------------------------------------------------


def test_rpm_limit_429_headers_and_refill():
    with SimProvider(rpm=2, window_s=1.0) as sim:
        client = oai(sim)
        ok = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES, max_tokens=5)
        assert ok.headers["x-ratelimit-limit-requests"] == "2"
        assert ok.headers["x-ratelimit-remaining-requests"] == "1"
        assert ok.headers["x-ratelimit-reset-requests"].endswith("ms")
        assert "x-ratelimit-limit-tokens" not in ok.headers
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)
        error = caught.value
        assert error.status_code == 429
        assert error.body["code"] == "rate_limit_exceeded" and error.body["type"] == "requests"
        headers = error.response.headers
        assert int(headers["retry-after"]) == 1
        wait_ms = int(headers["retry-after-ms"])
        assert 0 < wait_ms <= 1000
        assert headers["x-ratelimit-remaining-requests"] == "0"
        client.chat.completions.create(model=CLAUDE, messages=MESSAGES, max_tokens=5)  # per model
        time.sleep(wait_ms / 1000 + 0.02)
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)
        stats = sim.stats
        assert stats["rate_limited"] == 1 and stats["requests"] == 5
        assert stats["models"][MODEL]["requests"] == 3


def test_tpm_limit_charges_prompt_plus_max_tokens():
    prompt = count_messages(MESSAGES, MODEL).tokens
    with SimProvider(tpm=2 * prompt + 100, window_s=60.0) as sim:  # refill too slow to matter
        client = oai(sim)
        ok = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES, max_tokens=60)
        assert int(ok.headers["x-ratelimit-remaining-tokens"]) == prompt + 40
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=60)
        assert caught.value.body["type"] == "tokens"
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=40)  # still fits
        with pytest.raises(openai.RateLimitError):  # no max_tokens: charged default_max_tokens
            client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)


def test_per_model_limits_and_anthropic_429():
    with SimProvider(limits={CLAUDE: {"rpm": 1, "tpm": 10_000}}, window_s=60.0) as sim:
        client = ant(sim)
        ok = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=5, messages=CLAUDE_MESSAGES)
        assert ok.headers["anthropic-ratelimit-requests-limit"] == "1"
        assert ok.headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert ok.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
        assert ok.headers["anthropic-ratelimit-input-tokens-limit"] == "10000"
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model=CLAUDE, max_tokens=5, messages=CLAUDE_MESSAGES)
        assert caught.value.body["error"]["type"] == "rate_limit_error"
        assert "retry-after" in caught.value.response.headers
        for _ in range(3):  # other models are unlimited
            client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=CLAUDE_MESSAGES)
        assert sim.stats["rate_limited"] == 1


def test_rate_limiter_and_durations_unit():
    limiter = RateLimiter(rpm=2, tpm=100, window_s=1.0)
    assert limiter.admit("m", 50, now=0.0).allowed
    assert limiter.admit("m", 50, now=0.0).allowed
    refused = limiter.admit("m", 1, now=0.0)
    assert not refused.allowed and refused.limited_by == "requests"
    assert refused.retry_after_s == pytest.approx(0.5)
    assert limiter.admit("m", 25, now=0.5).allowed  # 1 request and 50 tokens refilled
    assert limiter.admit("m", 200, now=10.0).retry_after_s == 1.0  # never fits: "too large"
    assert [go_duration(s) for s in (0.02, 1, 1.5, 360, 3723)] == ["20ms", "1s", "1.5s", "6m0s", "1h2m3s"]


# -- faults --------------------------------------------------------------------------------------


def test_scripted_status_faults_openai(sim):
    sim.configure(faults=["429", "500", "503", "529", "ok", "malformed"])
    client = oai(sim)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.response.headers["retry-after-ms"] == "50"
    for status in (500, 503, 529):
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert caught.value.status_code == status
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices  # script ran out
    stats = sim.stats
    assert stats["faults"] == {"429": 1, "500": 1, "503": 1, "529": 1, "malformed": 1}
    assert stats["requests"] == 7 and stats["models"][MODEL]["requests"] == 2  # faults are not billed
    assert stats["rate_limited"] == 1


def test_scripted_status_faults_anthropic(sim):
    sim.configure(faults=["529", "500", "503", "429"])
    client = ant(sim)
    for error in (
        anthropic.OverloadedError,
        anthropic.InternalServerError,
        anthropic.ServiceUnavailableError,
        anthropic.RateLimitError,
    ):
        with pytest.raises(error) as caught:
            client.messages.create(model=CLAUDE, max_tokens=5, messages=CLAUDE_MESSAGES)
        assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert client.messages.create(model=CLAUDE, max_tokens=5, messages=CLAUDE_MESSAGES).content


def test_hang_times_out_and_drop_fails_connection(sim):
    sim.configure(faults=["hang", "drop", "hang"])
    client = oai(sim, timeout=0.15)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(openai.APIConnectionError) as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert not isinstance(caught.value, openai.APITimeoutError)
    with pytest.raises(anthropic.APITimeoutError):
        ant(sim, timeout=0.15).messages.create(model=CLAUDE, max_tokens=5, messages=CLAUDE_MESSAGES)
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices
    assert sim.stats["faults"] == {"hang": 2, "drop": 1}


def test_cut_body_and_cut_stream(sim):
    sim.configure(faults=["cut", "cut", "cut", "malformed"])
    client = oai(sim)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            received.append(chunk)
    assert received and all(c.choices[0].finish_reason is None for c in received)
    events: list[Any] = []
    with pytest.raises(httpx2.RemoteProtocolError):  # the anthropic SDK lets the transport error through
        for event in ant(sim).messages.create(model=CLAUDE, max_tokens=100, messages=CLAUDE_MESSAGES, stream=True):
            events.append(event.type)
    assert events[0] == "message_start" and "message_stop" not in events
    with pytest.raises(json.JSONDecodeError):  # a malformed stream
        list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    stats = sim.stats
    assert stats["faults"] == {"cut": 3, "malformed": 1} and stats["models"] == {}


def test_probabilistic_faults_are_seeded():
    def outcomes(seed: int) -> list[str]:
        with SimProvider(faults={"500": 0.5}, seed=seed) as sim:
            client = oai(sim)
            result = []
            for _ in range(12):
                try:
                    client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=3)
                    result.append("ok")
                except openai.InternalServerError:
                    result.append("500")
            assert sim.stats["faults"].get("500", 0) == result.count("500")
            return result

    first = outcomes(1)
    assert first == outcomes(1)
    assert "ok" in first and "500" in first
    plan = FaultPlan({"429": 0.2, "hang": 0.1}, seed=3)
    draws = [plan.next() for _ in range(2000)]
    assert 300 < draws.count("429") < 500 and 120 < draws.count("hang") < 280
    with pytest.raises(ValueError):
        FaultPlan(["teapot"])


def test_stop_with_hung_and_streaming_requests_in_flight():
    sim = SimProvider(faults=["hang"], latency_ms=60_000).start()
    errors: list[BaseException] = []

    def call(stream: bool) -> None:
        try:
            result = oai(sim).chat.completions.create(model=MODEL, messages=MESSAGES, stream=stream)
            if stream:
                list(result)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(s,)) for s in (False, True)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while sim.stats["requests"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.stats["requests"] == 2
    stopper = threading.Thread(target=sim.stop)
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive()  # stop() did not wait for the hour-long hang or latency
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    assert len(errors) == 2 and all(isinstance(e, openai.APIConnectionError) for e in errors)
    sim.stop()  # idempotent
    with pytest.raises(RuntimeError):
        sim.base_url  # noqa: B018


# -- control -------------------------------------------------------------------------------------


def test_configure_running_server(sim):
    client = oai(sim)
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    sim.configure(rpm=1, window_s=30)
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert int(caught.value.response.headers["retry-after"]) == 30
    sim.configure(latency_ms=1)  # other settings stay as they were
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    sim.configure(rpm=None, faults=["500"])
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices
    status, _, body = raw_post(sim.base_url + "/_sim/configure", json.dumps({"faults": ["503"]}).encode())
    assert status == 200 and body == {"ok": True}
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    status, _, _ = raw_post(sim.base_url + "/_sim/configure", json.dumps({"bogus": 1}).encode())
    assert status == 400


def test_stats_endpoint_snapshot_and_reset(sim):
    oai(sim).chat.completions.create(model=MODEL, messages=MESSAGES)
    snapshot = sim.stats
    snapshot["models"][MODEL]["requests"] = 99  # a copy: the live counters are untouched
    with urllib.request.urlopen(sim.base_url + "/_sim/stats") as response:
        served = json.loads(response.read())
    live = sim.stats
    assert live["models"][MODEL]["requests"] == 1
    timing = ("server_us", "server_us_median", "handled")
    assert {k: v for k, v in served.items() if k not in timing} == {k: v for k, v in live.items() if k not in timing}
    assert served["requests"] == 1  # control routes are not counted
    sim.reset_stats()
    after = sim.stats
    assert after["requests"] == 0 and after["models"] == {} and after["cost_usd"] == 0.0
    oai(sim).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert sim.stats["requests"] == 1


# -- CLI -----------------------------------------------------------------------------------------


def test_cli_arguments():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        ["--port", "0", "--rpm", "5", "--window-s", "2", "--fault", "429=0.1", "--fault", "hang=0.2"]
    )
    assert (args.port, args.rpm, args.tpm, args.window_s) == (0, 5, None, 2.0)
    assert dict(args.fault) == {"429": 0.1, "hang": 0.2}
    with pytest.raises(SystemExit):
        parser.parse_args(["--fault", "teapot=0.1"])


def test_cli_serves_until_interrupted():
    code = "import argparse,sys; from llmguard.sim import cli; p=argparse.ArgumentParser(); cli.add_arguments(p); sys.exit(cli.run(p.parse_args(sys.argv[1:])))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--rpm", "100"],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        base = lines[0].split()[-1]
        assert base.startswith("http://127.0.0.1:")
        assert base + "/v1" in lines[1] and repr(base) in lines[2]
        client = openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
        assert raw.headers["x-ratelimit-limit-requests"] == "100"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
