"""The cache's writer thread stores answers in batches, then lets go of their leads, in that order.

A follower in another process reads "no leader and no answer" as "the leader failed", so a lead
(a byte-range lock, or a marker file where locks are missing) must never end before its answer is
on disk, batching or not.
"""

from __future__ import annotations

import threading

from llmguard.cache.entry import CachedResponse
from llmguard.cache.stage import CacheLayer


def _answer(n: int) -> CachedResponse:
    return CachedResponse(status=200, headers=[("content-type", "application/json")], body=f'{{"n": {n}}}'.encode())


def test_a_burst_of_answers_is_stored_and_every_lead_released(tmp_path):
    layer = CacheLayer(tmp_path, ttl_s=3600, size_limit=1 << 30)
    keys = [f"k{n:03d}" for n in range(200)]
    for n, key in enumerate(keys):
        assert layer.lead_across_processes(key)
        layer.store(key, _answer(n), claim=None, led_across=True)
    layer.flush()
    assert [layer.cache.get(key).body for key in keys] == [f'{{"n": {n}}}'.encode() for n in range(200)]
    other = CacheLayer(tmp_path, ttl_s=3600, size_limit=1 << 30)  # "another process" on the same home
    assert [key for key in keys if other.across.is_led(key)] == []
    assert [p.name for p in (tmp_path / "inflight").iterdir() if p.name != "leads.lock"] == []  # no files left
    other.close()
    assert layer._recent == {}
    layer.close()


def test_a_lead_is_released_only_after_its_answer_is_on_disk(tmp_path):
    layer = CacheLayer(tmp_path, ttl_s=3600, size_limit=1 << 30)
    other = CacheLayer(tmp_path, ttl_s=3600, size_limit=1 << 30)  # "another process" on the same home
    seen_gone_without_answer: list[str] = []
    keys = [f"m{n:03d}" for n in range(100)]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for key in keys:  # in this order: led, then lead gone, then no answer = released too early
                if key in started and not other.across.is_led(key) and other.cache.get(key) is None:
                    seen_gone_without_answer.append(key)

    started: set[str] = set()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for n, key in enumerate(keys):
            assert layer.lead_across_processes(key)
            started.add(key)
            layer.store(key, _answer(n), claim=None, led_across=True)
        layer.flush()
    finally:
        stop.set()
        watcher.join()
    assert seen_gone_without_answer == []
    layer.close()
    other.close()
