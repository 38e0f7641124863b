"""Rate-limit state shared by every process using one LLMGUARD_HOME (several kernels, one limit).

The limiter keeps its arithmetic; around each decision it loads a key's bucket levels from this
SQLite file inside an IMMEDIATE transaction and writes them back before committing, so two kernels
never spend the same capacity. Queues and priorities stay per process. The monotonic clock is
system-wide on Linux and macOS, so stamps compare across processes.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llmguard.ledger.journal import create_private_file
from llmguard.ledger.sqlite import ensure_home
from llmguard.policies.buckets import TokenBucket

_SCHEMA = """CREATE TABLE IF NOT EXISTS buckets (
    key TEXT, kind TEXT, capacity REAL, rate REAL, level REAL, stamp REAL, paused_until REAL,
    PRIMARY KEY (key, kind))"""
_NOT_STARTED = 1e300  # stands for a stamp of +inf (refill not started) in SQLite


class SharedBuckets:
    """The shared store of bucket levels and pauses, one row per (key, bucket kind)."""

    def __init__(self, path: Path) -> None:
        ensure_home(path.parent)
        create_private_file(path)  # 0600 before SQLite makes it (its -wal/-shm take the same mode)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA busy_timeout=30000")
        # Two kernels starting together both switch the file to WAL and create the table; the switch
        # can answer "locked" without waiting for the busy handler, so it is retried briefly.
        for attempt in range(50):
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                # a commit need not wait for the disk (0.015 ms, not 0.14-0.34 ms under FULL): bucket
                # levels only matter while the processes run, and a killed process loses no commit
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.execute(_SCHEMA)
                break
            except sqlite3.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.02 * (attempt + 1))
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self, key: str, buckets: dict[str, TokenBucket | None], paused: list[float]) -> Iterator[None]:
        """Load `buckets` (kind -> TokenBucket) and the key's pause from disk, run, write back."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute(
                    "SELECT kind, capacity, rate, level, stamp, paused_until FROM buckets WHERE key = ?", (key,)
                ).fetchall()
                for kind, capacity, rate, level, stamp, paused_until in rows:
                    bucket = buckets.get(kind)
                    if bucket is not None and capacity == bucket.capacity and rate == bucket.rate:
                        bucket.level = level
                        bucket.stamp = math.inf if stamp >= _NOT_STARTED else stamp
                    paused[0] = max(paused[0], paused_until or 0.0)
                yield
                for kind, bucket in buckets.items():
                    if bucket is None:
                        continue
                    stamp = _NOT_STARTED if bucket.stamp == math.inf else bucket.stamp
                    conn.execute(
                        "INSERT OR REPLACE INTO buckets VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (key, kind, bucket.capacity, bucket.rate, bucket.level, stamp, paused[0]),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()
