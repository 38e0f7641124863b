"""The `local` store: books in `<home>/store.sqlite3`, shared by every process using that home.

WAL with `synchronous=NORMAL` (a commit does not wait for the disk: a crash of the machine, not of a
process, can lose the last commits; a killed process loses nothing), and one `BEGIN IMMEDIATE`
transaction per lease change, never per call: calls spend their lease in memory. Expiry uses the
wall clock, which every process on one machine shares.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from llmguard.store import Grant, Store, StoreUnavailable, SyncRequest
from llmguard.store.books import Book, Lease, apply
from llmguard.store.rates import RateGrant, RateRequest, apply_rates

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS books (key TEXT PRIMARY KEY, gen TEXT, base REAL, added REAL, touched REAL)",
    "CREATE TABLE IF NOT EXISTS leases (key TEXT, holder TEXT, amount REAL, used REAL, expires REAL, "
    "PRIMARY KEY (key, holder))",
    "CREATE TABLE IF NOT EXISTS rates (key TEXT PRIMARY KEY, book TEXT)",  # rates.py: one JSON book per key
)


def open_local(home: Any, namespace: str) -> Store:
    """The local store of `home`; if it cannot be opened (a read-only home), this process's own books."""
    path = Path(home).expanduser() / "store.sqlite3"
    try:
        return LocalStore(path, namespace)
    except (OSError, sqlite3.Error) as exc:
        from llmguard.store.memory import ProcessStore

        warnings.warn(
            f"llmguard: cannot open the shared store {path} ({type(exc).__name__}: {exc}); budgets and "
            "quotas count this process only. Make the folder writable or set store='process'.",
            RuntimeWarning,
            stacklevel=3,
        )
        return ProcessStore()


class LocalStore:
    kind = "local"
    shared = True

    def __init__(self, path: Path, namespace: str) -> None:
        from llmguard.ledger.connection import ensure_home
        from llmguard.ledger.journal import create_private_file

        self.path = path
        self.label = f"local ({path})"
        self._prefix = f"{namespace}:"
        ensure_home(path.parent)
        create_private_file(path)  # 0600 before SQLite makes it (its -wal/-shm take the same mode)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA busy_timeout=30000")
        # Processes starting together race to switch the file to WAL, which can answer "locked"
        # without waiting for the busy handler: retried briefly.
        for attempt in range(50):
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                for statement in _SCHEMA:
                    self._conn.execute(statement)
                break
            except sqlite3.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.02 * (attempt + 1))
        self._lock = threading.Lock()

    def sync(self, request: SyncRequest) -> Grant:
        key = self._prefix + request.key
        try:
            with self._lock:
                return self._sync(key, request)
        except sqlite3.Error as exc:
            raise StoreUnavailable(self.label, f"{type(exc).__name__}: {exc}") from None

    def _sync(self, key: str, request: SyncRequest) -> Grant:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT gen, base, added FROM books WHERE key = ?", (key,)).fetchone()
            book = Book(row[0], row[1], row[2]) if row is not None else None
            leases = {
                holder: Lease(amount, used, expires)
                for holder, amount, used, expires in conn.execute(
                    "SELECT holder, amount, used, expires FROM leases WHERE key = ?", (key,)
                )
            }
            before = set(leases)
            now = time.time()
            book, grant = apply(book, leases, request, now, uuid.uuid4().hex[:12], share=0.5)
            conn.execute(
                "INSERT OR REPLACE INTO books VALUES (?, ?, ?, ?, ?)", (key, book.gen, book.base, book.added, now)
            )
            gone = before - set(leases)
            if gone:
                conn.executemany("DELETE FROM leases WHERE key = ? AND holder = ?", [(key, h) for h in gone])
            mine = leases.get(request.holder)
            if mine is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?)",
                    (key, request.holder, mine.amount, mine.used, mine.expires),
                )
            conn.execute("COMMIT")
            return grant
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def sync_rates(self, request: RateRequest) -> RateGrant:
        """One `BEGIN IMMEDIATE` transaction: read the rate book, apply the step, write it back."""
        key = self._prefix + request.key
        try:
            with self._lock:
                conn = self._conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    row = conn.execute("SELECT book FROM rates WHERE key = ?", (key,)).fetchone()
                    book = json.loads(row[0]) if row is not None else None
                    book, grant = apply_rates(book, request, time.time(), uuid.uuid4().hex[:12])
                    conn.execute("INSERT OR REPLACE INTO rates VALUES (?, ?)", (key, json.dumps(book)))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                return grant
        except sqlite3.Error as exc:
            raise StoreUnavailable(self.label, f"{type(exc).__name__}: {exc}") from None

    def ping(self) -> None:
        try:
            with self._lock:
                self._conn.execute("SELECT 1 FROM books LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(self.label, f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
