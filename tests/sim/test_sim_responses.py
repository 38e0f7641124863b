"""The simulated OpenAI Responses API against the real `openai` SDK over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import jsonschema
import openai
import pydantic
import pytest
from openai.types.responses import (
    Response,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseStreamEvent,
)

from llmguard.sim.counting import encoding_for
from llmguard.sim.openai.prefix_cache import INCREMENT, MIN_PREFIX

MODEL = "gpt-4o-mini"
REASONER = "o4-mini"
INPUT = "Say something."
INSTRUCTIONS = "Be brief."
# 3 reply priming + (3 + "Be brief." 3) instructions + (3 + "user" 1 + "Say something." 3) = 16
PROMPT_TOKENS = 16
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit", "days"],
    "additionalProperties": False,
}
TOOLS: list[Any] = [{"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": True}]
TEXT_EVENTS_HEAD = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
]
TEXT_EVENTS_TAIL = ["response.output_text.done", "response.content_part.done", "response.output_item.done"]


def client(sim: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)


def aclient(sim: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)


def tokens(text: str, model: str = MODEL) -> int:
    return len(encoding_for(model).encode_ordinary(text))


def billed(sim: Any, model: str = MODEL) -> dict[str, Any]:
    return sim.stats["models"][model]


def text_events(deltas: int, terminal: str = "response.completed") -> list[str]:
    return [*TEXT_EVENTS_HEAD, *["response.output_text.delta"] * deltas, *TEXT_EVENTS_TAIL, terminal]


def post(sim: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = client(sim).responses.with_raw_response
    try:
        raw = response.create(**body)
    except openai.APIStatusError as exc:
        return exc.status_code, exc.body  # type: ignore[return-value]
    return raw.status_code, json.loads(raw.text)


# -- plain text --------------------------------------------------------------------------------------


def test_create_returns_a_typed_response_with_usage_that_matches_the_bill(fresh_sim):
    r = client(fresh_sim).responses.create(model=MODEL, input=INPUT, instructions=INSTRUCTIONS)
    assert isinstance(r, Response)
    assert r.id.startswith("resp_") and r.object == "response" and r.status == "completed"
    assert r.model == MODEL and r.incomplete_details is None and r.error is None
    assert r.instructions == INSTRUCTIONS and r.store is True and r.tools == [] and r.tool_choice == "auto"
    assert r.parallel_tool_calls is True and r.temperature == 1.0 and r.top_p == 1.0
    [message] = r.output
    assert isinstance(message, ResponseOutputMessage)
    assert message.id.startswith("msg_") and message.status == "completed" and message.role == "assistant"
    [part] = message.content
    assert part.type == "output_text" and part.annotations == []
    assert r.output_text == part.text and r.output_text
    usage = r.usage
    assert usage is not None
    assert usage.input_tokens == PROMPT_TOKENS
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens == tokens(r.output_text)
    assert usage.output_tokens_details.reasoning_tokens == 0
    assert usage.total_tokens == PROMPT_TOKENS + usage.output_tokens
    bill = billed(fresh_sim)
    assert (bill["requests"], bill["input_tokens"], bill["output_tokens"]) == (1, 16, usage.output_tokens)
    assert bill["priced"] is True and bill["cost_usd"] > 0


def test_input_list_and_string_count_the_same_and_parts_count_their_text(fresh_sim):
    c = client(fresh_sim)
    as_string = c.responses.create(model=MODEL, input=INPUT)
    as_list = c.responses.create(model=MODEL, input=[{"role": "user", "content": INPUT}])
    as_parts = c.responses.create(
        model=MODEL,
        input=[{"type": "message", "role": "user", "content": [{"type": "input_text", "text": INPUT}]}],
    )
    assert as_string.usage and as_list.usage and as_parts.usage
    # 3 priming + 3 per message + "user" 1 + "Say something." 3
    assert as_string.usage.input_tokens == as_list.usage.input_tokens == as_parts.usage.input_tokens == 10


def test_no_bound_means_the_default_max_tokens(fresh_sim):
    fresh_sim.configure(default_max_tokens=16)
    try:
        r = client(fresh_sim).responses.create(model=MODEL, input=INPUT)
    finally:
        fresh_sim.configure(default_max_tokens=4096)
    assert r.status == "incomplete" and r.usage and r.usage.output_tokens == 16
    assert r.max_output_tokens is None


def test_stream_events_are_the_documented_sequence_and_carry_the_final_usage(fresh_sim):
    c = client(fresh_sim)
    plain = c.responses.create(model=MODEL, input=INPUT, instructions=INSTRUCTIONS)
    events = list(c.responses.create(model=MODEL, input=INPUT, instructions=INSTRUCTIONS, stream=True))
    final = events[-1].response  # type: ignore[union-attr]
    assert final.usage is not None
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]  # type: ignore[union-attr]
    assert [e.type for e in events] == text_events(final.usage.output_tokens)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(deltas) == final.output_text == plain.output_text  # streaming does not change the answer
    assert events[0].response.status == "in_progress" and events[0].response.usage is None  # type: ignore[union-attr]
    assert final.status == "completed" and final.usage.input_tokens == PROMPT_TOKENS
    item_ids = {e.item_id for e in events if hasattr(e, "item_id")}
    assert item_ids == {final.output[0].id}
    bill = billed(fresh_sim)
    assert bill["requests"] == 2
    assert bill["input_tokens"] == 2 * PROMPT_TOKENS
    assert bill["output_tokens"] == 2 * final.usage.output_tokens


def test_stream_manager_accumulates_the_response(fresh_sim):
    with client(fresh_sim).responses.stream(model=MODEL, input=INPUT) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.usage is not None
    assert kinds == text_events(final.usage.output_tokens)
    assert final.output_text and final.usage.output_tokens == tokens(final.output_text)
    bill = billed(fresh_sim)
    assert (bill["input_tokens"], bill["output_tokens"]) == (
        final.usage.input_tokens,
        final.usage.output_tokens,
    )


def test_async_create_and_stream(fresh_sim):
    async def run() -> tuple[Response, list[Any], Response]:
        c = aclient(fresh_sim)
        plain = await c.responses.create(model=MODEL, input=INPUT)
        events = [e async for e in await c.responses.create(model=MODEL, input=INPUT, stream=True)]
        async with c.responses.stream(model=MODEL, input=INPUT) as stream:
            async for _ in stream:
                pass
            final = await stream.get_final_response()
        await c.close()
        return plain, events, final

    plain, events, final = asyncio.run(run())
    assert plain.usage is not None
    assert [e.type for e in events] == text_events(plain.usage.output_tokens)
    assert events[-1].response.output_text == final.output_text == plain.output_text
    assert billed(fresh_sim)["output_tokens"] == 3 * plain.usage.output_tokens


@pytest.mark.parametrize(
    "extra",
    [
        {"model": REASONER},
        {"tools": TOOLS},
        {"max_output_tokens": 16},
        {"text": {"format": {"type": "json_schema", "name": "weather", "schema": WEATHER, "strict": True}}},
    ],
    ids=["reasoning", "tool", "cut", "json_schema"],
)
def test_wire_shapes_pass_the_sdk_models_strict_validation(fresh_sim, extra):
    """The SDK builds its objects without validating them; pydantic validation checks every field."""
    events = pydantic.TypeAdapter(ResponseStreamEvent)
    body = {"model": MODEL, "input": INPUT, **extra}
    for stream in (False, True):
        request = urllib.request.Request(
            fresh_sim.openai_base_url + "/responses",
            data=json.dumps({**body, "stream": stream}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read().decode()
        if not stream:
            Response.model_validate(json.loads(raw))
            continue
        blocks = [block for block in raw.split("\n\n") if block]
        for block in blocks:
            event_line, data_line = block.split("\n")
            data = json.loads(data_line.removeprefix("data: "))
            assert event_line == "event: " + data["type"]
            events.validate_python(data)
        assert json.loads(blocks[-1].split("\n")[1][6:])["response"]["status"] in ("completed", "incomplete")


# -- reasoning and the output cap --------------------------------------------------------------------


def test_reasoning_tokens_are_inside_output_tokens_with_a_reasoning_item_first(fresh_sim):
    r = client(fresh_sim).responses.create(model=REASONER, input=INPUT, reasoning={"effort": "low"})
    assert r.usage is not None
    reasoning = r.usage.output_tokens_details.reasoning_tokens
    assert reasoning > 0 and reasoning % 64 == 0
    assert r.usage.output_tokens == reasoning + tokens(r.output_text, REASONER)
    assert [item.type for item in r.output] == ["reasoning", "message"]
    assert r.output[0].summary == [] and r.output[0].id.startswith("rs_")  # type: ignore[union-attr]
    assert r.reasoning is not None and r.reasoning.effort == "low"
    bill = billed(fresh_sim, REASONER)
    assert (bill["output_tokens"], bill["reasoning_tokens"]) == (r.usage.output_tokens, reasoning)


def test_reasoning_stream_emits_the_reasoning_item_before_the_message(fresh_sim):
    with client(fresh_sim).responses.stream(model=REASONER, input=INPUT) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.usage is not None
    visible = final.usage.output_tokens - final.usage.output_tokens_details.reasoning_tokens
    reasoning_item = ["response.output_item.added", "response.output_item.done"]
    assert kinds == ["response.created", "response.in_progress", *reasoning_item, *text_events(visible)[2:]]
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.reasoning is not None and final.reasoning.effort == "medium"  # the default


def test_max_output_tokens_cut_is_incomplete(fresh_sim):
    c = client(fresh_sim)
    r = c.responses.create(model=MODEL, input=INPUT, max_output_tokens=16)
    assert r.status == "incomplete"
    assert r.incomplete_details is not None and r.incomplete_details.reason == "max_output_tokens"
    assert r.usage is not None and r.usage.output_tokens == 16 == tokens(r.output_text)
    assert r.output[0].status == "incomplete" and r.max_output_tokens == 16  # type: ignore[union-attr]
    events = list(c.responses.create(model=MODEL, input=INPUT, max_output_tokens=16, stream=True))
    assert [e.type for e in events] == text_events(16, "response.incomplete")
    assert events[-1].response.output_text == r.output_text  # type: ignore[union-attr]
    assert billed(fresh_sim)["output_tokens"] == 32


def test_a_cap_spent_on_reasoning_leaves_only_the_reasoning_item(fresh_sim):
    r = client(fresh_sim).responses.create(model=REASONER, input=INPUT, max_output_tokens=16)
    assert r.status == "incomplete" and [item.type for item in r.output] == ["reasoning"]
    assert r.usage is not None and r.usage.output_tokens == 16
    assert r.usage.output_tokens_details.reasoning_tokens == 16 and r.output_text == ""


# -- tools ---------------------------------------------------------------------------------------------


def test_tool_round_trip_with_history_and_with_previous_response_id(fresh_sim):
    c = client(fresh_sim)
    first = c.responses.create(model=MODEL, input="Weather in Paris?", tools=TOOLS)
    assert first.status == "completed"
    [call] = first.output
    assert isinstance(call, ResponseFunctionToolCall)
    assert call.name == "get_weather" and call.call_id.startswith("call_") and call.id.startswith("fc_")  # type: ignore[union-attr]
    jsonschema.validate(json.loads(call.arguments), WEATHER)
    assert first.usage is not None and first.usage.output_tokens == tokens(call.arguments)
    assert first.tools[0].name == "get_weather" and first.output_text == ""  # type: ignore[union-attr]

    result = {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'}
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}, call.model_dump(), result]
    explicit = c.responses.create(model=MODEL, input=history, tools=TOOLS)
    chained = c.responses.create(model=MODEL, previous_response_id=first.id, input=[result], tools=TOOLS)
    for follow_up in (explicit, chained):
        assert [item.type for item in follow_up.output] == ["message"] and follow_up.output_text
        assert follow_up.usage is not None and follow_up.usage.input_tokens > first.usage.input_tokens
    assert chained.previous_response_id == first.id


def test_previous_response_id_bills_the_whole_conversation(fresh_sim):
    c = client(fresh_sim)
    first = c.responses.create(model=MODEL, input="First question.", instructions=INSTRUCTIONS)
    chained = c.responses.create(model=MODEL, input="Second question.", previous_response_id=first.id)
    explicit = c.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "First question."},
            {"role": "assistant", "content": first.output_text},
            {"role": "user", "content": "Second question."},
        ],
    )
    assert chained.usage and explicit.usage
    assert chained.usage.input_tokens == explicit.usage.input_tokens  # instructions are not carried over


def test_tool_call_stream_has_argument_deltas(fresh_sim):
    with client(fresh_sim).responses.stream(model=MODEL, input="Weather in Paris?", tools=TOOLS) as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        *["response.function_call_arguments.delta"] * len(deltas),
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    [call] = final.output
    assert call.type == "function_call"
    assert "".join(e.delta for e in deltas) == call.arguments  # type: ignore[union-attr]
    assert call.parsed_arguments == json.loads(call.arguments)  # type: ignore[union-attr]  # strict tool
    jsonschema.validate(call.parsed_arguments, WEATHER)  # type: ignore[union-attr]
    assert final.usage is not None and final.usage.output_tokens == tokens(call.arguments)  # type: ignore[union-attr]
    assert len(deltas) == final.usage.output_tokens  # ASCII JSON: one piece per token


def test_tool_choice_none_answers_in_text_and_an_unknown_tool_is_a_400(fresh_sim):
    c = client(fresh_sim)
    r = c.responses.create(model=MODEL, input="Weather?", tools=TOOLS, tool_choice="none")
    assert [item.type for item in r.output] == ["message"] and r.tool_choice == "none"
    with pytest.raises(openai.BadRequestError) as info:
        c.responses.create(model=MODEL, input="Weather?", tools=TOOLS, tool_choice={"type": "function", "name": "nope"})
    assert "'nope'" in str(info.value) and info.value.body["param"] == "tool_choice"  # type: ignore[index]


def test_a_tool_output_without_its_call_is_a_400(fresh_sim):
    status, body = post(
        fresh_sim,
        {"model": MODEL, "input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}]},
    )
    assert status == 400
    assert body["message"] == "No tool call found for function call output with call_id call_x."


def test_reasoning_model_calls_tools_after_a_reasoning_item(fresh_sim):
    r = client(fresh_sim).responses.create(model=REASONER, input="Weather in Paris?", tools=TOOLS)
    assert [item.type for item in r.output] == ["reasoning", "function_call"]
    assert r.usage is not None
    arguments = r.output[1].arguments  # type: ignore[union-attr]
    jsonschema.validate(json.loads(arguments), WEATHER)
    assert r.usage.output_tokens == r.usage.output_tokens_details.reasoning_tokens + tokens(arguments, REASONER)


# -- structured output ---------------------------------------------------------------------------------


class Forecast(pydantic.BaseModel):
    city: str
    high_c: float
    rain: bool
    days: list[str]


def test_parse_returns_the_pydantic_type(fresh_sim):
    c = client(fresh_sim)
    parsed = c.responses.parse(model=MODEL, input="Forecast please.", text_format=Forecast)
    assert isinstance(parsed.output_parsed, Forecast)
    assert parsed.text is not None and parsed.text.format.type == "json_schema"  # type: ignore[union-attr]
    assert parsed.usage is not None and parsed.usage.output_tokens == tokens(parsed.output_text)
    with c.responses.stream(model=MODEL, input="Forecast please.", text_format=Forecast) as stream:
        for _ in stream:
            pass
        streamed = stream.get_final_response()
    assert streamed.output_parsed == parsed.output_parsed


def test_json_schema_output_validates_and_an_unsatisfiable_schema_is_a_400(fresh_sim):
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 3, "maximum": 5}},
        "required": ["n"],
        "additionalProperties": False,
    }
    fmt = {"format": {"type": "json_schema", "name": "count", "schema": schema, "strict": True}}
    r = client(fresh_sim).responses.create(model=MODEL, input="Count.", text=fmt)  # type: ignore[arg-type]
    jsonschema.validate(json.loads(r.output_text), schema)
    bad = {"type": "string", "minLength": 5, "maxLength": 2}
    status, body = post(
        fresh_sim,
        {
            "model": MODEL,
            "input": "x",
            "text": {"format": {"type": "json_schema", "name": "bad", "schema": bad}},
        },
    )
    assert status == 400 and body["param"] == "text.format.schema"
    assert "minLength 5 is greater than maxLength 2" in body["message"]


# -- storage -------------------------------------------------------------------------------------------


def test_retrieve_returns_the_stored_response_and_unknown_ids_are_404(fresh_sim):
    c = client(fresh_sim)
    r = c.responses.create(model=MODEL, input=INPUT)
    again = c.responses.retrieve(r.id)
    assert again.model_dump() == r.model_dump()
    unstored = c.responses.create(model=MODEL, input=INPUT, store=False)
    assert unstored.store is False
    for rid in ("resp_doesnotexist", unstored.id):
        with pytest.raises(openai.NotFoundError) as info:
            c.responses.retrieve(rid)
        assert info.value.body == {  # type: ignore[comparison-overlap]
            "message": f"Response with id '{rid}' not found.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    c.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.delete(r.id)
    with pytest.raises(openai.BadRequestError) as prev:
        c.responses.create(model=MODEL, input=INPUT, previous_response_id=unstored.id)
    assert prev.value.body["code"] == "previous_response_not_found"  # type: ignore[index]


def test_a_streamed_response_is_stored_in_full(fresh_sim):
    c = client(fresh_sim)
    events = list(c.responses.create(model=MODEL, input=INPUT, stream=True))
    final = events[-1].response  # type: ignore[union-attr]
    assert c.responses.retrieve(final.id).model_dump() == final.model_dump()


# -- caching -------------------------------------------------------------------------------------------


def test_repeated_long_prompt_reports_and_bills_cached_tokens(fresh_sim):
    fresh_sim.reset_cache()
    c = client(fresh_sim)
    long_input = "responses cache check " * 700  # ~2100 tokens
    first = c.responses.create(model=MODEL, input=long_input, instructions=INSTRUCTIONS)
    second = c.responses.create(model=MODEL, input=long_input, instructions=INSTRUCTIONS)
    assert first.usage and second.usage
    prompt = first.usage.input_tokens
    assert prompt > MIN_PREFIX + 8 * INCREMENT
    assert first.usage.input_tokens_details.cached_tokens == 0
    cached = second.usage.input_tokens_details.cached_tokens
    assert MIN_PREFIX <= cached <= prompt and (cached - MIN_PREFIX) % INCREMENT == 0
    assert prompt - cached < INCREMENT + 16  # all but the unaligned tail
    bill = billed(fresh_sim)
    assert bill["cached_tokens"] == cached and bill["input_tokens"] == 2 * prompt


# -- validation, faults and limits ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"input": "x"}, "model", "Missing required parameter: 'model'."),
        ({"model": MODEL}, "input", "Missing required parameter: 'input'."),
        (
            {"model": MODEL, "input": "x", "max_output_tokens": 5},
            "max_output_tokens",
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got 5 instead.",
        ),
        (
            {"model": MODEL, "input": "x", "max_output_tokens": "many"},
            "max_output_tokens",
            "Invalid type for 'max_output_tokens': expected an integer, but got a string instead.",
        ),
        (
            {"model": MODEL, "input": "x", "reasoning": {"effort": "high"}},
            "reasoning.effort",
            "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
        ),
        (
            {"model": MODEL, "input": "x", "previous_response_id": "resp_missing"},
            "previous_response_id",
            "Previous response with id 'resp_missing' not found.",
        ),
    ],
)
def test_validation_errors_use_openai_400_shape_and_consume_no_fault(fresh_sim, body, param, message):
    fresh_sim.configure(faults=["500"])
    status, error = post(fresh_sim, body)
    assert status == 400
    assert (error["message"], error["type"], error["param"]) == (message, "invalid_request_error", param)
    with pytest.raises(openai.InternalServerError):  # the scripted fault is still there
        client(fresh_sim).responses.create(model=MODEL, input=INPUT)
    assert fresh_sim.stats["models"] == {}


def test_no_usage_fault_gives_null_usage_but_still_bills(fresh_sim):
    fresh_sim.configure(faults=["no_usage", "no_usage"])
    c = client(fresh_sim)
    r = c.responses.create(model=MODEL, input=INPUT)
    assert r.usage is None and r.output_text
    with c.responses.stream(model=MODEL, input=INPUT) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[-1] == "response.completed" and final.usage is None
    assert final.output_text == r.output_text
    bill = billed(fresh_sim)
    assert bill["requests"] == 2 and bill["output_tokens"] == 2 * tokens(r.output_text)
    assert fresh_sim.stats["faults"] == {"no_usage": 2}


def test_cut_fault_is_a_connection_error_neither_billed_nor_stored(fresh_sim):
    fresh_sim.configure(faults=["cut", "cut"])
    c = client(fresh_sim)
    with pytest.raises(openai.APIConnectionError):
        c.responses.create(model=MODEL, input=INPUT)
    with pytest.raises(openai.APIConnectionError):
        list(c.responses.create(model=MODEL, input=INPUT, stream=True))
    assert fresh_sim.stats["models"] == {} and fresh_sim.stats["faults"] == {"cut": 2}


def test_rate_limit_charges_prompt_plus_max_output_tokens(fresh_sim):
    fresh_sim.configure(tpm=PROMPT_TOKENS + 100)
    c = client(fresh_sim)
    with pytest.raises(openai.RateLimitError) as info:
        c.responses.create(model=MODEL, input=INPUT, instructions=INSTRUCTIONS, max_output_tokens=101)
    assert "Requested 117" in str(info.value)
    r = c.responses.create(model=MODEL, input=INPUT, instructions=INSTRUCTIONS, max_output_tokens=100)
    assert r.usage is not None and r.usage.input_tokens == PROMPT_TOKENS
    with pytest.raises(openai.RateLimitError) as spent:  # the window's tokens are all reserved now
        c.responses.create(model=MODEL, input=INPUT, max_output_tokens=16)
    assert "Rate limit reached" in str(spent.value)
