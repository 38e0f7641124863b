"""Rate limits shared through the store: "machines" (processes with their own LLMGUARD_HOME) on one
real Redis, and processes sharing one home on the local store, against one `llmguard.sim` with
RPM/TPM on a 1 s window; the sim's count of 429s is the authority. A killed process's lease, and
Redis stopped mid-run, as the README's Team store paragraph states them.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.test_store_redis import PASSWORD, redis_server  # noqa: F401 - the fixture

pytest.importorskip("redis")

SIM_LIMITS = {"rpm": 120, "tpm": 6_000}  # per 1 s window: 480 calls of ~30 tokens need 3+ s

CHILD = textwrap.dedent(
    """
    import json, os, sys, threading, time
    import llmguard, openai
    base, home, store, go, threads, calls = sys.argv[1:7]
    llmguard.install(home=home, store=store, limits={"gpt-4o-mini": json.loads(os.environ["LIMITS"])},
                     window_s=1.0, max_wait_s=300, cache="off", lease_ttl_s=float(os.environ.get("TTL", "10")))
    client = openai.OpenAI(base_url=base + "/v1", api_key="sk-rates-test-0000", max_retries=0)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    done, errors, lock = [0], [], threading.Lock()
    mark = int(os.environ.get("MARK", "0"))
    def worker(n):
        with llmguard.tag(priority="background"):
            for i in range(int(calls)):
                try:
                    client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": f"w{n} c{i}"}], max_tokens=20)
                except Exception as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                with lock:
                    done[0] += 1
                    if done[0] == mark:
                        print("mark", flush=True)
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(int(threads))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    print(json.dumps({"answered": done[0], "errors": errors}), flush=True)
    llmguard.uninstall()
    """
)


def start(sim, home, store, go, threads=16, calls=10, env=None, limits=SIM_LIMITS):
    args = [sys.executable, "-c", CHILD, sim.base_url, str(home), store, str(go), str(threads), str(calls)]
    environ = {**os.environ, "LIMITS": json.dumps(limits), **(env or {})}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def finish(procs):
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append({**json.loads(out.strip().splitlines()[-1]), "stderr": err})
    return results


def run_team(sim, homes, store, go, **kwargs):
    procs = [start(sim, home, store, go, **kwargs) for home in homes]
    Path(go).write_text("go")
    return finish(procs)


@pytest.mark.parametrize("store", ["redis", "local"])
def test_three_machines_times_16_threads_get_zero_429s_and_every_answer(fresh_sim, tmp_path, store, request):
    fresh_sim.configure(window_s=1.0, **SIM_LIMITS)
    if store == "redis":
        server = request.getfixturevalue("redis_server")
        url, homes = server.url, [tmp_path / f"machine-{n}" for n in range(3)]
    else:
        url, homes = "local", [tmp_path / "home"] * 3
    results = run_team(fresh_sim, homes, url, tmp_path / "go")
    stats = fresh_sim.stats
    assert stats["rate_limited"] == 0, [r["stderr"][-2000:] for r in results]
    assert [r["answered"] for r in results] == [160, 160, 160] and all(not r["errors"] for r in results)
    assert stats["models"]["gpt-4o-mini"]["requests"] == 480
    assert all("shared_limits" not in r["stderr"] and "falls back" not in r["stderr"] for r in results)


def test_without_a_shared_store_the_same_team_is_throttled(fresh_sim, tmp_path):
    """The control: each process alone respects the limit; together they exceed it.

    At 30 calls a second, far below what three processes on a loaded 2-core machine send (at 120
    the machine itself could not send faster than the limit, and the control failed under load).
    """
    limits = {"rpm": 30, "tpm": 6_000}
    fresh_sim.configure(window_s=1.0, **limits)
    home, go = tmp_path / "home", tmp_path / "go"
    procs = [start(fresh_sim, home, "process", go, threads=16, calls=4, limits=limits) for _ in range(3)]
    (tmp_path / "go").write_text("go")
    finish(procs)
    assert fresh_sim.stats["rate_limited"] > 0


def test_shared_limits_is_an_alias_of_the_local_store_with_a_warning(tmp_path):
    import warnings

    import llmguard

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        guard = llmguard.install(
            home=str(tmp_path), store="process", shared_limits=True, limits={"m": {"rpm": 10}}, cache="off"
        )
    assert [str(w.message) for w in caught if w.category is FutureWarning] == [
        "llmguard: shared_limits is deprecated: use store='local' (shares budgets too) instead."
    ]
    assert guard.limiter._rates is not None and guard.limiter._rates.store.kind == "local"
    assert guard.budget.leases.store.kind == "process"  # budgets still follow `store`
    llmguard.uninstall()


def _rate_book(store, url_or_home) -> dict:
    if store == "redis":
        import redis

        raw = redis.Redis.from_url(url_or_home).get("llmguard:default:rate:gpt-4o-mini")
    else:
        with sqlite3.connect(Path(url_or_home) / "store.sqlite3") as conn:
            row = conn.execute("SELECT book FROM rates WHERE key = 'default:gpt-4o-mini'").fetchone()
        raw = row[0] if row else None
    return json.loads(raw) if raw else {}


def _probe(store, url_or_home, caps):
    """Ask the store for the key's whole capacity as a process of our own (need = every request)."""
    from llmguard.store import open_store
    from llmguard.store.rates import RateRequest

    home = Path(url_or_home) if store != "redis" else None
    shared = open_store(url_or_home if store == "redis" else "local", "default", home)
    try:
        grant = shared.sync_rates(RateRequest("gpt-4o-mini", "probe", caps, 1.0, need=caps, margin_s=0.0))
        shared.sync_rates(RateRequest("gpt-4o-mini", "probe", caps, 1.0, used=grant.held, leave=True))
        return grant
    finally:
        shared.close()


@pytest.mark.parametrize("store", ["redis", "local"])
def test_a_killed_process_lease_comes_back_within_the_ttl(fresh_sim, tmp_path, store, request):
    # limits far above the load: the lease is sized to the child's demand, so it holds capacity
    limits = {"rpm": 2_000, "tpm": 200_000}
    fresh_sim.configure(window_s=1.0, **limits)
    where = request.getfixturevalue("redis_server").url if store == "redis" else str(tmp_path / "home")
    go = tmp_path / "go"
    env = {"TTL": "2", "MARK": "200"}
    home = tmp_path / "home"
    child = start(fresh_sim, home, where if store == "redis" else "local", go, 4, 100_000, env, limits)
    go.write_text("go")
    assert child.stdout.readline().strip() == "mark"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    leases = _rate_book(store, where)["leases"]
    assert len(leases) == 1 and next(iter(leases.values()))[0] >= 1  # it held requests when killed
    caps = (float(limits["rpm"]), float(limits["tpm"]))
    assert not _probe(store, where, caps).granted  # its lease is still counted as in use
    for _ in range(3000):  # each probe is a sync: the one after the TTL drops the killed lease
        before = _rate_book(store, where)["leases"]
        grant = _probe(store, where, caps)
        if grant.granted:
            break
        time.sleep(0.01)
    # all of it came back, and at once: granted by the very sync that found the lease expired, or
    # by the next one when the previous probe's own leave-sync (after its refused ask) dropped it
    assert grant.granted and grant.held == caps and set(before) in (set(leases), set())
    assert set(_rate_book(store, where)["leases"]) == set()


def test_redis_stopped_mid_run_falls_back_with_one_warning_then_recovers(fresh_sim, tmp_path, redis_server):  # noqa: F811
    fresh_sim.configure(window_s=1.0, **SIM_LIMITS)
    go = tmp_path / "go"
    homes = [tmp_path / f"machine-{n}" for n in range(2)]
    procs = [start(fresh_sim, h, redis_server.url, go, 8, 40, {"MARK": "60"}) for h in homes]
    go.write_text("go")
    for proc in procs:
        assert proc.stdout.readline().strip() == "mark"
    assert len(_rate_book("redis", redis_server.url)["leases"]) == 2
    redis_server.stop()
    time.sleep(1.0)  # both machines notice and admit on their own shares meanwhile
    redis_server.start()  # empty: the book is rebuilt by the first machine back
    for _ in range(3000):
        book = _rate_book("redis", redis_server.url)
        if len(book.get("leases", {})) == 2:
            break
        time.sleep(0.01)
    assert len(book["leases"]) == 2  # both machines share the limit again
    results = finish(procs)
    assert [r["answered"] for r in results] == [320, 320] and all(not r["errors"] for r in results)
    for r in results:
        assert r["stderr"].count("rate limit falls back to") == 1, r["stderr"]
        assert "redis://***@127.0.0.1" in r["stderr"] and PASSWORD not in r["stderr"]
        assert "Traceback" not in r["stderr"]
    assert fresh_sim.stats["models"]["gpt-4o-mini"]["requests"] - fresh_sim.stats["rate_limited"] == 640
