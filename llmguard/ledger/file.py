"""The ledger file as one process holds it: its connection, a committed batch, and damage recovery.

`LedgerFile` is the SQLite half of `sqlite.Ledger` (which adds the journal, the pending rows and
the writer thread). A commit that fails (a full disk, a busy or read-only file) returns False and
its rows stay with the caller; a ledger found damaged is let go of, moved aside once nobody has it
open (see damage.py), and a fresh one started in its place, while rows wait in the journal.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from llmguard.ledger import journal, rollup
from llmguard.ledger.connection import connect, live_ledgers
from llmguard.ledger.damage import (
    NotADatabase,
    file_identity,
    home_lock,
    is_damaged,
    move_aside,
    not_a_database,
    open_elsewhere,
    still_damaged,
)
from llmguard.ledger.insert import ingest_orphans, insert_rows
from llmguard.ledger.schema import create_tables, ensure_report_indexes


class LedgerFile:
    """The ledger's SQLite file: opened, written in batches, moved aside when damaged."""

    def __init__(self, home: Path, run_id: str | None = None) -> None:
        """The file's state only: `Ledger.__init__` opens it."""
        home = Path(os.path.abspath(home))  # a notebook's %cd must not move the journal
        self.home = home
        self.path = home / "ledger.sqlite3"
        self.run_id = run_id or time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self._conn_lock = threading.Lock()  # the SQLite connection
        self._conn: sqlite3.Connection | None = None
        self._failed = False  # rows were given up on in memory: segments may hold uncommitted rows, never discard them
        self._journaling = journal.supported
        self._disabled = False  # the ledger could not be opened at all: nothing is recorded
        self._closed = False
        self._damage: BaseException | None = None  # found damaged: moved aside once nobody has it open
        self._damaged: tuple[int, int] | None = None  # which file that was
        self._said: set[str] = set()  # troubles already warned about (again only after a commit worked)
        self.error: str | None = None
        self._unrolled = rollup.CATCH_UP_AT  # calls committed since this ledger last let the rollup catch up

    @property
    def available(self) -> bool:
        return not self._disabled and not self._closed

    def _disable(self, why: str) -> None:
        self._conn = None
        self._disabled = True
        if self.error is None:
            self.error = why
            warnings.warn(
                f"llmguard: {why}. Calls still go through, but nothing is recorded. "
                "Point LLMGUARD_HOME (or install(home=...)) at a writable folder.",
                RuntimeWarning,
                stacklevel=3,
            )

    def _say(self, key: str, message: str) -> None:
        """Warn once per trouble; a commit that works makes the next one worth saying again."""
        if key not in self._said:
            self._said.add(key)
            warnings.warn(f"llmguard: {message}", RuntimeWarning, stacklevel=3)

    def _open(self) -> sqlite3.Connection:
        if not_a_database(self.path):
            raise NotADatabase("file is not a database")
        conn = connect(self.path)
        try:
            create_tables(conn)
        except BaseException:
            conn.close()
            raise
        for ensure in (ensure_report_indexes, rollup.ensure_rollup):
            try:
                ensure(conn)
            except sqlite3.Error as exc:  # a read-only or busy file: recorded without it, reports scan
                if is_damaged(exc):
                    conn.close()
                    raise
        return conn

    def _open_here(self) -> bool:
        """Another ledger of this process has the file open (the -shm lock test cannot see those)."""
        return any(
            other is not self and other.path == self.path and other._conn is not None for other in list(live_ledgers)
        )

    def _found_damaged(self, exc: BaseException) -> None:
        self._damage, self._damaged = exc, file_identity(self.path)

    def _recover(self) -> sqlite3.Connection | None:
        """After damage (our own connection closed): move the file aside and open a fresh ledger.

        None while another connection has the damaged file open: moving it then would let that
        connection's close delete the fresh ledger's -wal and -shm, which SQLite finds by name.
        """
        exc = self._damage
        aside: Path | None = None
        along: list[str] = []
        with home_lock(self.home):
            if self._damaged is not None and file_identity(self.path) == self._damaged:  # not replaced meanwhile
                if self._open_here() or open_elsewhere(self.path):
                    self._say(
                        "waiting",
                        f"the ledger at {self.path} is damaged ({exc}) and another process still "
                        f"has it open; calls wait in the journal at {journal.journal_dir(self.home)} "
                        "until it lets go, then the file is moved aside and a fresh ledger started",
                    )
                    return None
                if still_damaged(self.path):
                    aside, along = move_aside(self.path)
            conn = self._open()  # fresh; or the one another process started after moving the damaged one aside
        self._damage = self._damaged = None
        try:
            ingest_orphans(conn, self.home)  # what dead processes left while it could not be written
        except (OSError, sqlite3.Error):
            pass
        if aside is not None:
            warnings.warn(
                f"llmguard: the ledger at {self.path} is damaged ({exc}); moved it aside to {aside}"
                f"{' with its ' + ' and '.join(along) if along else ''} and started a fresh ledger at {self.path}. "
                f"Calls go on being recorded; the earlier rows are in {aside} (`sqlite3 {aside} .recover` may get "
                "them back).",
                RuntimeWarning,
                stacklevel=3,
            )
        return conn

    def _drop_connection(self, damage: BaseException) -> None:
        """Under _conn_lock: let go of a damaged file before anything moves it."""
        self._found_damaged(damage)
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def _reopen(self) -> sqlite3.Connection | None:
        """Under _conn_lock: the connection after damage, if the file can be moved aside now."""
        try:
            self._conn = self._recover() if self._damage is not None else self._open()
        except (OSError, sqlite3.Error) as exc:
            if is_damaged(exc):  # the file there now is damaged too: that one is the one to move
                self._found_damaged(exc)
            self._write_failed(exc)
        return self._conn

    def _write_failed(self, exc: BaseException) -> None:
        where = f"in the journal at {journal.journal_dir(self.home)}" if self._journaling else "in memory"
        self._say(
            "write",
            f"cannot write the ledger at {self.path} ({exc}); calls are kept {where} and "
            "committed once it can be written again",
        )

    def _commit(self, rows: list[list[Any]]) -> bool:
        """True once the rows are in SQLite; False leaves them to the caller to keep."""
        with self._conn_lock:  # read under the lock: close() may be closing it
            if self._disabled or self._closed:
                return False
            conn = self._conn or self._reopen()
            if conn is None:
                return False
            roll_up = self._unrolled + len(rows) >= rollup.CATCH_UP_AT  # the check itself costs a commit ~10 us
            try:
                lost = insert_rows(conn, rows, roll_up)
            except sqlite3.Error as exc:
                if not is_damaged(exc):
                    self._write_failed(exc)
                    return False
                self._drop_connection(exc)
                conn = self._reopen()
                if conn is None:
                    return False
                try:
                    lost = insert_rows(conn, rows, roll_up)
                except sqlite3.Error as again:
                    if is_damaged(again):
                        self._drop_connection(again)
                    self._write_failed(again)
                    return False
            self._said.clear()
            self._unrolled = 0 if roll_up else self._unrolled + len(rows)
        if lost:
            warnings.warn(
                f"llmguard: {lost} calls could not be stored in {self.path} even as text; their rows stay "
                f"in the journal at {journal.journal_dir(self.home)}",
                RuntimeWarning,
                stacklevel=3,
            )
            self._failed = True  # keep the segments that hold them
        return True
