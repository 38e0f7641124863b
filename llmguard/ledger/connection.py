"""Connections to the ledger file, and what a reader does first: make every finished call visible.

A writer's connection is WAL with synchronous=NORMAL, which keeps commits cheap and lets several
kernels write one ledger at once (only an OS crash can lose the last rows). A reader's connection
is read-only, and `settle` runs before it: this process's pending rows are committed, and segments
left by dead processes are ingested. Readers (`llmguard report`) never move a damaged ledger.
"""

from __future__ import annotations

import os
import sqlite3
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from llmguard.ledger import journal
from llmguard.ledger.damage import not_a_database
from llmguard.ledger.insert import ingest_orphans

if TYPE_CHECKING:
    from llmguard.ledger.sqlite import Ledger

# The open ledgers of this process: readers flush them, fork and exit hooks reach them.
live_ledgers: weakref.WeakSet[Ledger] = weakref.WeakSet()


def ensure_home(home: Path) -> Path:
    """Create LLMGUARD_HOME owner-only (it holds prompts and answers); an existing folder keeps its mode."""
    journal.make_private_dir(home)
    return home


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the ledger; a reader's first makes every finished call visible (`settle`)."""
    if readonly:
        settle(path)
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30)
    else:
        try:
            journal.create_private_file(path)  # 0600, and so its -wal and -shm
        except OSError:
            pass  # SQLite says why it cannot open it
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            # Kernels opening one ledger together all switch it to WAL; that switch can answer
            # "locked" without waiting for the busy handler, so it is retried briefly.
            for attempt in range(50):
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError:
                    if attempt == 49:
                        raise
                    time.sleep(0.02 * (attempt + 1))
            conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def settle(path: Path) -> None:
    """Commit this process's pending rows for `path` and ingest what dead processes left unwritten.

    Best effort for a reader: a ledger it cannot write to is read as it stands.
    """
    where = os.path.abspath(path)
    for ledger in list(live_ledgers):
        if str(ledger.path) == where:
            ledger.flush()
    home = Path(where).parent
    if not journal.supported or not journal.has_segments(home) or not os.path.exists(where):
        return
    if not_a_database(Path(where)):
        return  # damaged: a reader leaves it (and its -wal) as it is; the next writer moves it aside
    try:
        conn = connect(Path(where))
        try:
            ingest_orphans(conn, home)
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        pass
