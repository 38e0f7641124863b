"""The response cache's store: complete answers on disk (diskcache), shared by every process.

The key and the policy are in `key.py`, the stored bytes in `entry.py`, the self-resetting
diskcache handle in `disk.py`, and the `llmguard cache ...` commands in `maintenance.py`. The
guard decides when to look up and when to store; in-flight deduplication is in `inflight.py`.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from llmguard.cache.disk import DiskStore, is_broken_db, warn_once
from llmguard.cache.entry import HEADER, CachedResponse, decode, decode_meta, encode

# Imported from here by pipeline/guard.py and tests (`store.MODES`), from before the split.
from llmguard.cache.key import MODES, reads, writes

__all__ = [
    "DEFAULT_SIZE_LIMIT",
    "DEFAULT_TTL_S",
    "MODES",
    "CachedResponse",
    "ResponseCache",
    "cache_dir",
    "decode",
    "empty_stats",
    "encode",
    "reads",
    "writes",
]

_HEADER = HEADER  # read as `store._HEADER` by tests from before the split

DEFAULT_TTL_S = 7 * 24 * 3600.0
DEFAULT_SIZE_LIMIT = 1 << 30
CACHE_DIRNAME = "cache"


def cache_dir(home: Path) -> Path:
    """Where the cache of LLMGUARD_HOME `home` lives."""
    return Path(home) / CACHE_DIRNAME


def empty_stats(directory: Path, ttl_s: float | None, size_limit: int | None) -> dict[str, Any]:
    """The stats of a cache with no entries and no lookups (keys in the order `stats()` shows them)."""
    return {
        "directory": str(directory),
        "entries": 0,
        "bytes": 0,
        "expired": 0,
        "oldest_ts": None,
        "oldest_age_s": None,
        "ttl_s": ttl_s,
        "size_limit": size_limit,
        "hits": 0,
        "misses": 0,
        "hit_rate": None,
        "saved_usd": 0.0,
    }


_GONE = object()
_HITS, _MISSES, _SAVED_NANO_USD = "hits", "misses", "saved_nano_usd"
_SQLITE_TIMEOUT_S = 5.0
# Entries evicted by one put over the size limit. diskcache's default of 10 can evict the entry just
# stored when entries are large next to the limit; 2 keeps the newest and still catches up.
_CULL_PER_PUT = 2


class ResponseCache:
    """Complete answers on disk, shared by every process using the same directory.

    Entries carry no diskcache expiry: the age is checked here against `ttl_s`, so an entry past
    its TTL can still be served as stale when the provider is down, until `prune()` or eviction
    removes it. Eviction is least-recently-stored (a put over `size_limit` evicts the oldest
    entries; `prune()` evicts oldest-first down to the limit): LRU would turn every read into a write.
    Counters (hits, misses, USD saved) live in a small diskcache of their own under
    `<directory>/counters`, never evicted, persistent and shared across processes.
    """

    def __init__(
        self,
        directory: Path,
        ttl_s: float | None = DEFAULT_TTL_S,
        size_limit: int = DEFAULT_SIZE_LIMIT,
    ) -> None:
        self.directory = Path(directory)
        self.ttl_s = ttl_s
        self.size_limit = size_limit
        self._store = DiskStore(
            self.directory,
            keep=("counters",),
            size_limit=size_limit,
            eviction_policy="least-recently-stored",
            cull_limit=_CULL_PER_PUT,
            timeout=_SQLITE_TIMEOUT_S,
        )
        self._counters = DiskStore(self.directory / "counters", eviction_policy="none", timeout=_SQLITE_TIMEOUT_S)

    # ---- reads and writes ----------------------------------------------------------------
    def get(self, key: str, allow_stale: bool = False) -> CachedResponse | None:
        """The answer stored under `key`; None on a miss, an expired entry or a damaged one."""
        cache = self._store.open()
        if cache is None:
            return None
        try:
            raw = cache.get(key)
        except sqlite3.OperationalError:
            return None  # busy or unreadable right now: a miss, the entry may be fine
        except sqlite3.DatabaseError as exc:
            self._store.reset(exc)
            return None
        except Exception:  # a value diskcache itself cannot read back (not one of ours)
            self.delete(key)
            return None
        if raw is None:
            return None
        response = decode(key, raw)
        if response is None:
            self.delete(key)
            return None
        if self.ttl_s is not None and response.age_s() > self.ttl_s:
            if not allow_stale:
                return None
            response.stale = True
        return response

    def put(self, key: str, response: CachedResponse) -> None:
        """Store a complete 2xx answer (others are ignored). Disk errors warn once, never raise."""
        if not 200 <= response.status < 300:
            return
        cache = self._store.open()
        if cache is None:
            return
        value = encode(key, response)
        try:
            cache.set(key, value)
        except Exception as exc:
            self._write_failed(exc)

    def put_many(self, items: list[tuple[str, CachedResponse]]) -> None:
        """Store several answers in one transaction (half the CPU of one transaction each)."""
        items = [(key, response) for key, response in items if 200 <= response.status < 300]
        if not items:
            return
        if len(items) == 1:
            self.put(*items[0])
            return
        cache = self._store.open()
        if cache is None:
            return
        # diskcache culls on every set (a PRAGMA page_count and a scan for expired rows, half a set's
        # cost): a batch culls once, on its last set, for as many entries as its sets would have.
        # `cull_limit` is only this connection's attribute here; the Settings table is untouched.
        culls = cache.cull_limit
        try:
            with cache.transact():
                cache.cull_limit = 0
                for key, response in items[:-1]:
                    cache.set(key, encode(key, response))
                cache.cull_limit = culls * len(items)
                key, response = items[-1]
                cache.set(key, encode(key, response))
        except Exception as exc:
            self._write_failed(exc)
        finally:
            cache.cull_limit = culls

    def delete(self, key: str) -> None:
        cache = self._store.open()
        if cache is None:
            return
        try:
            cache.delete(key)
        except Exception as exc:
            self._write_failed(exc)

    def _write_failed(self, exc: BaseException) -> None:
        if is_broken_db(exc):
            self._store.reset(exc)
        else:
            warn_once(
                "write",
                self.directory,
                f"cannot write the cache at {self.directory} ({exc}); answers are not being stored. "
                "Check free disk space, or turn the cache off",
            )

    # ---- counters ------------------------------------------------------------------------
    def record_hit(self, saved_usd: float | None = None) -> None:
        """Count a hit and what it saved (an unknown cost counts as a hit that saved nothing known)."""
        nano = round((saved_usd or 0.0) * 1e9)
        self._count(((_HITS, 1), (_SAVED_NANO_USD, nano)) if nano else ((_HITS, 1),))

    def record_miss(self) -> None:
        self._count(((_MISSES, 1),))

    def record_counts(self, hits: int, misses: int, saved_usd: float) -> None:
        """Add a batch of hits, misses and savings in one transaction."""
        deltas = tuple(
            (name, value)
            for name, value in ((_HITS, hits), (_MISSES, misses), (_SAVED_NANO_USD, round(saved_usd * 1e9)))
            if value
        )
        if deltas:
            self._count(deltas)

    def _count(self, deltas: tuple[tuple[str, int], ...]) -> None:
        counters = self._counters.open()
        if counters is None:
            return
        try:
            if len(deltas) == 1:
                counters.incr(deltas[0][0], deltas[0][1])
                return
            with counters.transact():
                for name, delta in deltas:
                    counters.incr(name, delta)
        except Exception as exc:
            if is_broken_db(exc):
                self._counters.reset(exc)
            else:
                warn_once("count", self.directory, f"cannot update the cache counters at {self.directory} ({exc})")

    def _counter_values(self) -> dict[str, int]:
        counters = self._counters.open()
        values = {_HITS: 0, _MISSES: 0, _SAVED_NANO_USD: 0}
        if counters is None:
            return values
        try:
            for name in values:
                found = counters.get(name, 0)
                values[name] = found if type(found) is int else 0
        except Exception as exc:
            if is_broken_db(exc):
                self._counters.reset(exc)
        return values

    # ---- maintenance ---------------------------------------------------------------------
    def _scan(self) -> list[tuple[str, float | None]]:
        """(key, created_at) of every entry; created_at None for a damaged one. Reads metadata only."""
        cache = self._store.open()
        if cache is None:
            return []
        found: list[tuple[str, float | None]] = []
        for key in list(cache.iterkeys()):
            created = None
            try:
                value = cache.get(key, default=_GONE, read=True)
                if value is _GONE:  # removed meanwhile, or its value file is missing
                    found.append((key, None))
                    continue
                if type(value) is bytes:
                    head = value
                else:  # a large value kept in its own file: read the header and metadata only
                    with value:
                        head = value.read(HEADER.size)
                        if len(head) == HEADER.size:
                            head += value.read(HEADER.unpack(head)[1])
                parsed = decode_meta(key, head) if isinstance(key, str) else None
                if parsed is not None:
                    created = float(parsed[0]["created_at"])
            except sqlite3.OperationalError:
                continue
            except Exception:
                created = None
            found.append((key, created))
        return found

    def stats(self) -> dict[str, Any]:
        """Entries, bytes, oldest entry, expired entries, hits, misses, hit rate, USD saved."""
        stats = empty_stats(self.directory, self.ttl_s, self.size_limit)
        cache = self._store.open()
        if cache is not None:
            try:
                now = time.time()
                scanned = self._scan()
                created = [ts for _, ts in scanned if ts is not None]
                stats["entries"] = len(scanned)
                stats["bytes"] = int(cache.volume())
                if created:
                    stats["oldest_ts"] = min(created)
                    stats["oldest_age_s"] = now - stats["oldest_ts"]
                if self.ttl_s is not None:
                    stats["expired"] = sum(1 for ts in created if now - ts > self.ttl_s)
            except sqlite3.DatabaseError as exc:
                if is_broken_db(exc):
                    self._store.reset(exc)
        counts = self._counter_values()
        lookups = counts[_HITS] + counts[_MISSES]
        stats["hits"] = counts[_HITS]
        stats["misses"] = counts[_MISSES]
        stats["hit_rate"] = counts[_HITS] / lookups if lookups else None
        stats["saved_usd"] = counts[_SAVED_NANO_USD] / 1e9
        return stats

    def clear(self) -> int:
        """Remove every entry and reset the counters; the number of entries removed."""
        removed = 0
        for store in (self._store, self._counters):
            cache = store.open()
            if cache is None:
                continue
            try:
                count = cache.clear()
            except Exception as exc:
                if not is_broken_db(exc):
                    raise
                store.reset(exc)
                count = 0
            if store is self._store:
                removed = count
        return removed

    def prune(self) -> int:
        """Drop entries older than the TTL and damaged ones, then evict down to the size limit."""
        cache = self._store.open()
        if cache is None:
            return 0
        now = time.time()
        removed = 0
        try:
            kept = []
            for key, created in self._scan():
                if created is None or (self.ttl_s is not None and now - created > self.ttl_s):
                    with cache.transact():  # re-check: another process may have just refreshed it
                        if self._still_prunable(cache, key, now):
                            removed += int(cache.delete(key))
                            continue
                kept.append((created or now, key))
            removed += self._evict_to_limit(cache, sorted(kept))
        except sqlite3.DatabaseError as exc:
            if not is_broken_db(exc):
                raise
            self._store.reset(exc)
        return removed

    def _evict_to_limit(self, cache: Any, oldest_first: list[tuple[float, str]]) -> int:
        """Delete oldest entries until the volume fits (diskcache's `cull` drops 10 at a time)."""
        removed = 0
        for _, key in oldest_first:
            if cache.volume() <= self.size_limit:
                break
            removed += int(cache.delete(key))
        return removed

    def _still_prunable(self, cache: Any, key: str, now: float) -> bool:
        try:
            response = decode(key, cache.get(key))
        except sqlite3.OperationalError:
            raise
        except Exception:
            return True
        if response is None:
            return True
        return self.ttl_s is not None and now - response.created_at > self.ttl_s

    def close(self) -> None:
        self._store.close()
        self._counters.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
