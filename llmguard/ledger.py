"""The SQLite ledger: one row per call (cache hits, refusals and failures included).

A row is durable before the response reaches the user's code, so a kernel killed right after loses
nothing: the caller copies it into this process's memory-mapped journal segment (see journal.py)
and a writer thread commits rows to SQLite in batches a few milliseconds later. Anyone who reads
the ledger first makes those rows visible: this process's pending rows are committed, and segments
left by dead processes are ingested. WAL mode with synchronous=NORMAL keeps commits cheap and lets
several kernels write one ledger at once; only an OS crash can lose the last rows.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import sqlite3
import threading
import time
import uuid
import warnings
import weakref
from dataclasses import asdict, dataclass, field, fields
from operator import attrgetter
from pathlib import Path
from typing import Any

from llmguard import journal

SCHEMA_VERSION = 1
# Request ids: a random per-process prefix and a counter; unique across processes, ~10x cheaper than uuid4.
_ID_PREFIX = uuid.uuid4().hex[:12]
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


def _new_id_prefix_after_fork() -> None:
    """A forked child would repeat its parent's ids (and ingestion would take its rows for duplicates)."""
    global _ID_PREFIX
    _ID_PREFIX = uuid.uuid4().hex[:12]


@dataclass(slots=True)
class CallEvent:
    """The seed article's structured event, extended; one ledger row."""

    request_id: str = field(default_factory=new_request_id)
    ts: float = field(default_factory=time.time)
    run_id: str = ""
    provider: str = ""
    endpoint: str = ""
    base_url: str = ""
    model: str = ""
    requested_model: str = ""
    prompt_version: str | None = None
    feature: str | None = None
    tenant: str | None = None
    user: str | None = None
    notebook: str | None = None
    cell: int | None = None
    priority: str = "interactive"
    decision: str = "process"  # process | queue | fallback | reject | cache
    status: str = "ok"  # ok | error | refused | incomplete
    http_status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    stream: bool = False
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    estimated_tokens: int | None = None
    tokens_approximate: bool = False
    cost_usd: float | None = 0.0
    reserved_usd: float | None = None
    cache_hit: bool = False
    saved_usd: float | None = None
    dedup_hit: bool = False
    stale: bool = False
    retry_count: int = 0
    fallback_used: bool = False
    queue_ms: float = 0.0
    retry_delay_ms: float = 0.0
    model_ms: float | None = None
    ttft_ms: float | None = None
    total_ms: float | None = None
    steps: dict[str, float] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)

    def latency_ms(self) -> dict[str, float | None]:
        return {
            "queue": self.queue_ms,
            "retry_delay": self.retry_delay_ms,
            "model": self.model_ms,
            "ttft": self.ttft_ms,
            "total": self.total_ms,
            **self.steps,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = [f.name for f in fields(CallEvent)]
_JSON_COLUMNS = {"steps", "tags"}
_TYPES = {int: "INTEGER", float: "REAL", bool: "INTEGER", str: "TEXT"}


def _column_type(name: str) -> str:
    default = CallEvent.__dataclass_fields__[name].default
    if name in _JSON_COLUMNS:
        return "TEXT"
    for kind, sql in _TYPES.items():
        if type(default) is kind:
            return sql
    annotation = str(CallEvent.__dataclass_fields__[name].type)
    return "INTEGER" if annotation.startswith("int") else "REAL" if annotation.startswith("float") else "TEXT"


_CREATE = (
    "CREATE TABLE IF NOT EXISTS calls (" + ", ".join(f"{c} {_column_type(c)}" for c in COLUMNS) + ")"
)
# Each index costs every insert ~8 us (measured); reports filter by time or run and then group in
# one scan, so these two are what the hot path pays for.
_INDEXES = [
    "CREATE INDEX IF NOT EXISTS calls_ts ON calls(ts)",
    "CREATE INDEX IF NOT EXISTS calls_run ON calls(run_id)",
]
_VALUES = attrgetter(*COLUMNS)
_JSON_POSITIONS = [COLUMNS.index(name) for name in sorted(_JSON_COLUMNS)]
_INSERT = f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"


class LedgerUnavailable(RuntimeError):
    pass


def ensure_home(home: Path) -> Path:
    """Create LLMGUARD_HOME owner-only (it holds prompts and answers)."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.chmod(home, 0o700)
    except OSError:
        pass
    return home


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the ledger; a reader's first makes every finished call visible (`settle`)."""
    if readonly:
        settle(path)
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
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
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


_INT64 = (-(1 << 63), (1 << 63) - 1)
# What SQLite refuses in a row (an int beyond 64 bits, a value of a type it cannot bind).
_UNBINDABLE = (OverflowError, sqlite3.InterfaceError, sqlite3.ProgrammingError, TypeError, ValueError)


def _bindable(row: list[Any]) -> list[Any]:
    """The row with what SQLite cannot store written as text: a row is never lost for one bad value.

    Only used after an insert failed, so the hot path pays nothing for it.
    """
    out = []
    for value in row:
        if value is None or type(value) in (str, float, bool):
            out.append(value)
        elif type(value) is int and _INT64[0] <= value <= _INT64[1]:
            out.append(value)
        else:
            out.append(str(value))
    return out


def _insert(conn: sqlite3.Connection, rows: list[Any]) -> None:
    """Rows in one transaction: all of them land, or none do."""
    try:
        _insert_once(conn, rows)
    except _UNBINDABLE:
        _insert_once(conn, [_bindable(row) for row in rows])


def _insert_once(conn: sqlite3.Connection, rows: list[Any]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(_INSERT, rows)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _ingest_orphans(conn: sqlite3.Connection, home: Path) -> int:
    """Rows of journal segments whose process died before committing them; rows already there are skipped.

    A segment whose rows SQLite refuses is set aside (`.bad`), never half-ingested; a busy or full
    database leaves it for the next reader.
    """
    added = 0
    for path, rows in journal.claim_orphans(home):
        if rows is None:
            journal.quarantine(path)
            continue
        try:
            seen: set[str] = set()
            for run_id in {row.get("run_id") for row in rows}:
                seen.update(r for (r,) in conn.execute("SELECT request_id FROM calls WHERE run_id = ?", (run_id,)))
            fresh = [[row.get(name) for name in COLUMNS] for row in rows if row.get("request_id") not in seen]
            if fresh:
                _insert(conn, fresh)
                added += len(fresh)
        except (*_UNBINDABLE, sqlite3.IntegrityError):
            journal.quarantine(path)
            continue
        journal.remove(path)
    return added


def settle(path: Path) -> None:
    """Commit this process's pending rows for `path` and ingest what dead processes left unwritten.

    Best effort for a reader: a ledger it cannot write to is read as it stands.
    """
    where = os.path.abspath(path)
    for ledger in list(_live):
        if str(ledger.path) == where:
            ledger.flush()
    home = Path(where).parent
    if not journal.supported or not journal.has_segments(home) or not os.path.exists(where):
        return
    try:
        conn = connect(Path(where))
        try:
            _ingest_orphans(conn, home)
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        pass


_live: weakref.WeakSet[Ledger] = weakref.WeakSet()
# A burst of calls shares one commit, and the writer takes the GIL rarely (5 ms measured worse at
# p99); readers in this process never wait for it (they flush), other processes see rows this late.
FLUSH_DELAY_S = 0.02


class Ledger:
    """Append-only call log. Thread-safe; several processes may share one file."""

    def __init__(self, home: Path, run_id: str | None = None) -> None:
        home = Path(os.path.abspath(home))  # a notebook's %cd must not move the journal
        self.home = home
        self.path = home / "ledger.sqlite3"
        self.run_id = run_id or time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        # the open segment and the rows in it; re-entrant because the GC may run a dropped stream's
        # finalizer, which records its call, while this thread is inside record()
        self._lock = threading.RLock()
        self._conn_lock = threading.Lock()  # the SQLite connection
        self._flush_lock = threading.Lock()  # a flush returns only once every earlier row is committed
        self._conn: sqlite3.Connection | None = None
        self._segment: journal.Segment | None = None
        self._pending: list[list[Any]] = []  # rows written to segments but not yet committed
        self._retired: list[journal.Segment] = []  # full segments, discarded once their rows commit
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._failed = False  # a commit failed: segments may hold uncommitted rows, never discard them
        self._journaling = journal.supported
        self.error: str | None = None
        try:
            ensure_home(home)
            conn = connect(self.path)
            with self._conn_lock:
                conn.execute(_CREATE)
                for statement in _INDEXES:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._conn = conn
        except (OSError, sqlite3.Error) as exc:
            self._disable(f"cannot open the ledger at {self.path} ({exc})")
        else:
            try:
                with self._conn_lock:
                    _ingest_orphans(conn, home)  # the last rows of a kernel killed earlier
            except (OSError, sqlite3.Error):
                pass  # left for the next reader; recording works regardless
        _live.add(self)

    @property
    def available(self) -> bool:
        return self._conn is not None

    def _disable(self, why: str) -> None:
        self._conn = None
        if self.error is None:
            self.error = why
            warnings.warn(
                f"llmguard: {why}. Calls still go through, but nothing is recorded. "
                "Point LLMGUARD_HOME (or install(home=...)) at a writable folder.",
                RuntimeWarning,
                stacklevel=3,
            )

    @staticmethod
    def _row(event: CallEvent) -> list[Any]:
        values = list(_VALUES(event))
        for position in _JSON_POSITIONS:
            value = values[position]
            values[position] = json.dumps(value, default=str) if value else None
        return values

    def record(self, event: CallEvent) -> None:
        """Durable on return: in the journal segment (or, without one, committed to SQLite)."""
        event.run_id = event.run_id or self.run_id
        if self._conn is None:
            return
        row = self._row(event)
        problem = None
        if self._journaling:
            record = journal.encode(row)
            try:
                with self._lock:
                    if not self._stop.is_set():  # once closing, nobody would flush a new segment
                        self._journal(record, row)
                        wake = not self._wake.is_set()
                        if wake:
                            self._wake.set()
                        return
            except (OSError, ValueError, journal.SegmentFull) as exc:
                self._journaling = False  # no journal: commit directly from now on
                problem = exc
        self._commit([row])
        if problem is not None:
            warnings.warn(f"llmguard: cannot write the ledger journal ({problem}); committing each call "
                          "directly (slower)", RuntimeWarning, stacklevel=3)

    def _journal(self, record: bytes, row: list[Any]) -> None:
        """Under self._lock: the row into the open segment (a fresh one when it is full)."""
        segment = self._segment or self._open_segment()
        try:
            segment.write(record)
        except journal.SegmentFull:  # removed once the rows it holds are committed
            if self._segment is segment:
                self._retired.append(segment)
                self._segment = None
            self._open_segment().write(record)  # a row bigger than a whole segment: SegmentFull again
        self._pending.append(row)
        if self._writer is None:
            writer = threading.Thread(target=self._write_behind, name="llmguard-ledger-writer", daemon=True)
            try:
                writer.start()
            except RuntimeError:  # interpreter shutting down: readers and close() still flush
                return
            self._writer = writer

    def _commit(self, rows: list[list[Any]]) -> bool:
        with self._conn_lock:  # read under the lock: close() may be closing it
            conn = self._conn
            if conn is None:
                return False
            try:
                _insert(conn, rows)
                return True
            except sqlite3.Error as exc:
                self._disable(f"cannot write the ledger at {self.path} ({exc})")
                return False

    def flush(self) -> None:
        """Commit the journaled rows now (readers in this process call it through `settle`)."""
        with self._flush_lock:
            with self._lock:
                rows, retired = self._pending, self._retired
                if not rows:
                    return
                self._pending, self._retired = [], []
            committed = False
            try:
                committed = self._commit(rows)
            finally:
                if not committed:  # the rows stay on disk; once this process lets go, a reader ingests them
                    self._failed = True
                for segment in retired:
                    if committed:
                        segment.discard()
                    else:
                        segment.release()

    def _open_segment(self) -> journal.Segment:
        made = journal.Segment(journal.journal_dir(self.home), COLUMNS, self.run_id)
        if self._segment is not None:  # a re-entrant record() opened one meanwhile: use that
            self._retired.append(made)  # (empty; removed after the next commit)
            return self._segment
        self._segment = made
        return made

    def _write_behind(self) -> None:
        while True:
            self._wake.wait()
            self._stop.wait(FLUSH_DELAY_S)  # close() cuts the wait short
            self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # the rows are safe in their segments; say so, keep running
                try:
                    warnings.warn(f"llmguard: ledger writer failed ({exc}); its rows stay in the journal",
                                  RuntimeWarning, stacklevel=1)
                except Exception:
                    pass
            if self._stop.is_set():
                return

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> float:
        self.flush()
        conn = self._conn
        if conn is None:
            return 0.0
        with self._conn_lock:
            row = conn.execute(sql, params).fetchone()
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
            committed = self._conn is not None and not self._pending and not self._failed
            self._retired, self._segment = [], None
        for segment in segments:  # kept (unlocked) when their rows may not be in SQLite yet
            if committed:
                segment.discard()
            else:
                segment.release()
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        _live.discard(self)

    def _after_fork_in_child(self) -> None:
        """A forked child keeps none of the parent's locks, rows, thread or connection."""
        self._lock, self._conn_lock, self._flush_lock = threading.RLock(), threading.Lock(), threading.Lock()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._writer = None
        for segment in [*self._retired, *([self._segment] if self._segment is not None else [])]:
            segment.release()
        self._pending, self._retired, self._segment = [], [], None
        if self._conn is not None:
            try:
                self._conn = connect(self.path)
            except sqlite3.Error as exc:
                self._disable(f"cannot reopen the ledger at {self.path} after fork ({exc})")


def read_events(path: Path, where: str = "", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Rows as dicts (JSON columns decoded): for tests, exports and small reports."""
    conn = connect(path, readonly=True)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(f"SELECT * FROM calls {where} ORDER BY ts, rowid", params).fetchall()
    finally:
        conn.close()
    out = []
    for row in rows:
        item = dict(row)
        for name in _JSON_COLUMNS:
            item[name] = json.loads(item[name]) if item.get(name) else {}
        out.append(item)
    return out


def _flush_all_at_exit() -> None:
    for ledger in list(_live):
        try:
            ledger.close()
        except Exception:
            pass


def _after_fork() -> None:
    _new_id_prefix_after_fork()
    for ledger in list(_live):
        ledger._after_fork_in_child()


atexit.register(_flush_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
