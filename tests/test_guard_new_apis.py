"""The guard on the APIs users call today: Responses (plain, streamed, reasoning, tools, parse), chat
tool calls, `n` choices, structured output, Azure, legacy completions, Anthropic prompt caching,
extended thinking and tool use.

Every call goes through the real `openai`/`anthropic` SDK over real HTTP to `llmguard.sim`, which
bills with genai-prices independently of `llmguard.policies.pricing`. Each test checks the guard's ledger
against that bill (to the token and the dollar), against literal dollars worked out by hand from
the published per-million prices, or against the worst case it had to reserve.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import anthropic
import openai
import pydantic
import pytest
from openai.types.responses import ResponseStreamEvent

import llmguard
from llmguard.intercept.sse import event_fields
from llmguard.money import usd
from llmguard.policies.pricing import Pricer
from llmguard.providers import anthropic as anthropic_adapter
from llmguard.providers import openai as openai_adapter
from llmguard.providers.base import StreamState, Usage
from llmguard.sim import SimProvider
from llmguard.sim.text import completion_pieces
from tests.conftest import FAKE_OPENAI_KEY, anthropic_client, openai_client, rows

MINI = "gpt-4o-mini"
REASONER = "o4-mini"
INSTRUCT = "gpt-3.5-turbo-instruct"
HAIKU = "claude-3-5-haiku-latest"  # minimum cacheable prefix 2048 tokens
SONNET = "claude-sonnet-4-5"
SAY = [{"role": "user", "content": "Say something."}]  # 10 prompt tokens: 3 priming + 3 + "user" + 3
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit", "days"],
    "additionalProperties": False,
}
CHAT_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Forecast",
        "parameters": WEATHER_SCHEMA,
        "strict": True,
    },
}
RESPONSES_TOOL = {"type": "function", "name": "get_weather", "parameters": WEATHER_SCHEMA, "strict": True}
CLAUDE_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": WEATHER_SCHEMA,
}
THINKING = {"type": "enabled", "budget_tokens": 2048}
MODES = ["sync", "async", "stream", "astream"]


class Forecast(pydantic.BaseModel):
    city: str
    high_c: float
    rain: bool


def _usd(value: float | None) -> float:
    assert value is not None, "the call was not priced"
    return round(value, 12)


def _words(tokens: int, salt: str) -> str:
    """Text of exactly `tokens` cl100k tokens (the simulator's one-token pieces)."""
    return "".join(completion_pieces(hashlib.blake2b(salt.encode(), digest_size=16).digest(), tokens))


def _cached_system(salt: str, ttl: str | None = None) -> list[dict[str, Any]]:
    """A 3,000-token system prompt (3 of overhead + 2,997 of text) marked for caching."""
    marker: dict[str, Any] = {"type": "ephemeral"} if ttl is None else {"type": "ephemeral", "ttl": ttl}
    return [{"type": "text", "text": _words(2997, salt), "cache_control": marker}]


def _azure(sim: SimProvider, asynchronous: bool = False) -> Any:
    cls = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
    return cls(azure_endpoint=sim.base_url, api_key=FAKE_OPENAI_KEY, api_version="2024-10-21", max_retries=0)


def _openai(sim: SimProvider, asynchronous: bool = False) -> Any:
    return openai_client(sim, asynchronous, max_retries=0)


def _claude(sim: SimProvider, asynchronous: bool = False) -> Any:
    return anthropic_client(sim, asynchronous, max_retries=0)


# ---- one call through the SDK in each mode, returning the finished answer ---------------------------
# sync / async: create() or parse(); stream / astream: create(stream=True) read to its final event
# (the SDK's stream helpers where a call has one that accepts every answer: parse, Anthropic's).


def _run_async(make: Callable[[], Any], use: Callable[[Any], Any]) -> Any:
    async def run() -> Any:
        client = make()
        try:
            return await use(client)
        finally:
            await client.close()

    return asyncio.run(run())


def _chat(sim: SimProvider, mode: str, factory: Callable[..., Any] = _openai, **kw: Any) -> Any:
    if mode == "sync":
        return factory(sim).chat.completions.create(**kw)
    if mode == "stream":
        return _chat_from_chunks(list(factory(sim).chat.completions.create(stream=True, **kw)))

    async def use(client: Any) -> Any:
        if mode == "async":
            return await client.chat.completions.create(**kw)
        return _chat_from_chunks([chunk async for chunk in await client.chat.completions.create(stream=True, **kw)])

    return _run_async(lambda: factory(sim, asynchronous=True), use)


def _chat_from_chunks(chunks: list[Any]) -> Any:
    """The choices of a raw chat stream, put together (the SDK's helper refuses answers cut at max_tokens)."""
    choices: dict[int, Any] = {}
    for chunk in chunks:
        for part in chunk.choices:
            message = choices.setdefault(part.index, SimpleNamespace(content=None, tool_calls=None))
            delta = part.delta
            if delta.content:
                message.content = (message.content or "") + delta.content
            for call in delta.tool_calls or []:
                if call.id:
                    message.tool_calls = [
                        *(message.tool_calls or []),
                        SimpleNamespace(id=call.id, function=SimpleNamespace(name=call.function.name, arguments="")),
                    ]
                message.tool_calls[-1].function.arguments += call.function.arguments or ""
    assert chunks and all(chunk.choices for chunk in chunks)  # the usage chunk llmguard asked for is gone
    return SimpleNamespace(choices=[SimpleNamespace(message=choices[i]) for i in sorted(choices)])


def _chat_parse(sim: SimProvider, mode: str, **kw: Any) -> Any:
    if mode == "sync":
        return _openai(sim).chat.completions.parse(**kw)
    if mode == "stream":
        with _openai(sim).chat.completions.stream(**kw) as stream:
            return stream.get_final_completion()

    async def use(client: Any) -> Any:
        if mode == "async":
            return await client.chat.completions.parse(**kw)
        async with client.chat.completions.stream(**kw) as stream:
            return await stream.get_final_completion()

    return _run_async(lambda: _openai(sim, asynchronous=True), use)


def _responses(sim: SimProvider, mode: str, **kw: Any) -> Any:
    """A Responses call; in stream modes the raw event stream, whose final event holds the response
    (the SDK's stream helper refuses a stream that ends `response.incomplete`)."""
    if mode == "sync":
        return _openai(sim).responses.create(**kw)
    if mode == "stream":
        return _final_response(list(_openai(sim).responses.create(stream=True, **kw)))

    async def use(client: Any) -> Any:
        if mode == "async":
            return await client.responses.create(**kw)
        return _final_response([event async for event in await client.responses.create(stream=True, **kw)])

    return _run_async(lambda: _openai(sim, asynchronous=True), use)


def _final_response(events: list[Any]) -> Any:
    assert events[-1].type in ("response.completed", "response.incomplete")
    return events[-1].response


def _responses_parse(sim: SimProvider, mode: str, **kw: Any) -> Any:
    if mode == "sync":
        return _openai(sim).responses.parse(**kw)
    if mode == "stream":
        with _openai(sim).responses.stream(**kw) as stream:
            for _ in stream:
                pass
            return stream.get_final_response()

    async def use(client: Any) -> Any:
        if mode == "async":
            return await client.responses.parse(**kw)
        async with client.responses.stream(**kw) as stream:
            async for _ in stream:
                pass
            return await stream.get_final_response()

    return _run_async(lambda: _openai(sim, asynchronous=True), use)


def _legacy(sim: SimProvider, mode: str, **kw: Any) -> str:
    """Legacy completions; returns the texts joined. In a stream, no chunk without choices reaches
    the user: the usage chunk llmguard asks for is its own."""
    if mode == "sync":
        return "".join(c.text for c in _openai(sim).completions.create(**kw).choices)
    if mode == "stream":
        return _legacy_text(list(_openai(sim).completions.create(stream=True, **kw)))

    async def use(client: Any) -> str:
        if mode == "async":
            return "".join(c.text for c in (await client.completions.create(**kw)).choices)
        return _legacy_text([chunk async for chunk in await client.completions.create(stream=True, **kw)])

    return _run_async(lambda: _openai(sim, asynchronous=True), use)


def _legacy_text(chunks: list[Any]) -> str:
    assert chunks and all(chunk.choices and chunk.usage is None for chunk in chunks)
    return "".join(c.text for chunk in chunks for c in chunk.choices)


def _message(sim: SimProvider, mode: str, **kw: Any) -> Any:
    """An Anthropic message; in "astream" the raw async event stream, its blocks rebuilt here."""
    if mode == "sync":
        return _claude(sim).messages.create(**kw)
    if mode == "stream":
        with _claude(sim).messages.stream(**kw) as stream:
            for _ in stream:
                pass
            return stream.get_final_message()

    async def use(client: Any) -> Any:
        if mode == "async":
            return await client.messages.create(**kw)
        return _assemble([event async for event in await client.messages.create(stream=True, **kw)])

    return _run_async(lambda: _claude(sim, asynchronous=True), use)


def _assemble(events: list[Any]) -> Any:
    """The content blocks of a raw Anthropic event stream, as plain dicts on a simple object."""
    blocks: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    for event in events:
        if event.type == "content_block_start":
            blocks.append(event.content_block.to_dict())
        elif event.type == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                blocks[event.index]["text"] += delta.text
            elif delta.type == "thinking_delta":
                blocks[event.index]["thinking"] += delta.thinking
            elif delta.type == "signature_delta":
                blocks[event.index]["signature"] = delta.signature
            elif delta.type == "input_json_delta":
                partial[event.index] = partial.get(event.index, "") + delta.partial_json
    for index, text in partial.items():
        blocks[index]["input"] = json.loads(text)
    assert events[-1].type == "message_stop"
    return _Assembled(blocks)


class _Assembled:
    def __init__(self, blocks: list[dict[str, Any]]) -> None:
        self.content = blocks


def _blocks(message: Any) -> list[dict[str, Any]]:
    return [b if isinstance(b, dict) else b.to_dict() for b in message.content]


# ---- the scenarios: what a user does with each API ------------------------------------------------


def responses_plain(sim: SimProvider, mode: str) -> None:
    answer = _responses(sim, mode, model=MINI, input="Say something.", instructions="Be brief.")
    assert answer.status == "completed" and answer.output_text


def responses_reasoning(sim: SimProvider, mode: str) -> None:
    answer = _responses(sim, mode, model=REASONER, input="Say something.", reasoning={"effort": "low"})
    assert answer.usage.output_tokens_details.reasoning_tokens > 0


def responses_cut(sim: SimProvider, mode: str) -> None:
    """Cut by max_output_tokens: the stream's final event is `response.incomplete`."""
    answer = _responses(sim, mode, model=MINI, input="Say something.", max_output_tokens=16)
    assert answer.status == "incomplete" and answer.usage.output_tokens == 16


def responses_tool_turn(sim: SimProvider, mode: str) -> None:
    first = _responses(sim, mode, model=MINI, input="What is the weather in Paris?", tools=[RESPONSES_TOOL])
    [call] = first.output
    assert call.type == "function_call"
    result = {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'}
    history = [{"role": "user", "content": "What is the weather in Paris?"}, call.model_dump(), result]
    second = _responses(sim, mode, model=MINI, input=history, tools=[RESPONSES_TOOL], max_output_tokens=64)
    assert [item.type for item in second.output] == ["message"]


def responses_prefix_cache(sim: SimProvider, mode: str) -> None:
    """A long prompt sent twice: the second reads most of it from OpenAI's prompt cache."""
    long_input = _words(2100, f"responses-prefix-{mode}")
    first, second = (_responses(sim, mode, model=MINI, input=long_input, max_output_tokens=16) for _ in "ab")
    assert first.usage.input_tokens_details.cached_tokens == 0 < second.usage.input_tokens_details.cached_tokens


def responses_parse(sim: SimProvider, mode: str) -> None:
    parsed = _responses_parse(sim, mode, model=MINI, input="Forecast please.", text_format=Forecast)
    assert isinstance(parsed.output_parsed, Forecast)


def chat_tool_turn(sim: SimProvider, mode: str) -> None:
    first = _chat(sim, mode, model=MINI, messages=ASK, tools=[CHAT_TOOL])
    message = first.choices[0].message
    [call] = message.tool_calls
    follow_up = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"},
    ]
    second = _chat(sim, mode, model=MINI, messages=follow_up, tools=[CHAT_TOOL], max_tokens=40)
    assert second.choices[0].message.content and not second.choices[0].message.tool_calls


def chat_three_choices(sim: SimProvider, mode: str) -> None:
    answer = _chat(sim, mode, model=MINI, messages=SAY, n=3, max_tokens=20)
    assert len({choice.message.content for choice in answer.choices}) == 3


def chat_parse(sim: SimProvider, mode: str) -> None:
    answer = _chat_parse(sim, mode, model=MINI, messages=ASK, response_format=Forecast)
    assert isinstance(answer.choices[0].message.parsed, Forecast)


def azure_chat(sim: SimProvider, mode: str) -> None:
    answer = _chat(sim, mode, factory=_azure, model=MINI, messages=SAY, max_tokens=12)
    assert answer.choices[0].message.content


def legacy_completions(sim: SimProvider, mode: str) -> None:
    assert _legacy(sim, mode, model=INSTRUCT, prompt="Say something.", max_tokens=7)
    assert _legacy(sim, mode, model=INSTRUCT, prompt=["Say something.", "Say more."], max_tokens=5, n=2)


def claude_caching(sim: SimProvider, mode: str) -> None:
    """A 5-minute write, its read, then a 1-hour write (a prompt not seen before)."""
    salt = f"caching-{mode}"
    for system in (_cached_system(salt), _cached_system(salt), _cached_system(salt + "-1h", "1h")):
        _message(sim, mode, model=HAIKU, max_tokens=5, system=system, messages=SAY)


def claude_thinking(sim: SimProvider, mode: str) -> None:
    answer = _message(sim, mode, model=SONNET, max_tokens=4000, thinking=THINKING, messages=SAY)
    assert [b["type"] for b in _blocks(answer)] == ["thinking", "text"]


def claude_tool_turn(sim: SimProvider, mode: str) -> None:
    ask = [{"role": "user", "content": "What is the weather in Lisbon?"}]
    first = _message(sim, mode, model=SONNET, max_tokens=500, tools=[CLAUDE_TOOL], messages=ask)
    [call] = _blocks(first)
    assert call["type"] == "tool_use"
    follow_up = [
        *ask,
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "18 C"}]},
    ]
    second = _message(sim, mode, model=SONNET, max_tokens=60, tools=[CLAUDE_TOOL], messages=follow_up)
    assert [b["type"] for b in _blocks(second)] == ["text"]


SCENARIOS: dict[str, Callable[[SimProvider, str], None]] = {
    f.__name__: f
    for f in (
        responses_plain,
        responses_reasoning,
        responses_cut,
        responses_prefix_cache,
        responses_tool_turn,
        responses_parse,
        chat_tool_turn,
        chat_three_choices,
        chat_parse,
        azure_chat,
        legacy_completions,
        claude_caching,
        claude_thinking,
        claude_tool_turn,
    )
}
TOKEN_FIELDS = (  # (ledger column, the simulator's bill)
    ("input_tokens", "input_tokens"),
    ("cached_input_tokens", "cached_tokens"),
    ("cache_write_tokens", "cache_write_tokens"),
    ("output_tokens", "output_tokens"),
    ("reasoning_tokens", "reasoning_tokens"),
)


def _books(ledger: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model: the ledger's token sums, its cost, its calls."""
    out: dict[str, dict[str, Any]] = {}
    for row in ledger:
        book = out.setdefault(row["model"], {name: 0 for name, _ in TOKEN_FIELDS} | {"cost": 0.0, "calls": 0})
        for name, _ in TOKEN_FIELDS:
            book[name] += row[name]
        book["cost"] += row["cost_usd"]
        book["calls"] += 1
    return out


def assert_books_match_the_bill(sim: SimProvider, ledger: list[dict[str, Any]], tolerance: float) -> None:
    """One row per request the provider saw, every one metered from usage, the same tokens and
    dollars per model as the simulator's own genai-prices bill."""
    stats = sim.stats
    assert len(ledger) == stats["requests"], [(r["model"], r["status"]) for r in ledger]
    for row in ledger:
        assert (row["status"], row["tokens_approximate"], row["cache_hit"]) == ("ok", 0, 0), row
        assert row["cost_usd"] is not None, row
    books = _books(ledger)
    assert set(books) == set(stats["models"])
    for model, bill in stats["models"].items():
        book = books[model]
        assert book["calls"] == bill["requests"], model
        assert {n: book[n] for n, _ in TOKEN_FIELDS} == {n: bill[b] for n, b in TOKEN_FIELDS}, model
        assert abs(Decimal(repr(book["cost"])) - Decimal(bill["cost_decimal"])) <= Decimal(repr(tolerance)), model


# ---- 1. metered exactly ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_each_api_is_metered_to_the_token_and_the_dollar(fresh_sim, guard, scenario, mode):
    fresh_sim.reset_cache()
    SCENARIOS[scenario](fresh_sim, mode)
    ledger = rows(guard)
    assert ledger, "nothing was recorded"
    assert_books_match_the_bill(fresh_sim, ledger, tolerance=1e-12)


def test_anthropic_1h_and_5m_writes_in_one_stream_keep_their_split(fresh_sim, guard):
    """A 1-hour stretch then a 5-minute one: the stream's message_start carries the TTL split."""
    fresh_sim.reset_cache()
    question = [
        {
            "role": "user",
            "content": [{"type": "text", "text": _words(500, "split-q"), "cache_control": {"type": "ephemeral"}}],
        }
    ]
    system = [{"type": "text", "text": _words(1497, "split-s"), "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    with _claude(fresh_sim).messages.stream(model=SONNET, max_tokens=5, system=system, messages=question) as s:
        usage = s.get_final_message().usage
    assert (
        usage.cache_creation.ephemeral_1h_input_tokens,
        usage.cache_creation.ephemeral_5m_input_tokens,
    ) == (1500, 504)
    [row] = rows(guard)
    # claude-sonnet-4-5: $3 input, $3.75 5m write, $6 1h write, $15 output per million.
    # 3 input + 1500 1h writes + 504 5m writes + 5 output:
    # 3*3 + 1500*6 + 504*3.75 + 5*15 = 9 + 9000 + 1890 + 75 = 10974 micro-dollars
    assert (row["input_tokens"], row["cache_write_tokens"], row["output_tokens"]) == (2007, 2004, 5)
    assert _usd(row["cost_usd"]) == 0.010974
    assert Decimal(fresh_sim.stats["models"][SONNET]["cost_decimal"]) == Decimal("0.010974")


# ---- 2. literal dollars ------------------------------------------------------------------------------


class Clock:
    """A stepped clock for the simulator's prompt cache."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def private_sim():
    """A simulator of this test's own, whose prompt-cache clock the test steps."""
    with SimProvider() as sim:
        yield sim


def _bill(sim: SimProvider, model: str) -> Decimal:
    return Decimal(sim.stats["models"][model]["cost_decimal"])


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "astream"])
def test_anthropic_cache_writes_and_reads_cost_the_published_prices(private_sim, guard, mode):
    sim, clock = private_sim, Clock()
    sim.set_clock(clock)
    system = _cached_system("literal")
    prices: list[str] = []
    for step in (0, 299, 301):  # write; read within 5 minutes; expired after 5 minutes: written again
        clock.now += step
        sim.reset_stats()
        _message(sim, mode, model=HAIKU, max_tokens=5, system=system, messages=SAY)
        prices.append(str(_bill(sim, HAIKU)))
    sim.reset_stats()
    _message(sim, mode, model=HAIKU, max_tokens=5, system=_cached_system("literal-hour", "1h"), messages=SAY)
    prices.append(str(_bill(sim, HAIKU)))
    write, read, rewrite, hour = rows(guard)
    # claude-3-5-haiku-latest per million: input $0.80, output $4, 5m write $1.00, 1h write $1.60,
    # read $0.08. Each call: 10 uncached input, 3,000 cached-prefix tokens, 5 output.
    # 5m write: 10*0.80 + 3000*1.00 + 5*4 = 8 + 3000 + 20 = 3028 micro-dollars
    assert (write["input_tokens"], write["cache_write_tokens"], write["cached_input_tokens"]) == (
        3010,
        3000,
        0,
    )
    assert _usd(write["cost_usd"]) == 0.003028
    # read: 10*0.80 + 3000*0.08 + 5*4 = 8 + 240 + 20 = 268 micro-dollars
    assert (read["input_tokens"], read["cache_write_tokens"], read["cached_input_tokens"]) == (3010, 0, 3000)
    assert _usd(read["cost_usd"]) == 0.000268
    assert (rewrite["cache_write_tokens"], _usd(rewrite["cost_usd"])) == (3000, 0.003028)
    # 1h write: 10*0.80 + 3000*1.60 + 5*4 = 8 + 4800 + 20 = 4828 micro-dollars
    assert (hour["input_tokens"], hour["cache_write_tokens"], hour["output_tokens"]) == (3010, 3000, 5)
    assert _usd(hour["cost_usd"]) == 0.004828
    assert [Decimal(p) for p in prices] == [
        Decimal("0.003028"),
        Decimal("0.000268"),
        Decimal("0.003028"),
        Decimal("0.004828"),
    ]


@pytest.mark.parametrize("mode", MODES)
def test_three_choices_cost_three_answers_and_one_prompt(fresh_sim, guard, mode):
    _chat(fresh_sim, mode, model=MINI, messages=SAY, n=3, max_tokens=20)
    [row] = rows(guard)
    # gpt-4o-mini: $0.15 input, $0.60 output per million. The prompt is billed once (10 tokens), the
    # three answers all stop at max_tokens=20: 10*0.15 + 60*0.60 = 1.5 + 36 = 37.5 micro-dollars
    assert (row["input_tokens"], row["output_tokens"]) == (10, 60)
    assert _usd(row["cost_usd"]) == 0.0000375
    assert _bill(fresh_sim, MINI) == Decimal("0.0000375")


@pytest.mark.parametrize("mode", MODES)
def test_a_responses_call_costs_the_published_price(fresh_sim, guard, mode):
    _responses(fresh_sim, mode, model=MINI, input="Say something.", instructions="Be brief.", max_output_tokens=200)
    [row] = rows(guard)
    # gpt-4o-mini: 16 input (instructions + input), 134 output: 16*0.15 + 134*0.60 = 2.4 + 80.4 = 82.8
    assert (row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (16, 134, 0)
    assert _usd(row["cost_usd"]) == 0.0000828
    assert _bill(fresh_sim, MINI) == Decimal("0.0000828")


@pytest.mark.parametrize("mode", MODES)
def test_a_reasoning_responses_call_bills_its_hidden_reasoning_as_output(fresh_sim, guard, mode):
    _responses(
        fresh_sim,
        mode,
        model=REASONER,
        input="Say something.",
        instructions="Be brief.",
        reasoning={"effort": "low"},
        max_output_tokens=2000,
    )
    [row] = rows(guard)
    # o4-mini: $1.10 input, $4.40 output per million; 448 reasoning tokens are inside the 575 output.
    # 16*1.10 + 575*4.40 = 17.6 + 2530 = 2547.6 micro-dollars
    assert (row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (16, 575, 448)
    assert _usd(row["cost_usd"]) == 0.0025476
    assert _bill(fresh_sim, REASONER) == Decimal("0.0025476")


@pytest.mark.parametrize("mode", MODES)
def test_a_tool_call_turn_costs_the_published_price(fresh_sim, guard, mode):
    answer = _chat(fresh_sim, mode, model=MINI, messages=ASK, tools=[CHAT_TOOL], max_tokens=100)
    assert answer.choices[0].message.tool_calls[0].function.arguments == '{"city":"kind","unit":"celsius","days":6}'
    [row] = rows(guard)
    # gpt-4o-mini: 129 input (the messages and the tool's JSON), 16 output (name + arguments):
    # 129*0.15 + 16*0.60 = 19.35 + 9.6 = 28.95 micro-dollars
    assert (row["input_tokens"], row["output_tokens"]) == (129, 16)
    assert _usd(row["cost_usd"]) == 0.00002895
    assert _bill(fresh_sim, MINI) == Decimal("0.00002895")


@pytest.mark.parametrize("mode", MODES)
def test_a_responses_tool_call_costs_the_published_price(fresh_sim, guard, mode):
    answer = _responses(
        fresh_sim,
        mode,
        model=MINI,
        input="What is the weather in Paris?",
        tools=[RESPONSES_TOOL],
        max_output_tokens=100,
    )
    assert [item.type for item in answer.output] == ["function_call"]
    [row] = rows(guard)
    # gpt-4o-mini: 120 input, 15 output: 120*0.15 + 15*0.60 = 18 + 9 = 27 micro-dollars
    assert (row["input_tokens"], row["output_tokens"]) == (120, 15)
    assert _usd(row["cost_usd"]) == 0.000027
    assert _bill(fresh_sim, MINI) == Decimal("0.000027")


@pytest.mark.parametrize("mode", MODES)
def test_anthropic_thinking_tokens_are_output_and_recorded_as_reasoning(fresh_sim, guard, mode):
    _message(fresh_sim, mode, model=SONNET, max_tokens=4000, thinking=THINKING, messages=SAY)
    [row] = rows(guard)
    # claude-sonnet-4-5: $3 input, $15 output per million; 1,305 thinking tokens are inside the 1,400 output.
    # 10*3 + 1400*15 = 30 + 21000 = 21030 micro-dollars
    assert (row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (10, 1400, 1305)
    assert _usd(row["cost_usd"]) == 0.02103
    assert _bill(fresh_sim, SONNET) == Decimal("0.02103")


@pytest.mark.parametrize("mode", MODES)
def test_a_legacy_completion_costs_the_published_price(fresh_sim, guard, mode):
    _legacy(fresh_sim, mode, model=INSTRUCT, prompt=["Say something.", "Say more."], max_tokens=5, n=2)
    [row] = rows(guard)
    # gpt-3.5-turbo-instruct: $1.50 input, $2 output per million. Prompts "Say something." (3 tokens)
    # and "Say more." (3): 6 input; 2 prompts x 2 choices x 5 = 20 output: 6*1.5 + 20*2 = 9 + 40 = 49
    assert (row["input_tokens"], row["output_tokens"], row["tokens_approximate"]) == (6, 20, 0)
    assert _usd(row["cost_usd"]) == 0.000049
    assert _bill(fresh_sim, INSTRUCT) == Decimal("0.000049")


def test_listing_models_passes_through_unmetered(fresh_sim, guard):
    assert MINI in [m.id for m in _openai(fresh_sim).models.list()]
    assert [m.id for m in _azure(fresh_sim).models.list()][0] == MINI
    assert rows(guard) == []


# ---- 3. a mixed batch --------------------------------------------------------------------------------


def test_a_mixed_batch_matches_the_bill_per_model(fresh_sim, guard):
    fresh_sim.reset_cache()
    for index, name in enumerate(SCENARIOS):
        for mode in (MODES[index % 4], MODES[(index + 1) % 4], MODES[(index + 2) % 4]):
            SCENARIOS[name](fresh_sim, mode)
    ledger = rows(guard)
    assert {r["model"] for r in ledger} == {MINI, REASONER, INSTRUCT, HAIKU, SONNET}
    assert {r["endpoint"] for r in ledger} == {"responses", "chat.completions", "completions", "messages"}
    assert {bool(r["stream"]) for r in ledger} == {True, False}
    assert_books_match_the_bill(fresh_sim, ledger, tolerance=1e-9)


# ---- 4. the worst case reserved against the budget ---------------------------------------------------


@pytest.fixture
def budgeted(home):
    guard = llmguard.install(home=str(home), budget_usd=1.0)
    yield guard
    llmguard.uninstall()


def _reserved(row: dict[str, Any]) -> float:
    assert row["reserved_usd"] is not None, "no reservation was made"
    return round(row["reserved_usd"], 12)


def test_n_choices_reserve_n_times_max_tokens(fresh_sim, budgeted):
    _chat(fresh_sim, "sync", model=MINI, messages=SAY, n=3, max_tokens=20)
    [row] = rows(budgeted)
    # estimated prompt 10 + 3 choices x 20: 10*0.15 + 60*0.60 = 1.5 + 36 = 37.5 micro-dollars
    assert row["estimated_tokens"] == 10 + 3 * 20
    assert _reserved(row) == 0.0000375


def test_responses_reserve_max_output_tokens(fresh_sim, budgeted):
    _responses(
        fresh_sim,
        "stream",
        model=MINI,
        input="Say something.",
        instructions="Be brief.",
        max_output_tokens=300,
    )
    [row] = rows(budgeted)
    # estimated prompt 16 + 300: 16*0.15 + 300*0.60 = 2.4 + 180 = 182.4 micro-dollars
    assert row["estimated_tokens"] == 16 + 300
    assert _reserved(row) == 0.0001824


def test_anthropic_thinking_reserves_max_tokens_which_holds_the_thinking_budget(fresh_sim, budgeted):
    _message(fresh_sim, "sync", model=SONNET, max_tokens=4000, thinking=THINKING, messages=SAY)
    [row] = rows(budgeted)
    # estimated prompt 10 + max_tokens 4000 (thinking included): 10*3 + 4000*15 = 30 + 60000 = 60030
    assert row["estimated_tokens"] == 10 + 4000
    assert _reserved(row) == 0.06003
    assert row["reserved_usd"] >= row["cost_usd"]


@pytest.mark.parametrize(("ttl", "write_mtok"), [(None, 1.00), ("1h", 1.60)])
def test_a_cache_control_prompt_is_reserved_as_cache_writes(fresh_sim, budgeted, ttl, write_mtok):
    fresh_sim.reset_cache()
    system = _cached_system(f"reserve-{ttl}", ttl)
    _message(fresh_sim, "sync", model=HAIKU, max_tokens=5, system=system, messages=SAY)
    [row] = rows(budgeted)
    prompt = row["estimated_tokens"] - 5
    assert prompt == 3010 == row["input_tokens"]  # 3 + 2,997 system, 3 + "user" + 3, 3 priming
    # every prompt token written: 5m 3010*1.00 + 5*4 = 3030; 1h 3010*1.60 + 5*4 = 4836 micro-dollars
    assert _reserved(row) == round((prompt * write_mtok + 5 * 4) / 1e6, 12) == {None: 0.00303, "1h": 0.004836}[ttl]
    assert row["reserved_usd"] >= row["cost_usd"]


def test_a_top_level_cache_control_is_reserved_as_cache_writes(fresh_sim, budgeted):
    """Automatic caching (`cache_control` beside `messages`) writes the whole prompt too."""
    fresh_sim.reset_cache()
    messages = [{"role": "user", "content": _words(1200, "automatic")}]
    _message(fresh_sim, "sync", model=SONNET, max_tokens=5, messages=messages, cache_control={"type": "ephemeral"})
    [row] = rows(budgeted)
    assert row["cache_write_tokens"] == 1204
    prompt = row["estimated_tokens"] - 5
    assert prompt == 1207 == row["input_tokens"]
    # claude-sonnet-4-5 5m write $3.75, output $15: 1207*3.75 + 5*15 = 4526.25 + 75 = 4601.25 micro-dollars
    assert _reserved(row) == 0.00460125
    assert row["reserved_usd"] >= row["cost_usd"]


@pytest.mark.parametrize("api", ["chat", "responses", "anthropic"])
def test_tool_definitions_count_in_the_reserved_prompt(fresh_sim, budgeted, api):
    """The tools' JSON is part of the prompt the provider bills: a worst case without it is no bound."""
    if api == "chat":
        _chat(fresh_sim, "sync", model=MINI, messages=ASK, tools=[CHAT_TOOL], max_tokens=16)
    elif api == "responses":
        _responses(
            fresh_sim,
            "sync",
            model=MINI,
            input="What is the weather in Paris?",
            tools=[RESPONSES_TOOL],
            max_output_tokens=16,
        )
    else:
        _message(fresh_sim, "sync", model=SONNET, max_tokens=16, tools=[CLAUDE_TOOL], messages=ASK)
    [row] = rows(budgeted)
    assert row["estimated_tokens"] - 16 >= row["input_tokens"], row
    assert row["reserved_usd"] >= row["cost_usd"]


def test_legacy_completions_reserve_every_prompt_times_every_choice(fresh_sim, budgeted):
    _legacy(fresh_sim, "sync", model=INSTRUCT, prompt=["Say something.", "Say more."], max_tokens=5, n=2)
    [row] = rows(budgeted)
    assert row["output_tokens"] == 20  # 2 prompts x 2 choices x 5
    prompt = row["estimated_tokens"] - 20
    assert prompt >= row["input_tokens"] == 6
    # gpt-3.5-turbo-instruct: $1.50 input, $2 output per million
    assert _reserved(row) == round((prompt * 1.5 + 20 * 2) / 1e6, 12)
    assert row["reserved_usd"] >= row["cost_usd"]


def test_legacy_completions_without_max_tokens_reserve_the_apis_default_of_16(fresh_sim, budgeted):
    _legacy(fresh_sim, "sync", model=INSTRUCT, prompt="Say something.", n=2)
    [row] = rows(budgeted)
    assert row["output_tokens"] == 32  # the API stops each choice at 16
    prompt = row["estimated_tokens"] - 32  # not 2 x 4,096 (assumed_max_tokens)
    assert prompt >= row["input_tokens"] == 3
    assert _reserved(row) == round((prompt * 1.5 + 32 * 2) / 1e6, 12)


def test_a_cut_cache_control_call_is_recorded_at_the_cache_write_worst_case(fresh_sim, home):
    guard = llmguard.install(home=str(home), max_attempts=1)
    fresh_sim.configure(faults=["cut"])
    with pytest.raises(anthropic.APIConnectionError):
        _message(fresh_sim, "sync", model=HAIKU, max_tokens=5, system=_cached_system("cut", "1h"), messages=SAY)
    [row] = rows(guard)
    assert (row["error_type"], row["tokens_approximate"], row["input_tokens"]) == ("truncated", 1, 3010)
    # the provider may have written all 3,010 prompt tokens for an hour: 3010*1.60 + 5*4 = 4836 micro-dollars
    # (3010*0.80 + 5*4 = 2428 if they are priced as plain input)
    assert _usd(row["cost_usd"]) == 0.004836


REFUSED = {
    # budget, the call: each would fit with one choice / the prompt read uncached / the thinking
    # budget alone, and does not fit with the bound the provider may bill
    "n_choices": (0.001, lambda sim: _chat(sim, "sync", model=MINI, messages=SAY, n=3, max_tokens=1000)),
    "responses": (
        0.001,
        lambda sim: _responses(sim, "stream", model=MINI, input="Hi", max_output_tokens=2000),
    ),
    "thinking": (
        0.05,
        lambda sim: _message(sim, "sync", model=SONNET, max_tokens=4000, thinking=THINKING, messages=SAY),
    ),
    "cache_1h": (
        0.004,
        lambda sim: _message(
            sim, "async", model=HAIKU, max_tokens=5, system=_cached_system("refused", "1h"), messages=SAY
        ),
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_budget_below_the_worst_case_refuses_before_sending(fresh_sim, home, case):
    budget, call = REFUSED[case]
    guard = llmguard.install(home=str(home), budget_usd=budget)
    before = fresh_sim.stats["requests"]
    with pytest.raises((openai.RateLimitError, anthropic.RateLimitError)) as caught:
        call(fresh_sim)
    assert "llmguard" in str(caught.value) and "budget" in str(caught.value).lower()
    assert fresh_sim.stats["requests"] == before  # nothing reached the provider
    [row] = rows(guard)
    assert (row["status"], row["error_type"], row["cost_usd"]) == ("refused", "budget", 0.0)


@pytest.mark.parametrize("n", [1, 3])
def test_the_rate_limiter_admits_prompt_plus_n_times_max_tokens(fresh_sim, home, n):
    """The limiter charges the same bound: 10 + 400 fits a 1,000-token minute, 10 + 3 x 400 never will."""
    guard = llmguard.install(home=str(home), limits={MINI: {"tpm": 1000}})
    if n == 1:
        _chat(fresh_sim, "sync", model=MINI, messages=SAY, max_tokens=400)
        [row] = rows(guard)
        assert (row["status"], row["estimated_tokens"]) == ("ok", 410)
        return
    with pytest.raises(openai.RateLimitError, match="llmguard"):
        _chat(fresh_sim, "sync", model=MINI, messages=SAY, n=3, max_tokens=400)
    assert fresh_sim.stats["requests"] == 0
    [row] = rows(guard)
    assert (row["status"], row["error_type"], row["estimated_tokens"]) == ("refused", "rate_limit", 1210)


# ---- 5. deterministic calls replay from the cache ---------------------------------------------------


def _dump(answer: Any) -> Any:
    if isinstance(answer, list):
        return [_dump(item) for item in answer]
    # warnings=False: the SDK's parsed types warn when dumping their `parsed` field
    return answer.model_dump(warnings=False) if hasattr(answer, "model_dump") else answer


REPLAYS: dict[str, Callable[[SimProvider], Any]] = {
    "chat_tool_call": lambda sim: _openai(sim).chat.completions.create(
        model=MINI, messages=ASK, tools=[CHAT_TOOL], temperature=0
    ),
    "chat_tool_call_stream": lambda sim: list(
        _openai(sim).chat.completions.create(model=MINI, messages=ASK, tools=[CHAT_TOOL], temperature=0, stream=True)
    ),
    "chat_tool_call_async": lambda sim: _run_async(
        lambda: _openai(sim, asynchronous=True),
        lambda c: c.chat.completions.create(model=MINI, messages=ASK, tools=[CHAT_TOOL], temperature=0),
    ),
    "chat_parse": lambda sim: _openai(sim).chat.completions.parse(
        model=MINI, messages=ASK, response_format=Forecast, temperature=0
    ),
    "responses": lambda sim: _openai(sim).responses.create(model=MINI, input="Say something.", temperature=0),
    "responses_stream": lambda sim: list(
        _openai(sim).responses.create(model=MINI, input="Say something.", temperature=0, stream=True)
    ),
    "responses_incomplete_stream": lambda sim: list(
        _openai(sim).responses.create(
            model=MINI, input="Say something.", temperature=0, stream=True, max_output_tokens=16
        )
    ),
    "responses_tool_call": lambda sim: _openai(sim).responses.create(
        model=MINI, input="What is the weather in Paris?", tools=[RESPONSES_TOOL], temperature=0
    ),
    "legacy_stream": lambda sim: list(
        _openai(sim).completions.create(
            model=INSTRUCT, prompt="Say something.", max_tokens=7, temperature=0, stream=True
        )
    ),
    "anthropic": lambda sim: _claude(sim).messages.create(
        model=SONNET, max_tokens=40, messages=SAY, extra_body={"temperature": 0}
    ),
    "anthropic_stream": lambda sim: list(
        _claude(sim).messages.create(
            model=SONNET, max_tokens=40, messages=SAY, extra_body={"temperature": 0}, stream=True
        )
    ),
    "anthropic_tool_use": lambda sim: _claude(sim).messages.create(
        model=SONNET,
        max_tokens=200,
        tools=[CLAUDE_TOOL],
        tool_choice={"type": "any"},
        messages=ASK,
        extra_body={"temperature": 0},
    ),
}


@pytest.mark.parametrize("case", list(REPLAYS))
def test_a_deterministic_answer_replays_from_the_cache_intact(fresh_sim, guard, case):
    first = REPLAYS[case](fresh_sim)
    sent = fresh_sim.stats["requests"]
    second = REPLAYS[case](fresh_sim)
    assert fresh_sim.stats["requests"] == sent == 1  # the second answer never reached the provider
    original, replay = rows(guard)
    assert (original["status"], original["cache_hit"], original["tokens_approximate"]) == ("ok", 0, 0)
    assert (replay["cache_hit"], replay["cost_usd"]) == (1, 0.0)
    assert replay["saved_usd"] == original["cost_usd"] > 0
    assert type(second) is type(first)
    assert _dump(second) == _dump(first)  # tool calls, parsed output, every stream event
    if isinstance(first, list):
        assert len(first) > 3 and all(type(a) is type(b) for a, b in zip(first, second, strict=True))
    if case.startswith("chat_tool"):
        calls = (second[0].choices[0].delta if isinstance(second, list) else second.choices[0].message).tool_calls
        assert calls and calls[0].function.name == "get_weather"


# ---- 6. the report -----------------------------------------------------------------------------------


def test_the_report_lists_every_model_and_the_total_cost(fresh_sim, home, capsys):
    from llmguard import cli

    fresh_sim.reset_cache()
    llmguard.install(home=str(home))
    for mode, name in zip(["sync", "stream", "async", "astream"] * 4, SCENARIOS, strict=False):
        SCENARIOS[name](fresh_sim, mode)
    llmguard.uninstall()
    ledger = rows(home)
    books = _books(ledger)
    assert set(books) == set(fresh_sim.stats["models"])

    assert cli.main(["report", "--home", str(home), "--format", "json", "--by", "model"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_model = {row["model"]: row for row in report["rows"]}
    assert set(by_model) == set(books)
    for model, book in books.items():
        row = by_model[model]
        assert row["calls"] == book["calls"], model
        assert (row["input_tokens"], row["output_tokens"]) == (book["input_tokens"], book["output_tokens"]), model
        assert row["reasoning_tokens"] == book["reasoning_tokens"], model
        assert row["cost_usd"] == pytest.approx(float(_bill(fresh_sim, model)), abs=1e-9), model
    assert report["total"]["cost_usd"] == pytest.approx(float(fresh_sim.cost_decimal()), abs=1e-9)
    assert report["total"]["calls"] == len(ledger) == fresh_sim.stats["requests"]

    env = {**os.environ, "LLMGUARD_HOME": str(home), "COLUMNS": "200"}
    shown = subprocess.run(
        [sys.executable, "-m", "llmguard.cli", "report"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    lines = shown.splitlines()
    for model in books:  # the model's row of the cost table shows the simulator's bill
        assert any(model in line and usd(float(_bill(fresh_sim, model))) in line for line in lines), model
    total = float(fresh_sim.cost_decimal())
    assert f"{len(ledger)} calls · {usd(total)}" in lines[0], lines[0]
    assert any("total" in line and usd(total) in line for line in lines), shown


# ---- wire shapes of the real APIs that the simulator does not send --------------------------------
# The events are the simulator's own stream with one event changed to the documented shape, each
# validated by the SDK's pydantic types, then read by the adapter the meter uses.


def _raw_stream(sim: SimProvider, path: str, body: dict[str, Any], headers: dict[str, str]) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        sim.base_url + path,
        data=json.dumps({**body, "stream": True}).encode(),
        headers={"content-type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    return [json.loads(event_fields(block.encode())[1]) for block in text.split("\n\n") if block.strip()]


def _observe(adapter: Any, events: list[dict[str, Any]], validate: Callable[[Any], Any]) -> StreamState:
    state = StreamState()
    for event in events:
        if event["type"] != "ping":  # the SDK's union leaves out pings (its decoder drops them)
            validate(event)
        adapter.observe_event(state, event["type"], json.dumps(event))
    return state


def test_anthropic_cumulative_message_delta_keeps_the_one_hour_split(private_sim):
    """The real API repeats the cumulative input, cache read and cache write counts in message_delta,
    without `cache_creation`'s TTL split: the split from message_start must survive it."""
    body = {"model": HAIKU, "max_tokens": 5, "system": _cached_system("cumulative", "1h"), "messages": SAY}
    events = _raw_stream(private_sim, "/v1/messages", body, {"anthropic-version": "2023-06-01"})
    [delta] = [e for e in events if e["type"] == "message_delta"]
    delta["usage"] = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 3000,
        "cache_read_input_tokens": 0,
        "output_tokens": 5,
    }
    state = _observe(
        anthropic_adapter, events, pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent).validate_python
    )
    assert state.complete and state.saw_usage
    assert state.usage == Usage(input_tokens=3010, cache_write_tokens=3000, output_tokens=5, cache_write_1h_tokens=3000)
    # 1h write: 10*0.80 + 3000*1.60 + 5*4 = 8 + 4800 + 20 = 4828 micro-dollars (a 5m write would be 3028)
    assert Pricer().cost("anthropic", HAIKU, state.usage) == Decimal("0.004828") == _bill(private_sim, HAIKU)


def test_anthropic_cumulative_message_delta_replaces_what_it_repeats(private_sim):
    body = {"model": SONNET, "max_tokens": 4000, "thinking": THINKING, "messages": SAY}
    events = _raw_stream(private_sim, "/v1/messages", body, {"anthropic-version": "2023-06-01"})
    [delta] = [e for e in events if e["type"] == "message_delta"]
    delta["usage"] = {**delta["usage"], "input_tokens": 12, "cache_read_input_tokens": 0}
    state = _observe(
        anthropic_adapter, events, pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent).validate_python
    )
    assert state.usage == Usage(input_tokens=12, output_tokens=1400, reasoning_tokens=1305)


def test_a_failed_responses_stream_is_an_error_that_keeps_its_usage(fresh_sim):
    events = _raw_stream(fresh_sim, "/v1/responses", {"model": MINI, "input": "Say something."}, {})
    final = events[-1]
    assert final["type"] == "response.completed"
    final["type"] = "response.failed"
    final["response"] = {
        **final["response"],
        "status": "failed",
        "error": {"code": "server_error", "message": "The model stopped."},
    }
    state = _observe(openai_adapter, events, pydantic.TypeAdapter(ResponseStreamEvent).validate_python)
    assert (state.complete, state.error, state.saw_usage) == (True, "The model stopped.", True)
    assert state.usage.input_tokens == 10 and state.usage.output_tokens == final["response"]["usage"]["output_tokens"]


def test_an_error_event_in_a_responses_stream_is_recorded(fresh_sim):
    events = _raw_stream(fresh_sim, "/v1/responses", {"model": MINI, "input": "Say something."}, {})[:2]
    events.append(
        {
            "type": "error",
            "code": "server_error",
            "message": "Upstream overloaded",
            "param": None,
            "sequence_number": 2,
        }
    )
    state = _observe(openai_adapter, events, pydantic.TypeAdapter(ResponseStreamEvent).validate_python)
    assert (state.complete, state.error) == (False, "Upstream overloaded")
