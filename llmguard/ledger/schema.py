"""The ledger's tables: their DDL and insert statements, and bringing an older ledger up to date.

Columns come from the records (`CallEvent` fields, `STEP_COLUMNS`), typed by their defaults, so a
new field is a new column. A ledger an older llmguard made has no `steps` table: opening it for
writing adds one (`ensure_steps`), and `user_version` says which schema wrote it last. The rollup's
tables (rollup.py) are added and filled when a ledger is opened for writing.
"""

from __future__ import annotations

import sqlite3

from llmguard.context import STEP_TAGS
from llmguard.ledger.records import COLUMNS, JSON_COLUMNS, STEP_COLUMNS, CallEvent

SCHEMA_VERSION = 3  # 2: the steps table; 3: the rollup (rollup.py)
_TYPES = {int: "INTEGER", float: "REAL", bool: "INTEGER", str: "TEXT"}


def column_type(name: str) -> str:
    """The SQLite type of a CallEvent field: from its default, else from its annotation."""
    default = CallEvent.__dataclass_fields__[name].default
    if name in JSON_COLUMNS:
        return "TEXT"
    for kind, sql in _TYPES.items():
        if type(default) is kind:
            return sql
    annotation = str(CallEvent.__dataclass_fields__[name].type)
    return "INTEGER" if annotation.startswith("int") else "REAL" if annotation.startswith("float") else "TEXT"


def _create_table(table: str, types: dict[str, str]) -> str:
    return f"CREATE TABLE IF NOT EXISTS {table} (" + ", ".join(f"{c} {sql}" for c, sql in types.items()) + ")"


def _insert_into(table: str, columns: list[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


CREATE_CALLS = _create_table("calls", {c: column_type(c) for c in COLUMNS})
# Each index costs every insert ~8 us (measured); reports filter by time or run and then group in
# one scan, so these two are what the hot path pays for.
# The failed calls alone, covering what the report groups them by (dashboard.error_kinds): an ok
# call, nearly every call, skips it, so only a failure pays for the insert. Over 1M calls (2.5%
# failed) it makes that query read 25k index entries instead of every row: 0.31 s -> 0.02 s.
FAILED_CALLS_INDEX = (
    "CREATE INDEX IF NOT EXISTS calls_failed ON calls(status, error_type, model, error_message) WHERE status != 'ok'"
)
# `calls_ts` also holds total_ms, so the timeline's p95 per bucket (dashboard.timeline) reads the
# index, not the rows: over 1M calls 0.41 s -> 0.28 s; an insert pays the same, one index entry.
TS_INDEX_COLUMNS = ("ts", "total_ms")
CALL_INDEXES = [
    f"CREATE INDEX IF NOT EXISTS calls_ts ON calls({', '.join(TS_INDEX_COLUMNS)})",
    "CREATE INDEX IF NOT EXISTS calls_run ON calls(run_id)",
]
# Indexes only reports read: an older ledger gains them when opened for writing, if it can be
# written right now (`ensure_report_indexes`); without them a report scans.
REPORT_INDEXES = [FAILED_CALLS_INDEX]
INSERT_CALL = _insert_into("calls", COLUMNS)

# One row per finished step() (see context.StepEvent); the tags are typed as the calls' columns.
_STEP_TYPES = {
    "step_id": "TEXT",
    "ts": "REAL",
    "run_id": "TEXT",
    "name": "TEXT",
    "duration_ms": "REAL",
    "over_budget": "INTEGER",
    "calls": "INTEGER",
    **{name: column_type(name) for name in STEP_TAGS},
}
CREATE_STEPS = _create_table("steps", {c: _STEP_TYPES[c] for c in STEP_COLUMNS})
STEP_INDEXES = [
    "CREATE INDEX IF NOT EXISTS steps_ts ON steps(ts)",
    "CREATE INDEX IF NOT EXISTS steps_run ON steps(run_id)",
]
INSERT_STEP = _insert_into("steps", STEP_COLUMNS)


def ensure_steps(conn: sqlite3.Connection) -> None:
    """The steps table and its indexes (a ledger an older llmguard made has neither)."""
    conn.execute(CREATE_STEPS)
    for statement in STEP_INDEXES:
        conn.execute(statement)


def ensure_report_indexes(conn: sqlite3.Connection) -> None:
    """The reports' indexes (building one over an older ledger of 1M calls takes ~0.3-1 s, once).

    A `calls_ts` on `ts` alone (before it covered total_ms) is rebuilt under its own name, so an
    older llmguard opening the ledger later finds the name and leaves it be (no flip-flop)."""
    for statement in REPORT_INDEXES:
        conn.execute(statement)
    found = tuple(row[2] for row in conn.execute("PRAGMA index_info(calls_ts)"))
    if found and found != TS_INDEX_COLUMNS:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DROP INDEX calls_ts")
            conn.execute(CALL_INDEXES[0])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def create_tables(conn: sqlite3.Connection) -> None:
    """Both tables and their indexes, and the schema version, on a connection opened for writing."""
    conn.execute(CREATE_CALLS)
    for statement in CALL_INDEXES:
        conn.execute(statement)
    ensure_steps(conn)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
