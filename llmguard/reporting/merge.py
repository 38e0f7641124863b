"""`llmguard report --ledger PATH...`: one report over ledgers copied from several machines.

The copies are merged into a temporary ledger (same schema, built by `ledger.schema`), which the
report then reads like any other. A call is counted once however many copies hold it: rows are
inserted with INSERT OR IGNORE under a unique index on `request_id` (steps on `step_id`), ids that
are unique across processes and machines (a random per-process prefix and a counter, see
`ledger.records.new_request_id`). A later copy of the same machine's ledger therefore adds only
its new calls. A path may be a ledger file or the LLMGUARD_HOME folder that holds `ledger.sqlite3`.
The sources are only read; the temporary ledger is removed at exit (or by `close`).
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.request import pathname2url

from llmguard.ledger.connection import connect
from llmguard.ledger.records import COLUMNS, STEP_COLUMNS
from llmguard.ledger.schema import (
    CALL_INDEXES,
    CREATE_CALLS,
    CREATE_STEPS,
    REPORT_INDEXES,
    SCHEMA_VERSION,
    STEP_INDEXES,
)
from llmguard.reporting.errors import ReportError

LEDGER_NAME = "ledger.sqlite3"
_WHAT_TO_GIVE = (
    "--ledger takes ledger.sqlite3 files (or the LLMGUARD_HOME folders holding them) copied from each machine"
)


@dataclass
class Source:
    """One ledger given on the command line, and what it added."""

    path: Path
    calls: int = 0  # rows it holds
    added: int = 0  # of them, calls no earlier source held


@dataclass
class MergedLedger:
    """The temporary ledger holding every distinct call of the sources."""

    path: Path
    sources: list[Source] = field(default_factory=list)
    steps: int = 0

    @property
    def calls(self) -> int:
        return sum(s.added for s in self.sources)

    @property
    def duplicates(self) -> int:
        return sum(s.calls - s.added for s in self.sources)

    def summary(self) -> str:
        each = ", ".join(f"{s.path} ({s.calls:,} calls, {s.added:,} new)" for s in self.sources)
        kept = f"{self.duplicates:,} duplicate row{'s' if self.duplicates != 1 else ''} counted once"
        return f"llmguard: merged {len(self.sources)} ledgers into {self.calls:,} calls ({kept}): {each}"

    def close(self) -> None:
        """Remove the temporary ledger (also done at exit)."""
        shutil.rmtree(self.path.parent, ignore_errors=True)


def resolve(given: str | Path) -> Path:
    """The ledger file a --ledger argument names (a folder means its ledger.sqlite3)."""
    path = Path(given).expanduser()
    if path.is_dir():
        path = path / LEDGER_NAME
    if not path.is_file():
        raise ReportError(f"llmguard: --ledger {given}: no ledger there. {_WHAT_TO_GIVE}.")
    return path


def merge_ledgers(paths: Sequence[str | Path]) -> MergedLedger:
    """Every distinct call (and step) of the ledgers at `paths`, in one temporary ledger.

    ReportError naming the file and what to do when one is missing, damaged or not a ledger.
    """
    files = [resolve(p) for p in paths]
    folder = Path(tempfile.mkdtemp(prefix="llmguard-merged-"))
    atexit.register(shutil.rmtree, folder, True)
    merged = MergedLedger(folder / LEDGER_NAME)
    conn = sqlite3.connect(f"file:{pathname2url(str(merged.path))}", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")  # a scratch file: nothing to recover if this run dies
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute(CREATE_CALLS)
        conn.execute(CREATE_STEPS)
        conn.execute("CREATE UNIQUE INDEX calls_request_id ON calls(request_id)")
        conn.execute("CREATE UNIQUE INDEX steps_step_id ON steps(step_id)")
        for path in files:
            merged.sources.append(_add(conn, path))
        merged.steps = conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
        for statement in (*CALL_INDEXES, *REPORT_INDEXES, *STEP_INDEXES):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        conn.close()
        merged.close()
        raise
    conn.close()
    return merged


def _add(conn: sqlite3.Connection, path: Path) -> Source:
    """Copy the calls and steps of one ledger that the merged one does not hold yet."""
    source = Source(path)
    try:
        connect(path, readonly=True).close()  # as `report --home` does: a live home's pending rows first
        conn.execute("ATTACH DATABASE ? AS source", (f"file:{pathname2url(str(path.resolve()))}?mode=ro",))
    except sqlite3.Error as exc:
        raise ReportError(_unreadable(path, exc)) from None
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM source.sqlite_master WHERE type='table'")}
        if "calls" not in tables:
            raise ReportError(
                f"llmguard: --ledger {path} is a SQLite file but not an llmguard ledger (it has no calls table). "
                f"{_WHAT_TO_GIVE}."
            )
        calls = _columns(conn, "calls", COLUMNS)
        if "request_id" not in calls:
            raise ReportError(f"llmguard: --ledger {path} has a calls table without request ids. {_WHAT_TO_GIVE}.")
        conn.execute("BEGIN")
        source.calls = conn.execute("SELECT COUNT(*) FROM source.calls").fetchone()[0]
        source.added = _copy(conn, "calls", calls)
        if "steps" in tables:
            steps = _columns(conn, "steps", STEP_COLUMNS)
            if "step_id" in steps:
                _copy(conn, "steps", steps)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise ReportError(_unreadable(path, exc)) from None
    finally:
        conn.execute("DETACH DATABASE source")
    return source


def _columns(conn: sqlite3.Connection, table: str, known: list[str]) -> list[str]:
    """The columns of a source table this llmguard knows (an older ledger's missing ones stay empty)."""
    present = {row[1] for row in conn.execute(f"PRAGMA source.table_info({table})")}
    return [name for name in known if name in present]


def _copy(conn: sqlite3.Connection, table: str, columns: list[str]) -> int:
    """Insert the source's rows whose id the merged ledger does not hold; how many went in."""
    names = ", ".join(columns)
    before = conn.total_changes
    conn.execute(f"INSERT OR IGNORE INTO main.{table} ({names}) SELECT {names} FROM source.{table}")
    return conn.total_changes - before


def _unreadable(path: Path, exc: BaseException) -> str:
    return (
        f"llmguard: cannot read the ledger {path} ({exc}); it may be damaged or only partly copied. Copy it "
        "again from its machine (with the guard stopped, or together with its -wal file), or leave it out."
    )
