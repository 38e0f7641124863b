"""What a shared store adds to a budgeted call: the same calls under the `process`, `local` and Redis stores.

Three guards with the same settings (a session budget and a tenant `usd_per_day` quota, so every
call reserves against two shared books) but each its own store, attached in turn against the
zero-latency simulator in its own process; Redis is a `redis-server` on loopback started here in a
temporary folder. Arms take turns call by call (the order rotating each turn), so drift in the
machine's load hits every arm alike; the figure is the median of per-repeat differences of median
latency against the `process` arm.

Checked afterwards, so each arm did what it claims: the `process` arm touched no shared store; the
`local` arm's books in `<home>/store.sqlite3` and the Redis arm's books in Redis hold exactly the
spend of that arm's calls (by the guard's ledger), under the namespace it was given; every call reached
the simulator. The number of store round trips per arm is printed: leases keep them far below one
per call.

Rate limits shared through the store, in two more parts:
- Arms `process+limit`, `local+limit`, `redis+limit` in the same rotation: no budget, a rate limit far
  above the load (`limits`, so `local` and Redis share it through a rate lease). Checked: the
  `process` arm has no rate lease; the others' rate book is in their store; every call reached the sim.
- The three-machine workload: three processes with their own LLMGUARD_HOME (`store` = that Redis) x
  16 threads against a fresh simulator process with RPM/TPM on a 1 s window, set to 30% of what the
  same workload manages with no binding limit in the same run (on 2 cores the client's CPU, not the
  provider, would otherwise set the pace: ~380 calls/s here). Each machine makes one call before the
  start (a process's first call builds the SDK's models: ~0.6 s here). Makespan runs from the
  provider's first received request to the last call's end, against the provider's theoretical
  minimum (its buckets start full and refill at their rate; whichever of requests and tokens binds).
  Checked: every call answered, the simulator received exactly the calls, each machine's rate limit
  went through Redis, and the book ends with no lease held (each machine gave its lease back).

Targets (issue 16): `local` adds <= 0.05 ms median per call over `process`; Redis on loopback <= 0.2 ms
(with a budget, and under a rate limit); three machines' makespan <= 1.05x the minimum with 0 429s.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import openai

import llmguard
from llmguard.config import load_settings
from llmguard.intercept import transport
from llmguard.ledger.readers import read_events
from llmguard.pipeline.guard import Guard

sys.path.insert(0, str(Path(__file__).parent))
from _bench import Figure, Outcome, cli, median, rotated, spread  # noqa: E402
from _simproc import sim_process, sim_reset, sim_stats  # noqa: E402

TARGETS = {"local": 0.05, "redis": 0.2, "local+limit": 0.05, "redis+limit": 0.2}
LIMIT = {"gpt-4o-mini": {"rpm": 10_000_000, "tpm": 10_000_000_000}}  # per 60 s: never binds here
TEAM_LOAD = 0.3  # the provider's limit, as a part of what the three machines manage unthrottled
TOKENS_PER_REQUEST = 60  # TPM per RPM: a call charges ~35 (prompt + max_tokens), so requests bind
TEAM_MACHINES, TEAM_THREADS, TEAM_CALLS, TEAM_MAX_TOKENS = 3, 16, 12, 20
TEAM_TARGET = 1.05


def redis_server(folder: str) -> tuple[subprocess.Popen[bytes], str] | None:
    if shutil.which("redis-server") is None:
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--save", ""]
    proc = subprocess.Popen([*args, "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    for _ in range(500):
        try:
            client.ping()
            return proc, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            time.sleep(0.01)
    proc.kill()
    return None


class Counted:
    """A store that counts its round trips (the benchmark's own wrapper; the store is unchanged)."""

    def __init__(self, store: Any) -> None:
        self.store, self.syncs = store, 0
        self.kind, self.label, self.shared = store.kind, store.label, store.shared

    def sync(self, request: Any) -> Any:
        self.syncs += 1
        return self.store.sync(request)

    def sync_rates(self, request: Any) -> Any:
        self.syncs += 1
        return self.store.sync_rates(request)

    def ping(self) -> None:
        self.store.ping()

    def close(self) -> None:
        self.store.close()


def measure(quick: bool = False, repeats: int | None = None, rounds: int | None = None, block: int | None = None):
    repeats = repeats or (3 if quick else 5)
    rounds = rounds or (2 if quick else 6)
    block = block or (20 if quick else 40)
    out = Outcome("team")
    warnings.simplefilter("ignore")
    with sim_process() as base_url, tempfile.TemporaryDirectory() as tmp:
        server = redis_server(tmp)
        stores = {"process": "process", "local": "local"}
        if server is None:
            out.note("redis-server is not installed: the Redis arms are skipped")
        else:
            stores["redis"] = server[1]
        stores.update({f"{arm}+limit": store for arm, store in stores.items()})
        arms = tuple(stores)
        guards: dict[str, Guard] = {}
        counted: dict[str, Counted] = {}
        for arm, store in stores.items():
            limited = arm.endswith("+limit")
            policy: dict[str, Any] = {"limits": LIMIT} if limited else {
                "budget_usd": 1000.0,
                "quotas": {"tenant:bench": {"usd_per_day": 1000.0}},
            }  # fmt: skip
            settings = load_settings(
                {"home": f"{tmp}/{arm}", "store": store, "namespace": "bench", "cache": "off", **policy}
            )
            guards[arm] = guard = Guard(settings)
            rates = guard.limiter._rates
            if limited and rates is not None:
                counted[arm] = Counted(rates.store)
                rates.store = counted[arm]
            elif not limited:
                counted[arm] = Counted(guard.budget.leases.store)
                guard.budget.leases.store = counted[arm]
        client = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-bench", max_retries=0, timeout=60)
        counter = itertools.count()
        made = dict.fromkeys(arms, 0)

        def one_call(arm: str) -> float:
            transport.attach(guards[arm])
            with llmguard.tag(tenant="bench"):
                start = time.perf_counter()
                client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": f"Say hi #{next(counter):08d}"}],
                    max_tokens=8,
                )
                elapsed = (time.perf_counter() - start) * 1000
            transport.detach()
            made[arm] += 1
            return elapsed

        for arm in arms:  # warm up connections, encodings, prices, the first leases
            for _ in range(20 if quick else 100):
                one_call(arm)
        per_repeat: dict[str, list[float]] = {arm: [] for arm in arms}
        turn = 0
        for _ in range(repeats):
            lat: dict[str, list[float]] = {arm: [] for arm in arms}
            for _ in range(rounds * block):  # one call per arm in turn: drift hits every arm alike
                for arm in rotated(arms, turn):
                    lat[arm].append(one_call(arm))
                turn += 1
            for arm in arms:
                per_repeat[arm].append(median(lat[arm]))

        spent = {}
        for arm, guard in guards.items():
            syncs_before_close = counted[arm].syncs if arm in counted else 0
            guard.close()  # leases back: the books then hold every settled call
            rows = read_events(Path(tmp) / arm / "ledger.sqlite3")
            spent[arm] = sum(r["cost_usd"] or 0.0 for r in rows)
            out.check(len(rows) == made[arm], f"{arm}: {len(rows)} ledger rows for {made[arm]} calls")
            print(f"  {arm:8s} {syncs_before_close:6d} store round trips for {made[arm]} calls")
        out.check(not (Path(tmp) / "process" / "store.sqlite3").exists(), "the process arm created a shared store")
        out.check(guards["process+limit"].limiter._rates is None, "the process+limit arm shares its limit")
        out.check(not (Path(tmp) / "process+limit" / "store.sqlite3").exists(), "process+limit made a store")
        with sqlite3.connect(Path(tmp) / "local+limit" / "store.sqlite3") as conn:
            rate_keys = [k for (k,) in conn.execute("SELECT key FROM rates")]
        out.check(rate_keys == ["bench:gpt-4o-mini"], f"local+limit rate books {rate_keys}")
        with sqlite3.connect(Path(tmp) / "local" / "store.sqlite3") as conn:
            books = dict(conn.execute("SELECT key, base + added FROM books").fetchall())
        quota_key = "bench:quota:tenant:bench:usd_per_day:" + time.strftime("%Y-%m-%d", time.gmtime())
        for key in ("bench:session", quota_key):
            out.check(abs(books.get(key, -1) - spent["local"]) < 1e-9, f"local book {key} {books.get(key)}")
        if server is not None:
            import redis

            remote = redis.Redis.from_url(server[1], decode_responses=True)
            for key in ("session", quota_key.removeprefix("bench:")):
                book = remote.hgetall(f"llmguard:bench:book:{key}")
                total = float(book.get("base", -1)) + float(book.get("added", 0))
                out.check(abs(total - spent["redis"]) < 1e-9, f"redis book {key}: {total} != {spent['redis']}")
            out.check(remote.exists("llmguard:bench:rate:gpt-4o-mini") == 1, "redis+limit has no rate book")
            server[0].kill()
            server[0].wait()
        total_calls = sum(made.values())
        requests = sim_stats(base_url)["requests"]
        out.check(requests == total_calls, f"simulator received {requests} requests for {total_calls} calls")
    if not out.failures:
        print(f"arms verified: each arm's books equal its ledger's spend; all {total_calls} calls reached the sim")

    if server is not None or shutil.which("redis-server") is not None:
        team_makespan(out, quick)
    print(f"{repeats} repeats x {rounds * block} calls per arm, arms taking turns call by call")
    for arm in arms:
        print(f"  {arm:8s} median {median(per_repeat[arm]):.3f} ms   per repeat {spread(per_repeat[arm], 'ms')}")
    for arm in [a for a in arms if a in TARGETS]:
        base = "process+limit" if arm.endswith("+limit") else "process"
        added = [a - b for a, b in zip(per_repeat[arm], per_repeat[base], strict=True)]
        name = f"{arm.removesuffix('+limit')} store added latency/call " + (
            "under a rate limit" if arm.endswith("+limit") else "over process"
        )
        out.add(
            Figure(
                name,
                median(added),
                TARGETS[arm],
                "ms",
                detail=spread(added, "ms"),
            )
        )
    for f in out.figures:
        print(f"  {f.name:44s} per repeat {f.detail}")
    return out


MACHINE = """
import json, os, sys, threading, time
import llmguard, openai
base, home, store, go = sys.argv[1:5]
threads, calls, max_tokens = (int(a) for a in sys.argv[5:8])
guard = llmguard.install(home=home, store=store, limits={"gpt-4o-mini": json.loads(os.environ["LIMITS"])},
                         window_s=1.0, max_wait_s=600, cache="off")
client = openai.OpenAI(base_url=base + "/v1", api_key="sk-bench", max_retries=0, timeout=120)
# one call first: the SDK's first response builds its models and the guard loads its encodings
# (~0.6 s on 2 cores), which is this process starting, not the limiter pacing the team
client.chat.completions.create(model="gpt-4o-mini", max_tokens=1, messages=[{"role": "user", "content": "warm"}])
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.002)
done, errors, lock = [0], [], threading.Lock()
def worker(n):
    with llmguard.tag(priority="background"):
        for i in range(calls):
            try:
                client.chat.completions.create(model="gpt-4o-mini", max_tokens=max_tokens,
                    messages=[{"role": "user", "content": f"machine {home[-1]} thread {n} call {i}: say hi"}])
                with lock:
                    done[0] += 1
            except Exception as exc:
                with lock:
                    errors.append(type(exc).__name__)
pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
end = time.time()
rates = guard.limiter._rates
print(json.dumps({"answered": done[0], "errors": errors, "end": end,
                  "store": rates.store.kind if rates is not None else None}), flush=True)
llmguard.uninstall()
"""


def run_machines(out: Outcome, limits: dict[str, int], calls: int) -> tuple[float, dict[str, Any]]:
    """One run of the three-machine workload against a fresh simulator; (makespan s, sim stats)."""
    total = TEAM_MACHINES * TEAM_THREADS * calls
    with sim_process() as base_url, tempfile.TemporaryDirectory() as tmp:
        server = redis_server(tmp)
        if server is None:
            raise RuntimeError("redis-server did not start")
        try:
            go = Path(tmp) / "go"
            env = {**os.environ, "LIMITS": json.dumps(limits)}
            procs = []
            for n in range(TEAM_MACHINES):
                args = [base_url, f"{tmp}/machine-{n}", server[1], str(go), str(TEAM_THREADS), str(calls)]
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-c", MACHINE, *args, str(TEAM_MAX_TOKENS)],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                        env=env,
                    )
                )
            for proc in procs:
                out.check(proc.stdout.readline().strip() == "ready", "a machine did not start")
            sim_reset(base_url, window_s=1.0, **limits)  # counters zeroed, buckets full
            go.write_text("go")
            results = []
            for proc in procs:
                stdout, stderr = proc.communicate(timeout=600)
                out.check(proc.returncode == 0, f"a machine failed: {stderr[-500:]}")
                results.append(json.loads(stdout.strip().splitlines()[-1]))
            import redis

            book = redis.Redis.from_url(server[1]).get("llmguard:default:rate:gpt-4o-mini")
        finally:
            server[0].kill()
            server[0].wait()
        stats = sim_stats(base_url)
    answered = sum(r["answered"] for r in results)
    out.check(answered == total and not any(r["errors"] for r in results), f"{answered} of {total} answered")
    out.check(stats["requests"] == total, f"simulator received {stats['requests']} requests for {total} calls")
    out.check(all(r["store"] == "redis" for r in results), "a machine's rate limit did not go through Redis")
    leases = json.loads(book)["leases"] if book else None
    out.check(leases == {}, f"the Redis rate book at the end: {leases!r} (every lease given back)")
    return max(r["end"] for r in results) - stats["first_request_ts"], stats


def team_makespan(out: Outcome, quick: bool) -> None:
    """Three machines (own homes, one Redis) x 16 threads against RPM/TPM on a 1 s window.

    The provider's limit must bind, or the figure measures this machine's CPU instead: on 2 cores,
    three processes of 16 threads plus the simulator serve only so many calls a second whatever
    the limit. So the same workload first runs with a limit that never binds (the client's floor),
    the limit is set to `TEAM_LOAD` of that throughput, and the two arms alternate for the repeats.
    """
    calls = TEAM_CALLS // 2 if quick else TEAM_CALLS
    total = TEAM_MACHINES * TEAM_THREADS * calls
    unlimited = {"rpm": 10_000_000, "tpm": 1_000_000_000}
    floor, _ = run_machines(out, unlimited, calls)
    rpm = max(20, int(total / floor * TEAM_LOAD))
    limits = {"rpm": rpm, "tpm": rpm * TOKENS_PER_REQUEST}
    print(
        f"three machines x {TEAM_THREADS} threads x {calls} calls, no binding limit: {floor:.2f} s "
        f"({total / floor:.0f} calls/s); the provider's limit is set to {rpm} requests/s"
    )
    ratios, floors, minimums, details, throttled = [], [floor], [], [], 0
    for repeat in range(1 if quick else 2):
        if repeat:
            floors.append(run_machines(out, unlimited, calls)[0])
        makespan, stats = run_machines(out, limits, calls)
        charged = stats["models"].get("gpt-4o-mini", {}).get("input_tokens", 0) + TEAM_MAX_TOKENS * total
        by_requests = max(0.0, (total - limits["rpm"]) / limits["rpm"])  # buckets start full; 1 s window
        by_tokens = max(0.0, (charged - limits["tpm"]) / limits["tpm"])
        minimum = max(by_requests, by_tokens)
        throttled += stats["rate_limited"]
        ratios.append(makespan / minimum)
        minimums.append(minimum)
        details.append(f"{makespan:.2f} s / {minimum:.2f} s")
        print(
            f"  limited run {repeat + 1}: makespan {makespan:.2f} s, theoretical minimum {minimum:.2f} s "
            f"({'tokens' if by_tokens > by_requests else 'requests'} bind), {stats['rate_limited']} 429s"
        )
    out.check(max(floors) < min(minimums), f"the limit did not bind: unlimited {floors} vs minimum {minimums}")
    out.add(
        Figure(
            "three machines on Redis: makespan / minimum",
            median(ratios),
            TEAM_TARGET,
            "x",
            detail=f"{', '.join(details)}; unlimited {', '.join(f'{f:.2f} s' for f in floors)}; {throttled} 429s",
            miss_reason=f"{throttled} provider 429s" if throttled else "",
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="repeats (default 5; 3 with --quick)")
    parser.add_argument("--rounds", type=int, help="rounds of every arm per repeat (default 6)")
    parser.add_argument("--block", type=int, help="calls per arm per round (default 40)")
    return cli(measure, parser, "team")


if __name__ == "__main__":
    sys.exit(main())
