"""The simulator speaks Gemini to the real google-genai SDK, with no guard installed: answers, streams,
thinking, token counts, embeddings, 429s with RetryInfo, and its own bill (genai-prices, google)."""

from __future__ import annotations

import json

import httpx2
import pytest
from google import genai
from google.genai import errors, types

FLASH = "gemini-2.5-flash"


@pytest.fixture
def client(fresh_sim):
    return genai.Client(api_key="AIzaSimOnly", http_options={"base_url": fresh_sim.base_url})


def _config(budget: int | None, max_out: int = 400) -> types.GenerateContentConfig:
    thinking = None if budget is None else types.ThinkingConfig(thinking_budget=budget)
    return types.GenerateContentConfig(max_output_tokens=max_out, thinking_config=thinking)


def test_an_answer_carries_usage_and_is_billed_with_thinking_as_output(fresh_sim, client):
    answer = client.models.generate_content(
        model=FLASH, contents="Summarise the contract in one line.", config=_config(128)
    )
    use = answer.usage_metadata
    assert (use.prompt_token_count, use.candidates_token_count, use.thoughts_token_count) == (9, 50, 128)
    assert use.total_token_count == 9 + 50 + 128
    assert answer.candidates[0].finish_reason == types.FinishReason.STOP
    assert answer.model_version == FLASH and len(answer.text.split()) > 10
    billed = fresh_sim.stats["models"][FLASH]
    # 9*0.30 + 178*2.50 = 447.7 micro-dollars
    assert (billed["provider"], billed["output_tokens"], billed["reasoning_tokens"]) == ("google", 178, 128)
    assert billed["cost_decimal"] == "0.0004477"


@pytest.mark.parametrize(
    ("model", "budget"), [(FLASH, None), (FLASH, 0), ("gemini-2.0-flash", 512)], ids=["unset", "zero", "not-2.5"]
)
def test_only_a_2_5_model_with_a_thinking_budget_thinks(client, model, budget):
    answer = client.models.generate_content(model=model, contents="Think about it.", config=_config(budget))
    assert answer.usage_metadata.thoughts_token_count is None


def test_thinking_stops_at_the_budget_and_shares_max_output_tokens(client):
    small = client.models.generate_content(model=FLASH, contents="Think hard.", config=_config(64, max_out=2000))
    assert small.usage_metadata.thoughts_token_count == 64
    capped = client.models.generate_content(model=FLASH, contents="Think hard.", config=_config(1024, max_out=30))
    use = capped.usage_metadata
    assert use.thoughts_token_count + (use.candidates_token_count or 0) <= 30
    assert capped.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


def test_a_stream_is_sse_with_the_json_answers_text_and_usage(fresh_sim, client):
    whole = client.models.generate_content(model=FLASH, contents="Stream it.", config=_config(128))
    chunks = list(client.models.generate_content_stream(model=FLASH, contents="Stream it.", config=_config(128)))
    assert "".join(c.text or "" for c in chunks) == whole.text
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    last = chunks[-1].usage_metadata
    assert (last.prompt_token_count, last.candidates_token_count, last.thoughts_token_count) == (
        whole.usage_metadata.prompt_token_count,
        whole.usage_metadata.candidates_token_count,
        whole.usage_metadata.thoughts_token_count,
    )
    raw = httpx2.post(
        f"{fresh_sim.base_url}/v1beta/models/{FLASH}:streamGenerateContent?alt=sse",
        json={"contents": [{"parts": [{"text": "Stream it."}]}]},
        timeout=30,
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = raw.content.split(b"\r\n\r\n")
    assert events[-1] == b"" and all(e.startswith(b"data: {") for e in events[:-1])
    array = httpx2.post(  # without alt=sse: one JSON array of the same chunks
        f"{fresh_sim.base_url}/v1beta/models/{FLASH}:streamGenerateContent",
        json={"contents": [{"parts": [{"text": "Stream it."}]}]},
        timeout=30,
    )
    assert [json.loads(e[6:]) for e in events[:-1]] == [
        {**c, "responseId": json.loads(e[6:])["responseId"]} for c, e in zip(array.json(), events[:-1], strict=True)
    ]
    assert fresh_sim.stats["models"][FLASH]["requests"] == 4


def test_count_tokens_agrees_with_the_answers_prompt_count_and_is_free(fresh_sim, client):
    counted = client.models.count_tokens(model=FLASH, contents="How many tokens is this?")
    answer = client.models.generate_content(model=FLASH, contents="How many tokens is this?")
    assert counted.total_tokens == answer.usage_metadata.prompt_token_count == 6
    assert fresh_sim.stats["models"][FLASH]["requests"] == 1


def test_embeddings_are_deterministic_and_billed_as_input(fresh_sim, client):
    first = client.models.embed_content(model="gemini-embedding-001", contents=["alpha beta", "gamma"])
    again = client.models.embed_content(model="gemini-embedding-001", contents=["alpha beta"])
    assert len(first.embeddings) == 2 and len(first.embeddings[0].values) == 3072
    assert again.embeddings[0].values == first.embeddings[0].values
    billed = fresh_sim.stats["models"]["gemini-embedding-001"]
    # 3 + 2 tokens at $0.15 per million: 0.75 micro-dollars
    assert (billed["requests"], billed["input_tokens"], billed["cost_decimal"]) == (2, 5, "7.5E-7")


def test_a_rate_limit_is_a_resource_exhausted_429_with_retry_info_and_no_header(fresh_sim, client):
    fresh_sim.configure(limits={FLASH: {"rpm": 1}})
    client.models.generate_content(model=FLASH, contents="one")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=FLASH, contents="two")
    assert (caught.value.code, caught.value.status) == (429, "RESOURCE_EXHAUSTED")
    details = {d["@type"].rsplit(".", 1)[-1]: d for d in caught.value.details["error"]["details"]}
    assert (
        details["RetryInfo"]["retryDelay"].endswith("s") and 50 <= float(details["RetryInfo"]["retryDelay"][:-1]) <= 60
    )
    assert "PerMinute" in details["QuotaFailure"]["violations"][0]["quotaId"]
    assert "retry-after" not in caught.value.response.headers
    assert fresh_sim.stats["rate_limited"] == 1


def test_a_fault_429_asks_for_the_configured_wait(fresh_sim):
    url = f"{fresh_sim.base_url}/v1beta/models/{FLASH}:generateContent"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    fresh_sim.configure(faults=["429", "429", "quota"])
    assert '"retryDelay":"0.05s"' in httpx2.post(url, json=body, timeout=30).text
    fresh_sim.configure(fault_retry_after_s=2)
    try:
        assert '"retryDelay":"2s"' in httpx2.post(url, json=body, timeout=30).text
    finally:
        fresh_sim.configure(fault_retry_after_s=None)
    daily = httpx2.post(url, json=body, timeout=30)
    assert daily.status_code == 429 and "PerDay" in daily.text and "retryDelay" not in daily.text
    assert fresh_sim.stats["faults"] == {"429": 2, "quota": 1} and fresh_sim.stats["models"] == {}


def test_bad_requests_and_unknown_methods_answer_in_googles_shape(fresh_sim, client):
    url = f"{fresh_sim.base_url}/v1beta/models/{FLASH}:generateContent"
    with pytest.raises(errors.ClientError) as caught:  # the SDK refuses empty contents: send a bad part
        client.models.generate_content(model=FLASH, contents=types.Content(role="user", parts=[]))
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    empty = httpx2.post(url, json={"contents": []}, timeout=30)
    assert empty.status_code == 400 and "contents is not specified" in empty.json()["error"]["message"]
    missing = httpx2.post(f"{fresh_sim.base_url}/v1beta/models/{FLASH}:predictLongRunning", json={}, timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
