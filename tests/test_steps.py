"""A call carries the steps it ran inside, with their own duration when the call ends, and only those."""

from __future__ import annotations

import asyncio
import time

import llmguard
from tests.conftest import openai_client, rows

MSG = [{"role": "user", "content": "Summarise the plan."}]


def _ask(sim):
    return openai_client(sim).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)


def test_a_steps_time_lands_on_the_calls_inside_it_not_after_it(fresh_sim, guard):
    with llmguard.step("prepare"):
        time.sleep(0.05)
    _ask(fresh_sim)  # after the step: carries nothing of it
    with llmguard.step("answer"):
        time.sleep(0.05)
        _ask(fresh_sim)  # inside: carries "answer", with the step's time so far
    after, inside = rows(guard)
    assert after["steps"] == {}
    assert set(inside["steps"]) == {"answer"}
    assert 50 <= inside["steps"]["answer"] <= inside["total_ms"] + 5_000


def test_nested_steps_and_a_repeated_name_do_not_add_up(fresh_sim, guard):
    for _ in range(3):
        with llmguard.step("loop"):
            pass
    with llmguard.step("outer"), llmguard.step("inner"):
        _ask(fresh_sim)
    [row] = rows(guard)
    assert set(row["steps"]) == {"outer", "inner"}
    assert row["steps"]["outer"] >= row["steps"]["inner"]


def test_steps_do_not_pile_up_across_installs(fresh_sim, home):
    with llmguard.step("old"):
        pass
    guard = llmguard.install(home=str(home))
    _ask(fresh_sim)
    [row] = rows(guard)
    assert row["steps"] == {}


def test_concurrent_tasks_see_only_their_own_steps(fresh_sim, guard):
    async def task(name: str) -> None:
        client = openai_client(fresh_sim, asynchronous=True)
        async with llmguard.step(name):
            await client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
        await client.close()

    async def main() -> None:
        await asyncio.gather(*(task(f"task{i}") for i in range(4)))

    asyncio.run(main())
    assert sorted(tuple(r["steps"]) for r in rows(guard)) == [("task0",), ("task1",), ("task2",), ("task3",)]
