"""Budgets shared across "machines" (processes with their own LLMGUARD_HOME) through a real Redis.

A fixture starts `redis-server` on a free port in a temporary folder (no persistence, so a restart
loses every key, as a Redis without AOF does) with a password, and stops it; the tests skip when
`redis-server` or the `redis` client is missing.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import warnings
from decimal import Decimal

import pytest

import llmguard
from tests.conftest import openai_client, rows
from tests.test_store_local import billed, run_team, start

pytest.importorskip("redis")
PASSWORD = "s3cret-redis-pw-91c4"


class RedisServer:
    def __init__(self, folder) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.folder = folder
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"
        self.label = f"redis://***@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        args += ["--save", "", "--appendonly", "no", "--requirepass", PASSWORD]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis.from_url(self.url)
        for _ in range(500):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.01)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.proc = None

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, decode_responses=True)


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("budget", "quota", "binding", "words"),
    [
        ("0.003", "-", Decimal("0.003"), "session budget would be exceeded"),
        ("0.006", "0.003", Decimal("0.003"), "tenant:acme usd_per_day would be exceeded"),
    ],
    ids=["budget", "quota"],
)
def test_three_machines_on_one_redis_never_overspend_and_use_the_money(
    fresh_sim, tmp_path, redis_server, budget, quota, binding, words
):
    homes = [tmp_path / f"machine-{n}" for n in range(3)]
    results = run_team(fresh_sim, homes, redis_server.url, budget, quota, tmp_path / "go", env={"NS": "team-a"})
    spent = billed(fresh_sim)
    assert spent <= binding  # overspend 0 by the provider's books
    assert spent >= binding * Decimal("0.9"), spent
    assert all(words in m for r in results for m in r["refusals"]), results
    book = redis_server.client().hgetall("llmguard:team-a:book:" + ("session" if quota == "-" else _quota_key()))
    assert float(book["base"]) + float(book["added"]) == pytest.approx(float(spent), abs=1e-12)
    for home in homes:  # the password is in no ledger row
        assert all(PASSWORD not in str(row) for row in rows(home))


def _quota_key() -> str:
    return "quota:tenant:acme:usd_per_day:" + time.strftime("%Y-%m-%d", time.gmtime())


def test_a_killed_machine_gives_its_unused_lease_back_within_the_ttl(fresh_sim, tmp_path, redis_server):
    import openai

    guard = llmguard.install(
        home=str(tmp_path / "here"), store=redis_server.url, budget_usd=0.003, max_attempts=1, cache="off",
        lease_ttl_s=2,
    )  # fmt: skip
    go = tmp_path / "go"
    go.write_text("go")
    env = {"PAUSE": "40", "TTL": "2"}
    child = start(fresh_sim, tmp_path / "there", redis_server.url, "0.003", "-", go, threads=1, env=env)
    assert child.stdout.readline().strip() == "holding"
    time.sleep(0.5)  # its last spend reaches the store (within REPORT_S of the call)
    leases = redis_server.client().hgetall("llmguard:default:book:session:leases")
    assert len(leases) == 2 and max(float(v.split()[0]) for v in leases.values()) > 0
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    for _ in range(3000):  # this guard's keeper expires the killed machine's lease
        if len(redis_server.client().hgetall("llmguard:default:book:session:leases")) == 1:
            break
        time.sleep(0.01)
    client = openai_client(fresh_sim, max_retries=0)
    with pytest.raises(openai.RateLimitError, match="session budget would be exceeded"):
        for _ in range(1000):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=20
            )
    total = billed(fresh_sim)
    assert Decimal("0.0027") <= total <= Decimal("0.003"), total
    assert guard.budget.session.spent == pytest.approx(float(total), abs=1e-12)


def _spend_until_refused(client, limit: int = 2000) -> tuple[int, str]:
    import openai

    for n in range(limit):
        try:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=20
            )
        except openai.RateLimitError as exc:
            return n, exc.body["message"]
    return limit, ""


def test_redis_stopped_refuses_with_a_clear_message_then_recovers_without_double_counting(
    fresh_sim, tmp_path, redis_server
):
    home = tmp_path / "home"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        guard = llmguard.install(
            home=str(home), store=redis_server.url, budget_usd=0.003, max_attempts=1, cache="off", lease_ttl_s=1
        )
        client = openai_client(fresh_sim, max_retries=0)
        for _ in range(30):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=20
            )
        redis_server.stop()
        answered, message = _spend_until_refused(client)  # the lease it holds, then a refusal
    assert message.startswith(f"llmguard: the session budget is shared through the store {redis_server.label}")
    assert "cannot be reached" in message and "store_failure='open'" in message
    assert any(redis_server.label in str(w.message) for w in caught)
    during = billed(fresh_sim)
    assert during <= Decimal("0.003")

    redis_server.start()  # empty: the book is rebuilt from what this process knew
    more = 0
    for _ in range(500):  # refused until the guard sees the store again (it waits RETRY_S after a failure)
        more, message = _spend_until_refused(client)
        if "cannot be reached" not in message:
            break
        time.sleep(0.02)
    assert "session budget would be exceeded" in message and more > 0
    total = billed(fresh_sim)
    assert Decimal("0.0027") <= total <= Decimal("0.003"), (during, total)  # not double counted, not lost
    llmguard.uninstall()
    book = redis_server.client().hgetall("llmguard:default:book:session")
    assert float(book["base"]) + float(book["added"]) == pytest.approx(float(total), abs=1e-12)
    texts = [str(w.message) for w in caught] + [str(row) for row in rows(home)] + [repr(guard.settings)]
    assert all(PASSWORD not in text for text in texts)
    assert any(redis_server.label in row["error_message"] for row in rows(home) if row["error_message"])


def test_redis_stopped_with_store_failure_open_keeps_answering(fresh_sim, tmp_path, redis_server):
    llmguard.install(
        home=str(tmp_path / "home"), store=redis_server.url, budget_usd=0.003, max_attempts=1, cache="off",
        lease_ttl_s=1, store_failure="open",
    )  # fmt: skip
    client = openai_client(fresh_sim, max_retries=0)
    for _ in range(10):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=20)
    redis_server.stop()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answered, message = _spend_until_refused(client)
    # admitted against the last known total: the budget itself still stops it
    assert "session budget would be exceeded" in message
    assert Decimal("0.0027") <= billed(fresh_sim) <= Decimal("0.003")
    assert any("store_failure='open'" in str(w.message) for w in caught)


def test_a_redis_url_is_checked_and_shown_without_its_password():
    from llmguard.config import ConfigError

    with pytest.raises(ConfigError) as bad:
        llmguard.install(store=f"redis://:{PASSWORD}@")
    assert PASSWORD not in str(bad.value) and "redis://***@" in str(bad.value)
    with pytest.raises(ConfigError, match="'process', 'local' or a Redis URL"):
        llmguard.install(store="memcached://x")


def test_the_lua_script_keeps_the_same_books_as_the_python_arithmetic(tmp_path, redis_server):
    """The same steps on the Redis store and on the local store give the same answers."""
    from llmguard.store import SyncRequest
    from llmguard.store.local import LocalStore
    from llmguard.store.redis_store import RedisStore

    def steps(store, forget):
        out = []
        ask = SyncRequest
        a = store.sync(ask("k", "a", 1.0, need=0.2, want=0.5, ttl_s=60, seed=0.1))
        out.append(a)
        out.append(store.sync(ask("k", "b", 1.0, need=0.9, want=0.9, ttl_s=60)))  # does not fit
        out.append(store.sync(ask("k", "c", 1.0, need=0.05, want=0.05, ttl_s=0.05, hold=0.1)))
        time.sleep(0.1)  # c's lease expires: what its calls held (0.1) is spent, the rest is free
        out.append(store.sync(ask("k", "a", 1.0, spent_delta=0.3, hold=0.05, want=0.0, ttl_s=60, gen=a.gen)))
        forget()  # the store loses the book; `a` rebuilds it from the total it knew
        out.append(store.sync(ask("k", "a", 1.0, spent_delta=0.01, want=0.1, ttl_s=60, gen=a.gen, known=0.75)))
        out.append(store.sync(ask("k", "a", 1.0, leave=True, gen=out[-1].gen)))
        return [(round(g.held, 12), round(g.spent, 12), round(g.others, 12), g.granted) for g in out]

    local = LocalStore(tmp_path / "store.sqlite3", "parity")
    remote = RedisStore(redis_server.url, "parity")
    client = redis_server.client()

    def forget_local():
        with local._lock:
            local._conn.execute("DELETE FROM books")
            local._conn.execute("DELETE FROM leases")

    expected = [
        (0.45, 0.1, 0.0, True),  # 0.9 free, half of it (0.45) is at most the want (0.5)
        (0.0, 0.1, 0.45, False),
        (0.15, 0.1, 0.45, True),  # c keeps its 0.1 in flight plus its want (0.05) of the 0.35 free
        (0.05, 0.5, 0.0, True),  # c expired (0.1 spent), a reported 0.3 spent
        (0.1, 0.76, 0.0, True),
        (0.0, 0.76, 0.0, True),
    ]
    assert steps(local, forget_local) == expected
    assert steps(remote, lambda: client.delete("llmguard:parity:book:k", "llmguard:parity:book:k:leases")) == expected
    local.close()
    remote.close()
