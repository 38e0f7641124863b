"""A cache hit end to end through the real openai SDK versus an uncached call, and what a miss adds.

Targets (issue 4): a hit costs at most 0.75x a bare uncached SDK call to the zero-latency simulator;
a miss adds at most 0.05 ms over the guard without a cache. Calls are interleaved in one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import openai

import llmguard
from llmguard.intercept import transport

sys.path.insert(0, str(Path(__file__).parent))
from _simproc import sim_process  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with sim_process() as base_url, tempfile.TemporaryDirectory() as home_a, tempfile.TemporaryDirectory() as home_b:
        client = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-bench", max_retries=0, timeout=60)
        cached = llmguard.install(home=home_a)
        uncached = llmguard.install(home=home_b, cache="off")
        transport.detach()
        counter = iter(range(10**9))

        def call(prompt: str) -> float:
            start = time.perf_counter()
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], max_tokens=8, temperature=0
            )
            return (time.perf_counter() - start) * 1000

        def unique() -> str:
            return f"Say hi #{next(counter)}"

        same = "Say hi, the cached way."
        transport.attach(cached)
        call(same)  # stored
        cached.cache_layer.flush()
        transport.detach()
        runs: dict[str, list[float]] = {"bare": [], "hit": [], "miss": [], "guard, no cache": []}
        for i in range(args.calls + 100):
            record = i >= 100  # warm-up first
            for name in (
                ("bare", "hit", "miss", "guard, no cache") if i % 2 else ("guard, no cache", "miss", "hit", "bare")
            ):
                if name == "bare":
                    value = call(unique())
                elif name == "hit":
                    transport.attach(cached)
                    value = call(same)
                elif name == "miss":
                    transport.attach(cached)
                    value = call(unique())
                else:
                    transport.attach(uncached)
                    value = call(unique())
                transport.detach()
                if record:
                    runs[name].append(value)
        cached.cache_layer.flush()
        cached.close()
        uncached.close()
    med = {name: statistics.median(values) for name, values in runs.items()}
    for name, value in med.items():
        print(f"{name:16s} median {value:.3f} ms")
    print(f"hit / bare uncached call      : {med['hit'] / med['bare']:.3f}x   (target <= 0.75x)")
    print(f"miss added over guard no cache: {med['miss'] - med['guard, no cache']:+.3f} ms (target <= 0.05 ms)")


if __name__ == "__main__":
    main()
