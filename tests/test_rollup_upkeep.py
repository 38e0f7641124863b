"""Keeping the rollup: a ledger an older llmguard made, a rollup left behind, damage, rows it cannot
trust or take, and percentiles read from its histograms.

Every report is checked against a computation in plain Python over the raw rows (`read_events`),
never only against another report. `CATCH_UP_AT`, `CHUNK_ROWS` and the sampling thresholds are
lowered (module settings, not mocks) so a few thousand calls take the paths a million take.
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
import time
import warnings
from pathlib import Path

import pytest

from llmguard.context import StepEvent
from llmguard.ledger import grains, journal, rollup
from llmguard.ledger.records import COLUMNS
from llmguard.ledger.sqlite import CallEvent, Ledger, read_events
from llmguard.reporting import histograms, queries, report, rolled, sampling
from llmguard.reporting.filters import Filters
from tests.test_report import expected_row, group_rows, nearest_rank

T0 = 1_789_948_800.0  # a UTC midnight
DAY = 86400.0
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest")


def _events(n: int, seed: int = 7) -> list[CallEvent]:
    rng = random.Random(seed)
    return [
        CallEvent(
            ts=T0 + i * 3 * DAY / n,
            provider="openai",
            endpoint="chat.completions",
            model=MODELS[i % 3],
            feature=("chat", "summary")[i % 2],
            tenant=f"t{i % 5}",
            user=f"u{i % 7}",
            input_tokens=rng.randrange(2000),
            output_tokens=rng.randrange(300),
            cost_usd=round(rng.uniform(0, 0.01), 7),
            status="error" if i % 17 == 0 else "ok",
            error_type="timeout" if i % 17 == 0 else None,
            total_ms=rng.lognormvariate(6.5, 0.6) * (1 + i % 3),
            ttft_ms=rng.lognormvariate(5, 0.5) if i % 4 else None,
            queue_ms=rng.uniform(1, 400) if i % 5 == 0 else 0.0,
            retry_delay_ms=250.0 * (i % 11 == 0),
            retry_count=int(i % 11 == 0),
        )
        for i in range(n)
    ]


def _write(home: Path, events: list[CallEvent], run_id: str = "run") -> None:
    ledger = Ledger(home, run_id=run_id)
    for event in events:
        ledger.record(event)
    ledger.close()


def _conn(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _mark(path: Path) -> rollup.Watermark | None:
    conn = _conn(path)
    try:
        return rollup.watermark(conn)
    finally:
        conn.close()


def _check_sums(path: Path, by: list[str], cut: Filters | None = None) -> None:
    """The report's counts and dollars are the raw rows' own."""
    cut = cut or Filters()
    raw = [r for r in read_events(path) if cut.since is None or _at_or_after(r["ts"], cut.since)]
    got = {tuple(r[d] for d in by): r for r in report.breakdown(path, by, cut, steps=False)}
    expected = group_rows(raw, by)
    assert set(got) == set(expected)
    for key, members in expected.items():
        want = expected_row(members)
        for name in ("calls", "input_tokens", "output_tokens", "errors", "timeouts", "retries", "failures"):
            assert got[key][name] == want[name], (key, name)
        assert got[key]["cost_usd"] == pytest.approx(want["cost_usd"], rel=1e-12)


def _at_or_after(ts: object, since: float) -> bool:
    """`ts >= since` as SQLite compares them: NULL never, text always (text sorts after numbers)."""
    return isinstance(ts, str) or (isinstance(ts, int | float) and ts >= since)


def test_a_ledger_from_the_previous_schema_reports_the_same_before_and_after_its_rollup_is_built(home, monkeypatch):
    monkeypatch.setattr(rollup, "CHUNK_ROWS", 700)  # the backfill takes several transactions
    monkeypatch.setattr(rollup, "CATCH_UP_AT", 500)  # and is worth starting at open
    _write(home, _events(3000))
    path = home / "ledger.sqlite3"
    conn = _conn(path)  # what the previous schema (version 2) had: calls and steps, no rollup
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'rollup%'").fetchall():
        conn.execute(f"DROP TABLE {name}")
    conn.execute("PRAGMA user_version=2")
    conn.close()
    before = report.breakdown(path, ["feature", "model"])
    assert rolled.sums(path, rolled.Request(("model",), ("calls",))).grain is None  # no rollup: the calls
    _check_sums(path, ["feature", "model"])

    opened = Ledger(home, run_id="newer")  # opening it adds the rollup and fills it behind
    deadline = time.monotonic() + 60
    while (_mark(path) or rollup.Watermark(0, 0, False)).rows < 3000 and time.monotonic() < deadline:
        time.sleep(0.05)
    opened.close()
    assert _mark(path) == rollup.Watermark(rowid=3000, rows=3000, usable=True)
    assert rolled.sums(path, rolled.Request(("model",), ("calls",))).grain == "hour"
    after = report.breakdown(path, ["feature", "model"])
    assert [r["calls"] for r in after] == [r["calls"] for r in before]
    for a, b in zip(after, before, strict=True):
        assert {k: v for k, v in a.items() if k not in ("cost_usd", "cost_per_call", "saved_usd")} == {
            k: v for k, v in b.items() if k not in ("cost_usd", "cost_per_call", "saved_usd")
        }
        assert a["cost_usd"] == pytest.approx(b["cost_usd"], rel=1e-12)


def test_the_backfill_takes_one_bounded_chunk_per_transaction_and_a_report_lets_it_catch_up(home, monkeypatch):
    monkeypatch.setattr(rollup, "CATCH_UP_AT", 10_000)  # the writer leaves it all behind
    monkeypatch.setattr(rollup, "CHUNK_ROWS", 400)
    _write(home, _events(1500))
    path = home / "ledger.sqlite3"
    assert _mark(path) == rollup.Watermark(0, 0, True)
    conn = _conn(path)
    assert [rollup.backfill(conn, chunks=1) for _ in range(5)] == [400, 400, 400, 300, 0]
    conn.close()
    assert _mark(path) == rollup.Watermark(1500, 1500, True)

    _write(home, _events(900, seed=8), run_id="later")  # 900 more, behind again
    monkeypatch.setattr(rollup, "CATCH_UP_AT", 100)
    _check_sums(path, ["model"])  # the report rolled them up before it read
    assert _mark(path) == rollup.Watermark(2400, 2400, True)


def test_rows_deleted_by_hand_make_reports_read_the_calls(home, monkeypatch):
    monkeypatch.setattr(rollup, "CATCH_UP_AT", 1)
    _write(home, _events(600))
    path = home / "ledger.sqlite3"
    conn = _conn(path)
    conn.execute("DELETE FROM calls WHERE model = 'gpt-4o' AND rowid < 300")
    conn.close()
    assert rolled.sums(path, rolled.Request(("model",), ("calls",))).grain is None  # it no longer adds up
    _check_sums(path, ["model"])


def test_calls_without_a_usable_time_count_over_all_time_and_ranges_read_the_calls(home, monkeypatch):
    monkeypatch.setattr(rollup, "CATCH_UP_AT", 1)
    _write(home, _events(300))
    path = home / "ledger.sqlite3"
    conn = _conn(path)
    others = [c for c in COLUMNS if c not in ("request_id", "ts", "model", "input_tokens")]
    for i, ts in enumerate((None, "yesterday", -5.0)):  # a copy of the first call, at an odd time
        conn.execute(
            f"INSERT INTO calls (request_id, ts, model, input_tokens, {', '.join(others)}) "
            f"SELECT ?, ?, 'odd', 7, {', '.join(others)} FROM calls ORDER BY rowid LIMIT 1",
            (f"odd{i}", ts),
        )
    conn.execute("BEGIN IMMEDIATE")
    rollup.catch_up(conn)
    conn.execute("COMMIT")
    conn.close()
    assert rolled.sums(path, rolled.Request(("model",), ("calls",))).grain == "hour"
    [odd] = [r for r in report.breakdown(path, "model") if r["model"] == "odd"]
    assert (odd["calls"], odd["input_tokens"]) == (3, 21)
    cut = Filters(since=T0 + DAY / 3)
    assert rolled.sums(path, rolled.Request(("model",), ("calls",)), cut).grain is None
    _check_sums(path, ["model"], cut)


def test_a_call_the_rollup_cannot_take_marks_it_broken_and_the_commit_goes_through(home, monkeypatch):
    monkeypatch.setattr(rollup, "CATCH_UP_AT", 1)
    big = [CallEvent(ts=T0 + i, model="m", input_tokens=2**62, cost_usd=0.5) for i in range(2)]
    _write(home, big)  # one hour's input tokens overflow a 64-bit sum
    _write(home, [CallEvent(ts=T0 + 10, model="m", cost_usd=0.25)], run_id="after")
    path = home / "ledger.sqlite3"
    assert len(read_events(path)) == 3
    mark = _mark(path)
    assert mark is not None and not mark.usable and "overflow" in (mark.why or "")
    assert report.cost_by(path, "model") == [("m", 1.25, 3)]  # read from the calls


@pytest.mark.skipif(not journal.supported, reason="journal segments need flock (POSIX)")
def test_damage_in_the_rollup_moves_the_ledger_aside_and_keeps_the_batch(home, monkeypatch):
    monkeypatch.setattr(rollup, "CATCH_UP_AT", 1)
    _write(home, _events(50))
    path = home / "ledger.sqlite3"
    conn = _conn(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (page,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'rollup_hour'").fetchone()
    (size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with open(path, "r+b") as handle:  # random bytes over the hourly rollup's page
        handle.seek((page - 1) * size)
        handle.write(os.urandom(size))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _write(home, _events(5, seed=9)[:5], run_id="after")
    assert any("damaged" in str(w.message) for w in caught)
    assert [p.name for p in home.iterdir() if p.name.startswith("ledger.sqlite3.corrupt-")]
    assert [e["run_id"] for e in read_events(path)] == ["after"] * 5  # the batch, in a fresh ledger
    _check_sums(path, ["model"])


@pytest.fixture
def small_thresholds(monkeypatch):
    monkeypatch.setattr(sampling, "SAMPLE_ABOVE", 1_000)
    monkeypatch.setattr(sampling, "SAMPLE_BUDGET", 600)
    monkeypatch.setattr(sampling, "SAMPLE_MIN", 200)
    monkeypatch.setattr(rollup, "CATCH_UP_AT", 200)


@pytest.mark.parametrize("by", [["model"], ["feature", "model"], ["provider"], ["day"], []])
def test_percentiles_from_the_histograms_estimated_within_a_bucket_and_exact_with_exact(home, small_thresholds, by):
    events = _events(4000)
    events += [CallEvent(ts=T0 + i, model="rare", feature="chat", total_ms=10.0 + i) for i in range(40)]
    _write(home, events)
    path = home / "ledger.sqlite3"
    raw = read_events(path)
    expected = group_rows(raw, by)
    estimated = {tuple(r[d] for d in by): r for r in report.breakdown(path, by, steps=False)}
    exact = {tuple(r[d] for d in by): r for r in report.breakdown(path, by, steps=False, exact=True)}
    for key, members in expected.items():
        for prefix, column in (("", "total_ms"), ("ttft_", "ttft_ms"), ("queue_", "queue_ms")):
            values = [r[column] for r in members if r[column] is not None]
            for q in (50, 95, 99):
                want = nearest_rank(values, q)
                assert exact[key][f"{prefix}p{q}_ms"] == want, (key, prefix, q)
                got = estimated[key][f"{prefix}p{q}_ms"]
                if want is None:
                    assert got is None
                    continue
                assert got in values or (got == 0.0 and want == 0.0)  # a value some call had
                assert got == pytest.approx(want, rel=grains.RATIO - 1), (key, prefix, q)
        assert exact[key]["sampled_percentiles"] == []
    if by == ["model"]:
        assert estimated[("rare",)]["sampled_percentiles"] == []  # each of its ranks alone in its bucket: exact
        assert set(estimated[("gpt-4o",)]["sampled_percentiles"]) >= {"total", "ttft"}
    assert math.isclose(sum(r["calls"] for r in estimated.values()), len(raw))


def test_step_percentiles_from_the_steps_histograms(home, small_thresholds):
    rng = random.Random(4)
    ledger = Ledger(home, run_id="steps")
    durations: dict[str, list[float]] = {"retrieval": [], "rerank": []}
    for i, event in enumerate(_events(3000)):
        ledger.record(event)
        name = ("retrieval", "rerank")[i % 2]
        durations[name].append(round(rng.lognormvariate(4, 0.8), 3))
        ledger.record_step(StepEvent(name=name, duration_ms=durations[name][-1], ts=event.ts, calls=1 + i % 3))
    ledger.close()
    path = home / "ledger.sqlite3"
    estimated, exact = report.build_report(path, "model"), report.build_report(path, "model", exact=True)
    assert set(estimated.steps) == set(exact.steps) == {"retrieval", "rerank"}
    assert estimated.steps_sampled and not exact.steps_sampled
    assert histograms.step_figures(path, Filters()) == (estimated.steps, True)  # read off the histograms
    for name, values in durations.items():
        assert exact.steps[name]["runs"] == estimated.steps[name]["runs"] == len(values)
        assert exact.steps[name]["calls"] == sum(
            1 + i % 3 for i in range(3000) if ("retrieval", "rerank")[i % 2] == name
        )
        for q in (50, 95, 99):
            assert exact.steps[name][f"p{q}_ms"] == nearest_rank(values, q)
            got = estimated.steps[name][f"p{q}_ms"]
            assert got in values and got == pytest.approx(nearest_rank(values, q), rel=grains.RATIO - 1)


def test_a_middling_range_is_found_exactly_through_the_histograms(home, monkeypatch):
    monkeypatch.setattr(rollup, "CATCH_UP_AT", 200)
    monkeypatch.setattr(queries, "GUIDED_ABOVE", 1_000)  # above this many calls, one read finds the ranks
    _write(home, _events(3000))
    path = home / "ledger.sqlite3"
    raw = read_events(path)
    rows = {r["model"]: r for r in report.breakdown(path, "model", steps=False)}
    for (model,), members in group_rows(raw, ["model"]).items():
        assert rows[model]["sampled_percentiles"] == []
        for prefix, column in (
            ("", "total_ms"),
            ("ttft_", "ttft_ms"),
            ("queue_", "queue_ms"),
            ("retry_delay_", "retry_delay_ms"),
        ):
            values = [r[column] for r in members if r[column] is not None]
            for q in (50, 95, 99):
                assert rows[model][f"{prefix}p{q}_ms"] == nearest_rank(values, q), (model, prefix, q)
