"""Reading rows back: the calls and steps of a ledger as dicts, for tests, exports and small reports.

Each read opens a read-only connection, which first makes every finished call visible (see
`connection.settle`). Reports that aggregate in SQL use `connection.connect` themselves.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from llmguard.ledger.connection import connect
from llmguard.ledger.records import JSON_COLUMNS


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
        for name in JSON_COLUMNS:
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
