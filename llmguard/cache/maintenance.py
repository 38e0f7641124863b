"""`llmguard cache stats|prune|clear` and `%llmguard cache ...`: the commands and their text.

These open the cache folder under LLMGUARD_HOME from outside a running guard, so they touch
nothing when there is no cache yet (stats of an empty cache, nothing removed).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from llmguard.cache.store import DEFAULT_SIZE_LIMIT, DEFAULT_TTL_S, ResponseCache, cache_dir, empty_stats
from llmguard.money import plural, usd

__all__ = ["cache_clear", "cache_dir", "cache_prune", "cache_stats", "format_stats", "shared_cache_clear"]


def cache_stats(home: Path, ttl_s: float | None = DEFAULT_TTL_S) -> dict[str, Any]:
    """Stats of the cache under `home`; an empty cache's stats if there is none (nothing created)."""
    directory = cache_dir(home)
    if not directory.exists():
        return empty_stats(directory, ttl_s, None)
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


def shared_cache_clear(store: str, namespace: str) -> tuple[int, str] | None:
    """With a Redis store: remove the answers shared across machines; (count, the store's label)."""
    if store in ("process", "local"):
        return None
    from llmguard.store.redis_cache import RedisCacheTier
    from llmguard.store.redis_store import RedisStore

    tier = RedisCacheTier(RedisStore(store, namespace), namespace)
    try:
        return tier.clear(), tier.label
    finally:
        tier.close()


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
    lines.append(
        f"  lookups   {hits + misses:,}: {plural(hits, 'hit')}, {plural(misses, 'miss', 'misses')} ({rate_text})"
    )
    lines.append(f"  saved     {usd(stats.get('saved_usd', 0.0))}")
    return "\n".join(lines)
