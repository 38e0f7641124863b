"""The guard under the real SDKs, over real HTTP, against the simulated provider."""

from __future__ import annotations

import asyncio
import json
import warnings

import pytest

import llmguard
from tests.conftest import anthropic_client, openai_client, rows

MSG = [{"role": "user", "content": "Summarise the refund policy in two sentences."}]


def _strip(obj):
    """Model dump without the fields a server makes fresh per response."""
    data = obj.model_dump()
    data.pop("id", None)
    data.pop("created", None)
    if "message" in data and isinstance(data["message"], dict):
        data["message"].pop("id", None)
    return data


def _openai_sync(sim, stream):
    client = openai_client(sim)
    if stream:
        return [
            _strip(c)
            for c in client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=40, stream=True)
        ]
    return _strip(client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=40))


def _openai_async(sim, stream):
    async def go():
        client = openai_client(sim, asynchronous=True)
        if stream:
            out = []
            async for chunk in await client.chat.completions.create(
                model="gpt-4o-mini", messages=MSG, max_tokens=40, stream=True
            ):
                out.append(_strip(chunk))
            return out
        return _strip(await client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=40))

    return asyncio.run(go())


def _anthropic_sync(sim, stream):
    client = anthropic_client(sim)
    if stream:
        return [
            _strip_event(e)
            for e in client.messages.create(model="claude-3-5-haiku-latest", max_tokens=40, messages=MSG, stream=True)
        ]
    return _strip(client.messages.create(model="claude-3-5-haiku-latest", max_tokens=40, messages=MSG))


def _anthropic_async(sim, stream):
    async def go():
        client = anthropic_client(sim, asynchronous=True)
        if stream:
            out = []
            async for event in await client.messages.create(
                model="claude-3-5-haiku-latest", max_tokens=40, messages=MSG, stream=True
            ):
                out.append(_strip_event(event))
            return out
        return _strip(await client.messages.create(model="claude-3-5-haiku-latest", max_tokens=40, messages=MSG))

    return asyncio.run(go())


def _strip_event(event):
    data = event.model_dump()
    if isinstance(data.get("message"), dict):
        data["message"].pop("id", None)
    return data


CASES = {
    "openai-sync": _openai_sync,
    "openai-async": _openai_async,
    "anthropic-sync": _anthropic_sync,
    "anthropic-async": _anthropic_async,
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_guard_returns_exactly_what_the_sdk_returns_and_writes_one_row(fresh_sim, home, case, stream):
    call = CASES[case]
    bare = call(fresh_sim, stream)
    guard = llmguard.install(home=str(home))
    guarded = call(fresh_sim, stream)
    assert guarded == bare
    if stream:
        assert len(guarded) > 3  # a real stream of several chunks/events
        if case.startswith("openai"):
            assert all(chunk["choices"] for chunk in guarded)  # the injected usage chunk never shows
    events = rows(guard)
    assert len(events) == 1
    event = events[0]
    assert event["status"] == "ok" and event["stream"] == int(stream)
    assert event["input_tokens"] > 0 and event["output_tokens"] > 0 and event["cost_usd"] > 0
    if stream:
        assert event["ttft_ms"] is not None and event["ttft_ms"] <= event["total_ms"]


def test_mixed_batch_books_equal_the_providers_bill(fresh_sim, guard):
    client, claude = openai_client(fresh_sim), anthropic_client(fresh_sim)
    long_doc = "Operations review: revenue, staffing, incidents and billing. " * 150  # > 1024 tokens
    for i in range(6):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}], max_tokens=30
        )
    for _ in range(2):  # the second sees a cached prefix
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": long_doc}], max_tokens=60)
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=50, stream=True):
        pass
    client.chat.completions.create(model="o3-mini", messages=MSG, max_completion_tokens=200)
    client.embeddings.create(model="text-embedding-3-small", input=["a", "b c"])
    claude.messages.create(model="claude-3-5-haiku-latest", max_tokens=50, messages=MSG)
    with claude.messages.stream(model="claude-3-5-haiku-latest", max_tokens=50, messages=MSG) as stream:
        stream.get_final_message()

    truth = fresh_sim.stats["models"]
    books: dict[str, dict[str, float]] = {}
    for event in rows(guard):
        assert event["status"] == "ok", event
        model = books.setdefault(
            event["requested_model"],
            {
                k: 0
                for k in ("requests", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "cost_usd")
            },
        )
        model["requests"] += 1
        model["input_tokens"] += event["input_tokens"]
        model["cached_tokens"] += event["cached_input_tokens"]
        model["output_tokens"] += event["output_tokens"]
        model["reasoning_tokens"] += event["reasoning_tokens"]
        model["cost_usd"] += event["cost_usd"]
    assert set(books) == set(truth)
    assert books["gpt-4o"]["cached_tokens"] >= 1024
    assert books["o3-mini"]["reasoning_tokens"] > 0
    for model, ours in books.items():
        theirs = truth[model]
        for key in ("requests", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens"):
            assert ours[key] == theirs[key], (model, key)
        assert ours["cost_usd"] == pytest.approx(theirs["cost_usd"], rel=1e-12, abs=1e-15), model


def test_clients_created_before_install_are_covered_and_uninstall_stops_recording(fresh_sim, home):
    before = openai_client(fresh_sim)
    before_async = openai_client(fresh_sim, asynchronous=True)
    guard = llmguard.install(home=str(home))
    before.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    asyncio.run(before_async.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5))
    copy = before.with_options(timeout=20)
    copy.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert len(rows(guard)) == 3
    llmguard.uninstall()
    before.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert len(rows(home)) == 3
    assert fresh_sim.stats["requests"] == 5


def test_abandoned_stream_is_recorded_as_incomplete_without_hanging(fresh_sim, guard):
    fresh_sim.configure(per_token_ms=20)  # tokens arrive one by one, as from a real model
    client = openai_client(fresh_sim)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=200, stream=True)
    seen = []
    for chunk in stream:
        seen.append(chunk)
        if len(seen) == 2:
            break
    stream.close()
    [event] = rows(guard)
    assert event["status"] == "incomplete"
    assert event["tokens_approximate"] == 1
    assert event["input_tokens"] > 0  # the prompt, counted locally
    assert event["output_tokens"] >= 1  # the content chunks seen before the user left
    assert "closed before its final event" in event["error_message"]


def test_non_sdk_requests_pass_through_untouched(fresh_sim, guard):
    import httpx2

    with httpx2.Client() as plain:
        response = plain.get(fresh_sim.base_url + "/_sim/stats")
    assert response.status_code == 200
    assert rows(guard) == []


def test_unknown_model_is_recorded_with_cost_unknown_and_the_user_is_told_once(fresh_sim, guard):
    client = openai_client(fresh_sim)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            client.chat.completions.create(model="my-local-model-7b", messages=MSG, max_tokens=5)
    told = [w for w in caught if "no price is known for model 'my-local-model-7b'" in str(w.message)]
    assert len(told) == 1 and "input_mtok" in str(told[0].message)
    events = rows(guard)
    assert len(events) == 3 and all(e["cost_usd"] is None and e["input_tokens"] > 0 for e in events)


def test_price_override_prices_a_local_model(fresh_sim, home):
    guard = llmguard.install(home=str(home), prices={"my-local-model-7b": {"input_mtok": 1, "output_mtok": 2}})
    openai_client(fresh_sim).chat.completions.create(model="my-local-model-7b", messages=MSG, max_tokens=5)
    [event] = rows(guard)
    assert event["cost_usd"] == pytest.approx((event["input_tokens"] * 1 + event["output_tokens"] * 2) / 1e6)


def test_non_json_body_passes_through_and_is_recorded_as_unreadable(fresh_sim, guard):
    client = openai_client(fresh_sim)
    response = client._client.post(
        fresh_sim.base_url + "/v1/chat/completions",
        content=b"{not json",
        headers={"x-stainless-lang": "python", "content-type": "application/json", "authorization": "Bearer sk-x"},
    )
    assert response.status_code == 400
    [event] = rows(guard)
    assert event["error_type"] == "unreadable_request"
    assert "could not read the request" in event["error_message"]


def test_unwritable_home_still_answers_and_says_why_once(fresh_sim, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        guard = llmguard.install(home=str(blocker / "home"))
        client = openai_client(fresh_sim)
        for _ in range(2):
            answer = client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
            assert answer.choices[0].message.content
    told = [w for w in caught if "nothing is recorded" in str(w.message)]
    assert len(told) == 1 and "LLMGUARD_HOME" in str(told[0].message)
    assert guard.metrics.snapshot()["calls"] == 2  # still metered in memory


def test_no_api_key_reaches_any_file(fresh_sim, guard, home):
    from tests.conftest import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY

    fresh_sim.configure(faults=["500", "429"])
    client, claude = openai_client(fresh_sim), anthropic_client(fresh_sim)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    claude.messages.create(model="claude-3-5-haiku-latest", max_tokens=5, messages=MSG)
    import openai

    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MSG,
            max_tokens=5,
            extra_headers={"x-debug": FAKE_OPENAI_KEY},
            extra_body={"messages": "not-a-list"},
        )
    llmguard.uninstall()
    files = [p for p in home.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for key in (FAKE_OPENAI_KEY, FAKE_ANTHROPIC_KEY):
            assert key.encode() not in data, path
            assert key[-10:].encode() not in data, path


def test_home_is_owner_only(guard, home):
    assert home.stat().st_mode & 0o777 == 0o700


def test_tags_and_steps_are_attributed(fresh_sim, guard):
    client = openai_client(fresh_sim)
    with llmguard.tag(tenant="acme", feature="summary", prompt_version="v3", doc_ids="a,b"):
        with llmguard.step("retrieval"), llmguard.tag(user="ana", priority="background"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    first, second = rows(guard)
    assert (first["tenant"], first["feature"], first["prompt_version"], first["user"], first["priority"]) == (
        "acme",
        "summary",
        "v3",
        "ana",
        "background",
    )
    assert first["tags"] == {"doc_ids": "a,b"} and "retrieval" in first["steps"]
    assert second["tenant"] is None and second["priority"] == "interactive" and second["steps"] == {}


def test_legacy_httpx_clients_are_guarded_too(fresh_sim, guard):
    httpx = pytest.importorskip("httpx")
    import openai

    # built the way a user would, SDK defaults and all: the test is that the guard still intercepts it
    client = openai.OpenAI(base_url=fresh_sim.base_url + "/v1", api_key="sk-legacy-123456", http_client=httpx.Client())  # noqa: LG201
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert answer.choices[0].message.content
    [event] = rows(guard)
    assert event["status"] == "ok" and event["output_tokens"] > 0


def test_ledger_row_is_in_the_file_before_the_response_returns(fresh_sim, guard):
    client = openai_client(fresh_sim)
    for i in range(5):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
        assert len(rows(guard)) == i + 1  # read by a separate connection


def test_ledger_rows_are_json_safe(fresh_sim, guard):
    openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    json.dumps(rows(guard))


def test_a_response_without_usage_is_recorded_with_estimated_tokens(fresh_sim, guard):
    fresh_sim.configure(faults=["no_usage"])
    answer = openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert answer.usage is None and answer.choices[0].message.content
    [event] = rows(guard)
    assert event["status"] == "ok" and event["tokens_approximate"] == 1
    assert event["input_tokens"] > 0 and "carried no usage" in event["error_message"]
