"""The SQLite ledger: one row per call (cache hits, refusals and failures included).

A row is committed before the response reaches the user's code, so a kernel killed right after
loses nothing. WAL mode with synchronous=NORMAL keeps that commit cheap (no fsync per call; a
committed WAL frame survives a killed process, only an OS crash can lose the last ones) and lets
several kernels write one ledger at once.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import threading
import time
import uuid
import warnings
from dataclasses import asdict, dataclass, field, fields
from operator import attrgetter
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
# Request ids: a random per-process prefix and a counter; unique across processes, ~10x cheaper than uuid4.
_ID_PREFIX = uuid.uuid4().hex[:12]
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


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
    if readonly:
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


class Ledger:
    """Append-only call log. Thread-safe; several processes may share one file."""

    def __init__(self, home: Path, run_id: str | None = None) -> None:
        self.home = home
        self.path = home / "ledger.sqlite3"
        self.run_id = run_id or time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.error: str | None = None
        try:
            ensure_home(home)
            conn = connect(self.path)
            with self._lock:
                conn.execute(_CREATE)
                for statement in _INDEXES:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._conn = conn
        except (OSError, sqlite3.Error) as exc:
            self._disable(f"cannot open the ledger at {self.path} ({exc})")

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
        event.run_id = event.run_id or self.run_id
        conn = self._conn
        if conn is None:
            return
        row = self._row(event)
        try:
            with self._lock:
                conn.execute(_INSERT, row)
        except sqlite3.Error as exc:
            self._disable(f"cannot write the ledger at {self.path} ({exc})")

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> float:
        conn = self._conn
        if conn is None:
            return 0.0
        with self._lock:
            row = conn.execute(sql, params).fetchone()
        return float(row[0] or 0.0) if row else 0.0

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


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
