"""Provider adapters are pure functions: tested on recorded bytes."""

from __future__ import annotations

import json

import pytest

from llmguard.intercept.sse import SSESplitter, event_fields
from llmguard.providers import anthropic, openai
from llmguard.providers.base import ProviderParseError, StreamState

OPENAI_CHAT = json.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 50,
        "temperature": 0,
        "seed": 3,
    }
).encode()

OPENAI_RESPONSE = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hey"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 40,
            "total_tokens": 1240,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 12, "audio_tokens": 0},
        },
    }
).encode()

OPENAI_STREAM = (
    b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":null}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hel"}}],"usage":null}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}\n\n'
    b"data: [DONE]\n\n"
)

ANTHROPIC_STREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"claude-3-5-haiku-latest","usage":{"input_tokens":20,"cache_read_input_tokens":100,"cache_creation_input_tokens":5,"output_tokens":1}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def test_openai_request_fields():
    call = openai.parse_request("/v1/chat/completions", OPENAI_CHAT)
    assert (call.provider, call.endpoint, call.model) == ("openai", "chat.completions", "gpt-4o-mini")
    assert (call.max_tokens, call.max_tokens_field, call.temperature, call.seed) == (
        50,
        "max_completion_tokens",
        0.0,
        3,
    )
    assert openai.parse_request("/v1/models", b"") is None


@pytest.mark.parametrize("body", [b"not json", b"[1,2]", b'{"messages": []}'])
def test_openai_bad_request_bodies_raise_a_clear_error(body):
    with pytest.raises(ProviderParseError):
        openai.parse_request("/v1/chat/completions", body)


def test_openai_response_usage_counts_cached_and_reasoning():
    usage, model = openai.parse_response(OPENAI_RESPONSE)
    assert model == "gpt-4o-mini-2024-07-18"
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.reasoning_tokens) == (
        1200,
        1024,
        40,
        12,
    )
    assert openai.parse_response(b'{"id": 1}') == (None, None)
    assert openai.parse_response(b"<html>") == (None, None)


def test_openai_stream_usage_chunk_is_found_and_marked_for_dropping():
    state = StreamState()
    splitter = SSESplitter()
    drops = []
    # feed in awkward pieces: events split across chunks
    for i in range(0, len(OPENAI_STREAM), 7):
        for raw in splitter.feed(OPENAI_STREAM[i : i + 7]):
            drops.append(openai.observe_event(state, *event_fields(raw)))
    assert drops == [False, False, False, True, False]
    assert state.complete and state.saw_usage
    assert (state.usage.input_tokens, state.usage.output_tokens) == (9, 1)
    assert state.content_events == 1


def test_usage_injection_only_when_missing():
    call = openai.parse_request(
        "/v1/chat/completions", json.dumps({"model": "m", "messages": [], "stream": True}).encode()
    )
    assert openai.wants_usage_injection(call)
    injected = json.loads(openai.inject_usage_option(call.body))
    assert injected["stream_options"] == {"include_usage": True}
    asked = openai.parse_request(
        "/v1/chat/completions",
        json.dumps({"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}).encode(),
    )
    assert not openai.wants_usage_injection(asked)


def test_anthropic_usage_folds_cache_reads_and_writes_into_input():
    state = StreamState()
    for raw in SSESplitter().feed(ANTHROPIC_STREAM):
        assert anthropic.observe_event(state, *event_fields(raw)) is False
    assert state.complete and state.model == "claude-3-5-haiku-latest"
    usage = state.usage
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_tokens, usage.output_tokens) == (
        125,
        100,
        5,
        7,
    )
    assert state.content_events == 1


def test_anthropic_request_and_errors():
    call = anthropic.parse_request(
        "/v1/messages", b'{"model":"claude-3-5-haiku-latest","max_tokens":9,"messages":[],"system":"be brief"}'
    )
    assert (call.endpoint, call.max_tokens) == ("messages", 9)
    assert anthropic.prompt_messages(call) == ([], "be brief")
    assert anthropic.parse_request("/v1/messages/count_tokens", b"{}") is None
    body = anthropic.error_body("llmguard: budget", "rate_limit_error", "x")
    assert anthropic.error_message(body) == "llmguard: budget"
    assert openai.error_message(openai.error_body("llmguard: no", "t", "c")) == "llmguard: no"


def test_sse_splitter_keeps_only_the_unfinished_tail():
    splitter = SSESplitter()
    assert splitter.feed(b"data: 1\n\ndata: 2") == [b"data: 1\n\n"]
    assert splitter.pending == b"data: 2"
    assert splitter.feed(b"\r\n\r\n") == [b"data: 2\r\n\r\n"]
    assert event_fields(b"event: x\ndata: a\ndata: b\n\n") == ("x", "a\nb")
