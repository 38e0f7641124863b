"""The ledger's report-only index: the report's "what went wrong" table reads the failed calls
alone, through an index that covers the query, and a ledger an older llmguard wrote gains it the
next time it is opened for writing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from llmguard.ledger.sqlite import CallEvent, Ledger
from llmguard.reporting.dashboard import error_kinds, error_kinds_sql

T0 = 1_789_948_800.0


def _record(home: Path) -> Path:
    ledger = Ledger(home, run_id="kinds")
    common = {"provider": "openai", "endpoint": "chat.completions", "total_ms": 50.0}
    for i in range(40):
        ledger.record(CallEvent(ts=T0 + i, model="gpt-4o-mini", cost_usd=0.0001, **common))
    for i, (model, status, error_type, message) in enumerate(
        [
            ("gpt-4o-mini", "error", "timeout", "llmguard: no answer within 30.0 s"),
            ("gpt-4o-mini", "error", "timeout", "llmguard: no answer within 30.0 s"),
            ("gpt-4o", "error", "timeout", "llmguard: no answer within 30.0 s"),
            ("gpt-4o", "refused", "budget", "llmguard: the daily budget of $5.00 is spent"),
        ]
    ):
        ledger.record(
            CallEvent(
                ts=T0 + 100 + i, model=model, status=status, error_type=error_type, error_message=message, **common
            )
        )
    path = ledger.path
    ledger.close()
    return path


def _indexes(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        conn.close()


def _plan(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return " / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + error_kinds_sql()))
    finally:
        conn.close()


def test_the_failed_calls_are_grouped_from_an_index_that_covers_them(home):
    path = _record(home)
    assert "calls_failed" in _indexes(path)
    assert "USING COVERING INDEX calls_failed" in _plan(path)
    kinds = error_kinds(path)
    assert kinds.models == ["gpt-4o", "gpt-4o-mini"]  # two failures each; ties by name
    assert [(r["status"], r["error_type"], r["message"], r["calls"], r["by"]) for r in kinds.rows] == [
        ("error", "timeout", "llmguard: no answer within 30.0 s", 3, {"gpt-4o-mini": 2, "gpt-4o": 1}),
        ("refused", "budget", "llmguard: the daily budget of $5.00 is spent", 1, {"gpt-4o": 1}),
    ]


def test_a_ledger_an_older_llmguard_wrote_gains_the_index_when_next_opened_for_writing(home):
    path = _record(home)
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX calls_failed")  # as a release before the index left it
    conn.commit()
    conn.close()
    assert "SCAN calls" in _plan(path) and "calls_failed" not in _plan(path)

    ledger = Ledger(home, run_id="later")
    ledger.record(CallEvent(ts=T0 + 200, model="gpt-4o", status="error", error_type="timeout", total_ms=1.0))
    ledger.close()

    assert "USING COVERING INDEX calls_failed" in _plan(path)
    assert sum(r["calls"] for r in error_kinds(path).rows) == 5
