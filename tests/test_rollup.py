"""The rollup: reports read pre-aggregated sums, and they are exactly what the calls add up to.

A small ledger is checked against numbers worked out by hand (dollars from the published prices:
gpt-4o-mini $0.15/$0.60, gpt-4o $2.50/$10, claude-3-5-haiku $0.80/$4 per million input/output
tokens). Then a random ledger written by several processes at once, one of them killed with
SIGKILL while its rows were only in its journal, is checked against a computation in plain Python
over the raw rows, grouped and cut every way the rollup answers. `CATCH_UP_AT` and `CHUNK_ROWS`
are lowered (module settings, not mocks) so a few hundred calls take the paths a million take.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmguard.ledger import journal, rollup
from llmguard.ledger.records import COLUMNS
from llmguard.ledger.sqlite import CallEvent, Ledger, read_events
from llmguard.reporting import report, rolled
from llmguard.reporting.filters import Filters
from tests.test_report import expected_row, group_rows

T0 = 1_789_948_800.0  # a UTC midnight: hours and days of the rollup start here
HOUR, DAY = 3600.0, 86400.0
COUNTED = [
    "calls",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "unpriced_calls",
    "cache_hits",
    "dedup_hits",
    "retries",
    "retried_calls",
    "timeouts",
    "rate_limit_refusals",
    "provider_429s",
    "budget_refusals",
    "refusals",
    "fallbacks",
    "errors",
    "incomplete",
    "failures",
    "first_ts",
    "last_ts",
]


@pytest.fixture
def rolled_every_commit(monkeypatch):
    monkeypatch.setattr(rollup, "CATCH_UP_AT", 1)


def _state(path: Path) -> rollup.Watermark | None:
    conn = sqlite3.connect(path)
    try:
        return rollup.watermark(conn)
    finally:
        conn.close()


def _grain(path: Path, dims: tuple[str, ...], filters: Filters | None = None) -> str | None:
    return rolled.sums(path, rolled.Request(dims, ("calls", "cost_usd")), filters).grain


# ---- by hand --------------------------------------------------------------------------------------


def _by_hand(home: Path) -> None:
    ledger = Ledger(home, run_id="hand")
    common = {"provider": "openai", "endpoint": "chat.completions", "prompt_version": "v1", "total_ms": 100.0}
    for event in (
        CallEvent(ts=T0 + 60, model="gpt-4o-mini", feature="chat", tenant="acme", user="ann",
                  input_tokens=1000, output_tokens=200, cost_usd=0.00027, **common),  # 150 + 120 micro-dollars
        CallEvent(ts=T0 + 3700, model="gpt-4o-mini", feature="chat", tenant="acme", user="bob",
                  input_tokens=2000, output_tokens=100, cost_usd=0.00036, retry_count=2, **common),
        CallEvent(ts=T0 + 3800, model="gpt-4o-mini", feature="chat", tenant="acme", user="ann", decision="cache",
                  input_tokens=1000, output_tokens=200, cost_usd=0.0, cache_hit=True, saved_usd=0.00027, **common),
        CallEvent(ts=T0 + 7300, model="claude-3-5-haiku-latest", feature="summary", tenant="globex", user="ann",
                  input_tokens=500, output_tokens=50, cost_usd=0.0006, **{**common, "provider": "anthropic"}),
        CallEvent(ts=T0 + 7400, model="gpt-4o-mini", feature="chat", status="refused", error_type="rate_limit",
                  decision="reject", cost_usd=0.0, **common),
        CallEvent(ts=T0 + 10900, model="gpt-4o", feature="summary", status="error", error_type="timeout",
                  input_tokens=300, cost_usd=None, **common),
        CallEvent(ts=T0 + DAY + 100, model="gpt-4o", feature="summary", tenant="globex", user="cy",
                  input_tokens=100, output_tokens=10, cost_usd=0.00035, **common),  # 250 + 100 micro-dollars
    ):  # fmt: skip
        ledger.record(event)
    ledger.close()


def test_a_small_ledger_rolled_up_gives_the_numbers_worked_out_by_hand(home, rolled_every_commit):
    _by_hand(home)
    path = home / "ledger.sqlite3"
    assert _state(path) == rollup.Watermark(rowid=7, rows=7, usable=True)  # every call is in the rollup
    assert _grain(path, ("model",)) == "hour"

    rows = {r["model"]: r for r in report.breakdown(path, "model")}
    mini, omni, haiku = rows["gpt-4o-mini"], rows["gpt-4o"], rows["claude-3-5-haiku-latest"]
    assert (mini["calls"], mini["input_tokens"], mini["output_tokens"]) == (4, 4000, 500)
    assert mini["cost_usd"] == pytest.approx(0.00063, abs=1e-15)
    assert (mini["cache_hits"], mini["saved_usd"]) == (1, pytest.approx(0.00027, abs=1e-15))
    assert (mini["retries"], mini["retried_calls"], mini["refusals"], mini["rate_limit_refusals"]) == (2, 1, 1, 1)
    assert (omni["calls"], omni["unpriced_calls"], omni["errors"], omni["timeouts"], omni["failures"]) == (
        2,
        1,
        1,
        1,
        1,
    )
    assert omni["cost_usd"] == pytest.approx(0.00035, abs=1e-15)
    assert (haiku["calls"], haiku["cost_usd"]) == (1, pytest.approx(0.0006, abs=1e-15))
    assert [r["model"] for r in report.breakdown(path, "model")] == ["gpt-4o-mini", "claude-3-5-haiku-latest", "gpt-4o"]

    # what the hourly rollup holds, literally: one row per hour and what varies within it
    conn = sqlite3.connect(path)
    held = conn.execute(
        "SELECT period, model, decision, status, calls, cost_usd FROM rollup_hour ORDER BY 1, 2, 3, 4"
    ).fetchall()
    conn.close()
    h = int(T0 // HOUR)
    assert [(p - h, m, d, s, n) for p, m, d, s, n, _ in held] == [
        (0, "gpt-4o-mini", "process", "ok", 1),
        (1, "gpt-4o-mini", "cache", "ok", 1),
        (1, "gpt-4o-mini", "process", "ok", 1),
        (2, "claude-3-5-haiku-latest", "process", "ok", 1),
        (2, "gpt-4o-mini", "reject", "refused", 1),
        (3, "gpt-4o", "process", "error", 1),
        (24, "gpt-4o", "process", "ok", 1),
    ]
    assert held[2][5] == pytest.approx(0.00036, abs=1e-15)

    # by tenant and user (the daily grains), and the cost drivers
    assert _grain(path, ("tenant",)) == "tenant" and _grain(path, ("user",)) == "user"
    tenants = report.cost_by(path, "tenant")
    assert [(t, n) for t, _, n in tenants] == [("globex", 2), ("acme", 3), (None, 2)]
    assert [c for _, c, _ in tenants] == pytest.approx([0.00095, 0.00063, 0.0], abs=1e-15)
    assert [(u, n) for u, _, n in report.cost_by(path, "user")] == [("ann", 3), ("bob", 1), ("cy", 1), (None, 2)]
    [top, *_] = report.top_cost_drivers(path)
    assert (top["feature"], top["model"], top["tenant"], top["calls"]) == ("chat", "gpt-4o-mini", "acme", 3)
    assert top["share"] == pytest.approx(0.00063 / 0.00158)

    # a range that starts and ends inside hours: whole hours from the rollup, the edges from the calls
    cut = Filters(since=T0 + 3750, until=T0 + DAY + 200)
    assert _grain(path, ("model",), cut) == "hour"
    inside = {r["model"]: r for r in report.breakdown(path, "model", cut)}
    assert {m: r["calls"] for m, r in inside.items()} == {"gpt-4o-mini": 2, "claude-3-5-haiku-latest": 1, "gpt-4o": 2}
    assert inside["gpt-4o-mini"]["cost_usd"] == pytest.approx(0.0, abs=1e-15)
    assert inside["gpt-4o"]["cost_usd"] == pytest.approx(0.00035, abs=1e-15)
    spend = report.spend_over_time(path, Filters(), by="model", bucket_s=3600)
    assert [(b["start"] - T0, b["calls"]) for b in spend["buckets"]] == [
        (0, 1), (3600, 2), (7200, 2), (10800, 1), (86400, 1)
    ]  # fmt: skip


# ---- a random ledger, several writers, a kill -9 -----------------------------------------------

_WRITER = textwrap.dedent(
    """
    import os, random, signal, sys
    from llmguard.ledger import rollup, sqlite as ledger
    from llmguard.ledger.sqlite import CallEvent, Ledger
    home, seed, n, then = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    rollup.CATCH_UP_AT, rollup.CHUNK_ROWS = 40, 150
    if then == "kill":
        ledger.FLUSH_DELAY_S = 3600  # the rows stay in the journal only
    rng = random.Random(seed)
    writer = Ledger(home, run_id=f"writer-{seed}")
    T0 = 1_789_948_800.0
    for i in range(n):
        status = rng.choice(["ok"] * 12 + ["error", "refused", "incomplete"])
        error = {"error": rng.choice(["timeout", "http_500", "rate_limited"]), "refused": rng.choice(["rate_limit", "budget"])}
        writer.record(CallEvent(
            ts=T0 + rng.uniform(0, 3 * 86400),
            provider=rng.choice(["openai", "anthropic"]),
            endpoint="chat.completions",
            model=rng.choice(["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest"]),
            feature=rng.choice(["chat", "summary", None]),
            tenant=rng.choice(["acme", "globex", "initech", None]),
            user=rng.choice([f"u{k}" for k in range(6)] + [None]),
            prompt_version=rng.choice(["v1", "v2"]),
            status=status,
            error_type=error.get(status),
            input_tokens=rng.randrange(5000),
            cached_input_tokens=rng.randrange(100),
            output_tokens=rng.randrange(800),
            reasoning_tokens=rng.randrange(3),
            cost_usd=None if rng.random() < 0.05 else round(rng.uniform(0, 0.01), 7),
            cache_hit=rng.random() < 0.1,
            saved_usd=0.002 if rng.random() < 0.1 else None,
            dedup_hit=rng.random() < 0.05,
            fallback_used=rng.random() < 0.05,
            retry_count=rng.choice([0, 0, 0, 1, 2]),
            total_ms=rng.lognormvariate(6.5, 0.7),
            ttft_ms=rng.lognormvariate(5, 0.5) if rng.random() < 0.4 else None,
            queue_ms=rng.uniform(1, 300) if rng.random() < 0.2 else 0.0,
            retry_delay_ms=rng.choice([0.0, 0.0, 0.0, 250.0, 500.0]),
        ))
    if then == "kill":
        print("recorded", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    writer.close()
    """
)


def _random_ledger(home: Path) -> None:
    """Three writers at once (one killed with its rows only in the journal), then one more after."""
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(home), str(seed), str(n), then], stdout=subprocess.PIPE)
        for seed, n, then in ((1, 700, "close"), (2, 500, "close"), (3, 300, "kill"))
    ]
    for proc in procs:
        proc.wait(timeout=120)
    assert procs[2].returncode == -signal.SIGKILL
    subprocess.run([sys.executable, "-c", _WRITER, str(home), "4", "400", "close"], check=True, timeout=120)
    read_events(home / "ledger.sqlite3")  # the killed writer's journal is ingested by the first reader
    conn = sqlite3.connect(home / "ledger.sqlite3", isolation_level=None)
    rollup.backfill(conn)  # what is left above the watermark, as the next writer to open it would
    # then an older llmguard, which knows no rollup, adds 25 calls of its own (fewer than CATCH_UP_AT)
    columns = ", ".join(c for c in COLUMNS if c not in ("request_id", "run_id"))
    conn.execute(
        f"INSERT INTO calls (request_id, run_id, {columns}) "
        f"SELECT request_id || '-old', 'older-llmguard', {columns} FROM calls ORDER BY rowid LIMIT 25"
    )
    conn.close()


CUTS = [
    Filters(),
    Filters(since=T0 + 5 * HOUR + 17.5, until=T0 + 2 * DAY + 7 * HOUR + 3.25),  # edges inside hours
    Filters(since=T0 + DAY),  # from a whole day on
    Filters(where=(("feature", "chat"),)),
    Filters(where=(("tenant", None),)),
    Filters(run_id="writer-3"),  # the killed writer's rows, from its journal
    Filters(run_id="older-llmguard"),  # rows above the watermark only
]
GROUPINGS = [["model"], ["feature", "model"], ["provider"], ["status"], ["day"], ["hour"], []]


def _inside(row: dict, cut: Filters) -> bool:
    if cut.since is not None and row["ts"] < cut.since or cut.until is not None and row["ts"] >= cut.until:
        return False
    if cut.run_id is not None and row["run_id"] != cut.run_id:
        return False
    return all(row[name] == value for name, value in cut.where)


@pytest.mark.skipif(not journal.supported, reason="journal segments need flock (POSIX)")
def test_a_random_ledger_from_several_processes_and_a_kill_adds_up_the_same_from_the_rollup(home, monkeypatch):
    monkeypatch.setattr(rollup, "CATCH_UP_AT", 40)
    monkeypatch.setattr(rollup, "CHUNK_ROWS", 150)
    _random_ledger(home)
    path = home / "ledger.sqlite3"
    raw = read_events(path)
    assert len(raw) == 1925 and sum(r["run_id"] == "writer-3" for r in raw) == 300  # the killed writer's too
    assert _state(path) == rollup.Watermark(rowid=1900, rows=1900, usable=True)  # the older llmguard's: raw
    for cut in CUTS:
        rows = [r for r in raw if _inside(r, cut)]
        for by in GROUPINGS:
            expected = group_rows(rows, by)
            got = {tuple(r[d] for d in by): r for r in report.breakdown(path, by, cut, steps=False)}
            assert set(got) == set(expected), (cut, by)
            for key, members in expected.items():
                want = expected_row(members)
                for name in COUNTED:
                    assert got[key][name] == want[name], (cut, by, key, name)
                for name in ("cost_usd", "saved_usd"):
                    assert got[key][name] == pytest.approx(want[name], rel=1e-12, abs=1e-15), (cut, by, key, name)
        for dim in ("tenant", "user", "feature"):
            totals = {k[0]: (sum(r["cost_usd"] or 0 for r in v), len(v)) for k, v in group_rows(rows, [dim]).items()}
            found = {value: (cost, calls) for value, cost, calls in report.cost_by(path, dim, cut)}
            assert {k: n for k, (_, n) in found.items()} == {k: n for k, (_, n) in totals.items()}, (cut, dim)
            for value, (cost, _) in totals.items():
                assert found[value][0] == pytest.approx(cost, rel=1e-12, abs=1e-15)
    # which grain answered: the hourly one for the common groupings, none (a scan) where no grain fits
    assert _grain(path, ("feature", "model"), CUTS[1]) == "hour"
    assert _grain(path, ("tenant",), CUTS[2]) == "tenant"
    assert _grain(path, ("user",), CUTS[0]) == "user"
    assert _grain(path, ("tenant",), CUTS[1]) is None  # less than two whole days in range: the calls
    assert _grain(path, ("notebook",)) is None
