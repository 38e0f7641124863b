"""The cache's writer thread stores answers in batches, then releases their markers, in that order.

A follower in another process reads "no marker and no answer" as "the leader failed", so a marker
must never be released before its answer is on disk, batching or not.
"""

from __future__ import annotations

import threading

from llmguard.cache.entry import CachedResponse
from llmguard.cache.stage import CacheLayer


def _answer(n: int) -> CachedResponse:
    return CachedResponse(status=200, headers=[("content-type", "application/json")], body=f'{{"n": {n}}}'.encode())


def test_a_burst_of_answers_is_stored_and_every_marker_released(tmp_path):
    layer = CacheLayer(tmp_path, ttl_s=3600, size_limit=1 << 30)
    keys = [f"k{n:03d}" for n in range(200)]
    for n, key in enumerate(keys):
        assert layer.lead_across_processes(key)
        layer.store(key, _answer(n), claim=None, led_across=True)
    layer.flush()
    assert [layer.cache.get(key).body for key in keys] == [f'{{"n": {n}}}'.encode() for n in range(200)]
    assert sorted(p.name for p in (tmp_path / "inflight").iterdir()) == []
    assert layer._recent == {}
    layer.close()


def test_a_marker_is_released_only_after_its_answer_is_on_disk(tmp_path):
    layer = CacheLayer(tmp_path, ttl_s=3600, size_limit=1 << 30)
    other = CacheLayer(tmp_path, ttl_s=3600, size_limit=1 << 30)  # "another process" on the same home
    seen_gone_without_answer: list[str] = []
    keys = [f"m{n:03d}" for n in range(100)]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for key in keys:  # in this order: led, then marker gone, then no answer = released too early
                marker = tmp_path / "inflight" / key
                if key in started and not marker.exists() and other.cache.get(key) is None:
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
