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
from llmguard.ledger import journal
from llmguard.ledger import sqlite as ledger
from llmguard.ledger.sqlite import CallEvent, Ledger, read_events
from tests.conftest import openai_client

MSG = [{"role": "user", "content": "Say hi."}]

pytestmark = pytest.mark.skipif(not journal.supported, reason="journal segments need flock (POSIX)")

_CHILD = textwrap.dedent(
    """
    import sys, time, llmguard, openai
    from llmguard.ledger import sqlite as ledger
    ledger.FLUSH_DELAY_S = float(sys.argv[4])
    llmguard.install(home=sys.argv[2])
    client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="sk-child-0000")
    for _ in range(int(sys.argv[3])):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    if sys.argv[5] == "commit":
        llmguard.current().ledger.flush()
    print("answered", flush=True)
    time.sleep(60)
    """
)


def _run_and_kill(sim, home, calls: int, flush_delay: float, then: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, sim.base_url, str(home), str(calls), str(flush_delay), then],
        stdout=subprocess.PIPE,
        text=True,
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
    _run_and_kill(fresh_sim, home, calls=4, flush_delay=3600, then="wait")  # the writer never committed
    assert _committed(home) == 0 and len(list((home / "journal").iterdir())) == 1
    events = read_events(home / "ledger.sqlite3")
    assert len(events) == 4 and {e["status"] for e in events} == {"ok"} and all(e["output_tokens"] for e in events)
    assert list((home / "journal").iterdir()) == []  # ingested, then removed
    assert len(read_events(home / "ledger.sqlite3")) == 4


def test_rows_committed_before_the_kill_are_not_ingested_twice(fresh_sim, home):
    _run_and_kill(fresh_sim, home, calls=5, flush_delay=3600, then="commit")  # committed, segment left behind
    assert _committed(home) == 5 and len(list((home / "journal").iterdir())) == 1
    assert len(read_events(home / "ledger.sqlite3")) == 5


def test_concurrent_readers_ingest_an_orphan_exactly_once(fresh_sim, home):
    _run_and_kill(fresh_sim, home, calls=6, flush_delay=3600, then="wait")
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
    assert set(counts) <= {0, 6} and 6 in counts  # all of the orphan or none of it, never twice
    assert len({e["request_id"] for e in read_events(home / "ledger.sqlite3")}) == 6


def test_a_live_process_segment_is_never_ingested_by_another(fresh_sim, home):
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, fresh_sim.base_url, str(home), "3", "3600", "wait"],
        stdout=subprocess.PIPE,
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
        segment._map[segment.size + 4 : segment.size + 4 + len(half)] = half
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


def test_a_forked_child_and_its_parent_both_keep_every_row(fresh_sim, home):
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    guard = llmguard.install(home=str(home))
    client = openai_client(fresh_sim)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)  # pending in the parent
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: forking a process with threads
        pid = os.fork()
    if pid == 0:  # the child: two calls, then killed before its writer commits them
        code = 0
        try:
            ledger.FLUSH_DELAY_S = 3600
            child = openai_client(fresh_sim)
            for _ in range(2):
                child.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
        except BaseException:
            code = 1
        if code == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(code)
    for _ in range(2):  # the parent goes on calling, with ids of its own
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        assert time.monotonic() < deadline, "the forked child hung"
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(done[1]) == -signal.SIGKILL
    events = read_events(guard.ledger.path)
    assert len(events) == 5 and len({e["request_id"] for e in events}) == 5


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


def test_unreadable_segments_are_set_aside_and_values_sqlite_refuses_are_kept_as_text(fresh_sim, home):
    (home / "journal").mkdir(parents=True)
    (home / "journal" / "garbage.1.1.rows").write_bytes(b"\x05\x00\x00\x00garbage, not a segment")
    odd = _segment_file(["request_id", "run_id", "cell", "model"], ["r-odd", "old", 2**70, ("a", "tuple")])
    (home / "journal" / "odd.1.1.rows").write_bytes(odd)
    good = _segment_file(["request_id", "run_id", "model", "input_tokens"], ["r-1", "old", "m", 7])
    (home / "journal" / "good.1.1.rows").write_bytes(good)
    llmguard.install(home=str(home))
    openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    events = {e["request_id"]: e for e in read_events(home / "ledger.sqlite3")}
    assert len(events) == 3 and events["r-1"]["input_tokens"] == 7
    # the INTEGER column reads the number's text back as a REAL: close, and the row is there
    assert events["r-odd"]["cell"] == float(2**70) and events["r-odd"]["model"] == "('a', 'tuple')"
    left = set(os.listdir(home / "journal"))
    assert "garbage.1.1.rows.bad" in left and not left & {"odd.1.1.rows", "good.1.1.rows"}


def test_a_value_sqlite_cannot_store_loses_neither_its_row_nor_the_rows_around_it(fresh_sim, home):
    guard = llmguard.install(home=str(home))
    client = openai_client(fresh_sim)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    with llmguard.tag(cell=2**70):  # beyond SQLite's 64-bit integers
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    events = read_events(guard.ledger.path)
    assert len(events) == 3 and len({e["request_id"] for e in events}) == 3
    assert [e["cell"] for e in events].count(float(2**70)) == 1
    llmguard.uninstall()
    assert os.listdir(home / "journal") == []


def test_a_row_recorded_after_close_is_committed_directly(home):
    writer = Ledger(home, run_id="closing")
    writer.record(CallEvent(provider="openai", model="before"))
    writer._stop.set()  # what close() sets first, under the same lock record() checks
    writer.record(CallEvent(provider="openai", model="during"))
    writer.close()
    assert [e["model"] for e in read_events(home / "ledger.sqlite3")] == ["before", "during"]
    assert os.listdir(home / "journal") == []


def test_the_journal_stays_with_the_ledger_when_the_working_directory_changes(fresh_sim, tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    guard = llmguard.install(home=".llmguard")  # relative, as the default is
    monkeypatch.chdir(tmp_path / "b")  # a notebook's %cd
    openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert not (tmp_path / "b" / ".llmguard").exists()
    assert len(read_events(tmp_path / "a" / ".llmguard" / "ledger.sqlite3")) == 1
    assert guard.ledger.path == tmp_path / "a" / ".llmguard" / "ledger.sqlite3"


def test_a_finalizer_recording_in_the_middle_of_a_record_neither_deadlocks_nor_loses_a_row(home, monkeypatch):
    """The GC can run a dropped stream's finalizer (which records its call) at any allocation,
    including while this thread is inside record(): here, while the first segment is being made."""
    writer = Ledger(home, run_id="reentrant")
    real_segment = journal.Segment
    fired = []

    def segment_with_a_finalizer_running(*args, **kwargs):
        if not fired:
            fired.append(True)
            writer.record(CallEvent(provider="openai", model="from-a-finalizer"))
        return real_segment(*args, **kwargs)

    monkeypatch.setattr(journal, "Segment", segment_with_a_finalizer_running)
    done = threading.Event()
    thread = threading.Thread(
        target=lambda: (writer.record(CallEvent(provider="openai", model="outer")), done.set()), daemon=True
    )
    thread.start()
    assert done.wait(10), "record() deadlocked on its own lock"
    assert sorted(e["model"] for e in read_events(home / "ledger.sqlite3")) == ["from-a-finalizer", "outer"]
    writer.close()
    assert os.listdir(home / "journal") == []  # the spare segment was removed too
