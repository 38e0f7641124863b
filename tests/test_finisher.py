"""A stream dropped without closing is settled off the GC: its finalizer only hands the call over.

The GC may run a finalizer inside any lock this thread holds (the budget's, the limiter's, the
ledger's); settling there is how a re-entrant call deadlocks or corrupts books. Issue 13 asks
that finalizers never run policy code: the call is settled on the `llmguard-finisher` thread.
"""

from __future__ import annotations

import gc
import threading
import time

import llmguard
from tests.conftest import openai_client, rows

MSG = [{"role": "user", "content": "hi"}]


def _wait_for_rows(guard, n: int, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        guard.ledger.flush()
        found = rows(guard)
        if len(found) >= n:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no row after {timeout}s")


def test_a_stream_the_garbage_collector_closes_is_settled_on_the_finisher_thread(fresh_sim, home):
    fresh_sim.configure(per_token_ms=5)
    guard = llmguard.install(home=str(home), budget_usd=1.0, cache="off")
    settled_on = []
    complete = guard.complete

    def spy(state):  # records where the call is settled; the call itself runs unchanged
        settled_on.append(threading.current_thread().name)
        complete(state)

    guard.complete = spy
    try:
        raw = openai_client(fresh_sim, max_retries=0).chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MSG, max_tokens=50, stream=True
        )
        chunks = raw.http_response.iter_bytes()
        next(chunks)
        cycle: dict = {"chunks": chunks}
        cycle["self"] = cycle  # a reference cycle: only the cyclic garbage collector frees it
        del chunks, raw, cycle
        gc.collect()
        [event] = _wait_for_rows(guard, 1)
        assert settled_on == ["llmguard-finisher"]
        assert event["status"] == "incomplete"
        assert "closed before its final event" in event["error_message"]
        assert guard.budget.snapshot()["session budget"]["reserved"] == 0.0  # settled, not leaked
    finally:
        llmguard.uninstall()
    assert not [t for t in threading.enumerate() if t.name == "llmguard-finisher"]  # uninstall stops it


def test_a_stream_closed_by_the_users_code_is_settled_at_once(fresh_sim, home):
    fresh_sim.configure(per_token_ms=5)
    guard = llmguard.install(home=str(home), cache="off")
    try:
        stream = openai_client(fresh_sim, max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=MSG, max_tokens=50, stream=True
        )
        next(iter(stream))
        stream.close()  # the user's own close: settled in this thread, the row there at once
        guard.ledger.flush()
        [event] = rows(guard)
        assert event["status"] == "incomplete"
    finally:
        llmguard.uninstall()
