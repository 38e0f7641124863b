"""Putting rows into SQLite: one transaction a batch, and no row lost to what it holds.

Rows of both tables (calls, steps) go in together. A row SQLite refuses (a value it cannot bind or
store) is stored with such values as text; only a failure of the ledger itself (full, busy,
read-only, damaged) fails the batch, and its rows wait in the journal. Orphan journal segments
(left by processes that died before their rows were committed) are ingested the same way.

A batch asked to (`roll_up`) also rolls up the calls above the rollup's watermark, in the same
transaction (see rollup.py), so the rollup and the calls are committed together or not at all.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from llmguard.ledger import journal, rollup
from llmguard.ledger.damage import is_damaged
from llmguard.ledger.records import COLUMNS, STEP_COLUMNS, StepRow, as_text, bindable, stored_form
from llmguard.ledger.schema import INSERT_CALL, INSERT_STEP, ensure_steps


def _environmental(exc: BaseException) -> bool:
    """A failure of the ledger (full, busy, read-only, damaged), not of a row: the rows wait and retry."""
    return isinstance(exc, sqlite3.OperationalError) or is_damaged(exc)


def insert_rows(conn: sqlite3.Connection, rows: list[Any], roll_up: bool = True) -> int:
    """Rows (calls and steps) in one transaction: all of them land, or none do (and the error is the
    ledger's own). With `roll_up`, the rollup catches up in that transaction once enough calls gathered.

    A row SQLite refuses (a value it cannot bind or store) is stored with such values as text; the
    number of rows that even then could not be stored (none, so far as we know) is returned.
    """
    batches = [
        (INSERT_CALL, [row for row in rows if not isinstance(row, StepRow)]),
        (INSERT_STEP, [row for row in rows if isinstance(row, StepRow)]),
    ]
    try:
        _insert_once(conn, batches, roll_up)
        return 0
    except Exception as exc:
        if _environmental(exc):
            raise
    try:
        _insert_once(conn, [(sql, [bindable(row) for row in batch]) for sql, batch in batches], roll_up)
        return 0
    except Exception as exc:
        if _environmental(exc):
            raise
    return _insert_once(conn, batches, roll_up, one_by_one=True)


def _insert_once(
    conn: sqlite3.Connection, batches: list[tuple[str, list[Any]]], roll_up: bool, one_by_one: bool = False
) -> int:
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
                for attempt in (bindable, as_text):
                    try:
                        conn.execute(sql, attempt(row))
                        break
                    except Exception as exc:
                        if _environmental(exc):
                            raise
                else:
                    lost += 1
        if roll_up:
            rollup.keep_up(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (a full disk, an I/O error)
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        raise
    return lost


def ingest_orphans(conn: sqlite3.Connection, home: Path) -> int:
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
            ensure_steps(conn)  # a ledger an older llmguard made
            fresh += _unseen(conn, "steps", "step_id", steps, STEP_COLUMNS, StepRow)
        if fresh:
            insert_rows(conn, fresh)
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
