"""The SQLite ledger: one row per call (cache hits, refusals and failures included), and one row per
finished `llmguard.step` in the `steps` table of the same file (reports rank step durations there:
one sample per run of a step, however many calls ran inside it).

A row is durable before the response reaches the user's code, so a kernel killed right after loses
nothing: the caller copies it into this process's memory-mapped journal segment (see journal.py)
and a writer thread commits rows to SQLite in batches a few milliseconds later. Anyone who reads
the ledger first makes those rows visible (see connection.py). Step rows take the same road as
call rows, so a step survives a kill -9 as a call does.

The writer also keeps the rollup (rollup.py) up to date, in the same transactions; a ledger an
older llmguard made is rolled up in the background, a chunk per transaction, from when it is opened.

No row is lost to the ledger's trouble either. A commit that fails (a full disk, a busy or
read-only file) leaves its rows in the journal, and the writer tries again; a process that exits
first leaves them to the next reader. A damaged ledger is moved aside (file.py, damage.py).

The lock over the open segment and the pending rows is re-entrant: the meter may complete a call
in a garbage-collector finalizer (a dropped stream), which records its row while this thread may
already be inside record().

This module is the `Ledger` itself: the journal, the pending rows and the writer thread, on top of
`LedgerFile` (the SQLite side). What a row is lives in records.py, the tables in schema.py, and
reading rows back in readers.py.
"""

from __future__ import annotations

import atexit
import errno
import os
import sqlite3
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmguard.context import StepEvent
from llmguard.ledger import journal, rollup
from llmguard.ledger.connection import connect, ensure_home, live_ledgers
from llmguard.ledger.damage import is_damaged
from llmguard.ledger.file import LedgerFile
from llmguard.ledger.insert import ingest_orphans
from llmguard.ledger.readers import read_events, read_steps
from llmguard.ledger.records import (
    COLUMNS,
    CallEvent,
    bindable,
    call_row,
    encode_step,
    new_id_prefix_after_fork,
    new_request_id,
    safe_str,
    step_row,
    stored_form,
)

# Imported from here by other packages (pipeline/guard.py, reporting/report.py, cache, policies)
# and by tests, from before the ledger was split into modules.
__all__ = [
    "CallEvent",
    "Ledger",
    "LedgerUnavailable",
    "connect",
    "ensure_home",
    "new_request_id",
    "read_events",
    "read_steps",
    "safe_str",
    "stored_form",
]

# A burst of calls shares one commit, and the writer takes the GIL rarely (5 ms measured worse at
# p99); readers in this process never wait for it (they flush), other processes see rows this late.
FLUSH_DELAY_S = 0.02
# After a commit failed (a full disk; a damaged ledger another process still has open) the writer
# tries again this often, new calls or not.
RETRY_S = 1.0
# Rows a failing ledger keeps in memory to commit later; past this, journaled rows are left to the
# journal alone (the next reader ingests them) and the rest are lost, with a warning.
MAX_PENDING_ROWS = 100_000
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class LedgerUnavailable(RuntimeError):
    pass


class Ledger(LedgerFile):
    """Append-only call log. Thread-safe; several processes may share one file."""

    def __init__(self, home: Path, run_id: str | None = None) -> None:
        super().__init__(home, run_id)
        # the open segment and the rows in it; re-entrant because the GC may run a dropped stream's
        # finalizer, which records its call, while this thread is inside record()
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()  # a flush returns only once every earlier row is committed
        self._segment: journal.Segment | None = None
        self._pending: list[list[Any]] = []  # rows not yet committed (in segments, or only here: _unjournaled)
        self._unjournaled = 0  # how many of them no journal segment holds
        self._retired: list[journal.Segment] = []  # full segments, discarded once their rows commit
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._backfilling = False  # calls of an older ledger still to roll up (a chunk at a time)
        conn = None
        try:  # opened here, not in LedgerFile, so its warnings name the caller's line
            ensure_home(self.home)
            try:
                conn = self._open()
            except sqlite3.DatabaseError as exc:
                if not is_damaged(exc):
                    raise
                self._found_damaged(exc)
                conn = self._recover()  # None: another process has it open; rows wait in the journal
            self._conn = conn
        except (OSError, sqlite3.Error) as exc:
            self._disable(f"cannot open the ledger at {self.path} ({exc})")
        else:
            try:
                if conn is not None:
                    with self._conn_lock:
                        ingest_orphans(conn, self.home)  # the last rows of a kernel killed earlier
                        self._backfilling = rollup.backlog(conn) >= rollup.CATCH_UP_AT
            except (OSError, sqlite3.Error):
                pass  # left for the next reader; recording works regardless
        live_ledgers.add(self)
        if self._backfilling:
            with self._lock:
                self._wake.set()
                self._start_writer()

    _row = staticmethod(call_row)  # tests build journal records with it

    def record(self, event: CallEvent) -> None:
        """Durable on return: in the journal segment (or, without one, committed to SQLite)."""
        event.run_id = event.run_id or self.run_id
        if self._disabled or self._closed:
            return
        self._append(self._row(event), journal.encode)

    def record_step(self, event: StepEvent) -> None:
        """A finished step (the step listener `install()` sets): durable on return, like a call's row."""
        event.run_id = event.run_id or self.run_id
        event.step_id = event.step_id or new_request_id()
        if self._disabled or self._closed:
            return
        self._append(step_row(event), encode_step)

    def _append(self, row: list[Any], encode: Callable[[list[Any]], bytes]) -> None:
        """One row (of either table) into the journal, or committed now when there is no journal."""
        problem = None
        if self._journaling:
            try:
                try:
                    record = encode(row)
                except ValueError:  # a value marshal cannot hold (an int subclass): stored as SQLite would
                    row = bindable(row)
                    record = encode(row)
                with self._lock:
                    if not self._stop.is_set():  # once closing, nobody would flush a new segment
                        self._journal(record, row)
                        wake = not self._wake.is_set()
                        if wake:
                            self._wake.set()
                        return
            except (OSError, ValueError, journal.SegmentFull) as exc:
                problem = exc
                if not (isinstance(exc, OSError) and exc.errno in _NO_SPACE):  # a full disk may empty again
                    self._journaling = False  # no journal: commit directly from now on
        with self._lock:
            self._pending.append(row)
            self._unjournaled += 1
        self.flush()  # with any rows still waiting before it, in order
        if problem is not None:
            if self._journaling:
                self._say(
                    "journal-space",
                    f"no room for the ledger journal ({problem}); committing calls directly until there is",
                )
            else:
                warnings.warn(
                    f"llmguard: cannot write the ledger journal ({problem}); committing each call directly (slower)",
                    RuntimeWarning,
                    stacklevel=3,
                )

    def _journal(self, record: bytes, row: list[Any]) -> None:
        """Under self._lock: the row into the open segment (a fresh one when it is full)."""
        segment = self._segment or self._open_segment()
        try:
            segment.write(record)
        except journal.SegmentFull:
            if len(record) > segment.room:  # bigger than a whole segment: one of its own, sized to fit
                big = journal.Segment(journal.journal_dir(self.home), COLUMNS, self.run_id, room=len(record))
                self._retired.append(big)  # removed once its row is committed, like a full one
                big.write(record)
            else:  # removed once the rows it holds are committed
                if self._segment is segment:
                    self._retired.append(segment)
                    self._segment = None
                self._open_segment().write(record)
        self._pending.append(row)
        if self._writer is None:
            self._start_writer()

    def _start_writer(self) -> None:
        """Under self._lock: the writer thread, once."""
        writer = threading.Thread(target=self._write_behind, name="llmguard-ledger-writer", daemon=True)
        try:
            writer.start()
        except RuntimeError:  # interpreter shutting down: readers and close() still flush
            return
        self._writer = writer

    def flush(self) -> None:
        """Commit the pending rows now (readers in this process call it through `settle`)."""
        with self._flush_lock:
            with self._lock:
                rows, retired, unjournaled = self._pending, self._retired, self._unjournaled
                if not rows:
                    return
                self._pending, self._retired, self._unjournaled = [], [], 0
            committed = False
            try:
                committed = self._commit(rows)
            finally:
                if committed:
                    for segment in retired:
                        if self._failed:
                            segment.release()
                        else:
                            segment.discard()
                else:
                    self._keep(rows, retired, unjournaled)

    def _keep(self, rows: list[list[Any]], retired: list[journal.Segment], unjournaled: int) -> None:
        """Rows a commit could not take: back at the head of the queue, their segments still locked."""
        with self._lock:
            if not self._disabled and len(rows) + len(self._pending) <= MAX_PENDING_ROWS:
                self._pending[:0] = rows
                self._retired[:0] = retired
                self._unjournaled += unjournaled
                return
            self._failed = True
        for segment in retired:  # the journal keeps them for the next reader, which skips rows already in
            segment.release()
        if unjournaled:
            warnings.warn(
                f"llmguard: {unjournaled} calls could not be recorded in {self.path} and no journal "
                "holds them; they are lost",
                RuntimeWarning,
                stacklevel=3,
            )

    def _open_segment(self) -> journal.Segment:
        made = journal.Segment(journal.journal_dir(self.home), COLUMNS, self.run_id)
        if self._segment is not None:  # a re-entrant record() opened one meanwhile: use that
            self._retired.append(made)  # (empty; removed after the next commit)
            return self._segment
        self._segment = made
        return made

    def _write_behind(self) -> None:
        retry: float | None = None
        while True:
            if self._wake.wait(retry):
                self._stop.wait(FLUSH_DELAY_S)  # close() cuts the wait short
            self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # the rows are safe in their segments; say so, keep running
                try:
                    warnings.warn(
                        f"llmguard: ledger writer failed ({exc}); its rows stay in the journal and are tried again",
                        RuntimeWarning,
                        stacklevel=1,
                    )
                except Exception:
                    pass
            if self._stop.is_set():
                return
            retry = RETRY_S if self._pending else None  # a failed commit is tried again, new calls or not
            if self._backfilling:
                self._backfilling = self._backfill_chunk()
                retry = 0.0 if self._backfilling and retry is None else retry

    def _backfill_chunk(self) -> bool:
        """One transaction of rolling up an older ledger's calls; False once there is nothing left
        (or the ledger cannot take it now: commits catch up from there, a chunk at a time)."""
        with self._conn_lock:
            if self._conn is None or self._closed:
                return False
            try:
                return rollup.backfill(self._conn, chunks=1) > 0
            except sqlite3.Error:
                return False

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> float:
        self.flush()
        with self._conn_lock:
            conn = self._conn
            if conn is None:
                return 0.0
            try:
                try:
                    row = conn.execute(sql, params).fetchone()
                except (ValueError, OverflowError, sqlite3.InterfaceError, sqlite3.ProgrammingError):
                    # a value SQLite cannot bind (a lone surrogate): compared as the ledger stores it
                    row = conn.execute(sql, tuple(stored_form(p) for p in params)).fetchone()
            except sqlite3.DatabaseError as exc:
                if not is_damaged(exc):
                    raise
                self._drop_connection(exc)  # the next commit moves it aside
                return 0.0
        return float(row[0] or 0.0) if row else 0.0

    def close(self) -> None:
        with self._lock:  # from here on record() commits directly
            self._stop.set()
        self._wake.set()
        writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join(timeout=5)
        self.flush()
        with self._lock:
            segments = [*self._retired, *([self._segment] if self._segment is not None else [])]
            committed = not self._pending and not self._failed
            lost = self._unjournaled
            self._retired, self._segment, self._pending, self._unjournaled = [], None, [], 0
            self._closed = True
        for segment in segments:  # kept (unlocked) when their rows may not be in SQLite yet
            if committed:
                segment.discard()
            else:
                segment.release()
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if lost:
            warnings.warn(
                f"llmguard: {lost} calls could not be recorded in {self.path} before it closed, and no "
                "journal holds them; they are lost",
                RuntimeWarning,
                stacklevel=2,
            )
        live_ledgers.discard(self)

    def _after_fork_in_child(self) -> None:
        """A forked child keeps none of the parent's locks, rows, thread or connection."""
        self._lock, self._conn_lock, self._flush_lock = threading.RLock(), threading.Lock(), threading.Lock()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._writer = None
        for segment in [*self._retired, *([self._segment] if self._segment is not None else [])]:
            segment.release()
        self._pending, self._retired, self._segment, self._unjournaled = [], [], None, 0
        self._said = set()
        if self._conn is not None:
            try:
                self._conn = connect(self.path)
            except sqlite3.Error as exc:
                self._disable(f"cannot reopen the ledger at {self.path} after fork ({exc})")


def _flush_all_at_exit() -> None:
    for ledger in list(live_ledgers):
        try:
            ledger.close()
        except Exception:
            pass


def _after_fork() -> None:
    new_id_prefix_after_fork()
    for ledger in list(live_ledgers):
        ledger._after_fork_in_child()


atexit.register(_flush_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
