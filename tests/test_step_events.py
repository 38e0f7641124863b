"""A finished `llmguard.step` is one row of the ledger's `steps` table, durable like a call row, and
the report's step percentiles rank those rows: one sample per run of the step, however many calls
(none, one, five) were made inside it."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import llmguard
from llmguard import context
from llmguard.ledger import journal
from llmguard.ledger import sqlite as ledger_mod
from llmguard.reporting import report
from llmguard.reporting.cli import add_report_arguments, run_report
from tests.conftest import openai_client, rows

MSG = [{"role": "user", "content": "Summarise the plan."}]


def _ask(client) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)


def _steps(home) -> list[dict]:
    return ledger_mod.read_steps(home / "ledger.sqlite3")


def _cli(home, capsys, *argv: str) -> str:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    assert run_report(parser.parse_args(["--home", str(home), *argv])) == 0
    return capsys.readouterr().out


def test_a_step_run_three_times_is_three_samples_whatever_ran_inside(fresh_sim, guard, home, capsys):
    client = openai_client(fresh_sim, max_retries=0)
    with llmguard.tag(feature="digest", tenant="acme"):
        for inside in (0, 1, 5):
            with llmguard.step("fetch"):
                for _ in range(inside):
                    _ask(client)
    with llmguard.step("outer"), llmguard.step("inner"):  # one call inside two steps
        _ask(client)
    events = _steps(home)
    fetch = [e for e in events if e["name"] == "fetch"]
    assert [e["calls"] for e in fetch] == [0, 1, 5]
    assert {(e["feature"], e["tenant"], e["run_id"], e["over_budget"]) for e in fetch} == {
        ("digest", "acme", guard.ledger.run_id, 0)
    }
    assert sorted(e["name"] for e in events) == ["fetch", "fetch", "fetch", "inner", "outer"]
    assert len(rows(guard)) == 7  # the calls are rows of their own, as before
    durations = [e["duration_ms"] for e in fetch]
    median, top = statistics.median(durations), max(durations)

    [overall] = report.breakdown(home / "ledger.sqlite3", [])
    assert overall["steps"]["fetch"] == {"runs": 3, "calls": 6, "p50_ms": median, "p95_ms": top, "p99_ms": top}
    assert overall["steps"]["outer"]["runs"] == overall["steps"]["inner"]["runs"] == 1  # not doubled
    by_feature = {r["feature"]: r for r in report.breakdown(home / "ledger.sqlite3", "feature")}
    assert by_feature["digest"]["steps"]["fetch"]["p50_ms"] == median
    assert set(by_feature[None]["steps"]) == {"outer", "inner"}

    # the default report (by model: a dimension a step does not have) shows them once, for the range
    data = json.loads(_cli(home, capsys, "--format", "json"))
    assert all(row["steps"] == {} for row in data["rows"])
    assert data["steps"]["fetch"]["p50_ms"] == median and data["steps"]["fetch"]["runs"] == 3
    assert "step latency ms" in _cli(home, capsys, "--full") and "fetch" in _cli(home, capsys, "--full")
    page = _cli(home, capsys, "--format", "html")
    assert 'data-step="step: fetch"' in page


_CHILD = textwrap.dedent(
    """
    import os, signal, sys, llmguard, openai
    from llmguard.ledger import sqlite as ledger
    ledger.FLUSH_DELAY_S = 3600  # the writer never commits on its own
    llmguard.install(home=sys.argv[2])
    client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="sk-child-0000", max_retries=0)
    with llmguard.tag(feature="doomed"), llmguard.step("last words"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    if sys.argv[3] == "commit":
        llmguard.current().ledger.flush()
    print("stepped", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.skipif(not journal.supported, reason="journal segments need flock (POSIX)")
@pytest.mark.parametrize("then", ["die", "commit"])
def test_a_step_event_survives_a_killed_process_and_is_ingested_once(fresh_sim, home, then):
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, fresh_sim.base_url, str(home), then], capture_output=True, text=True, timeout=120
    )
    assert proc.stdout.strip() == "stepped" and proc.returncode == -signal.SIGKILL, proc.stderr
    conn = sqlite3.connect(home / "ledger.sqlite3")  # what SQLite held when the process died
    try:
        committed = conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
    finally:
        conn.close()
    assert committed == (1 if then == "commit" else 0)
    assert len(list((home / "journal").iterdir())) == 1  # the segment holding it was left behind
    [event] = _steps(home)
    assert (event["name"], event["feature"], event["calls"]) == ("last words", "doomed", 1)
    assert list((home / "journal").iterdir()) == []  # ingested, then removed
    assert len(_steps(home)) == 1 and len(rows(home)) == 1


def test_steps_of_concurrent_tasks_and_threads_are_each_recorded_once(fresh_sim, guard, home):
    async def task(i: int) -> None:
        client = openai_client(fresh_sim, asynchronous=True, max_retries=0)
        async with llmguard.step(f"task{i}"):
            await client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
            async with llmguard.step("nested"):
                await asyncio.sleep(0)
        await client.close()

    async def main() -> None:
        await asyncio.gather(*(task(i) for i in range(4)))

    asyncio.run(main())

    def thread(i: int) -> None:
        with llmguard.step(f"thread{i}"):
            _ask(openai_client(fresh_sim, max_retries=0))

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = _steps(home)
    assert sorted(e["name"] for e in events) == sorted(
        [*(f"task{i}" for i in range(4)), *["nested"] * 4, *(f"thread{i}" for i in range(4))]
    )
    assert {e["name"]: e["calls"] for e in events if e["name"] != "nested"} == {
        **{f"task{i}": 1 for i in range(4)},
        **{f"thread{i}": 1 for i in range(4)},
    }
    assert len({e["step_id"] for e in events}) == len(events) == 12


def test_a_listener_that_raises_never_breaks_the_users_step():
    seen: list[context.StepEvent] = []

    def broken(event: context.StepEvent) -> None:
        seen.append(event)
        raise RuntimeError("listener bug")

    async def timed_out() -> None:
        async with llmguard.step("slow", timeout=0.01):
            await asyncio.sleep(5)

    context.set_step_listener(broken)
    try:
        with llmguard.tag(tenant="acme", user="ana", feature="f", prompt_version="v2"):
            with llmguard.step("plain") as plain:
                value = 42
            with pytest.raises(ValueError, match="the user's own error"):  # theirs, not the listener's
                with llmguard.step("failing"):
                    raise ValueError("the user's own error")
            with llmguard.step("over", timeout=0.001):
                time.sleep(0.01)
            with pytest.raises(context.StepTimeout):
                asyncio.run(timed_out())
    finally:
        context.set_step_listener(None)
    assert value == 42 and plain.elapsed_ms is not None
    assert [(e.name, e.over_budget) for e in seen] == [
        ("plain", False),
        ("failing", False),
        ("over", True),
        ("slow", True),
    ]
    assert {(e.tenant, e.user, e.feature, e.prompt_version) for e in seen} == {("acme", "ana", "f", "v2")}


def test_install_and_uninstall_wire_the_listener(fresh_sim, home):
    guard = llmguard.install(home=str(home))
    with llmguard.step("recorded"):
        pass
    llmguard.uninstall()
    with llmguard.step("after uninstall"):
        pass
    llmguard.install(home=str(home), ledger=False)  # no ledger: steps go nowhere, and nothing breaks
    with llmguard.step("no ledger"):
        pass
    llmguard.uninstall()
    assert [e["name"] for e in ledger_mod.read_steps(guard.ledger.path)] == ["recorded"]


def test_an_old_ledger_without_a_steps_table_reports_without_a_step_section(home, capsys, tmp_path):
    writer = ledger_mod.Ledger(home, run_id="old")
    for i in range(3):  # rows as an older llmguard wrote them: steps only on the calls
        writer.record(
            ledger_mod.CallEvent(
                provider="openai",
                endpoint="chat.completions",
                model="gpt-4o-mini",
                feature="old",
                total_ms=10.0 * (i + 1),
                steps={"retrieval": 5.0},
            )
        )
    writer.close()
    conn = sqlite3.connect(home / "ledger.sqlite3")
    try:
        conn.execute("DROP TABLE IF EXISTS steps")
        conn.commit()
    finally:
        conn.close()
    path = home / "ledger.sqlite3"
    assert ledger_mod.read_steps(path) == []
    [row] = report.breakdown(path, "feature")
    assert row["calls"] == 3 and row["steps"] == {}
    assert report.build_report(path, "model").steps == {}
    data = json.loads(_cli(home, capsys, "--format", "json"))
    assert data["steps"] == {} and data["rows"][0]["calls"] == 3
    assert "step latency" not in _cli(home, capsys, "--full")
    assert "latency-by-step" in _cli(home, capsys, "--format", "html")
    assert "step: retrieval" not in _cli(home, capsys, "--format", "html")
