"""The ledger's indexes for reports: the "what went wrong" table reads the failed calls alone, and
the timeline's p95 per bucket reads `calls_ts` (ts, total_ms), each through an index that covers
the query; a ledger an older llmguard wrote gains them the next time it is opened for writing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from llmguard.ledger.sqlite import CallEvent, Ledger
from llmguard.reporting.dashboard import error_kinds, error_kinds_sql, p95_per_bucket_sql, timeline
from llmguard.reporting.sampling import row_hash

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


def _plan(path: Path, sql: str | None = None) -> str:
    conn = sqlite3.connect(path)
    try:
        return " / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + (sql or error_kinds_sql())))
    finally:
        conn.close()


def _ts_columns(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[2] for row in conn.execute("PRAGMA index_info(calls_ts)")]
    finally:
        conn.close()


def _latencies(home: Path) -> Path:
    """20 calls in the hour from T0 taking 1..20 ms, 10 in the next hour taking 100..1000 ms."""
    ledger = Ledger(home, run_id="p95")
    common = {"provider": "openai", "endpoint": "chat.completions", "model": "gpt-4o-mini", "cost_usd": 0.0}
    for i in range(20):
        ledger.record(CallEvent(ts=T0 + i, total_ms=float(i + 1), **common))
    for i in range(10):
        ledger.record(CallEvent(ts=T0 + 3600 + i, total_ms=100.0 * (i + 1), **common))
    path = ledger.path
    ledger.close()
    return path


SAMPLED = f"AND {row_hash('calls')} < 2147483648"


def test_the_timeline_p95_is_read_from_the_ts_index_alone(home):
    path = _latencies(home)
    assert _ts_columns(path) == ["ts", "total_ms"]
    for sample in ("", SAMPLED):  # exact, and the deterministic sample of a big ledger
        assert "USING COVERING INDEX calls_ts" in _plan(path, p95_per_bucket_sql(3600, "", sample))
    found = timeline(path, by=None)
    # the 95th of 20 values ranked (20 * 95 + 99) // 100 = 19th: 19 ms; of 10, the 10th: 1000 ms
    assert [found.buckets[b]["p95_ms"] for b in sorted(found.buckets)] == [19.0, 1000.0]


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


def test_an_older_ts_index_is_widened_once_and_an_older_llmguard_keeps_it(home):
    path = _latencies(home)
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX calls_ts")
    conn.execute("CREATE INDEX calls_ts ON calls(ts)")  # what releases before it covered total_ms made
    conn.commit()
    conn.close()
    assert "USING COVERING INDEX" not in _plan(path, p95_per_bucket_sql(3600))

    ledger = Ledger(home, run_id="later")
    ledger.record(CallEvent(ts=T0 + 3610, model="gpt-4o-mini", total_ms=5.0))
    ledger.close()
    assert _ts_columns(path) == ["ts", "total_ms"]
    assert "USING COVERING INDEX calls_ts" in _plan(path, p95_per_bucket_sql(3600))

    conn = sqlite3.connect(path)
    conn.execute("CREATE INDEX IF NOT EXISTS calls_ts ON calls(ts)")  # an older llmguard opening it again
    conn.close()
    assert _ts_columns(path) == ["ts", "total_ms"]
    found = timeline(path, by=None)
    assert [found.buckets[b]["p95_ms"] for b in sorted(found.buckets)] == [19.0, 1000.0]
