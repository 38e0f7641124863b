"""The cache as the guard uses it: look up, lead or follow an identical call, store off the hot path.

Composes the response cache, the in-process flight registry and the cross-process markers behind
the few calls the pipeline makes. Writes that nobody waits for (storing an answer, releasing a
marker, counting hits and misses) go to one background thread in order, so a miss costs the caller
a key and a lookup, not a disk write; `flush()` waits for them and writes the counters (tests,
uninstall, and once at exit for every layer still open, so `llmguard cache stats` counts a kernel
that ends without `uninstall()`).

Keys: a request's key names where its answer comes from (`origin.py`: the URL, or a simulator's
identity); in a notebook kernel a sampled call gets a key of its own draw (`replay.py`).
"""

from __future__ import annotations

import atexit
import queue
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmguard.cache.entry import decode, encode
from llmguard.cache.inflight import InflightRegistry
from llmguard.cache.key import cache_key, check_mode, is_cacheable, is_sampled_draw
from llmguard.cache.lock_leads import open_leads
from llmguard.cache.markers import GONE, HIT, WAITING, Poll, poll_leader
from llmguard.cache.origin import answer_origin
from llmguard.cache.replay import SampleOrdinals, in_notebook_kernel, replay_key
from llmguard.cache.store import CachedResponse, ResponseCache, cache_dir
from llmguard.types import CallRequest

if TYPE_CHECKING:
    from llmguard.store.redis_cache import RedisCacheTier

_COUNT_BATCH = 50
# How long the writer lets answers gather before one commit. A notebook's loop sends a call every
# few ms, and each commit costs far more than each answer in it; it also makes the caller's next
# lookup re-read pages (its connection's page cache is stale): ~110 us instead of ~10. A loop of
# 8 ms calls (measured interleaved, per-thread CPU): the writer's CPU per miss is 391 us at 20 ms,
# 231 us at 100 ms, 209 us at 250 ms. `flush()` cuts the wait short; this process serves answers
# from memory meanwhile; another process asking the same question waits for the lead's release,
# at most this much longer.
_BATCH_WAIT_S = 0.1
_BATCH_MAX = 64


@dataclass(frozen=True, slots=True)
class _Put:
    """An answer for the writer thread to store (then release its cross-process marker)."""

    key: str
    response: CachedResponse
    led_across: bool
    local_only: bool = False  # read from Redis: kept on this machine's disk, not written back


@dataclass(frozen=True, slots=True)
class CallKey:
    """A call's cache key, and whether its answer is a sampled draw (served, it is a replay)."""

    key: str
    sampled: bool


class CacheLayer:
    def __init__(
        self,
        home: Path,
        ttl_s: float | None,
        size_limit: int,
        cache_sampled: bool = False,
        key_tags: Iterable[str] = (),
        lead_ttl_s: float = 120.0,
        shared: RedisCacheTier | None = None,
    ) -> None:
        self.cache = ResponseCache(cache_dir(home), ttl_s=ttl_s, size_limit=size_limit)
        self.flights = InflightRegistry()
        self.across = open_leads(Path(home) / "inflight")
        # the store is Redis: answers and leaders shared with other machines too
        self.shared = shared
        self.cache_sampled = cache_sampled
        # In a notebook kernel sampled calls are replayed, each draw under its own key (replay.py);
        # a script keeps them uncached unless cache_sampled. The demo turns it on for itself.
        self.replay_sampled = in_notebook_kernel()
        self.ordinals = SampleOrdinals()
        self.key_tags = tuple(key_tags)
        self.lead_ttl_s = lead_ttl_s
        # Answers handed to the writer but not yet on disk: a re-ask right away must still hit.
        self._recent: dict[str, CachedResponse] = {}
        self._counts: list[Any] = [0, 0, 0.0]  # hits, misses, USD saved not yet written
        self._jobs: queue.SimpleQueue[Callable[[], Any] | _Put | None] = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._hurry = threading.Event()  # set by flush(): store what is queued now
        self._worker: threading.Thread | None = None
        _live.add(self)  # at exit its answers reach the disk and its counters are written

    # ---- the pipeline's questions --------------------------------------------------------
    def call_key(self, call: CallRequest, url: str, tags: Mapping[str, Any], mode: str) -> CallKey | None:
        """The key of a call this layer may serve or store under `mode` (sent to `url`), else None.

        A sampled draw replayed in a notebook counts as asked: call it once per call.
        """
        if is_cacheable(call, check_mode(mode), self.cache_sampled):
            return CallKey(cache_key(call, answer_origin(url), tags, self.key_tags), is_sampled_draw(call))
        if not (self.replay_sampled and mode != "off" and is_sampled_draw(call)):
            return None
        base = cache_key(call, answer_origin(url), tags, self.key_tags)
        notebook = tags.get("notebook")
        ordinal = self.ordinals.next((notebook, tags.get("cell")), base)
        return CallKey(replay_key(base, notebook, ordinal), True)

    def key_for(self, call: CallRequest, base_url: str, tags: Mapping[str, Any], mode: str) -> str | None:
        """The cache key of a call this layer may serve or store under `mode`, else None."""
        found = self.call_key(call, base_url, tags, mode)
        return None if found is None else found.key

    def lookup(self, key: str, count: bool = True) -> CachedResponse | None:
        hit = self._recent.get(key) or self.cache.get(key)
        if hit is None and self.shared is not None:
            hit = self._shared_get(key)
        if hit is None and count:
            self._tally(misses=1)
        return hit

    def _shared_get(self, key: str) -> CachedResponse | None:
        """Another machine's answer from Redis (kept on this machine's disk too, off the call's path)."""
        assert self.shared is not None
        response = decode(key, self.shared.get(key))
        if response is None:
            return None
        ttl_s = self.cache.ttl_s
        if ttl_s is not None and response.age_s() > ttl_s:
            return None
        self._recent[key] = response
        self._later(_Put(key, response, led_across=False, local_only=True))
        return response

    def stale(self, key: str) -> CachedResponse | None:
        """An answer past its TTL, for when the provider is down and stale answers are allowed."""
        return self.cache.get(key, allow_stale=True)

    def lead_across_processes(self, key: str) -> bool:
        """Lead `key` among this machine's processes, then (Redis) among every machine's."""
        return self.lead_here(key) and self.lead_everywhere(key)

    def lead_here(self, key: str) -> bool:
        """Lead `key` among the processes sharing this home (a lock, ~10 us: taken before the lookup)."""
        return self.across.try_lead(key, self.lead_ttl_s)

    def let_go_here(self, key: str) -> None:
        """The lookup found the answer after all: nothing to lead."""
        self.across.release(key)

    def lead_everywhere(self, key: str) -> bool:
        """Given this machine's lead, lead `key` among every machine's (Redis; True without it)."""
        if self.shared is None or self.shared.try_lead(key, self.lead_ttl_s):
            return True
        self.across.release(key)  # another machine leads: this machine's processes follow it too
        return False

    def poll(self, key: str) -> Any:
        seen = poll_leader(self.cache, self.across, key)
        if self.shared is None or seen.state == HIT:
            return seen
        led = seen.state == WAITING or self.shared.is_led(key)  # marker before answer, as poll_leader
        response = self._shared_get(key)
        if response is not None:
            return Poll(HIT, response)
        return Poll(WAITING) if led else Poll(GONE)

    def counted_hit(self, saved_usd: float | None) -> None:
        self._tally(hits=1, saved=saved_usd or 0.0)

    def _tally(self, hits: int = 0, misses: int = 0, saved: float = 0.0) -> None:
        """Count in memory; write the counters in batches (each write is a SQLite transaction)."""
        with self._idle:
            self._counts[0] += hits
            self._counts[1] += misses
            self._counts[2] += saved
            due = self._counts[0] + self._counts[1] >= _COUNT_BATCH
        if due:
            self._later(self._write_counts)

    def _write_counts(self) -> None:
        with self._idle:
            hits, misses, saved = self._counts
            self._counts = [0, 0, 0.0]
        self.cache.record_counts(hits, misses, saved)

    def store(self, key: str, response: CachedResponse, claim: Any, led_across: bool) -> None:
        """Hand the answer to in-process followers now; store it (then release the marker) later."""
        if claim is not None:
            claim.finish(response)
        self._recent[key] = response
        self._later(_Put(key, response, led_across))

    def _write_puts(self, puts: list[_Put]) -> None:
        """Store a batch of answers in one transaction, then release their markers (in that order:
        a follower in another process that sees no marker must find the answer on disk)."""
        try:
            self.cache.put_many([(put.key, put.response) for put in puts])
            if self.shared is not None:
                shared = [
                    (put.key, encode(put.key, put.response))
                    for put in puts
                    if not put.local_only and 200 <= put.response.status < 300
                ]
                self.shared.put_many(shared, self.cache.ttl_s)
        finally:
            for put in puts:
                if self._recent.get(put.key) is put.response:
                    del self._recent[put.key]
        for put in puts:
            if put.led_across:
                self.across.release(put.key)
                if self.shared is not None:
                    self.shared.release(put.key)

    def failed(self, key: str, claim: Any, led_across: bool, error: BaseException | None = None) -> None:
        if claim is not None:
            claim.abandon(error)
        if led_across:
            self._later(lambda: self._release(key))

    def _release(self, key: str) -> None:
        self.across.release(key)
        if self.shared is not None:
            self.shared.release(key)

    # ---- background writes ---------------------------------------------------------------
    def _later(self, job: Callable[[], Any] | _Put) -> None:
        with self._idle:
            self._pending += 1
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="llmguard-cache-writer", daemon=True)
                self._worker.start()
        self._jobs.put(job)

    def _run(self) -> None:
        """Run jobs in order; answers waiting together are stored in one transaction.

        After the first job of a batch the writer waits `_BATCH_WAIT_S` for more: a loop of calls
        then shares one SQLite commit per few calls, and the writer runs while the caller waits on
        the network instead of contending with it for the GIL on every call.
        """
        stop = False
        while not stop:
            first = self._jobs.get()
            if first is None:
                return
            self._hurry.wait(_BATCH_WAIT_S)
            batch: list[Callable[[], Any] | _Put] = [first]
            while len(batch) < _BATCH_MAX:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._run_batch(batch)

    def _run_batch(self, batch: list[Callable[[], Any] | _Put]) -> None:
        puts: list[_Put] = []
        try:
            for job in [*batch, None]:
                if isinstance(job, _Put):
                    puts.append(job)
                    continue
                if puts:  # keep the order: earlier answers are stored before a later job runs
                    self._quietly(self._write_puts, puts)
                    puts = []
                if job is not None:
                    self._quietly(job)
        finally:
            with self._idle:
                self._pending -= len(batch)
                if self._pending == 0:
                    self._idle.notify_all()

    @staticmethod
    def _quietly(job: Callable[..., Any], *args: Any) -> None:
        try:
            job(*args)
        except Exception:  # the cache never breaks a call; its own methods warn once
            pass

    def flush(self, timeout: float = 10.0) -> None:
        """Wait for the writes handed to the writer thread, then write the counters here.

        Here, not on the writer: at exit no thread may be started, and a layer that only ever
        served hits has none.
        """
        self._hurry.set()
        try:
            with self._idle:
                self._idle.wait_for(lambda: self._pending == 0, timeout)
        finally:
            self._hurry.clear()
        self._write_counts()

    def close(self) -> None:
        self.flush()
        _live.discard(self)
        worker, self._worker = self._worker, None
        if worker is not None:
            self._jobs.put(None)
            worker.join(timeout=5)
        self.cache.close()
        self.across.close()
        if self.shared is not None:
            self.shared.close()


# Open layers; flushed once at exit by one callback (a callback per layer would keep every
# replaced layer alive and add one more at each install()).
_live: weakref.WeakSet[CacheLayer] = weakref.WeakSet()


@atexit.register
def _flush_live_layers() -> None:
    for layer in list(_live):
        layer.flush()
