"""One cache across machines: with `store="redis://..."`, an answer one machine stored is a hit on
another, and an identical call running on one machine is waited for, not sent again, by the others.
"Machines" have their own LLMGUARD_HOME (their own disk cache); the sim's request count is the
authority. Redis down: each machine caches and sends on its own, with one warning.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

import llmguard
from tests.conftest import openai_client, rows
from tests.test_store_redis import PASSWORD, redis_server  # noqa: F401 - the fixture

pytest.importorskip("redis")

ASK = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "capital of France?"}], "max_tokens": 12}


def _ask_on_machine(sim, home, url):
    guard = llmguard.install(home=str(home), store=url, cache="on")
    try:
        answer = openai_client(sim, max_retries=0).chat.completions.create(temperature=0, **ASK)
        guard.cache_layer.flush()
        return answer, rows(guard)[-1]
    finally:
        llmguard.uninstall()


def test_an_answer_stored_on_one_machine_is_a_hit_on_another(fresh_sim, tmp_path, redis_server):  # noqa: F811
    first, row_a = _ask_on_machine(fresh_sim, tmp_path / "machine-a", redis_server.url)
    second, row_b = _ask_on_machine(fresh_sim, tmp_path / "machine-b", redis_server.url)
    assert fresh_sim.stats["requests"] == 1
    assert (row_a["cache_hit"], row_b["cache_hit"], row_b["decision"]) == (0, 1, "cache")
    assert second.choices[0].message.content == first.choices[0].message.content
    # machine b keeps it on its own disk too: with Redis gone, it is still a hit there
    keys = redis_server.client().keys("llmguard:default:answer:*")
    assert len(keys) == 1
    redis_server.stop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, row_again = _ask_on_machine(fresh_sim, tmp_path / "machine-b", redis_server.url)
    assert row_again["cache_hit"] == 1 and fresh_sim.stats["requests"] == 1


def test_a_damaged_shared_answer_is_a_miss_and_is_replaced(fresh_sim, tmp_path, redis_server):  # noqa: F811
    _ask_on_machine(fresh_sim, tmp_path / "machine-a", redis_server.url)
    client = redis_server.client()
    (key,) = client.keys("llmguard:default:answer:*")
    import redis

    raw = redis.Redis.from_url(redis_server.url)
    good = raw.get(key)
    for hostile in (b"\x80garbage", good[:-3], b"LGC1" + b"\xff" * 64, good.replace(b'"status":200', b'"status":"x"')):
        raw.set(key, hostile)
        _, row = _ask_on_machine(fresh_sim, tmp_path / f"machine-{len(hostile)}", redis_server.url)
        assert row["cache_hit"] == 0  # sent to the provider, never a crash or a wrong answer
        assert raw.get(key) != hostile  # and the good answer stored over it
    assert fresh_sim.stats["requests"] == 5


CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    import llmguard, openai
    base, home, store, go = sys.argv[1:5]
    guard = llmguard.install(home=home, store=store, cache="on", dedup_wait_s=30)
    client = openai.OpenAI(base_url=base + "/v1", api_key="sk-cache-test-0000", max_retries=0)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.002)
    answer = client.chat.completions.create(temperature=0, **json.loads(os.environ["ASK"]))
    guard.cache_layer.flush()
    from llmguard.ledger.readers import read_events
    row = read_events(guard.ledger.path)[-1]
    print(json.dumps({"content": answer.choices[0].message.content, "cache_hit": row["cache_hit"],
                      "dedup_hit": row["dedup_hit"]}), flush=True)
    llmguard.uninstall()
    """
)


def test_an_identical_call_running_on_one_machine_is_not_sent_again_by_the_others(
    fresh_sim,
    tmp_path,
    redis_server,  # noqa: F811
):
    fresh_sim.configure(latency_ms=1500)  # long enough that all three are waiting at once
    go = tmp_path / "go"
    env = {**os.environ, "ASK": json.dumps(ASK)}
    procs = []
    for n in range(3):
        args = [sys.executable, "-c", CHILD, fresh_sim.base_url, str(tmp_path / f"m{n}"), redis_server.url, str(go)]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    go.write_text("go")
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert fresh_sim.stats["requests"] == 1
    assert len({r["content"] for r in results}) == 1
    assert sorted(r["dedup_hit"] for r in results) == [0, 1, 1]


def test_redis_down_each_machine_caches_and_sends_on_its_own_with_one_warning(fresh_sim, tmp_path, redis_server):  # noqa: F811
    redis_server.stop()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, row_a = _ask_on_machine(fresh_sim, tmp_path / "machine-a", redis_server.url)
        _, row_b = _ask_on_machine(fresh_sim, tmp_path / "machine-b", redis_server.url)
        _, row_a2 = _ask_on_machine(fresh_sim, tmp_path / "machine-a", redis_server.url)
    assert fresh_sim.stats["requests"] == 2  # a and b each sent it; a's second ask hit its own disk
    assert (row_a["cache_hit"], row_b["cache_hit"], row_a2["cache_hit"]) == (0, 0, 1)
    cache_warnings = [
        str(w.message) for w in caught if "cached answers are shared on this machine only" in str(w.message)
    ]
    assert len(cache_warnings) == 2  # once per guard (a and b), not once per call
    assert all(redis_server.label in text and PASSWORD not in text for text in cache_warnings)


def test_cache_clear_removes_the_shared_answers_too(fresh_sim, tmp_path, redis_server):  # noqa: F811
    _ask_on_machine(fresh_sim, tmp_path / "machine-a", redis_server.url)
    env = {**os.environ, "LLMGUARD_STORE": redis_server.url, "LLMGUARD_HOME": str(tmp_path / "machine-b")}
    done = subprocess.run(
        [sys.executable, "-m", "llmguard.cli", "cache", "clear"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f"removed 1 answer shared through {redis_server.label}" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    assert redis_server.client().keys("llmguard:default:answer:*") == []
    redis_server.stop()
    done = subprocess.run(
        [sys.executable, "-m", "llmguard.cli", "cache", "clear"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 1 and "were not removed: it cannot be reached" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr and "Traceback" not in done.stderr
