"""Micro-benchmark of the response cache's store: what a hit, a miss and a put cost on this machine.

Prints microseconds per operation (median of batches) for a ~2 KB answer, next to bare diskcache
get/set on the same folder, so the ratio shows what the value format and checks add.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from llmguard.cache.inflight import InflightRegistry
from llmguard.cache.key import cache_key
from llmguard.cache.store import CachedResponse, ResponseCache
from llmguard.providers.base import CallRequest

sys.path.insert(0, str(Path(__file__).parent))
from _bench import Figure, Outcome, cli  # noqa: E402

SCALE = {"batches": 1.0}  # --quick runs a third of the batches


def per_op_us(fn, batches: int = 30, per_batch: int = 500) -> float:
    batches = max(3, int(batches * SCALE["batches"]))
    for _ in range(per_batch):
        fn()
    samples = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(per_batch):
            fn()
        samples.append((time.perf_counter() - start) / per_batch * 1e6)
    return statistics.median(samples)


def measure(quick: bool = False) -> Outcome:
    SCALE["batches"] = 1 / 3 if quick else 1.0
    out = Outcome("cache_store")
    body = json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "word " * 360}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 360, "total_tokens": 380},
        }
    ).encode()
    answer = CachedResponse(
        200,
        [("content-type", "application/json")],
        body,
        model="gpt-4o-mini",
        provider="openai",
        input_tokens=20,
        output_tokens=360,
        cost_usd=0.0002,
    )
    call = CallRequest(
        "openai",
        "chat.completions",
        "gpt-4o-mini",
        {"model": "gpt-4o-mini", "temperature": 0, "messages": [{"role": "user", "content": "question " * 200}]},
    )
    with tempfile.TemporaryDirectory() as folder:
        store = ResponseCache(Path(folder) / "cache")
        key = cache_key(call, "http://127.0.0.1:8000", {"tenant": "acme"})
        store.put(key, answer)
        found = store.get(key)
        store_hit_ok = found is not None and found.body == body
        raw = store._store.open()
        raw.set("bare", body)
        registry = InflightRegistry()

        def claim_and_finish() -> None:
            registry.claim("k").finish(answer)

        rows = [
            ("diskcache get (bare, 2 KB)", per_op_us(lambda: raw.get("bare"))),
            ("diskcache set (bare, 2 KB)", per_op_us(lambda: raw.set("bare", body), batches=10)),
            ("ResponseCache.get hit", per_op_us(lambda: store.get(key))),
            ("ResponseCache.get miss", per_op_us(lambda: store.get("0" * 64))),
            ("ResponseCache.put", per_op_us(lambda: store.put(key, answer), batches=10)),
            ("record_hit (2 counters, 1 txn)", per_op_us(lambda: store.record_hit(0.0002), batches=10)),
            ("record_miss", per_op_us(store.record_miss, batches=10)),
            ("cache_key (1.6 KB prompt)", per_op_us(lambda: cache_key(call, "http://x", {"tenant": "a"}))),
            ("in-process claim + finish", per_op_us(claim_and_finish)),
        ]
        store.close()
    bare_get = rows[0][1]
    print(f"{len(body)} byte answer; microseconds per operation (median of batches)")
    for name, value in rows:
        print(f"  {name:34s} {value:8.1f} us   {value / bare_get:5.1f}x bare get")
    for name, value in rows[2:5]:
        out.add(Figure(f"cache store: {name} (no target)", value, None, "µs"))
    out.check(store_hit_ok, "ResponseCache.get did not return the stored answer")
    return out


def main() -> int:
    return cli(measure, argparse.ArgumentParser(description=__doc__.splitlines()[0]), "cache_store")


if __name__ == "__main__":
    sys.exit(main())
