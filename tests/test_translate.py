"""OpenAI chat ⇄ Anthropic Messages translation (`llmguard.providers.translate`), checked end to end:
each translated request is POSTed raw (httpx2) to the simulated provider, the real answer is
translated back, and the result is parsed by the caller's own SDK models (`openai.types.chat.
ChatCompletion` / `ChatCompletionChunk` and the openai stream accumulator; `anthropic.types.Message`,
the raw stream events and the anthropic stream accumulator)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx2
import jsonschema
import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.shared import ErrorObject

from llmguard.providers.translate import (
    DEFAULT_MAX_TOKENS,
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
    Translated,
    TranslationError,
    anthropic_error_to_openai,
    anthropic_message_to_openai_chat_completion,
    anthropic_to_openai_chat,
    openai_chat_completion_to_anthropic_message,
    openai_chat_to_anthropic,
    openai_error_to_anthropic,
)
from llmguard.sim import SimProvider
from llmguard.sim.text import completion_pieces

HAIKU = "claude-3-5-haiku-latest"  # minimum cacheable prefix: 2048 tokens
SONNET = "claude-sonnet-4-5"
GPT = "gpt-4o-mini"
QUESTION = "Say something."
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
OPENAI_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": WEATHER_SCHEMA,
    },
}
ANTHROPIC_WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": WEATHER_SCHEMA,
}
EVENTS = pydantic.TypeAdapter(RawMessageStreamEvent)


@pytest.fixture(scope="module")
def sim():
    with SimProvider() as provider:
        yield provider


@pytest.fixture
def http(sim):
    sim.configure(faults=None)
    sim.reset_cache()
    with httpx2.Client(base_url=sim.base_url, timeout=30) as client:
        yield client


def words(tokens: int, salt: str = "system") -> str:
    """Text of exactly `tokens` cl100k tokens (the simulator's one-token pieces)."""
    return "".join(completion_pieces(hashlib.blake2b(salt.encode(), digest_size=16).digest(), tokens))


# -- helpers: one call each way -------------------------------------------------------------------------


def post_messages(http: httpx2.Client, body: dict[str, Any]) -> httpx2.Response:
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    return http.post("/v1/messages", json=body, headers=headers)


def post_chat(http: httpx2.Client, body: dict[str, Any]) -> httpx2.Response:
    return http.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-test"})


def via_claude(http: httpx2.Client, body: dict[str, Any], model: str = HAIKU) -> tuple[dict, ChatCompletion]:
    """(Anthropic's raw answer, the translated answer parsed by the openai SDK)."""
    translated = openai_chat_to_anthropic(body, model)
    response = post_messages(http, translated.body)
    assert response.status_code == 200, response.text
    raw = response.json()
    result = anthropic_message_to_openai_chat_completion(raw, body["model"], translated.json_tool)
    return raw, ChatCompletion.model_validate(result)


def via_gpt(http: httpx2.Client, body: dict[str, Any], model: str = GPT) -> tuple[dict, Message]:
    translated = anthropic_to_openai_chat(body, model)
    response = post_chat(http, translated.body)
    assert response.status_code == 200, response.text
    raw = response.json()
    return raw, Message.model_validate(openai_chat_completion_to_anthropic_message(raw, body["model"]))


def sse_payloads(lines: list[bytes]) -> list[str]:
    """The `data:` payloads of OpenAI SSE lines (each line one whole event)."""
    out = []
    for line in lines:
        assert line.startswith(b"data: ") and line.endswith(b"\n\n"), line
        out.append(line[6:-2].decode())
    return out


def stream_via_claude(
    http: httpx2.Client, body: dict[str, Any], model: str = HAIKU
) -> tuple[list[ChatCompletionChunk], list[str], AnthropicToOpenAIStream]:
    """Every OpenAI chunk of a translated Anthropic stream, parsed; and the raw payloads."""
    translated = openai_chat_to_anthropic(body, model)
    options = body.get("stream_options") or {}
    stream = AnthropicToOpenAIStream(body["model"], options.get("include_usage") is True, translated.json_tool)
    lines: list[bytes] = []
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    with http.stream("POST", "/v1/messages", json=translated.body, headers=headers) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            lines += stream.feed_raw(chunk)
    payloads = sse_payloads(lines)
    chunks = [ChatCompletionChunk.model_validate(json.loads(p)) for p in payloads if p != "[DONE]"]
    return chunks, payloads, stream


def stream_via_gpt(http: httpx2.Client, body: dict[str, Any], model: str = GPT) -> tuple[list[Any], Message]:
    """Every Anthropic event of a translated OpenAI stream, parsed, and the SDK's accumulated message."""
    translated = anthropic_to_openai_chat(body, model)
    stream = OpenAIToAnthropicStream(body["model"])
    out: list[bytes] = []
    with http.stream("POST", "/v1/chat/completions", json=translated.body) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            out += stream.feed_raw(chunk)
    events = []
    for raw in out:
        head, data = raw.decode().split("\n", 1)
        assert raw.endswith(b"\n\n") and data.startswith("data: ")
        payload = json.loads(data[6:])
        assert head == f"event: {payload['type']}"
        events.append(EVENTS.validate_python(payload))
    snapshot = None
    bufs: dict[int, bytes] = {}
    for event in events:
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=bufs)
    assert snapshot is not None
    return events, Message.model_validate(snapshot.model_dump())


def accumulate(chunks: list[ChatCompletionChunk], tools: Any = None) -> Any:
    state = ChatCompletionStreamState(input_tools=tools) if tools else ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(chunk)
    return state.get_final_completion()


# -- OpenAI chat → Anthropic: requests --------------------------------------------------------------------


def test_text_request_translates_field_by_field_and_drops_the_rest():
    body = {
        "model": GPT,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
        "max_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": "END",
        "seed": 7,
        "presence_penalty": 0.5,
        "logprobs": False,
        "user": "alice",
        "stream_options": None,
    }
    out = openai_chat_to_anthropic(body, HAIKU)
    assert out == Translated(
        {
            "model": HAIKU,
            "max_tokens": 50,
            "messages": [{"role": "user", "content": QUESTION}],
            "system": "Be brief.",
            "temperature": 0.2,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "metadata": {"user_id": "alice"},
        },
        ["seed", "presence_penalty"],
        [],
        None,
    )


def test_multi_turn_merges_system_prompts_and_consecutive_turns():
    body = {
        "model": GPT,
        "max_completion_tokens": 80,
        "max_tokens": 10,
        "temperature": 1.5,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi", "name": "alice"},
            {"role": "assistant", "content": "Hello."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "user", "content": [{"type": "text", "text": "Just the number."}]},
        ],
    }
    out = openai_chat_to_anthropic(body, HAIKU)
    assert out.body == {
        "model": HAIKU,
        "max_tokens": 80,
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is 2+2?"},
                    {"type": "text", "text": "Just the number."},
                ],
            },
        ],
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in English."}],
        "temperature": 1.0,
    }
    assert out.dropped == ["messages[1].name", "max_tokens"]
    assert out.notes == [
        "message names were dropped: Anthropic messages carry no participant names",
        "messages[3]: a developer message inside the conversation was moved into Anthropic's system prompt",
        "max_tokens was dropped: max_completion_tokens takes precedence",
        "temperature 1.5 was clamped to 1.0, Anthropic's maximum",
    ]


def test_no_max_tokens_sends_the_documented_default_or_the_given_one():
    body = {"model": GPT, "messages": [{"role": "user", "content": QUESTION}]}
    assert openai_chat_to_anthropic(body, HAIKU).body["max_tokens"] == DEFAULT_MAX_TOKENS == 4096
    out = openai_chat_to_anthropic(body, HAIKU, default_max_tokens=300)
    assert out.body["max_tokens"] == 300
    assert out.notes == ["no max_tokens was given; Anthropic requires one, so 300 was sent"]


def test_images_and_cache_control_parts():
    body = {
        "model": GPT,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?", "cache_control": {"type": "ephemeral"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ],
        "max_tokens": 20,
    }
    out = openai_chat_to_anthropic(body, HAIKU)
    assert out.body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?", "cache_control": {"type": "ephemeral"}},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        }
    ]
    assert out.dropped == ["messages[0].content[1].image_url.detail"]


def test_tools_tool_choice_and_tool_turns_translate():
    body = {
        "model": GPT,
        "max_tokens": 100,
        "tools": [OPENAI_WEATHER, {"type": "function", "function": {"name": "now", "strict": True}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'},
                    },
                    {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
            {"role": "user", "content": "Thanks. And Rome?"},
        ],
    }
    out = openai_chat_to_anthropic(body, HAIKU)
    assert out.body["tools"] == [
        ANTHROPIC_WEATHER,
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert out.body["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
        "disable_parallel_tool_use": True,
    }
    assert out.body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris", "unit": "celsius"},
                },
                {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18 C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "noon"},
                {"type": "text", "text": "Thanks. And Rome?"},
            ],
        },
    ]
    assert out.dropped == ["tools[1].function.strict"]
    for choice, expected in (
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
    ):
        translated = openai_chat_to_anthropic({**body, "tool_choice": choice, "parallel_tool_calls": None}, HAIKU)
        assert translated.body["tool_choice"] == expected


def test_tool_results_go_ahead_of_text_in_a_merged_user_turn():
    body = {
        "model": GPT,
        "messages": [
            {"role": "user", "content": "Go."},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "user", "content": "Here you are:"},
            {"role": "tool", "tool_call_id": "c", "content": "done"},
        ],
    }
    user = openai_chat_to_anthropic(body, HAIKU).body["messages"][-1]
    assert user["content"] == [
        {"type": "tool_result", "tool_use_id": "c", "content": "done"},
        {"type": "text", "text": "Here you are:"},
    ]


def test_final_assistant_message_is_a_prefill_without_trailing_whitespace():
    body = {
        "model": GPT,
        "messages": [{"role": "user", "content": "Count."}, {"role": "assistant", "content": "One, two, "}],
    }
    out = openai_chat_to_anthropic(body, HAIKU)
    assert out.body["messages"][-1] == {"role": "assistant", "content": "One, two,"}
    assert any("prefill" in note for note in out.notes)


# -- OpenAI chat → Anthropic: answers from the simulator -----------------------------------------------------


def test_text_answer_parses_as_a_chat_completion(http):
    body = {
        "model": GPT,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
        "max_tokens": 400,
    }
    raw, completion = via_claude(http, body)
    assert raw["stop_reason"] == "end_turn"
    assert completion.id == raw["id"]
    assert completion.model == HAIKU  # the model that answered
    choice = completion.choices[0]
    assert choice.message.content == raw["content"][0]["text"] and choice.message.content
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls is None
    use = raw["usage"]
    assert completion.usage.prompt_tokens == use["input_tokens"] == 16  # 3+3+3 system/user/priming + text
    assert completion.usage.completion_tokens == use["output_tokens"]
    assert completion.usage.total_tokens == 16 + use["output_tokens"]
    assert completion.usage.prompt_tokens_details.cached_tokens == 0


def test_multi_turn_answer(http):
    body = {
        "model": GPT,
        "max_tokens": 400,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": QUESTION},
        ],
    }
    raw, completion = via_claude(http, body)
    assert completion.choices[0].message.content == raw["content"][0]["text"]
    assert completion.usage.prompt_tokens == raw["usage"]["input_tokens"]


def test_max_tokens_stop_is_finish_reason_length(http):
    body = {"model": GPT, "messages": [{"role": "user", "content": QUESTION}], "max_completion_tokens": 5}
    raw, completion = via_claude(http, body)
    assert raw["stop_reason"] == "max_tokens"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 5


def test_tool_call_then_tool_result_turn(http):
    first = {
        "model": GPT,
        "max_tokens": 400,
        "tools": [OPENAI_WEATHER],
        "tool_choice": "required",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
    }
    raw, completion = via_claude(http, first)
    assert raw["stop_reason"] == "tool_use"
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    [block] = raw["content"]
    assert (call.id, call.type, call.function.name) == (block["id"], "function", "get_weather")
    assert json.loads(call.function.arguments) == block["input"]
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_SCHEMA)

    second = {
        **first,
        "tool_choice": "auto",
        "messages": [
            *first["messages"],
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18 C, sunny"},
        ],
    }
    translated = openai_chat_to_anthropic(second, HAIKU)
    assert translated.body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": call.id, "name": "get_weather", "input": block["input"]}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C, sunny"}],
        },
    ]
    raw, completion = via_claude(http, second)
    assert raw["stop_reason"] == "end_turn"  # the simulator answers a tool result in text under auto
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == raw["content"][0]["text"]


def test_anthropic_cache_tokens_map_to_prompt_and_cached_tokens(http):
    system = [{"type": "text", "text": words(2997), "cache_control": {"type": "ephemeral"}}]
    body = {
        "model": GPT,
        "max_tokens": 5,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": QUESTION}],
    }
    assert openai_chat_to_anthropic(body, HAIKU).body["system"] == system
    raw, first = via_claude(http, body)
    assert (raw["usage"]["input_tokens"], raw["usage"]["cache_creation_input_tokens"]) == (10, 3000)
    assert first.usage.prompt_tokens == 3010
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert first.usage.prompt_tokens_details.cache_write_tokens == 3000
    raw, second = via_claude(http, body)
    assert (raw["usage"]["input_tokens"], raw["usage"]["cache_read_input_tokens"]) == (10, 3000)
    assert second.usage.prompt_tokens == 3010
    assert second.usage.prompt_tokens_details.cached_tokens == 3000
    assert second.usage.prompt_tokens_details.cache_write_tokens == 0
    assert second.usage.total_tokens == 3010 + second.usage.completion_tokens


def test_message_level_cache_control_lands_on_the_last_block(http):
    body = {
        "model": GPT,
        "max_tokens": 5,
        "messages": [
            {"role": "system", "content": words(2997), "cache_control": {"type": "ephemeral"}},
            {"role": "user", "content": QUESTION},
        ],
    }
    assert openai_chat_to_anthropic(body, HAIKU).body["system"][0]["cache_control"] == {"type": "ephemeral"}
    via_claude(http, body)
    _, second = via_claude(http, body)
    assert second.usage.prompt_tokens_details.cached_tokens == 3000


def test_thinking_blocks_are_left_out_and_counted_as_reasoning(http):
    body = {
        "model": SONNET,
        "max_tokens": 4000,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": QUESTION}],
    }
    raw = post_messages(http, body).json()
    thinking, text = raw["content"]
    assert thinking["type"] == "thinking"
    completion = ChatCompletion.model_validate(anthropic_message_to_openai_chat_completion(raw, GPT))
    assert completion.choices[0].message.content == text["text"]
    details = completion.usage.completion_tokens_details
    assert details.reasoning_tokens == raw["usage"]["output_tokens_details"]["thinking_tokens"] > 0


def test_json_schema_is_a_forced_tool_whose_input_is_the_content(http):
    schema = {**WEATHER_SCHEMA, "properties": {**WEATHER_SCHEMA["properties"], "days": {"type": "integer"}}}
    body = {
        "model": GPT,
        "max_tokens": 400,
        "messages": [{"role": "user", "content": "Weather report for Oslo."}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "report", "schema": schema, "strict": True},
        },
    }
    translated = openai_chat_to_anthropic(body, HAIKU)
    assert translated.json_tool == "report"
    assert translated.body["tools"] == [
        {"name": "report", "description": "Give the answer in this shape.", "input_schema": schema}
    ]
    assert translated.body["tool_choice"] == {"type": "tool", "name": "report"}
    assert translated.dropped == ["response_format.json_schema.strict"]
    raw, completion = via_claude(http, body)
    assert raw["stop_reason"] == "tool_use"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert json.loads(choice.message.content) == raw["content"][0]["input"]
    jsonschema.validate(json.loads(choice.message.content), schema)

    chunks, _, _ = stream_via_claude(http, {**body, "stream": True})
    final = accumulate(chunks)
    assert final.choices[0].message.content == choice.message.content
    assert final.choices[0].finish_reason == "stop"


def test_json_object_answers_a_json_object(http):
    body = {
        "model": GPT,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Answer in JSON."}],
        "response_format": {"type": "json_object"},
    }
    translated = openai_chat_to_anthropic(body, HAIKU)
    assert translated.json_tool == "json_answer"
    _, completion = via_claude(http, body)
    assert isinstance(json.loads(completion.choices[0].message.content), dict)


# -- OpenAI chat → Anthropic: streams ------------------------------------------------------------------------


def test_stream_text_equals_the_json_answer_and_ends_with_usage_and_done(http):
    body = {
        "model": GPT,
        "max_tokens": 400,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    translated = openai_chat_to_anthropic(body, HAIKU)
    assert translated.body["stream"] is True and "stream_options" not in translated.body
    assert translated.dropped == []
    chunks, payloads, stream = stream_via_claude(http, body)
    _, plain = via_claude(http, {k: v for k, v in body.items() if k not in ("stream", "stream_options")})
    text = plain.choices[0].message.content
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert payloads[-1] == "[DONE]"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage == plain.usage
    assert all(c.usage is None for c in chunks[:-1])
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].model == HAIKU
    final = accumulate(chunks)
    assert final.choices[0].message.content == text and final.usage == plain.usage
    assert stream.done


def test_stream_without_include_usage_has_no_usage_chunk(http):
    body = {
        "model": GPT,
        "max_tokens": 400,
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": True,
    }
    chunks, payloads, stream = stream_via_claude(http, body)
    assert payloads[-1] == "[DONE]"
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)
    assert stream.usage is not None and stream.usage["completion_tokens"] > 0  # the guard may still meter it


def test_stream_tool_call_arguments_equal_the_json_answer(http):
    body = {
        "model": GPT,
        "max_tokens": 400,
        "tools": [OPENAI_WEATHER],
        "tool_choice": "required",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
    }
    raw, plain = via_claude(http, body)
    chunks, _, _ = stream_via_claude(http, {**body, "stream": True, "stream_options": {"include_usage": True}})
    opening = chunks[1].choices[0].delta.tool_calls[0]
    assert (opening.index, opening.type, opening.function.name, opening.function.arguments) == (
        0,
        "function",
        "get_weather",
        "",
    )
    final = accumulate(chunks, [OPENAI_WEATHER])
    [call] = final.choices[0].message.tool_calls
    assert json.loads(call.function.arguments) == raw["content"][0]["input"]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage == plain.usage


def test_stream_cut_by_max_tokens_finishes_with_length(http):
    body = {"model": GPT, "max_tokens": 3, "messages": [{"role": "user", "content": QUESTION}]}
    raw, _ = via_claude(http, body)
    chunks, _, _ = stream_via_claude(http, {**body, "stream": True})
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, None, None, "length"]
    assert "".join(c.choices[0].delta.content for c in chunks[:-1]) == raw["content"][0]["text"]


def test_stream_cut_by_the_provider_sends_no_done(http, sim):
    sim.configure(faults=["cut"])
    body = {
        "model": GPT,
        "max_tokens": 400,
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": True,
    }
    translated = openai_chat_to_anthropic(body, HAIKU)
    stream = AnthropicToOpenAIStream(GPT)
    lines: list[bytes] = []
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    with pytest.raises(httpx2.RemoteProtocolError):
        with http.stream("POST", "/v1/messages", json=translated.body, headers=headers) as response:
            for chunk in response.iter_bytes():
                lines += stream.feed_raw(chunk)
    assert not stream.done
    assert b"data: [DONE]\n\n" not in lines
    for payload in sse_payloads(lines):
        ChatCompletionChunk.model_validate(json.loads(payload))


def test_stream_error_event_becomes_an_openai_error_payload():
    stream = AnthropicToOpenAIStream(GPT)
    start = {
        "type": "message_start",
        "message": {"id": "msg_1", "model": HAIKU, "usage": {"input_tokens": 3}},
    }
    assert len(stream.feed("message_start", json.dumps(start))) == 1
    assert stream.feed("ping", '{"type":"ping"}') == []
    out = stream.feed("error", '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
    assert out == [b'data: {"error":{"message":"Overloaded","type":"server_error","param":null,"code":null}}\n\n']
    assert stream.done and stream.feed("message_stop", '{"type":"message_stop"}') == []


# -- Anthropic → OpenAI chat: requests -----------------------------------------------------------------------


def test_anthropic_request_translates_field_by_field():
    body = {
        "model": HAIKU,
        "max_tokens": 300,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "temperature": 0.3,
        "top_k": 5,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "alice"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{**ANTHROPIC_WEATHER, "cache_control": {"type": "ephemeral"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Look it up.", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris", "unit": "celsius"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "18 C"}],
                    },
                    {"type": "text", "text": "And tomorrow?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                    },
                ],
            },
        ],
    }
    out = anthropic_to_openai_chat(body, GPT)
    assert out.body == {
        "model": GPT,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18 C"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "And tomorrow?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                ],
            },
        ],
        "max_completion_tokens": 300,
        "temperature": 0.3,
        "stop": ["END"],
        "user": "alice",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city.",
                    "parameters": WEATHER_SCHEMA,
                },
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
    }
    assert out.dropped == [
        "system[0].cache_control",
        "messages[1].content[0]",
        "tools[0].cache_control",
        "top_k",
        "thinking",
    ]
    assert out.notes == [
        "cache_control was dropped: OpenAI caches prompt prefixes by itself",
        "thinking has no OpenAI chat equivalent: thinking blocks and the thinking parameter were dropped",
    ]


def test_anthropic_stream_request_asks_for_usage():
    body = {"model": HAIKU, "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    out = anthropic_to_openai_chat(body, GPT).body
    assert (out["stream"], out["stream_options"]) == (True, {"include_usage": True})


# -- Anthropic → OpenAI chat: answers from the simulator -----------------------------------------------------


def test_chat_completion_parses_as_an_anthropic_message(http):
    body = {
        "model": HAIKU,
        "max_tokens": 400,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": QUESTION}],
    }
    raw, message = via_gpt(http, body)
    assert message.id == raw["id"] and message.model == GPT
    [block] = message.content
    assert block.type == "text" and block.text == raw["choices"][0]["message"]["content"]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == raw["usage"]["prompt_tokens"] == 17  # OpenAI also counts roles
    assert message.usage.output_tokens == raw["usage"]["completion_tokens"]
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (0, 0)


def test_length_is_max_tokens(http):
    body = {"model": HAIKU, "max_tokens": 4, "messages": [{"role": "user", "content": QUESTION}]}
    _, message = via_gpt(http, body)
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 4


def test_openai_cached_tokens_are_cache_reads(http):
    body = {
        "model": HAIKU,
        "max_tokens": 5,
        "system": words(1500),
        "messages": [{"role": "user", "content": QUESTION}],
    }
    via_gpt(http, body)
    raw, message = via_gpt(http, body)
    cached = raw["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached > 0
    assert message.usage.cache_read_input_tokens == cached
    assert message.usage.input_tokens + cached == raw["usage"]["prompt_tokens"]


def test_tool_use_then_tool_result_turn_via_openai(http):
    first = {
        "model": HAIKU,
        "max_tokens": 400,
        "tools": [ANTHROPIC_WEATHER],
        "tool_choice": {"type": "any"},
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
    }
    raw, message = via_gpt(http, first)
    assert message.stop_reason == "tool_use"
    [block] = message.content
    call = raw["choices"][0]["message"]["tool_calls"][0]
    assert (block.type, block.id, block.name) == ("tool_use", call["id"], "get_weather")
    assert block.input == json.loads(call["function"]["arguments"])
    second = {
        **first,
        "tool_choice": {"type": "auto"},
        "messages": [
            *first["messages"],
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "18 C"}],
            },
        ],
    }
    _, answer = via_gpt(http, second)
    assert answer.stop_reason == "end_turn" and answer.content[0].type == "text"


def test_openai_stream_becomes_anthropic_events(http):
    body = {
        "model": HAIKU,
        "max_tokens": 400,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": QUESTION}],
    }
    _, plain = via_gpt(http, body)
    events, message = stream_via_gpt(http, {**body, "stream": True})
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert message.content[0].text == plain.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == plain.usage.input_tokens
    assert message.usage.output_tokens == plain.usage.output_tokens


def test_openai_tool_stream_becomes_tool_use_blocks(http):
    body = {
        "model": HAIKU,
        "max_tokens": 400,
        "tools": [ANTHROPIC_WEATHER],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
    }
    _, plain = via_gpt(http, body)
    _, message = stream_via_gpt(http, {**body, "stream": True})
    [block] = message.content
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == plain.content[0].input
    assert message.stop_reason == "tool_use"


# -- errors ---------------------------------------------------------------------------------------------------


def test_anthropic_errors_become_openai_errors_with_the_message(http, sim):
    response = post_messages(http, {"model": HAIKU, "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400
    error = ErrorObject.model_validate(json.loads(anthropic_error_to_openai(response.content))["error"])
    assert (error.message, error.type, error.code) == (
        "max_tokens: Field required",
        "invalid_request_error",
        None,
    )
    sim.configure(faults=["429"])
    response = post_messages(http, {"model": HAIKU, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 429
    error = ErrorObject.model_validate(json.loads(anthropic_error_to_openai(response.content, 429))["error"])
    assert error.message == response.json()["error"]["message"]
    assert (error.type, error.code) == ("requests", "rate_limit_exceeded")


def test_openai_errors_become_anthropic_errors_with_the_message(http, sim):
    response = post_chat(http, {"model": GPT, "messages": [{"role": "user", "content": "x"}], "n": 0})
    assert response.status_code == 400
    error = ErrorResponse.model_validate(json.loads(openai_error_to_anthropic(response.content, 400)))
    assert error.error.type == "invalid_request_error"
    assert error.error.message == response.json()["error"]["message"]
    for fault, kind in (("429", "rate_limit_error"), ("529", "overloaded_error"), ("500", "api_error")):
        sim.configure(faults=[fault])
        response = post_chat(http, {"model": GPT, "messages": [{"role": "user", "content": "x"}]})
        assert response.status_code == int(fault)
        error = ErrorResponse.model_validate(json.loads(openai_error_to_anthropic(response.content, int(fault))))
        assert (error.error.type, error.error.message) == (kind, response.json()["error"]["message"])


def test_error_bodies_that_are_not_json_keep_their_text():
    to_openai = json.loads(anthropic_error_to_openai(b"<html>Bad gateway</html>", 502))["error"]
    assert to_openai == {
        "message": "the upstream provider answered with an error (HTTP 502): <html>Bad gateway</html>",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    to_anthropic = json.loads(openai_error_to_anthropic(b"", 401))
    assert to_anthropic == {
        "type": "error",
        "error": {
            "type": "authentication_error",
            "message": "the upstream provider answered with an error (HTTP 401)",
        },
    }


def test_llmguard_refusal_message_survives_both_ways():
    message = "llmguard: budget of $1.00 for this notebook is spent; raise it with %llmguard budget"
    anthropic_body = json.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": message}})
    there = anthropic_error_to_openai(anthropic_body.encode(), 429)
    back = json.loads(openai_error_to_anthropic(there, 429))
    assert back == {"type": "error", "error": {"type": "rate_limit_error", "message": message}}


def test_openai_stream_error_becomes_an_anthropic_error_event():
    stream = OpenAIToAnthropicStream(HAIKU)
    out = stream.feed('{"error":{"message":"boom","type":"server_error","param":null,"code":null}}')
    assert out == [b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"boom"}}\n\n']
    assert stream.done


# -- what cannot be expressed ------------------------------------------------------------------------------

USER = {"role": "user", "content": "Hi"}
_O2A_REFUSED = [
    ({"n": 3}, "n=3", "use a fallback of the same provider for n>1 calls, or make 3 separate calls with n=1"),
    ({"functions": [{"name": "f"}]}, "deprecated `functions`", "define the functions as `tools` instead"),
    ({"function_call": "auto"}, "deprecated `function_call`", "use `tools` and `tool_choice`"),
    ({"audio": {"voice": "alloy"}}, "audio output", "same provider for audio calls"),
    ({"modalities": ["text", "audio"]}, "audio output", "same provider for audio calls"),
    (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}],
                }
            ]
        },
        "'input_audio' part",
        "use a fallback of the same provider for audio and file inputs",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}]},
        "'file' part",
        "text and images",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]},
        "neither https:// nor a base64 data: URL",
        "base64 data: URL",
    ),
    (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA=="}}],
                }
            ]
        },
        "image/bmp image",
        "convert the image first",
    ),
    (
        {"messages": [USER, {"role": "function", "name": "f", "content": "1"}]},
        "role 'function'",
        "role 'tool'",
    ),
    (
        {
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}],
                },
            ]
        },
        "are not a JSON object",
        "repair the call's arguments",
    ),
    (
        {"messages": [{"role": "system", "content": "Be brief."}]},
        "no user or assistant message",
        "put the request in a user message",
    ),
    ({"tools": [{"type": "custom", "custom": {"name": "grammar"}}]}, "'custom' tool", "function tools only"),
    (
        {
            "tools": [OPENAI_WEATHER],
            "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}},
        },
        "'allowed_tools'",
        "send only the allowed tools",
    ),
    (
        {"tools": [OPENAI_WEATHER], "response_format": {"type": "json_object"}},
        "response_format json_object together with tools",
        "or drop the response_format",
    ),
    (
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "array"}},
            }
        },
        "root is not an object",
        "wrap the schema in an object property",
    ),
    (
        {"messages": [{"role": "bot", "content": "x"}]},
        "messages[0].role: expected",
        "the provider would refuse it",
    ),
    ({"max_tokens": 0}, "max_tokens: expected a positive integer, got 0", "fix the request"),
]


@pytest.mark.parametrize(("fields", "what", "fix"), _O2A_REFUSED)
def test_openai_requests_anthropic_cannot_express(fields, what, fix):
    body = {"model": GPT, "messages": [USER], **fields}
    with pytest.raises(TranslationError) as caught:
        openai_chat_to_anthropic(body, HAIKU)
    message = str(caught.value)
    assert message.startswith("llmguard: cannot translate ")
    assert what in message and fix.lower() in message.lower(), message


_A2O_REFUSED = [
    ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "5 stop_sequences", "OpenAI takes at most 4"),
    (
        {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
        "server tool 'web_search_20250305'",
        "define a custom tool",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "text", "data": "x"}}]}]},
        "'document' block",
        "send the text itself",
    ),
    (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [{"type": "image", "source": {}}],
                        }
                    ],
                }
            ]
        },
        "'image' block inside a tool_result",
        "describe the result in text",
    ),
    (
        {
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}],
                },
            ]
        },
        "an Anthropic server tool",
        "cannot replay server tools",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]},
        "image source of type 'file'",
        "send the image as base64",
    ),
    ({"system": [{"type": "image", "source": {}}]}, "in the system prompt", "text only"),
    (
        {"messages": [{"role": "system", "content": "x"}]},
        "messages[0].role: expected 'user' or 'assistant'",
        "fix the request",
    ),
]


@pytest.mark.parametrize(("fields", "what", "fix"), _A2O_REFUSED)
def test_anthropic_requests_openai_cannot_express(fields, what, fix):
    body = {"model": HAIKU, "max_tokens": 10, "messages": [USER], **fields}
    with pytest.raises(TranslationError) as caught:
        anthropic_to_openai_chat(body, GPT)
    message = str(caught.value)
    assert message.startswith("llmguard: cannot translate ")
    assert what in message and fix.lower() in message.lower(), message


def test_a_completion_with_several_choices_has_no_anthropic_message():
    completion = {"id": "c", "model": GPT, "choices": [{}, {}]}
    with pytest.raises(TranslationError, match="An Anthropic message holds one answer: ask for n=1"):
        openai_chat_completion_to_anthropic_message(completion, HAIKU)


def test_translation_error_is_a_value_error_naming_the_field():
    with pytest.raises(ValueError) as caught:
        openai_chat_to_anthropic({"model": GPT, "messages": [USER], "n": 2}, HAIKU)
    assert isinstance(caught.value, TranslationError) and caught.value.where == "n"


# -- property: translation fails only with TranslationError ------------------------------------------------
# Each strategy mixes well-formed values (most draws) with hostile ones (wrong types, unknown kinds),
# so both the translated body's invariants and the refusals are exercised.

_text = st.text(max_size=12)
_words = st.text(alphabet="abc xyz", min_size=1, max_size=12)
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2, 5), _text)
_cache = st.one_of(st.none(), st.just({"type": "ephemeral"}))
_call_id = st.sampled_from(["call_1", "call_2", "toolu_9"])


def _mostly(good: Any, bad: Any) -> Any:
    """`good` about nine draws in ten, `bad` otherwise (`one_of` would flatten and weigh the branches)."""
    return st.integers(0, 9).flatmap(lambda i: bad if i == 0 else good)


_text_part = st.fixed_dictionaries({"type": st.just("text"), "text": _words}, optional={"cache_control": _cache})
_refusal_part = st.fixed_dictionaries({"type": st.just("refusal"), "refusal": _text})
_image_part = st.fixed_dictionaries(
    {
        "type": st.just("image_url"),
        "image_url": st.fixed_dictionaries(
            {"url": st.sampled_from(["https://x/y.png", "data:image/png;base64,AA=="])},
            optional={"detail": st.just("low")},
        ),
    }
)
_bad_part = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["refusal", "input_audio", "file", "bogus"]), "text": _text}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": _text})}),
    _scalar,
)
_bad_content = st.one_of(st.none(), st.integers(), st.lists(_bad_part, min_size=1, max_size=2))
_system_content = _mostly(st.one_of(_text, st.lists(_text_part, max_size=2)), _bad_content)
_user_content = _mostly(
    st.one_of(_words, _text, st.lists(st.one_of(_text_part, _image_part), min_size=1, max_size=3)),
    _bad_content,
)
_reply_content = _mostly(
    st.one_of(_text, st.none(), st.lists(st.one_of(_text_part, _refusal_part), max_size=2)), _bad_content
)
_openai_call = st.fixed_dictionaries(
    {
        "id": _mostly(_call_id, _scalar),
        "type": _mostly(st.just("function"), st.just("custom")),
        "function": st.fixed_dictionaries(
            {
                "name": _mostly(st.just("get_weather"), _scalar),
                "arguments": _mostly(
                    st.sampled_from(['{"city": "Paris"}', "", "{}"]), st.sampled_from(["[1]", "{bad", None])
                ),
            }
        ),
    }
)
_openai_message = _mostly(
    st.one_of(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["system", "developer"]), "content": _system_content},
            optional={"name": _words, "cache_control": _cache},
        ),
        st.fixed_dictionaries(
            {"role": st.just("user"), "content": _user_content},
            optional={"name": _words, "cache_control": _cache},
        ),
        st.fixed_dictionaries(
            {"role": st.just("assistant"), "content": _reply_content},
            optional={
                "tool_calls": st.lists(_openai_call, max_size=2),
                "refusal": st.one_of(st.none(), _text),
            },
        ),
        st.fixed_dictionaries(
            {"role": st.just("tool"), "tool_call_id": _mostly(_call_id, _scalar), "content": _system_content}
        ),
    ),
    st.one_of(st.fixed_dictionaries({"role": st.sampled_from(["function", "bot", None]), "content": _text}), _scalar),
)
_openai_body = st.fixed_dictionaries(
    {"model": st.just(GPT), "messages": st.lists(_openai_message, min_size=1, max_size=6)},
    optional={
        "max_tokens": _mostly(st.integers(1, 50), st.one_of(st.integers(-1, 0), _text)),
        "temperature": _mostly(st.floats(0, 2), _text),
        "stop": _mostly(st.one_of(_text, st.lists(_text, max_size=5)), st.lists(_scalar, min_size=1, max_size=2)),
        "n": _mostly(st.just(1), st.integers(0, 3)),
        "tools": _mostly(
            st.lists(st.just(OPENAI_WEATHER), max_size=1),
            st.lists(st.one_of(st.just({"type": "custom"}), _scalar), min_size=1, max_size=2),
        ),
        "tool_choice": _mostly(
            st.one_of(
                st.sampled_from(["auto", "none", "required"]),
                st.just({"type": "function", "function": {"name": "get_weather"}}),
            ),
            st.sampled_from(["bogus", {"type": "allowed_tools"}, 3]),
        ),
        "parallel_tool_calls": _mostly(st.booleans(), _text),
        "response_format": _mostly(
            st.sampled_from([{"type": "text"}, {"type": "json_object"}]),
            st.sampled_from([{"type": "xml"}, "json"]),
        ),
        "stream": _mostly(st.booleans(), _text),
        "seed": st.integers(),
    },
)


def _check_anthropic_body(body: dict[str, Any]) -> None:
    """What Anthropic itself requires of a messages body: alternating non-empty turns, tool results
    first in their turn, no blank text blocks, a positive max_tokens."""
    assert isinstance(body["max_tokens"], int) and body["max_tokens"] > 0
    roles = [m["role"] for m in body["messages"]]
    assert roles and all(a != b for a, b in zip(roles, roles[1:], strict=False))
    for message in body["messages"]:
        content = message["content"]
        assert content and (not isinstance(content, str) or content.strip())
        if isinstance(content, list):
            kinds = [b["type"] for b in content]
            assert kinds == sorted(kinds, key=lambda k: k != "tool_result")
            assert all(not (b["type"] == "text" and not b["text"].strip()) for b in content)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_openai_body)
def test_openai_to_anthropic_raises_only_translation_errors(body):
    try:
        out = openai_chat_to_anthropic(body, HAIKU)
    except TranslationError:
        return
    _check_anthropic_body(out.body)


_anthropic_text = st.fixed_dictionaries({"type": st.just("text"), "text": _words}, optional={"cache_control": _cache})
_anthropic_bad = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["document", "server_tool_use", "web_search_tool_result", "bogus"])}
    ),
    st.fixed_dictionaries({"type": st.just("tool_use"), "id": _scalar, "name": _scalar, "input": _scalar}),
    st.fixed_dictionaries(
        {
            "type": st.just("tool_result"),
            "tool_use_id": _scalar,
            "content": st.lists(st.fixed_dictionaries({"type": st.just("image")}), min_size=1),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("image"),
            "source": st.fixed_dictionaries({"type": st.sampled_from(["file", "base64"])}),
        }
    ),
    _scalar,
)
_user_block = _mostly(
    st.one_of(
        _anthropic_text,
        st.fixed_dictionaries(
            {
                "type": st.just("tool_result"),
                "tool_use_id": _call_id,
                "content": st.one_of(
                    _text,
                    st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": _text}), max_size=2),
                ),
            },
            optional={"is_error": st.booleans()},
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("image"),
                "source": st.sampled_from(
                    [
                        {"type": "base64", "media_type": "image/png", "data": "AA=="},
                        {"type": "url", "url": "https://x/y.png"},
                    ]
                ),
            }
        ),
    ),
    _anthropic_bad,
)
_assistant_block = _mostly(
    st.one_of(
        _anthropic_text,
        st.fixed_dictionaries({"type": st.just("thinking"), "thinking": _text, "signature": _text}),
        st.fixed_dictionaries(
            {
                "type": st.just("tool_use"),
                "id": _call_id,
                "name": st.just("get_weather"),
                "input": st.just({"a": 1}),
            }
        ),
    ),
    _anthropic_bad,
)
_anthropic_message = _mostly(
    st.one_of(
        st.fixed_dictionaries(
            {"role": st.just("user"), "content": st.one_of(_text, st.lists(_user_block, max_size=4))}
        ),
        st.fixed_dictionaries(
            {
                "role": st.just("assistant"),
                "content": st.one_of(_text, st.lists(_assistant_block, max_size=4)),
            }
        ),
    ),
    st.one_of(
        st.fixed_dictionaries({"role": st.sampled_from(["system", None]), "content": st.one_of(_text, st.none())}),
        _scalar,
    ),
)
_anthropic_body = st.fixed_dictionaries(
    {"model": st.just(HAIKU), "messages": st.lists(_anthropic_message, max_size=6)},
    optional={
        "max_tokens": _mostly(st.integers(1, 50), st.one_of(st.integers(-1, 0), _text)),
        "system": _mostly(
            st.one_of(_text, st.lists(_anthropic_text, max_size=2)),
            st.lists(_anthropic_bad, min_size=1, max_size=2),
        ),
        "stop_sequences": _mostly(st.lists(_text, max_size=4), st.lists(_scalar, min_size=1, max_size=6)),
        "tools": _mostly(
            st.lists(st.just(ANTHROPIC_WEATHER), max_size=1),
            st.lists(st.one_of(st.just({"type": "bash_20250124", "name": "bash"}), _scalar), min_size=1, max_size=2),
        ),
        "tool_choice": _mostly(
            st.sampled_from(
                [
                    {"type": "auto"},
                    {"type": "any"},
                    {"type": "none"},
                    {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
                ]
            ),
            st.one_of(st.just({"type": "x"}), _scalar),
        ),
        "thinking": st.just({"type": "enabled", "budget_tokens": 1024}),
        "metadata": _mostly(
            st.fixed_dictionaries({"user_id": _words}),
            st.one_of(st.fixed_dictionaries({"user_id": _scalar}), _scalar),
        ),
        "stream": st.booleans(),
    },
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_anthropic_body)
def test_anthropic_to_openai_raises_only_translation_errors(body):
    try:
        out = anthropic_to_openai_chat(body, GPT)
    except TranslationError:
        return
    for message in out.body["messages"]:
        assert message["role"] in ("system", "user", "assistant", "tool")
        if message["role"] == "tool":
            assert isinstance(message["tool_call_id"], str) and isinstance(message["content"], str | list)
        for call in message.get("tool_calls", []):
            assert json.loads(call["function"]["arguments"]) == {"a": 1}


_event = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
                "ping",
                "error",
                "x",
            ]
        )
    },
    optional={
        "index": st.one_of(st.integers(0, 2), _scalar),
        "message": st.one_of(
            st.fixed_dictionaries(
                {
                    "id": _text,
                    "model": _scalar,
                    "usage": st.one_of(st.just({"input_tokens": 3, "output_tokens": 1}), _scalar),
                }
            ),
            _scalar,
        ),
        "content_block": st.one_of(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["text", "tool_use", "thinking"]),
                    "id": _text,
                    "name": _text,
                    "text": _text,
                }
            ),
            _scalar,
        ),
        "delta": st.one_of(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["text_delta", "input_json_delta", "thinking_delta"]),
                    "text": _scalar,
                    "partial_json": _scalar,
                    "stop_reason": _scalar,
                }
            ),
            _scalar,
        ),
        "usage": st.one_of(st.just({"output_tokens": 4}), _scalar),
        "error": st.one_of(st.fixed_dictionaries({"type": _scalar, "message": _scalar}), _scalar),
    },
)
_chunk = st.one_of(
    st.just("[DONE]"),
    _text,
    st.builds(
        json.dumps,
        st.fixed_dictionaries(
            {"id": _text, "model": _scalar},
            optional={
                "choices": st.lists(
                    st.fixed_dictionaries(
                        {"index": st.one_of(st.just(0), _scalar)},
                        optional={
                            "delta": st.one_of(
                                st.fixed_dictionaries(
                                    {},
                                    optional={
                                        "content": _scalar,
                                        "refusal": _scalar,
                                        "tool_calls": st.lists(
                                            st.fixed_dictionaries(
                                                {
                                                    "index": _scalar,
                                                    "id": _scalar,
                                                    "function": st.one_of(
                                                        st.fixed_dictionaries({"name": _scalar, "arguments": _scalar}),
                                                        _scalar,
                                                    ),
                                                }
                                            ),
                                            max_size=2,
                                        ),
                                    },
                                ),
                                _scalar,
                            ),
                            "finish_reason": _scalar,
                        },
                    ),
                    max_size=2,
                ),
                "usage": st.one_of(st.just({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}), _scalar),
                "error": st.one_of(st.just({"message": "x"}), _scalar),
            },
        ),
    ),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_event, max_size=8), st.lists(_chunk, max_size=8))
def test_stream_translators_never_raise(events, chunks):
    forward = AnthropicToOpenAIStream(GPT, include_usage=True, json_tool="report")
    for event in events:
        for line in forward.feed(str(event.get("type")), json.dumps(event)):
            assert line.startswith(b"data: ") and line.endswith(b"\n\n")
    backward = OpenAIToAnthropicStream(HAIKU)
    for chunk in chunks:
        for line in backward.feed(chunk):
            assert line.startswith(b"event: ") and line.endswith(b"\n\n")
