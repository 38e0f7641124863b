"""Regressions of the call records: no value a user passes costs a row, a damaged or full ledger
loses no row, llmguard never loosens or tightens a folder it did not make, and exports are safe to
open (no spreadsheet formulas, no NUL bytes).

Real parts throughout: the guard installed on a private home, the official openai SDK against the
simulated provider over HTTP, the real `llmguard report` command.
"""

from __future__ import annotations

import csv
import enum
import errno
import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import llmguard
from llmguard import cli
from llmguard.ledger import journal
from llmguard.ledger import sqlite as ledger
from llmguard.ledger.sqlite import CallEvent, Ledger, read_events
from llmguard.reporting import report
from tests.conftest import openai_client

MSG = [{"role": "user", "content": "Say hi."}]

needs_journal = pytest.mark.skipif(not journal.supported, reason="journal segments need flock (POSIX)")


def _call(client, **kwargs) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5, **kwargs)


def _committed(home: Path) -> int:
    """Rows SQLite holds, read without settling (what another process would see right now)."""
    conn = sqlite3.connect(home / "ledger.sqlite3")
    try:
        return conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    finally:
        conn.close()


def _messages(caught, needle: str) -> list[str]:
    return [str(w.message) for w in caught if needle in str(w.message)]


# ---- 4. no value a user can pass costs a row ------------------------------------------------------


@needs_journal
def test_a_tag_with_a_lone_surrogate_loses_no_row_and_is_stored_backslash_escaped(
    fresh_sim,
    home,
    tmp_path,
    monkeypatch,
    capsys,
):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        guard = llmguard.install(home=str(home))
        client = openai_client(fresh_sim, max_retries=0)
        for i in range(21):
            if i % 3 == 1:
                with llmguard.tag(feature="bad\ud800"):
                    _call(client)
            else:
                _call(client)
        events = read_events(guard.ledger.path)
        llmguard.uninstall()
    assert len(events) == 21 and len({e["request_id"] for e in events}) == 21
    assert [e["feature"] for e in events].count("bad\\ud800") == 7  # escaped text: `\ud800` as 6 characters
    assert [e["feature"] for e in events].count(None) == 14
    assert _messages(caught, "ledger writer failed") == [] and _messages(caught, "journal") == []
    assert os.listdir(home / "journal") == []  # nothing quarantined, nothing left behind
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    # the same value given to a report finds its rows (an undecodable argv byte arrives as such a surrogate)
    assert cli.main(["report", "--home", str(home), "--where", "feature=bad\ud800", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["calls"] == 7


@needs_journal
def test_a_surrogate_in_a_dead_process_segment_is_ingested_not_quarantined(home):
    (home / "journal").mkdir(parents=True)
    rows = [
        ["request_id", "run_id", "model", "feature"],
        ["r-1", "dead", "m", "ok"],
        ["r-2", "dead", "m", "bad\udfff"],
        ["r-3", "dead", "m", "ok"],
    ]
    (home / "journal" / "dead.1.1.rows").write_bytes(
        b"".join(len(data).to_bytes(4, "little") + data for data in map(journal.encode, rows))
    )
    Ledger(home, run_id="next").close()  # opening the ledger ingests what dead processes left
    events = {e["request_id"]: e["feature"] for e in read_events(home / "ledger.sqlite3")}
    assert events == {"r-1": "ok", "r-2": "bad\\udfff", "r-3": "ok"}
    assert os.listdir(home / "journal") == []  # no `.bad` copy: every row got in


def test_spend_of_a_tag_value_with_a_lone_surrogate_is_found_as_stored(home):
    """Budgets sum a tenant's or user's spend with `Ledger.scalar`; the value must match its stored form."""
    writer = Ledger(home, run_id="spend")
    writer.record(CallEvent(provider="openai", model="m", user="u\udc80", cost_usd=0.25))
    writer.record(CallEvent(provider="openai", model="m", user="u\udc80", cost_usd=0.5))
    writer.record(CallEvent(provider="openai", model="m", user="other", cost_usd=1.0))
    assert writer.scalar('SELECT SUM(cost_usd) FROM calls WHERE "user" = ?', ("u\udc80",)) == 0.75
    writer.close()


class _Three(enum.IntEnum):
    THREE = 3


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def _cyclic() -> list:
    items: list = ["a"]
    items.append(items)
    return items


# tag keywords -> (ledger column, what it must hold)
_ODD_TAGS = {
    "nul-in-a-column": ({"feature": "a\x00b"}, "feature", "a\x00b"),
    "nul-in-a-custom-tag": ({"note": "x\x00y"}, "tags", {"note": "x\x00y"}),
    "1-MB-column": ({"feature": "x" * (1 << 20)}, "feature", "x" * (1 << 20)),
    "1-MB-custom-tag": ({"blob": "y" * (1 << 20)}, "tags", {"blob": "y" * (1 << 20)}),
    "int-subclass-cell": ({"cell": _Three.THREE}, "cell", 3),
    "bytes": ({"raw": b"\xff\x00"}, "tags", {"raw": "b'\\xff\\x00'"}),
    "tuple-keys": ({"grid": {(1, 2): 3}}, "tags", {"grid": {"(1, 2)": 3}}),
    "cyclic-list": ({"loop": _cyclic()}, "tags", {"loop": ["a", "<cycle>"]}),
    "unprintable-custom-tag": ({"who": _Unprintable()}, "tags", {"who": "<_Unprintable: str() failed>"}),
}


@needs_journal
@pytest.mark.parametrize("case", list(_ODD_TAGS))
def test_nul_huge_and_non_str_tag_values_lose_no_row_and_keep_the_journal_on(fresh_sim, home, case):
    tags, column, stored = _ODD_TAGS[case]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        guard = llmguard.install(home=str(home))
        client = openai_client(fresh_sim, max_retries=0)
        _call(client)
        with llmguard.tag(**tags):
            _call(client)  # must neither raise nor cost a row
        _call(client)
        events = read_events(guard.ledger.path)
        llmguard.uninstall()
    assert len(events) == 3 and len({e["request_id"] for e in events}) == 3
    assert events[1][column] == stored
    assert events[0]["tags"] == {} and events[0]["feature"] is None and events[0]["cell"] is None
    assert _messages(caught, "llmguard") == []  # in particular no "committing each call directly"
    assert os.listdir(home / "journal") == []


# ---- 5. a damaged ledger is moved aside; a full one loses nothing ---------------------------------


def _aside(home: Path) -> list[Path]:
    return sorted(p for p in home.iterdir() if p.name.startswith("ledger.sqlite3.corrupt-"))


@needs_journal
def test_a_ledger_overwritten_with_random_bytes_is_moved_aside_and_recording_goes_on(fresh_sim, home):
    llmguard.install(home=str(home))
    client = openai_client(fresh_sim, max_retries=0)
    _call(client)
    _call(client)
    llmguard.uninstall()
    path = home / "ledger.sqlite3"
    garbage = {"": os.urandom(path.stat().st_size), "-wal": os.urandom(5000), "-shm": os.urandom(32768)}
    for suffix, data in garbage.items():  # as a crash would leave them: the WAL and its index too
        Path(f"{path}{suffix}").write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        guard = llmguard.install(home=str(home))
        for _ in range(3):
            _call(client)
        events = read_events(guard.ledger.path)
        llmguard.uninstall()
    assert len(events) == 3  # recorded in a fresh ledger
    moved = _aside(home)
    [main] = [p for p in moved if not p.name.endswith(("-wal", "-shm"))]
    assert {p.name for p in moved} == {main.name, main.name + "-wal", main.name + "-shm"}
    for suffix, data in garbage.items():
        assert Path(f"{main}{suffix}").read_bytes() == data  # kept as found, for inspection
    said = _messages(caught, "damaged")
    assert len(said) == 1 and str(path) in said[0] and str(main) in said[0] and "with its -wal and -shm" in said[0]
    assert _messages(caught, "nothing is recorded") == []


def _damage_a_table_page(path: Path) -> None:
    """Random bytes over page 2 (the calls table's root); the header and schema stay readable."""
    with open(path, "r+b") as handle:
        handle.seek(4096)
        handle.write(os.urandom(4096))


@needs_journal
def test_damage_found_by_a_commit_moves_the_ledger_aside_and_keeps_the_batch(home, monkeypatch):
    old = Ledger(home, run_id="old")
    for i in range(60):
        old.record(CallEvent(provider="openai", model="m", error_message="x" * 300, input_tokens=i))
    old.close()
    _damage_a_table_page(home / "ledger.sqlite3")
    monkeypatch.setattr(ledger, "FLUSH_DELAY_S", 3600)  # only the flushes below commit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        writer = Ledger(home, run_id="new")  # opens fine: the damage is further in
        assert writer.available
        for i in range(4):
            writer.record(CallEvent(provider="openai", model="after", input_tokens=i))
        writer.flush()
        writer.record(CallEvent(provider="openai", model="later"))
        writer.close()
    events = read_events(home / "ledger.sqlite3")
    assert [(e["model"], e["input_tokens"]) for e in events] == [
        ("after", 0),
        ("after", 1),
        ("after", 2),
        ("after", 3),
        ("later", 0),
    ]
    [main] = [p for p in _aside(home) if not p.name.endswith(("-wal", "-shm"))]
    said = _messages(caught, "damaged")
    assert len(said) == 1 and str(main) in said[0]
    assert os.listdir(home / "journal") == []


_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
conn.execute("SELECT COUNT(*) FROM calls").fetchone()
print("open", flush=True)
sys.stdin.read()
"""


@needs_journal
def test_a_damaged_ledger_another_process_has_open_is_not_moved_from_under_it(home, monkeypatch):
    """Moving it then would let that process's close delete the fresh ledger's -wal and -shm (by name)."""
    monkeypatch.setattr(ledger, "FLUSH_DELAY_S", 3600)
    Ledger(home, run_id="before").close()
    path = home / "ledger.sqlite3"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        garbage = os.urandom(path.stat().st_size)
        path.write_bytes(garbage)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            writer = Ledger(home, run_id="waiting")
            assert writer.available  # waiting for the file to be let go, not giving up
            for i in range(3):
                writer.record(CallEvent(provider="openai", model="m", input_tokens=i))
            writer.flush()
            assert path.read_bytes() == garbage and _aside(home) == []  # still where it was
            waiting = _messages(caught, "still has it open")
            assert len(waiting) == 1 and "journal" in waiting[0]
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            writer.record(CallEvent(provider="openai", model="m", input_tokens=3))
            writer.flush()
        said = _messages(caught, "damaged")
        assert len(said) == 1 and str(path) in said[0]
        assert [e["input_tokens"] for e in read_events(path)] == [0, 1, 2, 3]
        [main] = [p for p in _aside(home) if not p.name.endswith(("-wal", "-shm"))]
        assert main.read_bytes() == garbage
        writer.close()
        assert os.listdir(home / "journal") == []
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


@pytest.mark.parametrize("damage", ["random-bytes", "a-table-page"])
@pytest.mark.parametrize("fmt", ["table", "json", "csv", "html", "jsonl"])
def test_report_on_a_damaged_ledger_exits_non_zero_with_the_reason_and_leaves_the_file(
    home,
    capsys,
    monkeypatch,
    tmp_path,
    fmt,
    damage,
):
    monkeypatch.chdir(tmp_path)  # no project settings of this repository
    writer = Ledger(home, run_id="r")
    for i in range(60):
        writer.record(CallEvent(provider="openai", model="m", error_message="x" * 300, input_tokens=i))
    writer.close()
    path = home / "ledger.sqlite3"
    kept = [path]
    if damage == "random-bytes":
        path.write_bytes(os.urandom(path.stat().st_size))
        # and what a killed writer leaves: its WAL, and a segment a reader would otherwise ingest
        Path(f"{path}-wal").write_bytes(os.urandom(5000))
        orphan = home / "journal" / "dead.1.1.rows"
        orphan.write_bytes(
            b"".join(
                len(d).to_bytes(4, "little") + d
                for d in map(journal.encode, [["request_id", "run_id"], ["r-1", "dead"]])
            )
        )
        kept += [Path(f"{path}-wal"), orphan]
    else:
        _damage_a_table_page(path)
    before = [p.read_bytes() for p in kept]
    capsys.readouterr()
    code = cli.main(["report", "--home", str(home), "--format", fmt])
    err = capsys.readouterr().err
    assert code == 2
    assert f"cannot read the ledger at {path}" in err and ("not a database" in err or "malformed" in err)
    assert [p.read_bytes() for p in kept] == before and _aside(home) == []  # a reader only reports


def _fill_up(conn: sqlite3.Connection) -> None:
    """No page beyond those the ledger has: SQLite answers "database or disk is full", as on a full disk."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")


def _free_up(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA max_page_count=1073741823")


PADDING = "p" * 2000  # each row takes about half a page, so the limit bites within a few rows


@needs_journal
def test_a_full_disk_keeps_every_row_until_space_returns_none_lost_none_twice(fresh_sim, home):
    guard = llmguard.install(home=str(home))
    client = openai_client(fresh_sim, max_retries=0)
    for _ in range(10):
        _call(client)
    guard.ledger.flush()
    conn = guard.ledger._conn
    with guard.ledger._conn_lock:
        _fill_up(conn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with llmguard.tag(padding=PADDING):
            for i in range(30):
                _call(client)
                if i % 10 == 9:
                    guard.ledger.flush()  # commits fail: the disk is full
        assert _committed(home) < 40  # the limit did bite
        said = _messages(caught, "database or disk is full")
        assert len(said) == 1 and "journal" in said[0]  # said once, and where the rows wait
        with guard.ledger._conn_lock:
            _free_up(conn)
        _call(client)  # space is back
        events = read_events(guard.ledger.path)
    assert len(events) == 41 and len({e["request_id"] for e in events}) == 41
    assert sum(e["tags"].get("padding") == PADDING for e in events) == 30
    llmguard.uninstall()
    assert os.listdir(home / "journal") == []


@needs_journal
def test_rows_still_unwritable_at_exit_are_ingested_once_space_returns(fresh_sim, home):
    guard = llmguard.install(home=str(home))
    client = openai_client(fresh_sim, max_retries=0)
    for _ in range(10):
        _call(client)
    guard.ledger.flush()
    with guard.ledger._conn_lock:
        _fill_up(guard.ledger._conn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with llmguard.tag(padding=PADDING):
            for _ in range(30):
                _call(client)
        llmguard.uninstall()  # still full: the rows stay in the journal for a later reader
    assert _committed(home) < 40 and os.listdir(home / "journal") != []
    events = read_events(home / "ledger.sqlite3")  # a later reader, with room again
    assert len(events) == 40 and len({e["request_id"] for e in events}) == 40
    assert os.listdir(home / "journal") == []


@needs_journal
def test_the_writer_retries_a_failed_commit_by_itself_once_space_returns(fresh_sim, home, monkeypatch):
    monkeypatch.setattr(ledger, "RETRY_S", 0.05, raising=False)  # (absent before the fix)
    guard = llmguard.install(home=str(home))
    client = openai_client(fresh_sim, max_retries=0)
    _call(client)
    guard.ledger.flush()
    conn = guard.ledger._conn
    with guard.ledger._conn_lock:
        _fill_up(conn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with llmguard.tag(padding=PADDING):
            for _ in range(8):
                _call(client)
        guard.ledger.flush()  # fails: the disk is full
        assert guard.ledger._pending and _committed(home) < 9
        with guard.ledger._conn_lock:
            _free_up(conn)
        deadline = time.monotonic() + 30
        while _committed(home) < 9 and time.monotonic() < deadline:  # no new call, no reader: the writer alone
            time.sleep(0.01)
    assert _committed(home) == 9


@needs_journal
def test_a_journal_with_no_room_for_a_new_segment_keeps_rows_until_space_returns(fresh_sim, home, monkeypatch):
    monkeypatch.setattr(journal, "SEGMENT_BYTES", 6000)  # two padded rows fill a segment
    guard = llmguard.install(home=str(home))
    client = openai_client(fresh_sim, max_retries=0)
    _call(client)
    guard.ledger.flush()
    conn = guard.ledger._conn
    with guard.ledger._conn_lock:
        _fill_up(conn)
    allocate = journal._allocate

    def no_room(fd: int, size: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monkeypatch.setattr(journal, "_allocate", no_room)  # the disk is full for the journal too
        with llmguard.tag(padding=PADDING):
            for _ in range(10):
                _call(client)
        assert _committed(home) < 11
        monkeypatch.setattr(journal, "_allocate", allocate)
        with guard.ledger._conn_lock:
            _free_up(conn)
        for _ in range(2):
            _call(client)
        events = read_events(guard.ledger.path)
    assert len(events) == 13 and len({e["request_id"] for e in events}) == 13
    assert guard.ledger._journaling  # a full disk is no reason to stop journaling for good
    assert _messages(caught, "committing each call directly (slower)") == []
    assert len(_messages(caught, "no room for the ledger journal")) == 1
    llmguard.uninstall()
    assert os.listdir(home / "journal") == []


def test_a_full_disk_without_a_journal_keeps_rows_until_space_returns(fresh_sim, home):
    home.mkdir(parents=True)
    (home / "journal").write_text("not a folder")  # every row is committed on the caller's path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        guard = llmguard.install(home=str(home))
        client = openai_client(fresh_sim, max_retries=0)
        _call(client)
        conn = guard.ledger._conn
        with guard.ledger._conn_lock:
            _fill_up(conn)
        with llmguard.tag(padding=PADDING):
            for _ in range(12):
                _call(client)
        assert _committed(home) < 13
        with guard.ledger._conn_lock:
            _free_up(conn)
        _call(client)
    events = read_events(guard.ledger.path)
    assert len(events) == 14 and len({e["request_id"] for e in events}) == 14


# ---- 11. folders llmguard did not make keep their mode; what it makes is owner-only ---------------


@pytest.fixture
def no_umask():
    """umask 0: whatever mode a file gets is the one llmguard set, not one the umask narrowed."""
    old = os.umask(0)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@needs_journal
def test_install_into_an_existing_sticky_shared_folder_leaves_its_mode_and_makes_private_files(
    fresh_sim,
    tmp_path,
    no_umask,
):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp
    guard = llmguard.install(home=str(shared))
    client = openai_client(fresh_sim, max_retries=0)
    _call(client, temperature=0)  # deterministic: cached, so the cache files exist too
    _call(client, temperature=0)
    modes = {str(p.relative_to(shared)): _mode(p) for p in shared.rglob("*")}
    assert _mode(shared) == 0o1777
    made = {"ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm", "journal", "cache", "cache/cache.db"}
    assert made <= set(modes), modes
    assert any(name.startswith("journal/") and name.endswith(".rows") for name in modes)
    for name, mode in modes.items():
        assert mode == (0o700 if (shared / name).is_dir() else 0o600), (name, oct(mode))
    guard.ledger.flush()
    llmguard.uninstall()
    assert _mode(shared) == 0o1777


def test_an_empty_home_never_chmods_the_working_directory(tmp_path, monkeypatch, no_umask):
    work = tmp_path / "work"
    work.mkdir()
    os.chmod(work, 0o755)
    monkeypatch.chdir(work)
    writer = Ledger(Path(""), run_id="here")  # what LLMGUARD_HOME="" amounts to
    writer.record(CallEvent(provider="openai", model="m"))
    writer.close()
    assert _mode(work) == 0o755
    assert _mode(work / "ledger.sqlite3") == 0o600


def test_a_missing_home_is_made_owner_only_and_an_existing_one_keeps_its_mode(tmp_path, no_umask):
    fresh = tmp_path / "a" / "b" / "home"
    ledger.ensure_home(fresh)
    assert _mode(fresh) == 0o700
    existing = tmp_path / "existing"
    existing.mkdir()
    os.chmod(existing, 0o750)
    ledger.ensure_home(existing)
    assert _mode(existing) == 0o750


# ---- 12. exports are safe to open ------------------------------------------------------------------

FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-1+2", '@HYPERLINK("http://127.0.0.1/x","y")', "\tTAB", "\rCR"]


def _tagged_calls(sim, home, features) -> None:
    llmguard.install(home=str(home))
    client = openai_client(sim, max_retries=0)
    for feature in features:
        with llmguard.tag(feature=feature):
            _call(client)
    llmguard.uninstall()


def _report(home, tmp_path, monkeypatch, *args) -> str:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert cli.main(["report", "--home", str(home), "--by", "feature", "--out", str(out), *args]) == 0
    return out.read_bytes().decode("utf-8")


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_neutralised(fresh_sim, home, tmp_path, monkeypatch):
    _tagged_calls(fresh_sim, home, [*FORMULAS, "summary"])
    text = _report(home, tmp_path, monkeypatch, "--format", "csv")
    table = list(csv.DictReader(io.StringIO(text, newline="")))
    assert sorted(r["feature"] for r in table) == sorted(["'" + f for f in FORMULAS] + ["summary"])
    for row in table:
        assert int(row["calls"]) == 1 and float(row["cost_usd"]) >= 0  # numbers stay numbers
    for line in text.splitlines():
        for cell in next(csv.reader([line])):
            assert not cell or cell[0] not in "=+-@\t\r", cell


def test_csv_keeps_real_numbers_even_negative_ones_and_quotes_only_text():
    text = report.to_csv([{"feature": "-1+2", "cost_usd": -0.5, "calls": 3, "cell": -2, "model": "=x"}])
    [row] = list(csv.DictReader(io.StringIO(text, newline="")))
    assert row == {"feature": "'-1+2", "cost_usd": "-0.5", "calls": "3", "cell": "-2", "model": "'=x"}


@pytest.mark.parametrize("fmt", ["csv", "html"])
def test_nul_bytes_never_reach_csv_or_html_output(fresh_sim, home, tmp_path, monkeypatch, fmt):
    _tagged_calls(fresh_sim, home, ["a\x00b"])
    text = _report(home, tmp_path, monkeypatch, "--format", fmt)
    assert "\x00" not in text
    assert "a\\x00b" in text  # escaped, so the value can still be told apart
