"""The ledger's journal: rows are durable when the call returns, committed to SQLite behind it.

Real processes are killed with SIGKILL at the moments that matter (rows only in the journal; rows
already committed but still in the journal), and the rows must then appear exactly once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import pytest

import llmguard
from llmguard import journal, ledger
from llmguard.ledger import CallEvent, Ledger, read_events
from tests.conftest import openai_client

MSG = [{"role": "user", "content": "Say hi."}]

pytestmark = pytest.mark.skipif(not journal.supported, reason="journal segments need flock (POSIX)")

_CHILD = textwrap.dedent(
    """
    import sys, time, llmguard, openai
    from llmguard import ledger
    ledger.FLUSH_DELAY_S = float(sys.argv[4])
    llmguard.install(home=sys.argv[2])
    client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="sk-child-0000")
    for _ in range(int(sys.argv[3])):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    time.sleep(float(sys.argv[5]))
    print("answered", flush=True)
    time.sleep(60)
    """
)


def _run_and_kill(sim, home, calls: int, flush_delay: float, settle: float) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, sim.base_url, str(home), str(calls), str(flush_delay), str(settle)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "answered"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def _segment_file(*records) -> bytes:
    """Records framed as in a segment (length, then the marshalled row)."""
    return b"".join(len(data).to_bytes(4, "little") + data for data in map(journal.encode, records))


def _committed(home) -> int:
    """Rows SQLite holds, read without settling (what another process would see right now)."""
    conn = sqlite3.connect(home / "ledger.sqlite3")
    try:
        return conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    finally:
        conn.close()


def test_rows_only_in_the_journal_of_a_killed_process_are_ingested_once(fresh_sim, home):
    _run_and_kill(fresh_sim, home, calls=4, flush_delay=3600, settle=0)  # the writer never committed
    assert _committed(home) == 0 and len(list((home / "journal").iterdir())) == 1
    events = read_events(home / "ledger.sqlite3")
    assert len(events) == 4 and {e["status"] for e in events} == {"ok"} and all(e["output_tokens"] for e in events)
    assert list((home / "journal").iterdir()) == []  # ingested, then removed
    assert len(read_events(home / "ledger.sqlite3")) == 4


def test_rows_committed_before_the_kill_are_not_ingested_twice(fresh_sim, home):
    _run_and_kill(fresh_sim, home, calls=5, flush_delay=0.001, settle=0.5)  # committed, segment left behind
    assert _committed(home) == 5 and len(list((home / "journal").iterdir())) == 1
    assert len(read_events(home / "ledger.sqlite3")) == 5


def test_concurrent_readers_ingest_an_orphan_exactly_once(fresh_sim, home):
    _run_and_kill(fresh_sim, home, calls=6, flush_delay=3600, settle=0)
    counts: list[int] = []
    barrier = threading.Barrier(4)

    def read() -> None:
        barrier.wait()
        counts.append(len(read_events(home / "ledger.sqlite3")))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _committed(home) == 6
    assert max(counts) == 6  # a reader that lost the race to ingest saw the rows or none of them
    assert len({e["request_id"] for e in read_events(home / "ledger.sqlite3")}) == 6


def test_a_live_process_segment_is_never_ingested_by_another(fresh_sim, home):
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, fresh_sim.base_url, str(home), "3", "3600", "0"], stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "answered"
        assert read_events(home / "ledger.sqlite3") == []  # its rows are its own until it commits or dies
        assert len(list((home / "journal").iterdir())) == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(read_events(home / "ledger.sqlite3")) == 3


def test_other_processes_see_rows_within_the_flush_delay(fresh_sim, guard):
    client = openai_client(fresh_sim)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    deadline = time.monotonic() + 5
    while _committed(guard.ledger.home) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert _committed(guard.ledger.home) == 1  # committed by the writer thread, nobody asked


def test_a_row_cut_short_by_a_kill_is_ignored_and_earlier_rows_kept(home, monkeypatch):
    monkeypatch.setattr(ledger, "FLUSH_DELAY_S", 3600)  # the rows stay in the journal only
    writer = Ledger(home, run_id="torn")
    writer.record(CallEvent(provider="openai", model="a", input_tokens=1))
    writer.record(CallEvent(provider="openai", model="b", input_tokens=2))
    with writer._lock:  # killed while copying a third row in: its bytes are there, its length is not
        segment, writer._segment, writer._pending = writer._segment, None, []
        half = journal.encode(Ledger._row(CallEvent(provider="openai", model="c")))
        segment._map[segment.size + 4:segment.size + 4 + len(half)] = half
        segment.release()  # ...and its lock goes with the process
    Ledger(home, run_id="next")  # opening the ledger ingests what dead processes left
    assert _committed(home) == 2
    events = read_events(home / "ledger.sqlite3")
    assert [(e["model"], e["input_tokens"], e["run_id"]) for e in events] == [("a", 1, "torn"), ("b", 2, "torn")]


def test_a_damaged_segment_yields_the_records_before_the_damage():
    data = _segment_file(("a", 1), ("b", 2))
    assert list(journal.read_records(data + (999).to_bytes(4, "little") + b"short")) == [("a", 1), ("b", 2)]
    assert list(journal.read_records(data + bytes(100))) == [("a", 1), ("b", 2)]  # zeros: the end


def test_full_segments_are_replaced_and_removed_once_committed(fresh_sim, home, monkeypatch):
    monkeypatch.setattr(journal, "SEGMENT_BYTES", 2000)  # a ~500-byte header and a few rows each
    monkeypatch.setattr(ledger, "FLUSH_DELAY_S", 3600)  # only the flushes below commit
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to direct commits
        guard = llmguard.install(home=str(home))
        client = openai_client(fresh_sim)
        for _ in range(12):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert len(os.listdir(home / "journal")) >= 3 and _committed(home) == 0
    guard.ledger.flush()
    assert len(os.listdir(home / "journal")) == 1 and _committed(home) == 12  # full ones removed
    llmguard.uninstall()
    assert os.listdir(home / "journal") == [] and _committed(home) == 12  # a clean exit leaves nothing behind


def test_an_unwritable_journal_falls_back_to_direct_commits_with_a_warning(fresh_sim, home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "journal").write_text("not a folder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        llmguard.install(home=str(home))
        openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert any("cannot write the ledger journal" in str(w.message) for w in caught)
    assert _committed(home) == 1  # committed on the caller's path instead


def test_a_forked_child_records_its_own_calls_and_not_the_parents(fresh_sim, home):
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    guard = llmguard.install(home=str(home))
    client = openai_client(fresh_sim)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)  # pending in the parent
    pid = os.fork()
    if pid == 0:  # the child: two calls, then a clean exit through atexit
        code = 0
        try:
            child = openai_client(fresh_sim)
            for _ in range(2):
                child.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
            llmguard.uninstall()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    events = read_events(guard.ledger.path)
    assert len(events) == 3 and len({e["request_id"] for e in events}) == 3


def test_rows_recorded_from_many_threads_are_all_committed_once(home):
    writer = Ledger(home, run_id="threads")

    def record(n: int) -> None:
        for i in range(200):
            writer.record(CallEvent(provider="openai", model=f"m{n}", input_tokens=i))

    threads = [threading.Thread(target=record, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = read_events(home / "ledger.sqlite3")
    assert len(events) == 1600 and len({e["request_id"] for e in events}) == 1600
    writer.close()
    assert list((home / "journal").iterdir()) == []


def test_unreadable_or_unbindable_segments_are_set_aside_and_the_ledger_keeps_working(fresh_sim, home):
    (home / "journal").mkdir(parents=True)
    (home / "journal" / "garbage.1.1.rows").write_bytes(b"\x05\x00\x00\x00garbage, not a segment")
    bad_values = _segment_file(["request_id", "model"], [("not", "bindable"), "x"])
    (home / "journal" / "unbindable.1.1.rows").write_bytes(bad_values)
    good = _segment_file(["request_id", "run_id", "model", "input_tokens"], ["r-1", "old", "m", 7])
    (home / "journal" / "good.1.1.rows").write_bytes(good)
    llmguard.install(home=str(home))
    openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    events = read_events(home / "ledger.sqlite3")
    assert [(e["request_id"], e["input_tokens"]) for e in events if e["run_id"] == "old"] == [("r-1", 7)]
    assert len(events) == 2
    left = os.listdir(home / "journal")
    assert "good.1.1.rows" not in left
    assert sorted(n for n in left if n.endswith(".bad")) == ["garbage.1.1.rows.bad", "unbindable.1.1.rows.bad"]
