"""Owned retries, timeouts, and the ledger under threads, asyncio and several processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import llmguard
from tests.conftest import anthropic_client, openai_client, rows

MSG = [{"role": "user", "content": "hello"}]


def test_retryable_statuses_are_retried_once_each_with_no_sdk_multiplication(fresh_sim, home):
    guard = llmguard.install(home=str(home), max_attempts=3, backoff_base_s=0.01)
    fresh_sim.configure(faults=["500", "429"])
    answer = openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert answer.choices[0].message.content
    [event] = rows(guard)
    assert event["status"] == "ok" and event["retry_count"] == 2 and event["retry_delay_ms"] > 0
    assert fresh_sim.stats["requests"] == 3


def test_spent_retries_surface_as_the_sdk_error_without_sdk_retries(fresh_sim, home):
    import openai

    guard = llmguard.install(home=str(home), max_attempts=2, backoff_base_s=0.01)
    fresh_sim.configure(faults=["503", "503", "503", "503", "503", "503"])
    with pytest.raises(openai.InternalServerError):
        openai_client(fresh_sim, max_retries=5).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert fresh_sim.stats["requests"] == 2  # llmguard's 2 attempts, none of the SDK's 5
    [event] = rows(guard)
    assert (event["status"], event["http_status"], event["retry_count"]) == ("error", 503, 1)


def test_bad_requests_are_never_retried(fresh_sim, home):
    import anthropic

    guard = llmguard.install(home=str(home), max_attempts=3)
    with pytest.raises(anthropic.BadRequestError):
        anthropic_client(fresh_sim).messages.create(
            model="claude-3-5-haiku-latest", messages=MSG, max_tokens=5, extra_body={"max_tokens": None}
        )
    assert fresh_sim.stats["requests"] == 1
    [event] = rows(guard)
    assert event["http_status"] == 400 and event["retry_count"] == 0 and event["error_message"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_timeout_setting_replaces_the_sdk_default_and_is_not_multiplied(fresh_sim, home, provider):
    import anthropic
    import openai

    guard = llmguard.install(home=str(home), timeout_s=0.3, max_attempts=2, backoff_base_s=0.01)
    fresh_sim.configure(faults=["hang", "hang", "hang", "hang", "hang", "hang"])
    if provider == "openai":
        with pytest.raises(openai.APITimeoutError):
            openai_client(fresh_sim, max_retries=2).chat.completions.create(
                model="gpt-4o-mini", messages=MSG, max_tokens=5
            )
    else:
        with pytest.raises(anthropic.APITimeoutError):
            anthropic_client(fresh_sim, max_retries=2).messages.create(
                model="claude-3-5-haiku-latest", messages=MSG, max_tokens=5
            )
    assert fresh_sim.stats["requests"] == 2  # the SDK's own retries did not reach the provider
    [event] = rows(guard)
    assert event["error_type"] == "timeout" and event["retry_count"] == 1
    # the provider received the request and may bill it: the worst case is recorded, marked approximate
    assert event["cost_usd"] > 0 and event["tokens_approximate"] == 1 and event["output_tokens"] == 5
    fresh_sim.configure(faults=None)


def test_step_deadline_bounds_the_http_timeout(fresh_sim, home):
    import openai

    llmguard.install(home=str(home), timeout_s=30, max_attempts=1)
    fresh_sim.configure(faults=["hang"])
    with llmguard.step("model", timeout=0.3), pytest.raises(openai.APITimeoutError):
        openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)


def test_threads_each_get_one_row(fresh_sim, guard):
    client = openai_client(fresh_sim)
    errors = []

    def work(n):
        try:
            with llmguard.tag(user=f"u{n}"):
                for _ in range(10):
                    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    events = rows(guard)
    assert len(events) == 80
    assert {e["user"] for e in events} == {f"u{n}" for n in range(8)}
    assert sum(e["output_tokens"] for e in events) == fresh_sim.stats["models"]["gpt-4o-mini"]["output_tokens"]


def test_asyncio_tasks_keep_their_own_tags(fresh_sim, guard):
    async def main():
        client = openai_client(fresh_sim, asynchronous=True)

        async def one(n):
            with llmguard.tag(tenant=f"t{n % 3}"):
                await client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
                return n % 3

        return await asyncio.gather(*(one(n) for n in range(30)))

    asyncio.run(main())
    events = rows(guard)
    assert len(events) == 30
    assert sorted(e["tenant"] for e in events) == sorted(f"t{n % 3}" for n in range(30))


_CHILD = textwrap.dedent(
    """
    import sys, llmguard, openai
    llmguard.install(home=sys.argv[2])
    client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="sk-child-0000")
    for _ in range(int(sys.argv[3])):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    print("answered", flush=True)
    if sys.argv[4] == "hang":
        import time; time.sleep(60)
    """
)


def test_several_processes_share_one_ledger(fresh_sim, home):
    procs = [
        subprocess.Popen([sys.executable, "-c", _CHILD, fresh_sim.base_url, str(home), "15", "exit"], cwd=os.getcwd())
        for _ in range(3)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    events = rows(home)
    assert len(events) == 45 and len({e["run_id"] for e in events}) == 3


def test_a_killed_process_loses_no_answered_call(fresh_sim, home):
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, fresh_sim.base_url, str(home), "3", "hang"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "answered"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert len(rows(home)) == 3
