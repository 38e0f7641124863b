"""The response cache and in-flight deduplication end to end, with the real SDKs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import llmguard
from tests.conftest import FAKE_OPENAI_KEY, anthropic_client, openai_client, rows


def _notebook_script(sim, n=100):
    """A notebook-like run: deterministic calls of several shapes, some streamed."""
    client, claude = openai_client(sim), anthropic_client(sim)
    answers = []
    for i in range(n):
        prompt = [{"role": "user", "content": f"Cell {i % 40}: summarise item {i}"}]
        if i % 10 == 3:
            stream = client.chat.completions.create(
                model="gpt-4o-mini", messages=prompt, max_tokens=30, temperature=0, stream=True
            )
            answers.append([c.model_dump_json() for c in stream])
        elif i % 10 == 7:
            answers.append(
                claude.messages.create(
                    model="claude-3-5-haiku-latest", max_tokens=30, extra_body={"temperature": 0}, messages=prompt
                ).model_dump_json()
            )
        elif i % 10 == 9:
            answers.append(
                client.embeddings.create(model="text-embedding-3-small", input=f"item {i}").model_dump_json()
            )
        else:
            answers.append(
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=prompt, max_tokens=30, seed=7
                ).model_dump_json()
            )
    return answers


def test_a_second_run_costs_nothing_and_returns_identical_answers(fresh_sim, home):
    guard = llmguard.install(home=str(home))
    first = _notebook_script(fresh_sim)
    guard.cache_layer.flush()
    sent = fresh_sim.stats["requests"]
    billed = fresh_sim.stats["cost_usd"]
    assert sent == 100 and billed > 0
    second = _notebook_script(fresh_sim)
    assert fresh_sim.stats["requests"] == sent  # not one request reached the provider
    assert second == first  # byte-identical answers, streams included
    events = rows(guard)[100:]
    assert len(events) == 100 and all(e["cache_hit"] == 1 and e["cost_usd"] == 0 for e in events)
    assert sum(e["saved_usd"] for e in events) == pytest.approx(billed, rel=1e-9)
    assert {e["decision"] for e in events} == {"cache"}
    guard.cache_layer.flush()
    from llmguard.cache.maintenance import cache_stats

    stats = cache_stats(home)
    assert stats["hits"] == 100 and stats["saved_usd"] == pytest.approx(billed, rel=1e-6)


def test_fifty_threads_asking_the_same_thing_send_one_request(fresh_sim, home):
    guard = llmguard.install(home=str(home))
    fresh_sim.configure(latency_ms=200)
    client = openai_client(fresh_sim)
    barrier = threading.Barrier(50)
    answers = []

    def ask():
        barrier.wait()
        answers.append(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "same question"}],
                max_tokens=20,
                temperature=0,
            )
            .choices[0]
            .message.content
        )

    threads = [threading.Thread(target=ask) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fresh_sim.stats["requests"] == 1
    assert len(set(answers)) == 1 and len(answers) == 50
    events = rows(guard)
    assert sum(e["dedup_hit"] for e in events) + sum(e["cache_hit"] for e in events) == 49


def test_fifty_asyncio_tasks_asking_the_same_thing_send_one_request(fresh_sim, home):
    guard = llmguard.install(home=str(home))
    fresh_sim.configure(latency_ms=200)

    async def main():
        client = openai_client(fresh_sim, asynchronous=True)
        return await asyncio.gather(
            *(
                client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "same async question"}],
                    max_tokens=20,
                    temperature=0,
                )
                for _ in range(50)
            )
        )

    answers = asyncio.run(main())
    assert fresh_sim.stats["requests"] == 1
    assert len({a.choices[0].message.content for a in answers}) == 1
    assert sum(e["dedup_hit"] for e in rows(guard)) >= 1


_PROCESS = textwrap.dedent(
    """
    import os, sys, time, llmguard, openai
    llmguard.install(home=sys.argv[2])
    client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="sk-proc-1234")
    while not os.path.exists(sys.argv[3]):
        time.sleep(0.005)
    answer = client.chat.completions.create(model="gpt-4o-mini", max_tokens=20, temperature=0,
        messages=[{"role": "user", "content": "the same question from three kernels"}])
    print(answer.choices[0].message.content, flush=True)
    """
)


def test_three_processes_sharing_a_home_send_one_request(fresh_sim, home, tmp_path):
    fresh_sim.configure(latency_ms=1500)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS, fresh_sim.base_url, str(home), str(go)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    time.sleep(2.0)  # let all three import and wait at the start line
    go.write_text("go")
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert fresh_sim.stats["requests"] == 1
    assert len(set(outputs)) == 1
    events = rows(home)
    assert len(events) == 3 and sum(e["dedup_hit"] + e["cache_hit"] for e in events) == 2


def test_tenants_never_see_each_others_answers_and_prompt_version_changes_the_key(fresh_sim, guard):
    client = openai_client(fresh_sim)

    def ask():
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "policy?"}], max_tokens=10, temperature=0
        )

    with llmguard.tag(tenant="acme"):
        ask()
        ask()
    with llmguard.tag(tenant="globex"):
        ask()
    with llmguard.tag(tenant="acme", prompt_version="v2"):
        ask()
    assert fresh_sim.stats["requests"] == 3
    assert [e["cache_hit"] for e in rows(guard)] == [0, 1, 0, 0]


def test_sampled_calls_are_not_cached_unless_opted_in(fresh_sim, home):
    client = openai_client(fresh_sim)
    llmguard.install(home=str(home))
    for _ in range(2):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "poem"}], max_tokens=10
        )
    assert fresh_sim.stats["requests"] == 2
    guard = llmguard.install(home=str(home), cache_sampled=True)
    for _ in range(2):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "poem"}], max_tokens=10
        )
    guard.cache_layer.flush()
    assert fresh_sim.stats["requests"] == 3


def test_cache_modes_per_call(fresh_sim, guard):
    client = openai_client(fresh_sim)

    def ask():
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "mode"}], max_tokens=10, temperature=0
        )

    with llmguard.tag(cache="write"):
        ask()
    guard.cache_layer.flush()
    with llmguard.tag(cache="off"):
        ask()
    with llmguard.tag(cache="read"):
        ask()
    with llmguard.tag(cache="refresh"):
        ask()
    ask()
    assert fresh_sim.stats["requests"] == 3  # write, off, refresh went out; read and the default were hits
    assert [e["cache_hit"] for e in rows(guard)] == [0, 0, 1, 0, 1]


def test_errors_and_abandoned_streams_are_never_stored(fresh_sim, guard):
    import openai

    client = openai_client(fresh_sim)
    fresh_sim.configure(faults=["400"] if False else None)
    guard.configure(max_attempts=1)
    fresh_sim.configure(faults=["500"])
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "e"}], max_tokens=5, temperature=0
        )
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "e"}], max_tokens=5, temperature=0
    )
    fresh_sim.configure(per_token_ms=20)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "s"}], max_tokens=100, temperature=0, stream=True
    )
    next(iter(stream))
    stream.close()
    fresh_sim.configure(per_token_ms=0)
    for _ in client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "s"}], max_tokens=100, temperature=0, stream=True
    ):
        pass
    assert fresh_sim.stats["requests"] == 4  # the error and the cut stream were not served from the cache


def test_a_stale_answer_is_served_when_the_provider_is_down(fresh_sim, home):
    guard = llmguard.install(home=str(home), serve_stale=True, cache_ttl_s=0.01, max_attempts=2, backoff_base_s=0.001)
    client = openai_client(fresh_sim)
    ask = lambda: client.chat.completions.create(  # noqa: E731
        model="gpt-4o-mini", messages=[{"role": "user", "content": "status?"}], max_tokens=10, temperature=0
    )
    fresh_answer = ask().choices[0].message.content
    guard.cache_layer.flush()
    time.sleep(0.05)  # past the TTL
    fresh_sim.configure(faults={"503": 1.0})
    assert ask().choices[0].message.content == fresh_answer
    last = rows(guard)[-1]
    assert (last["stale"], last["cache_hit"], last["status"]) == (1, 1, "ok")
    assert "served a stale cached answer" in last["error_message"]


def test_a_corrupted_cache_is_dropped_and_the_call_goes_out(fresh_sim, home):
    guard = llmguard.install(home=str(home))
    client = openai_client(fresh_sim)
    ask = lambda: client.chat.completions.create(  # noqa: E731
        model="gpt-4o-mini", messages=[{"role": "user", "content": "corrupt me"}], max_tokens=10, temperature=0
    )
    ask()
    guard.cache_layer.flush()
    llmguard.uninstall()
    db = home / "cache" / "cache.db"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.warns(RuntimeWarning):
        llmguard.install(home=str(home))
        answer = ask()
    assert answer.choices[0].message.content
    assert fresh_sim.stats["requests"] == 2


def test_the_cache_holds_no_api_key(fresh_sim, guard, home):
    client = openai_client(fresh_sim)
    for i in range(5):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"k{i}"}], max_tokens=10, temperature=0
        )
    guard.cache_layer.flush()
    files = [p for p in (home / "cache").rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert FAKE_OPENAI_KEY.encode() not in path.read_bytes()


def test_cache_cli_stats_clear_prune(fresh_sim, guard, home):
    openai_client(fresh_sim).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "c"}], max_tokens=10, temperature=0
    )
    guard.cache_layer.flush()

    def run(*a):
        return subprocess.run(
            [sys.executable, "-m", "llmguard.cli", "cache", *a, "--home", str(home)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    assert '"entries": 1' in run("stats", "--format", "json")
    assert "pruned 0" in run("prune")
    assert "removed 1" in run("clear")
    assert '"entries": 0' in run("stats", "--format", "json")


def test_followers_of_a_failed_leader_do_not_hang_and_send_their_own(fresh_sim, home):
    import openai

    guard = llmguard.install(home=str(home), max_attempts=1)
    fresh_sim.configure(latency_ms=300, faults=["500"])
    client = openai_client(fresh_sim)
    barrier = threading.Barrier(5)
    outcomes = []

    def ask():
        barrier.wait()
        try:
            outcomes.append(
                client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "leader fails"}],
                    max_tokens=10,
                    temperature=0,
                )
                .choices[0]
                .message.content
            )
        except openai.InternalServerError:
            outcomes.append("error")

    threads = [threading.Thread(target=ask) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert outcomes.count("error") == 1 and len(outcomes) == 5  # only the leader saw its failure
    assert fresh_sim.stats["requests"] >= 2
    assert sum(e["status"] == "ok" for e in rows(guard)) == 4


def test_identical_calls_at_once_on_a_stored_answer_are_all_hits(fresh_sim, home):
    """A hit now takes the in-flight claim before its one lookup (a miss used to look twice);
    threads asking the same stored answer at once follow that claim, and are still hits, not
    deduplicated calls, and still save what the call would have cost."""
    guard = llmguard.install(home=str(home))
    try:
        client = openai_client(fresh_sim)
        ask = lambda: client.chat.completions.create(  # noqa: E731
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hi"}], max_tokens=5, temperature=0
        )
        ask()
        guard.cache_layer.flush()
        start = threading.Barrier(8)

        def worker() -> None:
            start.wait()
            ask()

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        guard.ledger.flush()
        events = rows(guard)
    finally:
        llmguard.uninstall()
    assert fresh_sim.stats["requests"] == 1
    assert [(e["cache_hit"], e["dedup_hit"]) for e in events[1:]] == [(1, 0)] * 8
    assert all(e["saved_usd"] == events[0]["cost_usd"] > 0 for e in events[1:])
