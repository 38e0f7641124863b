"""Every way out of a call releases what it reserved exactly once and leaves one ledger row.

Cancellation (asyncio), interruption (a real SIGINT) and an abandoned generator are the exits users
hit in notebooks; each is exercised with the real SDKs against the simulator, and the checks are
on the guard's own books (budget held, limiter queue) and on the ledger.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest

import llmguard
from tests.conftest import openai_client, rows

MSG = [{"role": "user", "content": "Tell me a story."}]


@pytest.fixture
def fresh_sim():
    """A simulator of this module's own: the provider goes on answering (and billing) the requests
    these tests abandon, which must not land in another test's books."""
    from llmguard.sim import SimProvider

    with SimProvider() as provider:
        yield provider


def _held(guard) -> float:
    return sum(scope["reserved"] for scope in guard.budget.snapshot().values())


def test_cancelled_async_calls_release_their_budget_and_are_recorded(fresh_sim, home):
    guard = llmguard.install(home=str(home), budget_usd=1.0, limits={"gpt-4o-mini": {"rpm": 10_000}})
    fresh_sim.configure(latency_ms=1500)

    async def run() -> None:
        client = openai_client(fresh_sim, asynchronous=True, max_retries=0)
        for _ in range(20):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(
                    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=100), 0.2
                )
        await client.close()

    asyncio.run(run())
    assert _held(guard) == 0.0
    assert guard.limiter.snapshot()["gpt-4o-mini"]["queue_depth"] == 0
    cancelled = [r for r in rows(guard) if r["status"] == "cancelled"]
    assert len(cancelled) == 20
    first = cancelled[0]
    # the request reached the provider, which bills it: the row holds the worst case, marked approximate
    assert first["error_type"] == "cancelled" and first["tokens_approximate"] == 1
    assert first["output_tokens"] == 100 and first["input_tokens"] > 0
    # gpt-4o-mini worst case: input*0.15 + 100*0.60 per million, all of it counted as spent
    assert first["cost_usd"] == pytest.approx((first["input_tokens"] * 0.15 + 100 * 0.60) / 1e6, rel=1e-9)
    spent = guard.budget.snapshot()["session budget"]["spent"]
    assert spent == pytest.approx(sum(r["cost_usd"] for r in cancelled), rel=1e-9)
    fresh_sim.configure(latency_ms=0)
    answer = openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert answer.choices[0].message.content  # nothing stays held, so later calls are admitted


def test_a_call_cancelled_while_queued_for_capacity_costs_nothing_and_frees_its_place(fresh_sim, home):
    guard = llmguard.install(
        home=str(home), limits={"gpt-4o-mini": {"rpm": 1}}, window_s=60.0, max_wait_s=120, budget_usd=1.0
    )
    openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)

    async def run() -> None:
        client = openai_client(fresh_sim, asynchronous=True, max_retries=0)
        with pytest.raises(asyncio.TimeoutError):  # waits for the next minute's request: cancelled first
            await asyncio.wait_for(client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5), 0.3)
        await client.close()

    asyncio.run(run())
    assert _held(guard) == 0.0
    assert guard.limiter.snapshot()["gpt-4o-mini"]["queue_depth"] == 0
    ok, cancelled = rows(guard)
    assert ok["status"] == "ok"
    assert cancelled["status"] == "cancelled" and cancelled["cost_usd"] == 0.0  # never sent, never billed
    assert fresh_sim.stats["requests"] == 1


def test_keyboard_interrupt_mid_call_releases_and_records(fresh_sim, home):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGINT reaches the main thread only")
    guard = llmguard.install(home=str(home), budget_usd=1.0)
    fresh_sim.configure(latency_ms=2000)
    sent = fresh_sim.stats["requests"]
    stop = threading.Event()

    def interrupt_once_in_flight() -> None:
        # Ctrl-C once the request has reached the simulator, not after a fixed delay: on a slow
        # machine a 0.3 s timer fired while the first call was still loading its tokenizer, so the
        # call was (rightly) recorded as interrupted before it was sent, and the test failed.
        deadline = time.monotonic() + 30
        while fresh_sim.stats["requests"] == sent and time.monotonic() < deadline and not stop.is_set():
            time.sleep(0.01)
        if not stop.wait(0.1):  # to the main thread itself, so its blocking read is the one interrupted
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    interrupter = threading.Thread(target=interrupt_once_in_flight, daemon=True)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C raises, whatever ran before
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            openai_client(fresh_sim, max_retries=0).chat.completions.create(
                model="gpt-4o-mini", messages=MSG, max_tokens=50
            )
    finally:
        stop.set()
        interrupter.join(5)
        signal.signal(signal.SIGINT, previous)
        fresh_sim.configure(latency_ms=0)
    assert _held(guard) == 0.0
    [row] = rows(guard)
    assert row["status"] == "cancelled" and row["error_type"] == "interrupted"
    assert row["output_tokens"] == 50 and row["tokens_approximate"] == 1
