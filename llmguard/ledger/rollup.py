"""Keeping the rollup (grains.py) up to date, exactly, so reports over a million calls read thousands of rows.

How it stays exact: a watermark per table (calls, steps). `rollup_state` holds the rowid up to
which rows are rolled up. Rows are only ever appended, so every row above the watermark is not in
the rollup yet and every row at or below it is, once. Whoever commits rows rolls up the rows above
the watermark in the same transaction, once `CATCH_UP_AT` have gathered, at most `CHUNK_ROWS` at a
time (`keep_up`); readers add the few rows above it from the tables themselves. So the rollup agrees
with a scan whichever process, llmguard version or journal recovery wrote the rows, and the
per-call cost is a share of one set-based statement per grain, not work on the caller's path. A
ledger an older llmguard made gets the tables when it is opened and is rolled up chunk by chunk
(`backfill`), each chunk its own transaction, so no lock is held for long and an interrupted
backfill resumes where it stopped.

A rollup that cannot be kept (a sum overflows) is marked broken, never fails a commit: reports then
scan the calls. A rollup of another version is rebuilt (older) or left alone (newer).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from llmguard.ledger.grains import GRAINS, create_sql, ensure_ln, statements

VERSION = 1  # of what is kept; a ledger with an older version is rebuilt, a newer one left alone
CATCH_UP_AT = 16_384  # rows above the watermark before a commit rolls them up (bigger chunks: ~20% cheaper per row)
CHUNK_ROWS = 20_000  # rows of a table rolled up in one transaction at most
STATE = "rollup_state"
SOURCES = ("calls", "steps")
_STATEMENTS = {source: statements(source) for source in SOURCES}


def ensure_rollup(conn: sqlite3.Connection) -> None:
    """The rollup's tables and watermarks (0: nothing rolled up yet), on a connection opened for writing.

    A rollup an older llmguard kept differently is dropped and rebuilt from the calls."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {STATE} (name TEXT PRIMARY KEY, value)")
    if _current(conn):
        return
    found = conn.execute(f"SELECT value FROM {STATE} WHERE name = 'version'").fetchone()
    if found is not None and isinstance(found[0], int) and found[0] > VERSION:
        return  # a newer llmguard's: left to it (this one's reports scan)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _current(conn):
            for grain in GRAINS:
                conn.execute(f"DROP TABLE IF EXISTS {grain.table}")
                conn.execute(create_sql(grain))
            conn.execute(f"DELETE FROM {STATE}")
            state = [("version", VERSION)] + [(f"{s}_{k}", 0) for s in SOURCES for k in ("rowid", "rows")]
            conn.executemany(f"INSERT INTO {STATE} (name, value) VALUES (?, ?)", state)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _current(conn: sqlite3.Connection) -> bool:
    found = conn.execute(f"SELECT value FROM {STATE} WHERE name = 'version'").fetchone()
    return found is not None and found[0] == VERSION and all(has_table(conn, g.table) for g in GRAINS)


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None


@dataclass(frozen=True)
class Watermark:
    """Where the rollup of one table stands: its rows up to `rowid` are in it (`rows` of them);
    `usable` unless it was marked broken or another llmguard version keeps it."""

    rowid: int
    rows: int
    usable: bool
    why: str | None = None


def watermark(conn: sqlite3.Connection, source: str = "calls") -> Watermark | None:
    """The rollup's state for a table, or None when the ledger has no rollup (an older llmguard made it)."""
    if not has_table(conn, STATE):
        return None
    state = dict(conn.execute(f"SELECT name, value FROM {STATE}").fetchall())
    if f"{source}_rowid" not in state:
        return None
    broken = state.get("broken")
    usable = state.get("version") == VERSION and broken is None
    why = broken if broken is not None else None if usable else f"rollup version {state.get('version')}"
    return Watermark(int(state[f"{source}_rowid"]), int(state.get(f"{source}_rows") or 0), usable, why)


def _top(conn: sqlite3.Connection, source: str) -> int:
    return conn.execute(f"SELECT MAX(rowid) FROM {source}").fetchone()[0] or 0


def backlog(conn: sqlite3.Connection) -> int:
    """How many rows (by rowid) of the table furthest behind are above its watermark; 0 without a usable rollup."""
    behind = 0
    for source in SOURCES:
        mark = watermark(conn, source)
        if mark is not None and mark.usable and has_table(conn, source):
            behind = max(behind, _top(conn, source) - mark.rowid)
    return behind


def catch_up(conn: sqlite3.Connection, limit: int | None = None) -> int:
    """Inside the caller's write transaction: roll up at most `limit` (CHUNK_ROWS) rows of each table
    above its watermark.

    Returns how many were rolled up. A rollup that cannot take them is marked broken (reports then
    scan) and 0 is returned; only the ledger's own trouble (busy, full, read-only, damaged) raises.
    """
    rolled = 0
    for source in SOURCES:
        mark = watermark(conn, source)
        if mark is None or not mark.usable or not has_table(conn, source):
            continue
        high = min(_top(conn, source), mark.rowid + (CHUNK_ROWS if limit is None else limit))
        if high <= mark.rowid:
            continue
        conn.execute("SAVEPOINT lg_rollup")
        try:
            ensure_ln(conn)
            for statement in _STATEMENTS[source]:
                conn.execute(statement, (mark.rowid, high))
            (n,) = conn.execute(
                f"SELECT COUNT(*) FROM {source} WHERE rowid > ? AND rowid <= ?", (mark.rowid, high)
            ).fetchone()
            conn.executemany(
                f"UPDATE {STATE} SET value = ? WHERE name = ?",
                [(high, f"{source}_rowid"), (mark.rows + n, f"{source}_rows")],
            )
            conn.execute("RELEASE lg_rollup")
            rolled += int(n)
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK TO lg_rollup")
            conn.execute("RELEASE lg_rollup")
            if environmental(exc):
                raise
            mark_broken(conn, f"cannot roll up {source} {mark.rowid + 1}-{high} ({exc})")
            return 0
    return rolled


def keep_up(conn: sqlite3.Connection) -> int:
    """Inside a commit: roll up once CATCH_UP_AT rows have gathered above a watermark."""
    if backlog(conn) < CATCH_UP_AT:
        return 0
    return catch_up(conn)


def mark_broken(conn: sqlite3.Connection, why: str) -> None:
    conn.execute(f"INSERT OR REPLACE INTO {STATE} (name, value) VALUES ('broken', ?)", (why[:500],))


_ENVIRONMENTAL = {5, 6, 7, 8, 10, 11, 13, 14, 15, 26}  # busy, locked, nomem, readonly, ioerr, corrupt, full, ...


def environmental(exc: BaseException) -> bool:
    """The ledger's own trouble (busy, full, read-only, damaged), as opposed to what the rollup holds."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return isinstance(exc, sqlite3.OperationalError) and "overflow" not in str(exc)
    return code & 0xFF in _ENVIRONMENTAL


def backfill(conn: sqlite3.Connection, chunks: int | None = None) -> int:
    """Roll up what is above the watermarks, one chunk per transaction (at most `chunks` of them).

    For a ledger an older llmguard made, on a connection opened for writing. Returns rows rolled up.
    """
    done = 0
    while chunks is None or chunks > 0:
        conn.execute("BEGIN IMMEDIATE")
        try:
            rolled = catch_up(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        done += rolled
        if rolled == 0:
            return done
        chunks = None if chunks is None else chunks - 1
    return done
