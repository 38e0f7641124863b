"""The SQLite ledger: one row per call (cache hits, refusals and failures included), and one row per
finished `llmguard.step` in the `steps` table of the same file (reports rank step durations there:
one sample per run of a step, however many calls ran inside it).

A row is durable before the response reaches the user's code, so a kernel killed right after loses
nothing: the caller copies it into this process's memory-mapped journal segment (see journal.py)
and a writer thread commits rows to SQLite in batches a few milliseconds later. Anyone who reads
the ledger first makes those rows visible: this process's pending rows are committed, and segments
left by dead processes are ingested. WAL mode with synchronous=NORMAL keeps commits cheap and lets
several kernels write one ledger at once; only an OS crash can lose the last rows.

No row is lost to what it holds: a value SQLite cannot store is stored as text (a lone surrogate,
which UTF-8 cannot encode, as its backslash escape: "bad\\ud800"), one JSON cannot hold is
stored by its str(), and a row bigger than a journal segment gets a segment of its own.

No row is lost to the ledger's trouble either. A commit that fails (a full disk, a busy or
read-only file) leaves its rows in the journal, and the writer tries again; a process that exits
first leaves them to the next reader. A ledger SQLite finds damaged (not a database, a malformed
page) is moved aside to `ledger.sqlite3.corrupt-<time>` with its -wal and -shm, and a fresh one is
started in its place; never while another process still has it open (that process's close would
delete the fresh ledger's -wal and -shm, which SQLite finds by name): until then rows wait in the
journal. Readers (`llmguard report`) never move a ledger: they say they cannot read it.

Step rows take the same road as call rows (journal segment, writer thread, one transaction with
the calls committed beside them, ingestion of dead processes' segments), so a step survives a
kill -9 as a call does. A ledger an older llmguard made has no `steps` table: opening it for
writing adds one, and readers find no steps in it.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import itertools
import json
import os
import sqlite3
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from operator import attrgetter
from pathlib import Path
from typing import Any

from llmguard.context import STEP_TAGS, StepEvent
from llmguard.ledger import journal

try:
    import fcntl
except ImportError:  # Windows: no locks to test; a damaged ledger is moved aside right away
    fcntl = None  # type: ignore[assignment]

SCHEMA_VERSION = 2  # 2: the steps table
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


_CREATE = "CREATE TABLE IF NOT EXISTS calls (" + ", ".join(f"{c} {_column_type(c)}" for c in COLUMNS) + ")"
# Each index costs every insert ~8 us (measured); reports filter by time or run and then group in
# one scan, so these two are what the hot path pays for.
_INDEXES = [
    "CREATE INDEX IF NOT EXISTS calls_ts ON calls(ts)",
    "CREATE INDEX IF NOT EXISTS calls_run ON calls(run_id)",
]
_VALUES = attrgetter(*COLUMNS)
_JSON_POSITIONS = [COLUMNS.index(name) for name in sorted(_JSON_COLUMNS)]
_INSERT = f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"

# One row per finished step() (see context.StepEvent); the tags are typed as the calls' columns.
STEP_COLUMNS = ["step_id", "ts", "run_id", "name", "duration_ms", "over_budget", "calls", *STEP_TAGS]
_STEP_TYPES = {
    "step_id": "TEXT",
    "ts": "REAL",
    "run_id": "TEXT",
    "name": "TEXT",
    "duration_ms": "REAL",
    "over_budget": "INTEGER",
    "calls": "INTEGER",
    **{name: _column_type(name) for name in STEP_TAGS},
}
_CREATE_STEPS = "CREATE TABLE IF NOT EXISTS steps (" + ", ".join(f"{c} {_STEP_TYPES[c]}" for c in STEP_COLUMNS) + ")"
_STEP_INDEXES = [
    "CREATE INDEX IF NOT EXISTS steps_ts ON steps(ts)",
    "CREATE INDEX IF NOT EXISTS steps_run ON steps(run_id)",
]
_STEP_VALUES = attrgetter(*STEP_COLUMNS)
_INSERT_STEP = f"INSERT INTO steps ({', '.join(STEP_COLUMNS)}) VALUES ({', '.join('?' for _ in STEP_COLUMNS)})"


class _StepRow(list[Any]):
    """A pending row of the steps table: the one queue of pending rows holds both kinds, in order."""

    __slots__ = ()


def _encode_step(row: list[Any]) -> bytes:
    return journal.encode_kind("step", dict(zip(STEP_COLUMNS, row, strict=True)))


def _ensure_steps(conn: sqlite3.Connection) -> None:
    """The steps table and its indexes (a ledger an older llmguard made has neither)."""
    conn.execute(_CREATE_STEPS)
    for statement in _STEP_INDEXES:
        conn.execute(statement)


class LedgerUnavailable(RuntimeError):
    pass


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


# ---- damaged ledgers ----------------------------------------------------------------------------

_DAMAGE_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB


def is_damaged(exc: BaseException) -> bool:
    """SQLite found the file damaged (as opposed to busy, full, read-only or missing)."""
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _DAMAGE_CODES
    return "not a database" in str(exc) or "malformed" in str(exc)


class _NotADatabase(sqlite3.DatabaseError):
    """The file does not start as an SQLite database does (found before SQLite opens it)."""


_MAGIC = b"SQLite format 3\x00"


def _not_a_database(path: Path) -> bool:
    """Looked at before SQLite opens the file: a connection to it would delete its -wal and -shm on
    closing, and those belong with the damaged file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_MAGIC))
    except OSError:
        return False
    return bool(head) and head != _MAGIC


def _still_damaged(path: Path) -> bool:
    """A fresh look at the file: read-only, so it neither checkpoints into it nor deletes its -wal."""
    if not path.exists():
        return False
    if _not_a_database(path):
        return True
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            found = conn.execute("PRAGMA quick_check(1)").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return is_damaged(exc)
    return found is None or found[0] != "ok"


def _open_elsewhere(path: Path) -> bool:
    """Another process has the ledger open: every connection to a WAL database holds a read lock on
    byte 128 of its -shm file (SQLite's "DMS" lock) as long as it is open."""
    if fcntl is None:
        return False
    try:
        fd = os.open(f"{path}-shm", os.O_RDWR)
    except OSError:
        return False  # no -shm: nobody has it open in WAL mode
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
        except OSError:
            return True
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, 128)
        return False
    finally:
        os.close(fd)


def _move_aside(path: Path) -> tuple[Path, list[str]]:
    """`ledger.sqlite3` -> `ledger.sqlite3.corrupt-<time>`, its -wal and -shm beside it (moved first,
    so a fresh ledger never meets the old one's WAL); and which of those came along."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while any(os.path.lexists(f"{aside}{s}") for s in ("", "-wal", "-shm", "-journal")):
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}.{n}")
    moved = []
    for suffix in ("-wal", "-shm", "-journal", ""):
        try:
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
            moved.append(suffix)
        except FileNotFoundError:
            pass
    return aside, [suffix for suffix in moved if suffix]


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file is at `path` now (another process may have moved the damaged one aside already)."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


@contextlib.contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    """One process at a time decides about a damaged ledger (flock on the folder itself)."""
    fd = -1
    if fcntl is not None:
        try:
            fd = os.open(home, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            if fd >= 0:
                os.close(fd)
            fd = -1
    try:
        yield
    finally:
        if fd >= 0:
            os.close(fd)


# ---- rows SQLite refuses --------------------------------------------------------------------------

_INT64 = (-(1 << 63), (1 << 63) - 1)
_LAST_RESORT_CHARS = 1 << 24  # a value longer than this is cut when nothing else gets its row in


def safe_str(value: Any) -> str:
    """str(value), or a placeholder naming its type when its __str__ fails (a row is never lost to it)."""
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}: str() failed>"


def _text(value: str) -> str:
    """Text SQLite can store: lone surrogates (which UTF-8 cannot encode) as backslash escapes."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _storable(value: Any) -> Any:
    """One value as SQLite stores it: a number, text it can encode, or None."""
    kind = type(value)
    if value is None or kind is float or kind is bool:
        return value
    if kind is int:
        return value if _INT64[0] <= value <= _INT64[1] else str(value)
    if kind is str:
        return _text(value)
    if isinstance(value, int):  # an IntEnum or another int subclass: the number itself
        return _storable(int.__int__(value))
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return _text(str.__str__(value))
    return _text(safe_str(value))


def stored_form(value: Any) -> Any:
    """A value as the ledger stores it, so a query for it finds its rows (a lone surrogate escaped)."""
    return _storable(value)


def _bindable(row: list[Any]) -> list[Any]:
    """The row with what SQLite cannot store written as text: a row is never lost for one bad value.

    Only used after an insert failed, so the hot path pays nothing for it. A step row stays one.
    """
    values = [_storable(value) for value in row]
    return _StepRow(values) if isinstance(row, _StepRow) else values


def _as_text(row: list[Any]) -> list[Any]:
    """The last resort for a row SQLite still refuses (a value over its size limit): numbers kept,
    everything else as text cut to _LAST_RESORT_CHARS."""
    out = []
    for value in _bindable(row):
        if isinstance(value, str) and len(value) > _LAST_RESORT_CHARS:
            value = value[:_LAST_RESORT_CHARS] + f"...[cut: {len(value):,} characters]"
        out.append(value)
    return out


def _environmental(exc: BaseException) -> bool:
    """A failure of the ledger (full, busy, read-only, damaged), not of a row: the rows wait and retry."""
    return isinstance(exc, sqlite3.OperationalError) or is_damaged(exc)


def _insert(conn: sqlite3.Connection, rows: list[Any]) -> int:
    """Rows (calls and steps) in one transaction: all of them land, or none do (and the error is the
    ledger's own).

    A row SQLite refuses (a value it cannot bind or store) is stored with such values as text; the
    number of rows that even then could not be stored (none, so far as we know) is returned.
    """
    batches = [
        (_INSERT, [row for row in rows if not isinstance(row, _StepRow)]),
        (_INSERT_STEP, [row for row in rows if isinstance(row, _StepRow)]),
    ]
    try:
        _insert_once(conn, batches)
        return 0
    except Exception as exc:
        if _environmental(exc):
            raise
    try:
        _insert_once(conn, [(sql, [_bindable(row) for row in batch]) for sql, batch in batches])
        return 0
    except Exception as exc:
        if _environmental(exc):
            raise
    return _insert_once(conn, batches, one_by_one=True)


def _insert_once(conn: sqlite3.Connection, batches: list[tuple[str, list[Any]]], one_by_one: bool = False) -> int:
    lost = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, rows in batches:
            if not rows:
                continue
            if not one_by_one:
                conn.executemany(sql, rows)
                continue
            for row in rows:  # each row alone, inside the one transaction: a refused statement leaves the others
                for attempt in (_bindable, _as_text):
                    try:
                        conn.execute(sql, attempt(row))
                        break
                    except Exception as exc:
                        if _environmental(exc):
                            raise
                else:
                    lost += 1
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (a full disk, an I/O error)
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        raise
    return lost


def _ingest_orphans(conn: sqlite3.Connection, home: Path) -> int:
    """Rows of journal segments whose process died before committing them; rows already there are skipped.

    Every row gets in (values SQLite refuses are stored as text); only a file that is not a segment
    is set aside (`.bad`). A busy, full or damaged database leaves the segment for the next reader.
    """
    added = 0
    for path, rows, others in journal.claim_orphans(home):
        if rows is None:
            journal.quarantine(path)
            continue
        fresh: list[Any] = _unseen(conn, "calls", "request_id", rows, COLUMNS, list)
        steps = [record for record in others if record.get("kind") == "step"]
        if steps:
            _ensure_steps(conn)  # a ledger an older llmguard made
            fresh += _unseen(conn, "steps", "step_id", steps, STEP_COLUMNS, _StepRow)
        if fresh:
            _insert(conn, fresh)
            added += len(fresh)
        journal.remove(path)
    return added


def _unseen(
    conn: sqlite3.Connection,
    table: str,
    id_column: str,
    rows: list[dict[str, Any]],
    columns: list[str],
    kind: type[list[Any]],
) -> list[list[Any]]:
    """The rows (as `kind`, in `columns` order) whose id their run does not hold yet."""
    seen: set[Any] = set()
    for run_id in {stored_form(row.get("run_id")) for row in rows}:
        seen.update(r for (r,) in conn.execute(f"SELECT {id_column} FROM {table} WHERE run_id IS ?", (run_id,)))
    return [kind(row.get(name) for name in columns) for row in rows if stored_form(row.get(id_column)) not in seen]


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
    if _not_a_database(Path(where)):
        return  # damaged: a reader leaves it (and its -wal) as it is; the next writer moves it aside
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
# After a commit failed (a full disk; a damaged ledger another process still has open) the writer
# tries again this often, new calls or not.
RETRY_S = 1.0
# Rows a failing ledger keeps in memory to commit later; past this, journaled rows are left to the
# journal alone (the next reader ingests them) and the rest are lost, with a warning.
MAX_PENDING_ROWS = 100_000
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, default=str)
    except Exception:  # a key JSON cannot hold, a cycle, a str() that raises: the row is kept regardless
        return json.dumps(_plain(value, set(), 0))


def _plain(value: Any, open_: set[int], depth: int) -> Any:
    """`value` with what JSON cannot hold as text: keys by str(), cycles as "<cycle>"."""
    if value is None or isinstance(value, str | int | float):
        return value
    if not isinstance(value, dict | list | tuple):
        return safe_str(value)
    if id(value) in open_:
        return "<cycle>"
    if depth >= 100:
        return "<too deep>"
    open_.add(id(value))
    try:
        if isinstance(value, dict):
            return {
                k if k is None or isinstance(k, str | int | float) else safe_str(k): _plain(v, open_, depth + 1)
                for k, v in value.items()
            }
        return [_plain(v, open_, depth + 1) for v in value]
    finally:
        open_.discard(id(value))


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
        self._pending: list[list[Any]] = []  # rows not yet committed (in segments, or only here: _unjournaled)
        self._unjournaled = 0  # how many of them no journal segment holds
        self._retired: list[journal.Segment] = []  # full segments, discarded once their rows commit
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._failed = False  # rows were given up on in memory: segments may hold uncommitted rows, never discard them
        self._journaling = journal.supported
        self._disabled = False  # the ledger could not be opened at all: nothing is recorded
        self._closed = False
        self._damage: BaseException | None = None  # found damaged: moved aside once nobody has it open
        self._damaged: tuple[int, int] | None = None  # which file that was
        self._said: set[str] = set()  # troubles already warned about (again only after a commit worked)
        self.error: str | None = None
        conn = None
        try:
            ensure_home(home)
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
                        _ingest_orphans(conn, home)  # the last rows of a kernel killed earlier
            except (OSError, sqlite3.Error):
                pass  # left for the next reader; recording works regardless
        _live.add(self)

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
        if _not_a_database(self.path):
            raise _NotADatabase("file is not a database")
        conn = connect(self.path)
        try:
            conn.execute(_CREATE)
            for statement in _INDEXES:
                conn.execute(statement)
            _ensure_steps(conn)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_here(self) -> bool:
        """Another ledger of this process has the file open (the -shm lock test cannot see those)."""
        return any(other is not self and other.path == self.path and other._conn is not None for other in list(_live))

    def _found_damaged(self, exc: BaseException) -> None:
        self._damage, self._damaged = exc, _identity(self.path)

    def _recover(self) -> sqlite3.Connection | None:
        """After damage (our own connection closed): move the file aside and open a fresh ledger.

        None while another connection has the damaged file open: moving it then would let that
        connection's close delete the fresh ledger's -wal and -shm, which SQLite finds by name.
        """
        exc = self._damage
        aside, along = None, []
        with _home_lock(self.home):
            if self._damaged is not None and _identity(self.path) == self._damaged:  # not replaced meanwhile
                if self._open_here() or _open_elsewhere(self.path):
                    self._say(
                        "waiting",
                        f"the ledger at {self.path} is damaged ({exc}) and another process still "
                        f"has it open; calls wait in the journal at {journal.journal_dir(self.home)} "
                        "until it lets go, then the file is moved aside and a fresh ledger started",
                    )
                    return None
                if _still_damaged(self.path):
                    aside, along = _move_aside(self.path)
            conn = self._open()  # fresh; or the one another process started after moving the damaged one aside
        self._damage = self._damaged = None
        try:
            _ingest_orphans(conn, self.home)  # what dead processes left while it could not be written
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

    @staticmethod
    def _row(event: CallEvent) -> list[Any]:
        values = list(_VALUES(event))
        for position in _JSON_POSITIONS:
            value = values[position]
            values[position] = _json_text(value) if value else None
        return values

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
        self._append(_StepRow(_STEP_VALUES(event)), _encode_step)

    def _append(self, row: list[Any], encode: Callable[[list[Any]], bytes]) -> None:
        """One row (of either table) into the journal, or committed now when there is no journal."""
        problem = None
        if self._journaling:
            try:
                try:
                    record = encode(row)
                except ValueError:  # a value marshal cannot hold (an int subclass): stored as SQLite would
                    row = _bindable(row)
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
            writer = threading.Thread(target=self._write_behind, name="llmguard-ledger-writer", daemon=True)
            try:
                writer.start()
            except RuntimeError:  # interpreter shutting down: readers and close() still flush
                return
            self._writer = writer

    def _commit(self, rows: list[list[Any]]) -> bool:
        """True once the rows are in SQLite; False leaves them to the caller to keep."""
        with self._conn_lock:  # read under the lock: close() may be closing it
            if self._disabled or self._closed:
                return False
            conn = self._conn or self._reopen()
            if conn is None:
                return False
            try:
                lost = _insert(conn, rows)
            except sqlite3.Error as exc:
                if not is_damaged(exc):
                    self._write_failed(exc)
                    return False
                self._drop_connection(exc)
                conn = self._reopen()
                if conn is None:
                    return False
                try:
                    lost = _insert(conn, rows)
                except sqlite3.Error as again:
                    if is_damaged(again):
                        self._drop_connection(again)
                    self._write_failed(again)
                    return False
            self._said.clear()
        if lost:
            warnings.warn(
                f"llmguard: {lost} calls could not be stored in {self.path} even as text; their rows stay "
                f"in the journal at {journal.journal_dir(self.home)}",
                RuntimeWarning,
                stacklevel=3,
            )
            self._failed = True  # keep the segments that hold them
        return True

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
        _live.discard(self)

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


def read_steps(path: Path, where: str = "", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Step rows as dicts, oldest first (none from a ledger an older llmguard made)."""
    conn = connect(path, readonly=True)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='steps'").fetchone() is None:
            return []
        conn.row_factory = sqlite3.Row
        rows = conn.execute(f"SELECT * FROM steps {where} ORDER BY ts, rowid", params).fetchall()
    finally:
        conn.close()
    return [dict(row) for row in rows]


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
