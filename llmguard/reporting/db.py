"""Read-only access to the ledger for reports: one connection per query, so independent scans run at once.

A reader never changes the ledger: a damaged file is reported (`check_readable`), not moved aside.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from llmguard.ledger.sqlite import connect
from llmguard.reporting.errors import ReportError


def unreadable(ledger_path: Path, exc: BaseException) -> str:
    """What to tell someone whose ledger SQLite cannot read."""
    return (
        f"llmguard: cannot read the ledger at {ledger_path} ({exc}). If it is damaged, the guard moves it aside "
        "(to ledger.sqlite3.corrupt-<time>) and starts a fresh one the next time it records a call; or restore "
        "the file from a backup."
    )


def check_readable(ledger_path: Path) -> None:
    """ReportError (saying why) when SQLite cannot read the ledger: not a database, damaged, unreadable.

    Reads the schema and the newest row through the ts index, so a report of a damaged file fails
    here instead of showing no calls. Damage deeper in is found by the report's own scans.
    """
    try:
        conn = connect(ledger_path, readonly=True)
        try:
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='calls'").fetchall()
            if tables:
                conn.execute("SELECT * FROM calls ORDER BY ts DESC LIMIT 1").fetchall()
                conn.execute("SELECT * FROM calls ORDER BY rowid LIMIT 1").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ReportError(unreadable(ledger_path, exc)) from None


def _first_row(ledger_path: Path, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """The first row of a read-only query; None when there is none or SQLite cannot open or read the file."""
    try:
        conn = connect(ledger_path, readonly=True)
    except sqlite3.Error:
        return None
    try:
        return conn.execute(sql, params).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def has_table(ledger_path: Path, name: str) -> bool:
    """Whether the ledger has this table (False when SQLite cannot open or read it)."""
    return _first_row(ledger_path, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)) is not None


def has_calls_table(ledger_path: Path) -> bool:
    """False for a file that holds no calls yet (or cannot be read)."""
    return has_table(ledger_path, "calls")


def has_steps_table(ledger_path: Path) -> bool:
    """False for a ledger an older llmguard made (its steps are only on its calls)."""
    return has_table(ledger_path, "steps")


def query(ledger_path: Path, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One read-only query on its own connection (so several can run at once)."""
    conn = connect(ledger_path, readonly=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def run_parallel(jobs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run independent scans at once: SQLite releases the GIL while it works."""
    if len(jobs) <= 1 or (os.cpu_count() or 1) <= 1:
        return {name: job() for name, job in jobs.items()}
    with ThreadPoolExecutor(max_workers=min(len(jobs), max(2, os.cpu_count() or 2))) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def last_run_id(ledger_path: Path) -> str | None:
    """The run of the most recent call (uses the ts index)."""
    row = _first_row(ledger_path, "SELECT run_id FROM calls ORDER BY ts DESC LIMIT 1")
    return row[0] if row else None
