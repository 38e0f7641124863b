"""Budgets and quotas shared by processes through the `local` store (the default), against the sim's books.

Real processes (each its own guard, SDK and threads), one LLMGUARD_HOME, one `llmguard.sim`: what the
sim billed is the authority. Each worker thread calls until its first refusal.
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
from decimal import Decimal
from pathlib import Path

import pytest

import llmguard
from tests.conftest import openai_client

# gpt-4o-mini: $0.15 input, $0.60 output per million tokens (genai-prices); one call reserves its
# prompt plus 20 output tokens, about $0.0000135, so a $0.003 limit is some 220 calls
CHILD = textwrap.dedent(
    """
    import json, os, sys, threading, time
    import llmguard, openai
    base, home, store, budget, quota, go, threads = sys.argv[1:8]
    settings = dict(home=home, max_attempts=1, cache="off")
    if store != "local":  # only settings that are not defaults: the same script runs on llmguard before stores
        settings["store"] = store
    for name, variable, kind in (("namespace", "NS", str), ("lease_ttl_s", "TTL", float),
                                 ("store_failure", "FAILURE", str)):
        if variable in os.environ:
            settings[name] = kind(os.environ[variable])
    if budget != "-":
        settings["budget_usd"] = float(budget)
    if quota != "-":
        settings["quotas"] = {"tenant:acme": {"usd_per_day": float(quota)}}
    llmguard.install(**settings)
    client = openai.OpenAI(base_url=base + "/v1", api_key="sk-kernel-test-0000", max_retries=0)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    answered, refusals, lock = [0], [], threading.Lock()
    def worker():
        with llmguard.tag(tenant="acme"):
            while True:
                try:
                    client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "count to ten"}], max_tokens=20)
                except openai.RateLimitError as exc:
                    with lock:
                        refusals.append(exc.body["message"] if isinstance(exc.body, dict) else str(exc))
                    return
                with lock:
                    answered[0] += 1
                if os.environ.get("PAUSE") and answered[0] >= int(os.environ["PAUSE"]):
                    print("holding", flush=True)
                    time.sleep(3600)
    pool = [threading.Thread(target=worker) for _ in range(int(threads))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    print(json.dumps({"answered": answered[0], "refusals": refusals}), flush=True)
    llmguard.uninstall()
    """
)


def start(sim, home, store, budget, quota, go, threads=4, env=None):
    args = [sys.executable, "-c", CHILD, sim.base_url, str(home), store, budget, quota, str(go), str(threads)]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def finish(procs):
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def run_team(sim, homes, store, budget, quota, go, env=None):
    procs = [start(sim, home, store, budget, quota, go, env=env) for home in homes]
    Path(go).write_text("go")
    return finish(procs)


def billed(sim) -> Decimal:
    return sim.cost_decimal()


@pytest.mark.parametrize(
    ("budget", "quota", "binding", "words"),
    [
        ("0.003", "-", Decimal("0.003"), "session budget would be exceeded"),
        ("-", "0.003", Decimal("0.003"), "tenant:acme usd_per_day would be exceeded"),
        ("0.006", "0.003", Decimal("0.003"), "tenant:acme usd_per_day would be exceeded"),
        ("0.003", "0.006", Decimal("0.003"), "session budget would be exceeded"),
    ],
    ids=["budget", "quota", "quota-binds", "budget-binds"],
)
def test_four_processes_sharing_a_home_never_overspend_and_use_the_money(
    fresh_sim, tmp_path, budget, quota, binding, words
):
    """The 3.97x (budget) and 1.99x (quota) defect: four processes, one home, one limit."""
    home = tmp_path / "home"
    results = run_team(fresh_sim, [home] * 4, "local", budget, quota, tmp_path / "go")
    spent = billed(fresh_sim)
    assert spent <= binding  # overspend 0 by the provider's books
    assert spent >= binding * Decimal("0.9"), spent  # and at least 90% of the money was usable
    assert sum(r["answered"] for r in results) == fresh_sim.stats["requests"]
    assert all(words in m for r in results for m in r["refusals"]), results


def test_the_process_store_keeps_each_process_on_its_own_budget(fresh_sim, tmp_path):
    """store="process" is llmguard before stores: four processes spend four budgets."""
    results = run_team(fresh_sim, [tmp_path / "home"] * 4, "process", "0.003", "-", tmp_path / "go")
    assert billed(fresh_sim) > Decimal("0.003") * 3
    assert len(results) == 4


def test_a_killed_process_gives_its_unused_lease_back_within_the_ttl(fresh_sim, tmp_path):
    import openai

    home = tmp_path / "home"
    guard = llmguard.install(home=str(home), budget_usd=0.003, max_attempts=1, cache="off", lease_ttl_s=2)
    go = tmp_path / "go"
    go.write_text("go")
    child = start(fresh_sim, home, "local", "0.003", "-", go, threads=1, env={"PAUSE": "40", "TTL": "2"})
    assert child.stdout.readline().strip() == "holding"
    time.sleep(0.5)  # its last spend reaches the store (within REPORT_S of the call)
    held = _leases(home)
    assert len(held) == 2 and max(held.values()) > 0  # this process's (empty) lease and the child's
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert fresh_sim.stats["requests"] == 40
    assert _wait_for_leases(home, 1)  # the killed process's lease expired (this guard's keeper saw it)
    client = openai_client(fresh_sim, max_retries=0)
    with pytest.raises(openai.RateLimitError, match="session budget would be exceeded"):
        for _ in range(1000):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "count to ten"}], max_tokens=20
            )
    total = billed(fresh_sim)
    assert Decimal("0.0027") <= total <= Decimal("0.003"), total  # spent stays spent, the rest came back
    assert guard.budget.session.spent == pytest.approx(float(total), abs=1e-12)


def _leases(home: Path) -> dict[str, float]:
    with sqlite3.connect(home / "store.sqlite3") as conn:
        return dict(conn.execute("SELECT holder, amount FROM leases WHERE key = 'default:session'").fetchall())


def _wait_for_leases(home: Path, count: int) -> bool:
    """Wait (up to 30 s) until only `count` leases remain: the killed one expired."""
    for _ in range(3000):
        if len(_leases(home)) <= count:
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("kind", ["process", "local"])
def test_a_lease_never_grows_past_the_limit_and_a_new_session_starts_over(tmp_path, kind):
    from llmguard.store import SyncRequest
    from llmguard.store.local import LocalStore
    from llmguard.store.memory import ProcessStore

    store = ProcessStore() if kind == "process" else LocalStore(tmp_path / "store.sqlite3", "t")
    ask = SyncRequest(key="session", holder="a", limit=1.0, need=0.3, want=0.3, ttl_s=60, fresh_when_idle=True)
    first = store.sync(ask)
    assert (first.held, first.spent, first.granted) == (0.3, 0.0, True)
    other = store.sync(SyncRequest(key="session", holder="b", limit=1.0, need=0.8, want=0.8, ttl_s=60))
    assert (other.held, other.others, other.granted) == (0.0, 0.3, False)  # 0.7 left, 0.8 asked
    # a spends 0.25 of its lease and keeps 0.05 in flight: 0.7 is free, b may take half of it (shared)
    after = store.sync(SyncRequest(key="session", holder="a", limit=1.0, spent_delta=0.25, hold=0.05, gen=first.gen))
    assert (after.held, after.spent) == (0.05, 0.25)
    got = store.sync(SyncRequest(key="session", holder="b", limit=1.0, need=0.1, want=1.0, ttl_s=60))
    assert got.granted and got.held == pytest.approx(0.7 * (0.5 if store.shared else 1.0))
    for holder, gen in (("a", first.gen), ("b", got.gen)):
        store.sync(SyncRequest(key="session", holder=holder, limit=1.0, leave=True, gen=gen))
    fresh = store.sync(SyncRequest(key="session", holder="c", limit=1.0, need=0.1, want=0.1, fresh_when_idle=True))
    assert fresh.spent == 0.0 and fresh.gen != first.gen  # nobody held it: a new session
    store.close()
