"""What the guard adds to an uncached call: the same small chat calls, with and without it, interleaved.

Target (issue 2): at most 0.15 ms added at the median on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

import openai

import llmguard
from llmguard.intercept import transport

sys.path.insert(0, str(Path(__file__).parent))
from _simproc import sim_process  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with sim_process() as base_url, tempfile.TemporaryDirectory() as home:
        client = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-bench", max_retries=0, timeout=60)
        guard = llmguard.install(home=home)
        transport.detach()
        messages = [{"role": "user", "content": "Say hi."}]

        def call() -> float:
            start = time.perf_counter()
            client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=8)
            return (time.perf_counter() - start) * 1000

        for _ in range(200):  # warm up connections, encodings, prices
            call()
            transport.attach(guard)
            call()
            transport.detach()
        bare, guarded = [], []
        for i in range(args.calls):
            order = (False, True) if i % 2 else (True, False)
            for on in order:
                if on:
                    transport.attach(guard)
                    guarded.append(call())
                    transport.detach()
                else:
                    bare.append(call())
        llmguard.uninstall()
        server = json.load(urllib.request.urlopen(base_url + "/_sim/stats"))
    med_b, med_g = statistics.median(bare), statistics.median(guarded)
    print(f"calls each way          : {args.calls}")
    print(f"bare SDK call  median   : {med_b:.3f} ms   p99 {pct(bare, 0.99):.3f} ms")
    print(f"guarded call   median   : {med_g:.3f} ms   p99 {pct(guarded, 0.99):.3f} ms")
    print(f"added latency  median   : {med_g - med_b:+.3f} ms   (target <= 0.150 ms)")
    print(f"added latency  p99      : {pct(guarded, 0.99) - pct(bare, 0.99):+.3f} ms")
    print(f"ratio guarded / bare    : {med_g / med_b:.3f}x")
    if "server_us" in server:
        print(f"simulator cost/request  : {server['server_us'] / max(1, server['requests']):.1f} us (mean)")


if __name__ == "__main__":
    main()
