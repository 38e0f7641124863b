"""What the guard adds to an uncached call: the same small chat calls, with and without it, interleaved.

One guard with default settings (the cache on), attached and detached in turn, against the
zero-latency simulator in its own process; every prompt is unique, so no call is a hit:
  - "bare": no guard, temperature 0;
  - "guard, sampled": temperature 0.7 (a sampled draw: the cache is bypassed);
  - "guard, temperature 0": the default path for a deterministic call: a cache lookup that misses,
    the call, then the answer stored by the cache's writer thread;
  - streaming, "bare stream", "guard stream" (temperature 0) and "guard stream, sampled": time to
    first chunk;
  - async: 64 tasks on one AsyncOpenAI client, throughput bare, guarded at temperature 0, and
    guarded sampled (its background writes flushed inside the timed run).
Sync arms run in blocks whose order rotates every round; a block's CPU (`time.process_time()`, every
thread of this process) includes flushing the guard's ledger and cache writer, so background work is
charged to the arm that caused it. Checked afterwards: one ledger row per guarded call, one cache
entry per temperature-0 call, no hit, and every call reached the simulator.

Targets (issue 15): the guard adds <= 0.15 ms median latency and <= 0.15 ms CPU per uncached call
(both sync paths); <= 0.15 ms to a stream's first chunk; async throughput >= 0.95x bare.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
import warnings
from pathlib import Path

import openai

from llmguard.config import load_settings
from llmguard.intercept import transport
from llmguard.ledger.readers import read_events
from llmguard.pipeline.guard import Guard

sys.path.insert(0, str(Path(__file__).parent))
from _bench import Figure, Outcome, cli, median, rotated, spread  # noqa: E402
from _simproc import sim_process, sim_stats  # noqa: E402

SYNC_ARMS = ("bare", "guard, sampled", "guard, temperature 0", "bare stream", "guard stream", "guard stream, sampled")
TEMPERATURE = {"guard, sampled": 0.7, "guard stream, sampled": 0.7}
ASYNC_ARMS = ("bare", "guard", "guard, sampled")
TASKS = 64


def flush(guard: Guard) -> None:
    if guard.cache_layer is not None:
        guard.cache_layer.flush()
    if guard.ledger is not None:
        guard.ledger.flush()


def measure(
    quick: bool = False,
    repeats: int | None = None,
    rounds: int | None = None,
    block: int | None = None,
    per_task: int | None = None,
) -> Outcome:
    repeats = repeats or (3 if quick else 5)
    rounds = rounds or (2 if quick else 6)
    block = block or (20 if quick else 40)
    per_task = per_task or (4 if quick else 12)
    out = Outcome("overhead")
    warnings.simplefilter("ignore")
    with sim_process() as base_url, tempfile.TemporaryDirectory() as home:
        client = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-bench", max_retries=0, timeout=60)
        guard = Guard(load_settings({"home": home}))
        assert guard.cache_layer is not None, "the default settings keep a cache"
        counter = itertools.count()
        made = dict.fromkeys(SYNC_ARMS, 0)

        def messages() -> list[dict]:
            return [{"role": "user", "content": f"Say hi #{next(counter):08d}"}]

        def call(arm: str) -> float:
            """ms to the answer, or to a stream's first chunk (the rest is read, untimed)."""
            temperature = TEMPERATURE.get(arm, 0)
            start = time.perf_counter()
            if "stream" not in arm:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=messages(), max_tokens=8, temperature=temperature
                )
                return (time.perf_counter() - start) * 1000
            stream = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages(), max_tokens=8, temperature=temperature, stream=True
            )
            iterator = iter(stream)
            next(iterator)
            first = (time.perf_counter() - start) * 1000
            for _ in iterator:
                pass
            return first

        def run_block(arm: str, n: int) -> tuple[list[float], float]:
            guarded = arm.startswith("guard")
            if guarded:
                transport.attach(guard)
            cpu = time.process_time()
            times = [call(arm) for _ in range(n)]
            if guarded:
                flush(guard)
            cpu = (time.process_time() - cpu) * 1000 / n
            transport.detach()
            made[arm] += n
            return times, cpu

        for arm in SYNC_ARMS:  # warm up connections, encodings, prices
            run_block(arm, 30 if quick else 100)
        per_repeat: dict[str, list[tuple[float, float]]] = {arm: [] for arm in SYNC_ARMS}
        turn = 0
        for _ in range(repeats):
            lat: dict[str, list[float]] = {arm: [] for arm in SYNC_ARMS}
            cpu: dict[str, list[float]] = {arm: [] for arm in SYNC_ARMS}
            for _ in range(rounds):
                for arm in rotated(SYNC_ARMS, turn):
                    times, per_call = run_block(arm, block)
                    lat[arm] += times
                    cpu[arm].append(per_call)
                turn += 1
            for arm in SYNC_ARMS:
                per_repeat[arm].append((median(lat[arm]), median(cpu[arm])))

        throughput, async_made = asyncio.run(async_arms(base_url, guard, repeats, per_task, counter))
        flush(guard)
        server = sim_stats(base_url)
        stats = guard.cache_layer.cache.stats()
        guard.close()
        rows = read_events(Path(home) / "ledger.sqlite3")

    guarded_calls = sum(n for arm, n in made.items() if arm.startswith("guard"))
    guarded_calls += async_made["guard"] + async_made["guard, sampled"]
    stored = made["guard, temperature 0"] + made["guard stream"] + async_made["guard"]  # the t=0 calls
    all_calls = sum(made.values()) + sum(async_made.values())
    out.check(len(rows) == guarded_calls, f"{len(rows)} ledger rows for {guarded_calls} guarded calls")
    out.check(not any(r["cache_hit"] for r in rows), "a guarded call was a cache hit (prompts must be unique)")
    streamed = sum(1 for r in rows if r["stream"])
    streams = made["guard stream"] + made["guard stream, sampled"]
    out.check(streamed == streams, f"{streamed} streamed rows for {streams} guarded stream calls")
    out.check(stats["entries"] == stored, f"{stats['entries']} cache entries for {stored} temperature-0 calls")
    out.check(
        stats["hits"] == 0 and stats["misses"] == stored,
        f"cache counters {stats['hits']} hits, "
        f"{stats['misses']} misses; expected 0 and {stored} (sampled calls bypass the cache)",
    )
    out.check(
        server["requests"] == all_calls, f"simulator received {server['requests']} requests for {all_calls} calls"
    )
    if not out.failures:
        print(
            f"arms verified: {len(rows)} ledger rows for {guarded_calls} guarded calls, {stored} answers stored "
            f"(the sampled arm bypassed the cache), 0 hits; the simulator received all {all_calls} calls"
        )

    print(f"sync: {repeats} repeats x {rounds} rounds x {block} calls per arm, order rotating each round")
    print(f"  {'arm':22s} {'median ms':>10s} {'CPU ms/call':>12s}   per repeat (median ms)")
    for arm in SYNC_ARMS:
        meds = [m for m, _ in per_repeat[arm]]
        print(f"  {arm:22s} {median(meds):10.3f} {median([c for _, c in per_repeat[arm]]):12.3f}   {spread(meds)}")
    print("  (stream arms: time to first chunk; their CPU is per whole stream)")

    def added(arm: str, base: str, which: int) -> list[float]:
        return [a[which] - b[which] for a, b in zip(per_repeat[arm], per_repeat[base], strict=True)]

    for arm, label in (("guard, temperature 0", "temperature 0 (default path)"), ("guard, sampled", "sampled")):
        lat_added, cpu_added = added(arm, "bare", 0), added(arm, "bare", 1)
        out.add(
            Figure(f"guard added latency/call, {label}", median(lat_added), 0.15, "ms", detail=spread(lat_added, "ms"))
        )
        out.add(Figure(f"guard added CPU/call, {label}", median(cpu_added), 0.15, "ms", detail=spread(cpu_added, "ms")))
    for arm, label in (("guard stream", "t=0"), ("guard stream, sampled", "sampled")):
        ttfc = added(arm, "bare stream", 0)
        out.add(
            Figure(
                f"guard added time to first chunk, stream {label}", median(ttfc), 0.15, "ms", detail=spread(ttfc, "ms")
            )
        )
    print(f"async: {TASKS} tasks x {per_task} calls, {repeats} repeats, order rotating; calls/s:")
    for arm in ASYNC_ARMS:
        print(f"  {arm:16s} {spread(throughput[arm])}")
    for arm, label in (("guard", "t=0"), ("guard, sampled", "sampled")):
        ratios = [g / b for g, b in zip(throughput[arm], throughput["bare"], strict=True)]
        out.add(
            Figure(
                f"async {TASKS} tasks throughput guard / bare, {label}",
                median(ratios),
                0.95,
                "x",
                "higher",
                detail=spread(ratios, "x"),
            )
        )
    for f in out.figures:
        print(f"  {f.name:48s} per repeat {f.detail}")
    return out


async def async_arms(
    base_url: str, guard: Guard, repeats: int, per_task: int, counter: itertools.count
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Calls per second of 64 tasks sharing one client, bare and guarded (t=0, sampled), in rotating order."""
    client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="sk-bench", max_retries=0, timeout=60)
    made = dict.fromkeys(ASYNC_ARMS, 0)
    throughput: dict[str, list[float]] = {arm: [] for arm in ASYNC_ARMS}

    async def task(n: int, temperature: float) -> None:
        for _ in range(n):
            await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"Say hi #{next(counter):08d}"}],
                max_tokens=8,
                temperature=temperature,
            )

    async def run(arm: str, n: int) -> float:
        guarded = arm.startswith("guard")
        if guarded:
            transport.attach(guard)
        start = time.perf_counter()
        await asyncio.gather(*(task(n, 0.7 if arm.endswith("sampled") else 0) for _ in range(TASKS)))
        if guarded:  # its background writes are timed too, and finish before the other arm runs
            await asyncio.to_thread(flush, guard)
        elapsed = time.perf_counter() - start
        transport.detach()
        made[arm] += TASKS * n
        return TASKS * n / elapsed

    for arm in ASYNC_ARMS:  # warm up: 64 connections, the event loop's paths
        await run(arm, 2)
    for turn in range(repeats):
        for arm in rotated(ASYNC_ARMS, turn):
            throughput[arm].append(await run(arm, per_task))
    await client.close()
    return throughput, made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="repeats (default 5; 3 with --quick)")
    parser.add_argument("--rounds", type=int, help="rounds of every sync arm per repeat (default 6)")
    parser.add_argument("--block", type=int, help="calls per sync arm per round (default 40)")
    parser.add_argument("--per-task", type=int, help="calls per async task per repeat (default 12)")
    return cli(measure, parser, "overhead")


if __name__ == "__main__":
    sys.exit(main())
