"""A cache hit end to end through the real openai SDK versus an uncached call, and what a miss adds.

Four arms against the zero-latency simulator (its own process), every call at temperature 0:
  - "bare": no guard, a unique prompt per call;
  - "guard, no cache": a guard with cache="off", unique prompts;
  - "miss": a guard with the cache on, unique prompts (each a lookup that misses, then a store);
  - "hit": the same guard, one prompt stored before timing starts.
Two live guards, built side by side (not with `install()`, which closes the guard it replaces) and
attached in turn. Arms run in blocks of calls, the order rotating every round; each block's CPU
(`time.process_time()`: every thread of this process) includes flushing its guard's ledger and
cache writer, so a miss's background write is charged to the miss arm, not to whichever arm
follows it. Checked afterwards: ledger rows and cache hits per guard, cache entries and counters,
and the requests the simulator received (a hit must not reach it).

Targets (issue 15): a miss adds <= 0.05 ms latency and <= 0.1 ms CPU per call over the guard
without a cache; a hit through the SDK costs <= 0.70x a bare uncached call.
"""

from __future__ import annotations

import argparse
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

ARMS = ("bare", "guard, no cache", "miss", "hit")
SAME = "Say hi, the cached way."


def flush(guard: Guard | None) -> None:
    """Wait for the guard's background writes (cache puts and counters, ledger rows)."""
    if guard is None:
        return
    if guard.cache_layer is not None:
        guard.cache_layer.flush()
    if guard.ledger is not None:
        guard.ledger.flush()


def measure(
    quick: bool = False, repeats: int | None = None, rounds: int | None = None, block: int | None = None
) -> Outcome:
    repeats = repeats or (3 if quick else 5)
    rounds = rounds or (2 if quick else 6)  # rounds per repeat
    block = block or (20 if quick else 40)  # calls per arm per round
    out = Outcome("cache")
    warnings.simplefilter("ignore")
    with (
        sim_process() as base_url,
        tempfile.TemporaryDirectory() as home_cached,
        tempfile.TemporaryDirectory() as home_plain,
    ):
        client = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-bench", max_retries=0, timeout=60)
        cached = Guard(load_settings({"home": home_cached}))
        plain = Guard(load_settings({"home": home_plain, "cache": "off"}))
        assert cached.cache_layer is not None and plain.cache_layer is None
        counter = itertools.count()
        made = dict.fromkeys(ARMS, 0)

        def call(prompt: str) -> float:
            start = time.perf_counter()
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], max_tokens=8, temperature=0
            )
            return (time.perf_counter() - start) * 1000

        def run_block(arm: str, n: int) -> tuple[list[float], float]:
            guard = {"bare": None, "guard, no cache": plain}.get(arm, cached)
            if guard is not None:
                transport.attach(guard)
            cpu = time.process_time()
            times = [call(SAME if arm == "hit" else f"Say hi #{next(counter):08d}") for _ in range(n)]
            flush(guard)
            cpu = (time.process_time() - cpu) * 1000 / n
            transport.detach()
            made[arm] += n
            return times, cpu

        # the hit arm's answer is stored, then every arm warms up (connections, encodings, prices)
        transport.attach(cached)
        call(SAME)
        flush(cached)
        transport.detach()
        made["miss"] += 1  # that first call was a miss
        for arm in ARMS:
            run_block(arm, 20 if quick else 50)
        before = sim_stats(base_url)
        sent_before = made["bare"] + made["guard, no cache"] + made["miss"]

        per_repeat: dict[str, list[tuple[float, float]]] = {arm: [] for arm in ARMS}  # (median ms, CPU ms/call)
        turn = 0
        for _ in range(repeats):
            lat: dict[str, list[float]] = {arm: [] for arm in ARMS}
            cpu: dict[str, list[float]] = {arm: [] for arm in ARMS}
            for _ in range(rounds):
                for arm in rotated(ARMS, turn):
                    times, per_call = run_block(arm, block)
                    lat[arm] += times
                    cpu[arm].append(per_call)
                turn += 1
            for arm in ARMS:
                per_repeat[arm].append((median(lat[arm]), median(cpu[arm])))
        after = sim_stats(base_url)
        stats = cached.cache_layer.cache.stats()
        cached.close()
        plain.close()
        rows_cached = read_events(Path(home_cached) / "ledger.sqlite3")
        rows_plain = read_events(Path(home_plain) / "ledger.sqlite3")

    hits = sum(1 for r in rows_cached if r["cache_hit"])
    out.check(
        len(rows_cached) == made["miss"] + made["hit"],
        f"cached guard: {len(rows_cached)} ledger rows for {made['miss'] + made['hit']} calls",
    )
    out.check(hits == made["hit"], f"cached guard: {hits} cache-hit rows for {made['hit']} hit calls")
    out.check(
        len(rows_plain) == made["guard, no cache"] and not any(r["cache_hit"] for r in rows_plain),
        f"guard without cache: {len(rows_plain)} rows for {made['guard, no cache']} calls (none a hit)",
    )
    out.check(
        stats["hits"] == made["hit"] and stats["misses"] == made["miss"],
        f"cache counters: {stats['hits']} hits / {stats['misses']} misses for {made['hit']} / {made['miss']}",
    )
    out.check(stats["entries"] == made["miss"], f"cache: {stats['entries']} entries for {made['miss']} misses stored")
    sent = made["bare"] + made["guard, no cache"] + made["miss"] - sent_before
    received = after["requests"] - before["requests"]
    out.check(received == sent, f"simulator received {received} requests while timing, expected {sent} (hits: 0)")
    print(
        f"arms verified: {made['hit']} hits served from the cache ({hits} hit rows), {made['miss']} misses stored, "
        f"{len(rows_plain)} rows without cache; simulator received {received} requests while timing, as expected"
        if not out.failures
        else "arms NOT verified (see FAIL above)"
    )

    print(f"{repeats} repeats x {rounds} rounds x {block} calls per arm, order rotating each round")
    print(f"  {'arm':16s} {'median ms':>10s} {'CPU ms/call':>12s}   per repeat (median ms)")
    for arm in ARMS:
        meds = [m for m, _ in per_repeat[arm]]
        cpus = [c for _, c in per_repeat[arm]]
        print(f"  {arm:16s} {median(meds):10.3f} {median(cpus):12.3f}   {spread(meds)}")
    hit_ratio = [h[0] / b[0] for h, b in zip(per_repeat["hit"], per_repeat["bare"], strict=True)]
    miss_lat = [m[0] - g[0] for m, g in zip(per_repeat["miss"], per_repeat["guard, no cache"], strict=True)]
    miss_cpu = [m[1] - g[1] for m, g in zip(per_repeat["miss"], per_repeat["guard, no cache"], strict=True)]
    hit_cpu = [h[1] / b[1] for h, b in zip(per_repeat["hit"], per_repeat["bare"], strict=True)]
    out.add(
        Figure("cache hit / bare uncached call (latency)", median(hit_ratio), 0.70, "x", detail=spread(hit_ratio, "x"))
    )
    out.add(
        Figure(
            "cache miss added latency over guard, no cache", median(miss_lat), 0.05, "ms", detail=spread(miss_lat, "ms")
        )
    )
    out.add(
        Figure(
            "cache miss added CPU/call over guard, no cache",
            median(miss_cpu),
            0.10,
            "ms",
            detail=spread(miss_cpu, "ms"),
        )
    )
    out.add(Figure("cache hit / bare uncached call (CPU)", median(hit_cpu), None, "x", detail=spread(hit_cpu, "x")))
    for f in out.figures:
        print(f"  {f.name:48s} {f.detail}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="repeats (default 5; 3 with --quick)")
    parser.add_argument("--rounds", type=int, help="rounds of every arm per repeat (default 6)")
    parser.add_argument("--block", type=int, help="calls per arm per round (default 40)")
    return cli(measure, parser, "cache")


if __name__ == "__main__":
    sys.exit(main())
