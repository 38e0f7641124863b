"""google-genai, unchanged, under the guard: metered, limited, budgeted, cached, retried, cut, keyless.

The real google-genai SDK talks to `llmguard.sim` over HTTP. Every dollar figure is a literal from
genai-prices' bundled snapshot for gemini-2.5-flash: $0.30 per million input tokens, $0.03 per
million cached input tokens, $2.50 per million output tokens (thinking tokens are output). Token
counts are the simulator's (tiktoken cl100k, `sim/gemini/request.py`).
"""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from google import genai
from google.genai import errors, types

import llmguard
from tests.conftest import rows

FLASH = "gemini-2.5-flash"
GEMINI_KEY = "AIzaSyLLMGUARDtest0f3a9c1e5b7d2468ace13579"
QUERY_KEY = "llmguard-query-key-5b7d2468ace1f3a9"  # not key-shaped: only knowing the request finds it
ASK = "Summarise the contract in one line."
THINKING = types.GenerateContentConfig(max_output_tokens=400, thinking_config=types.ThinkingConfig(thinking_budget=128))
# 160 clauses: 1,920 tokens of system instruction + 6 of question (cl100k, no per-message overhead)
CONTRACT = " ".join(f"Clause {i}: the supplier shall deliver goods on time." for i in range(160))


def gemini_client(sim, **http: object) -> genai.Client:
    return genai.Client(api_key=GEMINI_KEY, http_options={"base_url": sim.base_url, **http})


def _usd(value: float | None) -> float:
    assert value is not None, "the call was not priced"
    return round(value, 12)


def _generate(sim, mode: str, config: types.GenerateContentConfig, contents: str = ASK) -> str:
    client = gemini_client(sim)
    if mode == "sync":
        return client.models.generate_content(model=FLASH, contents=contents, config=config).text or ""
    if mode == "stream":
        chunks = client.models.generate_content_stream(model=FLASH, contents=contents, config=config)
        return "".join(chunk.text or "" for chunk in chunks)

    async def run() -> str:
        if mode == "async_stream":
            chunks = await client.aio.models.generate_content_stream(model=FLASH, contents=contents, config=config)
            return "".join([chunk.text or "" async for chunk in chunks])
        answer = await client.aio.models.generate_content(model=FLASH, contents=contents, config=config)
        return answer.text or ""

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "async_stream"])
def test_generate_content_is_metered_exactly_with_thinking_tokens_billed_as_output(fresh_sim, guard, mode):
    text = _generate(fresh_sim, mode, THINKING)
    [row] = rows(guard)
    assert (row["provider"], row["endpoint"], row["model"], row["stream"]) == (
        "google",
        "generate_content",
        FLASH,
        int(mode.endswith("stream")),
    )
    # 9 prompt tokens; 50 answer + 128 thinking = 178 output: 9*0.30 + 178*2.50 = 2.7 + 445 = 447.7 -> $0.0004477
    assert (row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (9, 178, 128)
    assert row["status"] == "ok" and not row["tokens_approximate"]
    assert _usd(row["cost_usd"]) == 0.0004477
    billed = fresh_sim.stats["models"][FLASH]
    assert (billed["input_tokens"], billed["output_tokens"], billed["reasoning_tokens"]) == (9, 178, 128)
    assert billed["cost_decimal"] == "0.0004477"
    assert billed["price"]["provider"] == "google"
    assert len(text.split()) > 10


def test_cached_content_tokens_are_billed_at_the_cached_rate(fresh_sim, guard):
    fresh_sim.reset_cache()
    config = types.GenerateContentConfig(max_output_tokens=60, system_instruction=CONTRACT)
    for _ in range(2):  # sampled (no temperature): the guard's response cache stays out of it
        _generate(fresh_sim, "sync", config, "Summarise the contract.")
    first, second = rows(guard)
    # 1st: 1,926 input, 29 output: 1926*0.30 + 29*2.50 = 577.8 + 72.5 = 650.3 -> $0.0006503
    assert (first["input_tokens"], first["cached_input_tokens"], first["output_tokens"]) == (1926, 0, 29)
    assert _usd(first["cost_usd"]) == 0.0006503
    # 2nd: 1,920 cached: 6*0.30 + 1920*0.03 + 29*2.50 = 1.8 + 57.6 + 72.5 = 131.9 -> $0.0001319
    assert (second["input_tokens"], second["cached_input_tokens"], second["output_tokens"]) == (1926, 1920, 29)
    assert _usd(second["cost_usd"]) == 0.0001319
    assert fresh_sim.stats["models"][FLASH]["cost_decimal"] == "0.0007822"  # 650.3 + 131.9


def test_an_rpm_limit_refuses_the_call_over_it_in_google_genais_own_error(fresh_sim, home):
    guard = llmguard.install(home=str(home), limits={FLASH: {"rpm": 1}}, max_wait_s=0, cache="off")
    _generate(fresh_sim, "sync", THINKING)
    with pytest.raises(errors.ClientError) as caught:
        _generate(fresh_sim, "sync", THINKING)
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.message.startswith(f"llmguard: {FLASH} is at its rate limit")
    assert [(r["status"], r["error_type"]) for r in rows(guard)] == [("ok", None), ("refused", "rate_limit")]
    assert fresh_sim.stats["requests"] == 1


def test_a_budget_refusal_raises_google_genais_error_with_the_llmguard_message(fresh_sim, home):
    # worst case: 9 prompt + 400 output tokens = 2.7 + 1000 micro-dollars, over a $0.0005 budget
    guard = llmguard.install(home=str(home), budget_usd=0.0005)
    with pytest.raises(errors.ClientError) as caught:
        _generate(fresh_sim, "sync", THINKING)
    assert caught.value.code == 429
    assert caught.value.message.startswith("llmguard: session budget would be exceeded")
    [row] = rows(guard)
    assert (row["status"], row["error_type"], row["cost_usd"]) == ("refused", "budget", 0)
    assert fresh_sim.stats["requests"] == 0


@pytest.mark.parametrize("mode", ["sync", "stream"])
def test_a_temperature_0_call_is_answered_from_the_cache_the_second_time(fresh_sim, guard, mode):
    config = types.GenerateContentConfig(temperature=0, max_output_tokens=80)
    first = _generate(fresh_sim, mode, config)
    guard.cache_layer.flush()
    before = fresh_sim.stats["requests"]
    second = _generate(fresh_sim, mode, config)
    assert fresh_sim.stats["requests"] - before == 0
    assert second == first
    sent, served = rows(guard)
    assert (sent["decision"], sent["cache_hit"]) == ("process", 0)
    assert (served["decision"], served["cache_hit"], served["cost_usd"]) == ("cache", 1, 0)
    assert served["saved_usd"] == sent["cost_usd"]


def test_a_429_with_retry_info_is_waited_out_exactly_as_asked(fresh_sim, home):
    # its own backoff would be 2-4 s (base 4 s, equal jitter): only RetryInfo gives exactly 2 s
    guard = llmguard.install(home=str(home), backoff_base_s=4.0, backoff_max_s=8.0)
    fresh_sim.configure(faults=["429"], fault_retry_after_s=2)
    try:
        _generate(fresh_sim, "sync", THINKING)
    finally:
        fresh_sim.configure(fault_retry_after_s=None)
    [row] = rows(guard)
    assert (row["status"], row["retry_count"], row["retry_delay_ms"]) == ("ok", 1, 2000.0)
    assert fresh_sim.stats["statuses"] == {"429": 1, "200": 1}


def test_a_stream_cut_midway_is_recorded_as_incomplete(fresh_sim, guard):
    fresh_sim.configure(faults=["cut"])
    with pytest.raises(httpx2.RemoteProtocolError):
        _generate(fresh_sim, "stream", THINKING)
    [row] = rows(guard)
    assert row["status"] == "incomplete" and row["stream"] == 1
    assert "before its final event" in row["error_message"]
    # what the chunks said before the cut: the prompt and the thinking, nothing of the answer's end
    assert (row["input_tokens"], row["reasoning_tokens"], row["tokens_approximate"]) == (9, 128, 1)
    assert fresh_sim.stats["faults"] == {"cut": 1} and fresh_sim.stats["models"] == {}


def test_the_api_key_never_reaches_a_file(fresh_sim, guard, home):
    fresh_sim.configure(faults=["echo_key", "429"])
    with pytest.raises(errors.ClientError) as caught:
        _generate(fresh_sim, "sync", THINKING)
    assert "API key not valid" in caught.value.message and GEMINI_KEY not in str(caught.value)
    _generate(fresh_sim, "stream", types.GenerateContentConfig(temperature=0, max_output_tokens=20))
    # the other way to send the key, `?key=`, from a plain client, on a cached call and a failing one
    url = f"{fresh_sim.base_url}/v1beta/models/{FLASH}:generateContent?key={QUERY_KEY}"
    body = {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"temperature": 0}}
    assert httpx2.post(url, json=body, timeout=30).status_code == 200
    fresh_sim.configure(faults=["echo_key"])
    failed = httpx2.post(url, json=body | {"generationConfig": {"temperature": 0.5}}, timeout=30)
    assert failed.status_code == 400 and "API key not valid" in failed.text and QUERY_KEY not in failed.text
    guard.cache_layer.flush()
    llmguard.uninstall()
    assert len(rows(home)) == 4
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any("cache" in str(p) for p in files)
    for path in files:
        data = path.read_bytes()
        for key in (GEMINI_KEY, QUERY_KEY):
            assert key.encode() not in data, path
            assert key[-12:].encode() not in data, path


def test_the_key_in_the_query_is_no_part_of_the_cache_key(fresh_sim, guard):
    body = {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"temperature": 0}}
    target = f"{fresh_sim.base_url}/v1beta/models/{FLASH}:streamGenerateContent?alt=sse&key="
    first = httpx2.post(target + "first-key-0123", json=body, timeout=30)
    guard.cache_layer.flush()
    second = httpx2.post(target + "second-key-4567", json=body, timeout=30)
    assert second.content == first.content and second.headers["llmguard-cache"] == "hit"
    assert fresh_sim.stats["requests"] == 1
    # `alt=sse` still keys it: the JSON answer to the same body is another answer
    plain = httpx2.post(f"{fresh_sim.base_url}/v1beta/models/{FLASH}:generateContent?key=k", json=body, timeout=30)
    assert plain.headers["content-type"] == "application/json" and fresh_sim.stats["requests"] == 2


def test_a_gemini_fallback_and_a_route_name_the_model_in_the_path(fresh_sim, home):
    """Gemini names the model in the URL: a fallback or route that set a body "model" sent the
    first model again (with a field the API rejects); now the path asks for the other model."""
    guard = llmguard.install(
        home=str(home),
        max_attempts=1,
        fallbacks={FLASH: ["gemini-2.0-flash"]},
        routes=[{"when": {"feature": "cheap"}, "model": "gemini-2.5-flash-lite"}],
    )
    fresh_sim.configure(faults=["500"])
    config = types.GenerateContentConfig(max_output_tokens=20)
    _generate(fresh_sim, "sync", config)
    with llmguard.tag(feature="cheap"):
        _generate(fresh_sim, "sync", config)
    fell_back, routed = rows(guard)
    assert (fell_back["model"], fell_back["fallback_used"], fell_back["status"]) == ("gemini-2.0-flash", 1, "ok")
    assert (routed["model"], routed["fallback_used"], routed["status"]) == ("gemini-2.5-flash-lite", 0, "ok")
    books = fresh_sim.stats["models"]
    assert books["gemini-2.0-flash"]["requests"] == 1 and books["gemini-2.5-flash-lite"]["requests"] == 1
    for row in (fell_back, routed):
        assert repr(row["cost_usd"]) == repr(float(books[row["model"]]["cost_decimal"]))
