"""The response cache: answers stored on disk (diskcache) under a key of everything that shapes them.

Three jobs live here and nothing else: the key (`cache_key`), the policy (`is_cacheable`, the
modes), and the store (`ResponseCache`). The guard decides when to look up and when to store;
in-flight deduplication is in `dedup.py`.

A value is bytes this module writes itself (header + JSON metadata + body, with checksums), never
a pickle of a class, so a corrupted or half-written entry is detected, and a later release that
changes `CachedResponse` still reads old entries.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from llmguard.ledger.journal import create_private_file, make_private_dir
from llmguard.ledger.sqlite import ensure_home
from llmguard.providers.base import CallRequest

DEFAULT_TTL_S = 7 * 24 * 3600.0
DEFAULT_SIZE_LIMIT = 1 << 30
CACHE_DIRNAME = "cache"
# Bumped when the key material changes shape, so old entries simply stop matching.
KEY_VERSION = 1

# ---- cache modes ---------------------------------------------------------------------------

MODES = ("on", "off", "read", "write", "refresh")
_READS = frozenset(("on", "read"))
_WRITES = frozenset(("on", "write", "refresh"))


def check_mode(mode: str) -> str:
    """`mode` if it is a cache mode; a ValueError that lists the valid ones otherwise."""
    if mode not in MODES:
        raise ValueError(
            f"llmguard: cache mode {mode!r} is not one of {', '.join(MODES)}; "
            "use e.g. llmguard.tag(cache='off') to skip the cache for some calls"
        )
    return mode


def reads(mode: str) -> bool:
    """Whether a call in this mode may be answered from the cache."""
    return mode in _READS


def writes(mode: str) -> bool:
    """Whether a call in this mode stores its answer ("refresh" overwrites what was there)."""
    return mode in _WRITES


def is_cacheable(call: CallRequest, mode: str, cache_sampled: bool) -> bool:
    """Whether the cache may take part in this call at all.

    Only deterministic work by default: an answer sampled at temperature > 0 without a seed is one
    draw among many, and replaying it would silently turn variety into repetition. Embeddings are
    deterministic. A user who wants sampled answers frozen (notebook re-runs) opts in.
    """
    if check_mode(mode) == "off":
        return False
    if call.endpoint == "embeddings":
        return True
    if call.n != 1:
        return False
    if call.temperature == 0 or call.seed is not None:
        return True
    return cache_sampled


# ---- the key -------------------------------------------------------------------------------

_OPENAI_IGNORED = frozenset(("user", "metadata", "store", "safety_identifier", "prompt_cache_key"))
_SAMPLING_DEFAULTS: dict[str, Any] = {
    "n": 1,
    "temperature": 1,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
}
# (provider, endpoint) -> (fields whose API default cannot change the answer, fields that never do)
_KEY_RULES: dict[tuple[str, str], tuple[dict[str, Any], frozenset[str]]] = {
    ("openai", "chat.completions"): (
        {**_SAMPLING_DEFAULTS, "logprobs": False, "stream": False, "parallel_tool_calls": True},
        _OPENAI_IGNORED,
    ),
    ("openai", "completions"): (
        {**_SAMPLING_DEFAULTS, "best_of": 1, "echo": False, "stream": False},
        _OPENAI_IGNORED,
    ),
    ("openai", "responses"): (
        {
            "temperature": 1,
            "top_p": 1,
            "stream": False,
            "parallel_tool_calls": True,
            "truncation": "disabled",
            "background": False,
        },
        _OPENAI_IGNORED,
    ),
    ("openai", "embeddings"): ({}, frozenset(("user",))),
    ("anthropic", "messages"): ({"stream": False, "temperature": 1}, frozenset(("metadata",))),
}
_NO_RULES: tuple[dict[str, Any], frozenset[str]] = ({}, frozenset())


def _same_value(value: Any, default: Any) -> bool:
    """`value == default` without Python's True == 1 and False == 0 conflation."""
    if isinstance(default, bool) or isinstance(value, bool):
        return type(value) is type(default) and value == default
    return value == default


def canonical_body(call: CallRequest) -> dict[str, Any]:
    """The request body reduced to what can change the answer.

    Top-level nulls mean "the default" in these APIs, so they go; integral floats become ints so
    `temperature: 0.0` and `temperature: 0` share a key. `stream: true` stays (a streamed answer is
    stored as SSE bytes). `stream_options` goes, except `include_usage`, which adds a chunk the
    user's SDK stream then shows.
    """
    defaults, ignored = _KEY_RULES.get((call.provider, call.endpoint), _NO_RULES)
    out: dict[str, Any] = {}
    for name, value in call.body.items():
        if value is None or name in ignored:
            continue
        if name == "stream_options":
            if isinstance(value, dict) and value.get("include_usage") is True:
                out[name] = {"include_usage": True}
            continue
        if type(value) is float and value.is_integer():
            value = int(value)
        if name in defaults and _same_value(value, defaults[name]):
            continue
        out[name] = value
    return out


def _tag_text(value: Any) -> str | None:
    return None if value is None else str(value)


def cache_key(call: CallRequest, base_url: str, tags: Mapping[str, Any], key_tags: Iterable[str] = ()) -> str:
    """A sha256 hex of everything that can change the answer, and of nothing else.

    Provider, base URL, endpoint and the canonical body (sorted keys, compact separators), plus the
    context: `prompt_version` and `tenant` always (a tenant never sees another tenant's answer),
    and the tags named in `key_tags` (retrieved document ids, ...). Headers, and so API keys, never
    take part.
    """
    context = {
        "prompt_version": _tag_text(tags.get("prompt_version")),
        "tenant": _tag_text(tags.get("tenant")),
    }
    extra = {name: tags.get(name) for name in key_tags if name not in context}
    head = [KEY_VERSION, call.provider, base_url.rstrip("/"), call.endpoint, context, extra]
    digest = hashlib.sha256()
    digest.update(json.dumps(head, sort_keys=True, separators=(",", ":"), default=str).encode())
    digest.update(b"\n")
    digest.update(json.dumps(canonical_body(call), sort_keys=True, separators=(",", ":"), default=str).encode())
    return digest.hexdigest()


# ---- the cached value ----------------------------------------------------------------------

# Response headers that describe the content; everything else (auth, cookies, rate-limit state,
# transfer framing, request ids) is dropped before anything reaches the disk.
SAFE_HEADERS = frozenset(("content-type", "openai-model", "openai-version", "anthropic-model"))


def safe_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The content-describing headers of `headers`, names lowercased."""
    kept = []
    for name, value in headers:
        lowered = str(name).lower()
        if lowered in SAFE_HEADERS:
            kept.append((lowered, str(value)))
    return kept


def body_checksum(body: bytes) -> str:
    return f"{zlib.crc32(body):08x}"


@dataclass(slots=True)
class CachedResponse:
    """One complete successful answer: the decoded JSON body or the complete SSE stream."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    is_stream: bool = False
    model: str = ""
    provider: str = ""
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None  # what the original call cost: a hit records it as saved_usd
    created_at: float = field(default_factory=time.time)
    checksum: str = ""  # crc32 of body; a mismatch means a damaged entry
    stale: bool = False  # set by ResponseCache.get(allow_stale=True) for an entry past its TTL

    def __post_init__(self) -> None:
        self.headers = safe_headers(self.headers)
        actual = body_checksum(self.body)
        if self.checksum and self.checksum != actual:
            raise ValueError(f"llmguard: cached body checksum {self.checksum} != {actual}")
        self.checksum = actual

    def age_s(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.created_at


# Stored value: MAGIC, len(meta), crc32(meta), meta JSON, body. The body's own crc32 is in meta.
_MAGIC = b"LGC1"
_HEADER = struct.Struct("!4sII")
_STORED = tuple(f.name for f in fields(CachedResponse) if f.name not in ("body", "stale"))


def encode(key: str, response: CachedResponse) -> bytes:
    """The bytes stored for `response` under `key`."""
    meta = {name: getattr(response, name) for name in _STORED}
    meta["key"] = key
    meta_bytes = json.dumps(meta, separators=(",", ":")).encode()
    return _HEADER.pack(_MAGIC, len(meta_bytes), zlib.crc32(meta_bytes)) + meta_bytes + response.body


def _decode_meta(key: str, head: bytes) -> tuple[dict[str, Any], int] | None:
    """(metadata, offset of the body) from the start of a stored value, or None if damaged."""
    if len(head) < _HEADER.size:
        return None
    magic, meta_len, meta_crc = _HEADER.unpack_from(head)
    end = _HEADER.size + meta_len
    if magic != _MAGIC or len(head) < end:
        return None
    meta_bytes = head[_HEADER.size : end]
    if zlib.crc32(meta_bytes) != meta_crc:
        return None
    meta = json.loads(meta_bytes)
    if not isinstance(meta, dict) or meta.get("key") != key:
        return None
    return meta, end


def decode(key: str, raw: Any) -> CachedResponse | None:
    """The response stored under `key`, or None for anything damaged, foreign or half-written."""
    if type(raw) is not bytes:
        return None
    try:
        parsed = _decode_meta(key, raw)
        if parsed is None:
            return None
        meta, offset = parsed
        known = {name: meta[name] for name in _STORED if name in meta}
        known["headers"] = [tuple(pair) for pair in known.get("headers", ())]
        return CachedResponse(body=raw[offset:], **known)
    except Exception:  # bad JSON, wrong types, checksum mismatch: all mean "damaged"
        return None


# ---- the store -----------------------------------------------------------------------------


def _is_broken_db(exc: BaseException) -> bool:
    """A damaged database file (reset it), as opposed to a busy or unreachable one (a miss)."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def _wipe(directory: Path, keep: tuple[str, ...] = ()) -> None:
    """Remove a diskcache directory's database and value files (not the folders in `keep`)."""
    for child in directory.iterdir():
        if child.name in keep:
            continue
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            try:
                child.unlink()
            except OSError:
                pass


class _Store:
    """One lazily opened diskcache.Cache that resets itself when its database file is damaged."""

    def __init__(self, directory: Path, keep: tuple[str, ...] = (), **options: Any) -> None:
        self.directory = directory
        self._keep = keep
        self._options = options
        self._cache: Any = None
        self._lock = threading.Lock()
        self.error: str | None = None

    def open(self) -> Any:
        cache = self._cache
        if cache is not None or self.error is not None:
            return cache
        with self._lock:
            if self._cache is None and self.error is None:
                self._cache = self._connect()
            return self._cache

    def _connect(self) -> Any:
        import diskcache

        for attempt in range(2):
            try:
                ensure_home(self.directory.parent)
                make_private_dir(self.directory)  # an existing folder keeps its mode
                # 0600 whatever the umask (diskcache lets SQLite make it 0644); its -wal and -shm follow it
                create_private_file(self.directory / diskcache.core.DBNAME)
                return diskcache.Cache(str(self.directory), **self._options)
            except sqlite3.DatabaseError as exc:
                if attempt == 0 and _is_broken_db(exc):
                    _wipe(self.directory, self._keep)
                    self._warn_reset(exc)
                    continue
                self._disable(exc)
                return None
            except (OSError, sqlite3.Error) as exc:
                self._disable(exc)
                return None
        return None

    def _disable(self, exc: BaseException) -> None:
        self.error = f"cannot open the cache at {self.directory} ({exc})"
        _warn(
            "open",
            self.directory,
            f"{self.error}; calls go to the provider uncached. Point LLMGUARD_HOME at a writable folder.",
        )

    def reset(self, exc: BaseException) -> None:
        """Drop a damaged database and start empty (the next `open` reconnects)."""
        with self._lock:
            cache, self._cache = self._cache, None
            if cache is not None:
                try:
                    cache.close()
                except Exception:
                    pass
            if self.directory.exists():
                _wipe(self.directory, self._keep)
        self._warn_reset(exc)

    def _warn_reset(self, exc: BaseException) -> None:
        _warn(
            "reset",
            self.directory,
            f"the cache database at {self.directory} was damaged ({exc}); "
            "it was reset to empty, and answers are fetched from the provider again",
        )

    def close(self) -> None:
        with self._lock:
            cache, self._cache = self._cache, None
        if cache is not None:
            cache.close()


_warned: set[tuple[str, str]] = set()


def _warn(kind: str, directory: Path, message: str) -> None:
    """Warn once per kind of trouble and folder: a broken disk must not flood a notebook."""
    if (kind, str(directory)) in _warned:
        return
    _warned.add((kind, str(directory)))
    warnings.warn(f"llmguard: {message}", RuntimeWarning, stacklevel=4)


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
        self._store = _Store(
            self.directory,
            keep=("counters",),
            size_limit=size_limit,
            eviction_policy="least-recently-stored",
            cull_limit=_CULL_PER_PUT,
            timeout=_SQLITE_TIMEOUT_S,
        )
        self._counters = _Store(self.directory / "counters", eviction_policy="none", timeout=_SQLITE_TIMEOUT_S)

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

    def delete(self, key: str) -> None:
        cache = self._store.open()
        if cache is None:
            return
        try:
            cache.delete(key)
        except Exception as exc:
            self._write_failed(exc)

    def _write_failed(self, exc: BaseException) -> None:
        if _is_broken_db(exc):
            self._store.reset(exc)
        else:
            _warn(
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
            if _is_broken_db(exc):
                self._counters.reset(exc)
            else:
                _warn("count", self.directory, f"cannot update the cache counters at {self.directory} ({exc})")

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
            if _is_broken_db(exc):
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
                        head = value.read(_HEADER.size)
                        if len(head) == _HEADER.size:
                            head += value.read(_HEADER.unpack(head)[1])
                parsed = _decode_meta(key, head) if isinstance(key, str) else None
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
        stats: dict[str, Any] = {
            "directory": str(self.directory),
            "entries": 0,
            "bytes": 0,
            "expired": 0,
            "oldest_ts": None,
            "oldest_age_s": None,
            "ttl_s": self.ttl_s,
            "size_limit": self.size_limit,
        }
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
                if _is_broken_db(exc):
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
                if not _is_broken_db(exc):
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
            if not _is_broken_db(exc):
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


# ---- functions for `llmguard cache ...` and `%llmguard cache ...` --------------------------


def cache_dir(home: Path) -> Path:
    return Path(home) / CACHE_DIRNAME


def cache_stats(home: Path, ttl_s: float | None = DEFAULT_TTL_S) -> dict[str, Any]:
    """Stats of the cache under `home`; an empty cache's stats if there is none (nothing created)."""
    directory = cache_dir(home)
    if not directory.exists():
        return {
            "directory": str(directory),
            "entries": 0,
            "bytes": 0,
            "expired": 0,
            "oldest_ts": None,
            "oldest_age_s": None,
            "ttl_s": ttl_s,
            "size_limit": None,
            "hits": 0,
            "misses": 0,
            "hit_rate": None,
            "saved_usd": 0.0,
        }
    with ResponseCache(directory, ttl_s=ttl_s) as cache:
        stats = cache.stats()
    stats["size_limit"] = None  # the limit is a setting of the running guard, not of the folder
    return stats


def cache_clear(home: Path) -> int:
    directory = cache_dir(home)
    if not directory.exists():
        return 0
    with ResponseCache(directory) as cache:
        return cache.clear()


def cache_prune(home: Path, ttl_s: float | None = DEFAULT_TTL_S, size_limit: int = DEFAULT_SIZE_LIMIT) -> int:
    directory = cache_dir(home)
    if not directory.exists():
        return 0
    with ResponseCache(directory, ttl_s=ttl_s, size_limit=size_limit) as cache:
        return cache.prune()


def _size_text(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _age_text(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h {seconds % 3600 // 60:.0f}m"
    return f"{seconds // 86400:.0f}d {seconds % 86400 // 3600:.0f}h"


def format_stats(stats: dict[str, Any]) -> str:
    """`llmguard cache stats` as a few aligned lines."""
    lines = [f"llmguard cache at {stats.get('directory', '?')}"]
    entries = f"{stats.get('entries', 0)}"
    ttl = stats.get("ttl_s")
    if stats.get("expired"):
        expired = stats["expired"]
        entries += f" ({expired} older than the TTL of {_age_text(ttl or 0)}: `llmguard cache prune`)"
    lines.append(f"  entries   {entries}")
    size = _size_text(stats.get("bytes", 0))
    if stats.get("size_limit"):
        size += f" of {_size_text(stats['size_limit'])}"
    lines.append(f"  size      {size}")
    if stats.get("oldest_ts") is not None:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(stats["oldest_ts"]))
        lines.append(f"  oldest    {_age_text(stats.get('oldest_age_s') or 0)} ago ({when})")
    hits, misses = stats.get("hits", 0), stats.get("misses", 0)
    rate = stats.get("hit_rate")
    rate_text = "no lookups yet" if rate is None else f"{rate:.1%} hit rate"
    lines.append(f"  lookups   {hits + misses}: {hits} hits, {misses} misses ({rate_text})")
    lines.append(f"  saved     ${stats.get('saved_usd', 0.0):.4f}")
    return "\n".join(lines)
