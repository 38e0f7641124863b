"""Makespan against the provider's own limits: llmguard's limiter versus a naive burst.

The simulated provider (its own process) enforces RPM and TPM per model, charging prompt + max
tokens at admission. 2,000 calls with log-normal prompt sizes and mixed max tokens are sent as fast
as allowed. The theoretical minimum makespan is what the provider's buckets allow for this
workload: their initial capacity plus their refill rate, for requests and tokens, whichever binds.
Makespan runs from the provider's first received request to the last answer (building 2,000
requests in one event loop takes the client over a second before anything is sent).
Target (issue 3): makespan <= 1.03x the minimum with 0 429s.

The default limits (200 RPM, 20k TPM per 1-second window) make the provider's limit bind: on this
2-core machine the async SDK and the simulator together need ~8 s for 2,000 unlimited calls, so
tighter windows would measure the machine, not the limiter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

import openai

import llmguard
from llmguard.policies import tokens

sys.path.insert(0, str(Path(__file__).parent))
from _simproc import sim_process  # noqa: E402

MODEL = "gpt-4o-mini"
WORDS = ["ledger", "budget", "latency", "quota", "retry", "window", "tenant", "prompt", "stream", "cache"]


def workload(n: int, seed: int = 11) -> list[tuple[list[dict], int]]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        words = min(2000, max(1, int(rng.lognormvariate(4.3, 0.9))))
        text = f"Call {i}. " + " ".join(rng.choice(WORDS) for _ in range(words))
        items.append(([{"role": "user", "content": text}], rng.choice([32, 64, 128, 256])))
    return items


def theoretical_min_s(items, rpm: int, tpm: int, window_s: float) -> tuple[float, str]:
    total_tokens = sum(tokens.count_messages(m, MODEL).tokens + mx for m, mx in items)
    by_requests = max(0.0, (len(items) - rpm) / (rpm / window_s))
    by_tokens = max(0.0, (total_tokens - tpm) / (tpm / window_s))
    return max(by_requests, by_tokens), ("tokens" if by_tokens >= by_requests else "requests")


def stats(base_url: str) -> dict:
    return json.load(urllib.request.urlopen(base_url + "/_sim/stats"))


async def send_all(base_url: str, items, max_retries: int) -> tuple[float, int]:
    client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="sk-bench", max_retries=max_retries, timeout=60)
    failures = 0

    async def one(messages, max_tokens):
        nonlocal failures
        try:
            with llmguard.tag(priority="background"):
                await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=max_tokens)
        except openai.APIError:
            failures += 1

    await asyncio.gather(*(one(m, mx) for m, mx in items))
    return time.time(), failures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rpm", type=int, default=200)
    parser.add_argument("--tpm", type=int, default=20_000)
    parser.add_argument("--window-s", type=float, default=1.0)
    parser.add_argument("--no-learn", action="store_true", help="ignore rate-limit headers")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    items = workload(args.calls)
    minimum, binding = theoretical_min_s(items, args.rpm, args.tpm, args.window_s)
    flags = ["--rpm", str(args.rpm), "--tpm", str(args.tpm), "--window-s", str(args.window_s)]

    with sim_process(*flags) as base_url:
        guard = llmguard.install(
            home=tempfile.mkdtemp(),
            window_s=args.window_s,
            max_wait_s=3600,
            learn_limits=not args.no_learn,
            limits={MODEL: {"rpm": args.rpm, "tpm": args.tpm}},
        )
        guarded_end, guarded_failed = asyncio.run(send_all(base_url, items, max_retries=0))
        guarded = stats(base_url)
        guarded_s = guarded_end - guarded["first_request_ts"]
        llmguard.uninstall()
        del guard

    with sim_process(*flags) as base_url:
        naive_end, naive_failed = asyncio.run(send_all(base_url, items, max_retries=2))
        naive = stats(base_url)
        naive_s = naive_end - naive["first_request_ts"]

    print(
        f"workload: {args.calls} calls, limits rpm={args.rpm} tpm={args.tpm} per {args.window_s}s window; "
        f"{binding} bind"
    )
    print(f"theoretical minimum makespan : {minimum:8.2f} s")
    print(
        f"llmguard   makespan          : {guarded_s:8.2f} s  ratio {guarded_s / minimum:.3f}x  "
        f"429s {guarded['rate_limited']:5d}  failed calls {guarded_failed}  (target <= 1.03x, 0 429s)"
    )
    print(
        f"naive      makespan          : {naive_s:8.2f} s  ratio {naive_s / minimum:.3f}x  "
        f"429s {naive['rate_limited']:5d}  failed calls {naive_failed}  (all at once, SDK retries)"
    )


if __name__ == "__main__":
    main()
