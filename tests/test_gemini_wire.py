"""The Gemini adapter on recorded bytes, recognition by path (any client), and requests no adapter
recognises passing through untouched."""

from __future__ import annotations

import asyncio
import json

import httpx
import httpx2
import pytest

import llmguard
from llmguard import redact
from llmguard.intercept.sse import SSESplitter, event_fields
from llmguard.providers import adapter_for, anthropic, gemini, openai
from llmguard.providers.base import ProviderParseError, StreamState
from tests.conftest import rows

FLASH_PATH = "/v1beta/models/gemini-2.5-flash:generateContent"
REQUEST = json.dumps(
    {
        "contents": [{"parts": [{"text": "Say hi"}], "role": "user"}],
        "systemInstruction": {"parts": [{"text": "be brief"}], "role": "user"},
        "generationConfig": {"temperature": 0.0, "maxOutputTokens": 50, "thinkingConfig": {"thinking_budget": 128}},
    }
).encode()
ANSWER = json.dumps(
    {
        "candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {
            "promptTokenCount": 1200,
            "cachedContentTokenCount": 1024,
            "candidatesTokenCount": 40,
            "thoughtsTokenCount": 12,
            "toolUsePromptTokenCount": 5,
            "totalTokenCount": 1257,
        },
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "abc",
    }
).encode()
STREAM = (
    b'data: {"candidates":[{"content":{"parts":[{"text":"Hel"}],"role":"model"},"index":0}],'
    b'"usageMetadata":{"promptTokenCount":9,"totalTokenCount":137,"thoughtsTokenCount":128},"modelVersion":"gemini-2.5-flash"}\r\n\r\n'
    b'data: {"candidates":[{"content":{"parts":[{"text":"lo"}],"role":"model"},"finishReason":"STOP","index":0}],'
    b'"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":2,"totalTokenCount":139,"thoughtsTokenCount":128},'
    b'"modelVersion":"gemini-2.5-flash"}\r\n\r\n'
)
RATE_LIMITED = json.dumps(
    {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"},
            ],
        }
    }
).encode()


def test_a_request_names_its_model_in_the_path_and_its_bounds_in_generation_config():
    call = gemini.parse_request(FLASH_PATH, REQUEST)
    assert call is not None
    assert (call.provider, call.endpoint, call.model, call.stream) == (
        "google",
        "generate_content",
        "gemini-2.5-flash",
        False,
    )
    assert (call.max_tokens, call.temperature, call.n) == (50, 0.0, 1)
    streamed = gemini.parse_request("/v1/models/gemini-2.0-flash:streamGenerateContent?alt=sse", REQUEST)
    assert streamed is not None and streamed.stream and streamed.model == "gemini-2.0-flash"
    embedded = gemini.parse_request("/v1beta/models/gemini-embedding-001:batchEmbedContents", b'{"requests": []}')
    assert embedded is not None and embedded.endpoint == "embeddings"
    assert gemini.parse_request("/v1beta/models/gemini-2.5-flash:countTokens", REQUEST) is None  # free
    with pytest.raises(ProviderParseError):
        gemini.parse_request(FLASH_PATH, b"[1, 2")
    messages, system = gemini.prompt_messages(call)
    assert (messages, system) == ([{"content": "Say hi"}], "be brief")


def test_a_default_bound_goes_into_generation_config_beside_what_is_there():
    call = gemini.parse_request(FLASH_PATH, REQUEST)
    assert call is not None
    assert gemini.output_bound_changes(call, 300) == {
        "generationConfig": {"temperature": 0.0, "maxOutputTokens": 300, "thinkingConfig": {"thinking_budget": 128}}
    }
    bare = gemini.parse_request(FLASH_PATH, b'{"contents": []}')
    assert bare is not None and gemini.output_bound_changes(bare, 300) == {"generationConfig": {"maxOutputTokens": 300}}


def test_usage_counts_cached_and_tool_prompt_tokens_as_input_and_thoughts_as_output():
    usage, model = gemini.parse_response(ANSWER)
    assert model == "gemini-2.5-flash-001"
    assert usage is not None
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.reasoning_tokens) == (
        1205,
        1024,
        52,
        12,
    )


def test_a_stream_ends_at_its_finish_reason_with_the_last_chunks_usage():
    state = StreamState()
    splitter = SSESplitter()
    for raw in splitter.feed(STREAM[:150]) + splitter.feed(STREAM[150:]):
        name, data = event_fields(raw)
        assert gemini.observe_event(state, name, data) is False
    assert state.complete and state.saw_usage and state.model == "gemini-2.5-flash"
    assert (state.usage.input_tokens, state.usage.output_tokens, state.usage.reasoning_tokens) == (9, 130, 128)
    assert (state.events, state.content_events) == (2, 2)
    cut = StreamState()
    gemini.observe_event(cut, None, event_fields(STREAM.split(b"\r\n\r\n")[0])[1])
    assert not cut.complete and cut.usage.output_tokens == 128  # thinking, before any answer's end


def test_a_429_says_its_wait_in_retry_info_and_a_daily_quota_is_spent():
    assert gemini.retry_after_s(RATE_LIMITED) == 12.0
    assert gemini.retry_after_s(RATE_LIMITED.replace(b'"12s"', b'"0.25s"')) == 0.25
    assert gemini.retry_after_s(b'{"error": {"code": 429}}') is None
    assert not gemini.is_out_of_quota(RATE_LIMITED)
    assert gemini.is_out_of_quota(RATE_LIMITED.replace(b"PerMinute", b"PerDay"))
    assert gemini.error_message(RATE_LIMITED) == "You exceeded your current quota"
    assert gemini.error_message(b"[" + RATE_LIMITED + b"]") == "You exceeded your current quota"


def test_a_refusal_is_googles_error_shape():
    body = json.loads(gemini.error_body("llmguard: no", gemini.refusal_error_type("budget"), "llmguard_budget"))
    assert body["error"]["code"] == 429 and body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert body["error"]["message"] == "llmguard: no"


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_requests_are_recognised_by_wire_format_not_by_client(lib):
    def request(path: str, method: str = "POST", **headers: str):
        return lib.Request(method, "https://generativelanguage.googleapis.com" + path, headers=headers)

    assert adapter_for(request(FLASH_PATH)) is gemini
    assert adapter_for(request("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=k")) is gemini
    assert adapter_for(request("/gateway/v1alpha/models/gemini-2.5-pro:embedContent")) is gemini
    assert adapter_for(request("/v1/models/gemini-2.5-flash:countTokens")) is gemini
    assert adapter_for(request(FLASH_PATH, method="GET")) is None
    assert adapter_for(request("/v1beta/models/gemini-2.5-flash")) is None  # model metadata
    assert adapter_for(request("/v1beta/models/gemini-2.5-flash:generateContentX")) is None
    assert adapter_for(request("/api/models/x:y")) is None
    assert adapter_for(request("/v1/chat/completions")) is None  # no Stainless header: not item 2's to claim
    assert adapter_for(request("/v1/chat/completions", **{"x-stainless-lang": "python"})) is openai
    assert adapter_for(request("/v1/messages", **{"x-stainless-lang": "python", "anthropic-version": "1"})) is anthropic


def test_a_key_in_the_query_is_dropped_from_urls_and_scrubbed_from_text():
    assert (
        redact.without_secret_params("/m:streamGenerateContent?key=AIzaX&alt=sse") == "/m:streamGenerateContent?alt=sse"
    )
    assert redact.without_secret_params("/m:generateContent?key=AIzaX") == "/m:generateContent"
    request = httpx2.Request(
        "POST", "https://h/m:generateContent?key=s3cr3t%2Bkey", headers={"x-goog-api-key": "h3ad3r"}
    )
    assert set(redact.secrets_of(request)) == {"s3cr3t+key", "s3cr3t%2Bkey", "h3ad3r"}
    assert redact.scrub("bad key s3cr3t+key at https://h/p?alt=sse&key=other", redact.secrets_of(request)) == (
        "bad key [redacted] at https://h/p?alt=sse&key=[redacted]"
    )
    assert redact.scrub("AIzaSyA0123456789abcdefghijklmnopqrstuv leaked") == "[redacted] leaked"


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_request_no_adapter_recognises_passes_through_untouched(fresh_sim, home, lib, asynchronous):
    body = bytes(range(256)) * 4  # not JSON, not text: any rewrite would show
    url = f"{fresh_sim.base_url}/api/v2/upload?page=2"
    headers = {"content-type": "application/octet-stream", "x-trace": "t-1"}

    def post() -> tuple[int, bytes, list[tuple[str, str]]]:
        if asynchronous:

            async def run() -> tuple[int, bytes, list[tuple[str, str]]]:
                async with lib.AsyncClient() as client:
                    got = await client.post(url, content=body, headers=headers)
                    return got.status_code, got.content, list(got.headers.items())

            return asyncio.run(run())
        with lib.Client() as client:
            got = client.post(url, content=body, headers=headers)
            return got.status_code, got.content, list(got.headers.items())

    bare = post()
    guard = llmguard.install(home=str(home))
    guarded = post()
    assert guarded[0] == bare[0] == 404
    assert guarded[1] == bare[1]  # byte-identical body
    drop = ("x-request-id", "date")  # the simulator's per-response id and the clock
    assert [h for h in guarded[2] if h[0] not in drop] == [h for h in bare[2] if h[0] not in drop]
    guard.ledger.flush()
    assert rows(guard) == []
    assert guard.metrics.snapshot()["calls"] == 0
    assert fresh_sim.stats["requests"] == 2


def test_a_plain_httpx_post_to_gemini_is_metered_like_the_sdk(fresh_sim, guard):
    url = f"{fresh_sim.base_url}{FLASH_PATH}"
    answer = httpx.post(url, content=REQUEST, headers={"x-goog-api-key": "AIzaPlainClient0123456789"})
    assert answer.status_code == 200
    [row] = rows(guard)
    usage = answer.json()["usageMetadata"]
    assert (row["provider"], row["model"], row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (
        "google",
        "gemini-2.5-flash",
        usage["promptTokenCount"],
        usage["candidatesTokenCount"] + usage["thoughtsTokenCount"],
        usage["thoughtsTokenCount"],
    )
    assert row["cost_usd"] == fresh_sim.stats["cost_usd"] > 0
