"""`llmguard report --ledger PATH...`: ledgers copied from several machines, each call counted once.

Machine A (this process, its own LLMGUARD_HOME) is copied twice, on "Monday" (2 calls) and on
"Tuesday" (the same 2 and 1 more), so the copies overlap; machine B is another process with
another LLMGUARD_HOME. Token counts are the simulator's (tiktoken: 10 prompt tokens for "Say hi."
on both providers); dollars are worked out by hand from the published prices.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import llmguard
from llmguard.ledger.sqlite import read_events, read_steps
from llmguard.reporting.cli import add_report_arguments, run_report
from llmguard.reporting.errors import ReportError
from llmguard.reporting.merge import merge_ledgers
from tests.conftest import FAKE_ANTHROPIC_KEY, openai_client

SAY_HI = [{"role": "user", "content": "Say hi."}]

MACHINE_B = """
import anthropic, llmguard
llmguard.install(home={home!r})
anthropic.Anthropic(base_url={base_url!r}, api_key={key!r}, timeout=30).messages.create(
    model="claude-3-5-haiku-latest", max_tokens=9, messages=[{{"role": "user", "content": "Say hi."}}]
)
llmguard.uninstall()
"""


@pytest.fixture
def copies(fresh_sim, tmp_path):
    """Two overlapping copies of machine A's ledger and machine B's home folder."""
    home_a, home_b, copied = tmp_path / "machine-a", tmp_path / "machine-b", tmp_path / "copies"
    copied.mkdir()
    client = openai_client(fresh_sim)
    llmguard.install(home=str(home_a))
    with llmguard.step("retrieval"):
        client.chat.completions.create(model="gpt-4o-mini", messages=SAY_HI, max_tokens=5)
    client.chat.completions.create(model="gpt-4o-mini", messages=SAY_HI, max_tokens=5)
    llmguard.uninstall()
    shutil.copy(home_a / "ledger.sqlite3", copied / "a-monday.sqlite3")
    llmguard.install(home=str(home_a))
    client.chat.completions.create(model="gpt-4o-mini", messages=SAY_HI, max_tokens=7)
    llmguard.uninstall()
    shutil.copy(home_a / "ledger.sqlite3", copied / "a-tuesday.sqlite3")
    script = MACHINE_B.format(home=str(home_b), base_url=fresh_sim.base_url, key=FAKE_ANTHROPIC_KEY)
    env = {**os.environ, "PYTHONPATH": str(Path(llmguard.__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, check=True, timeout=120)
    return copied / "a-monday.sqlite3", copied / "a-tuesday.sqlite3", home_b


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    code = run_report(parser.parse_args(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_merged_copies_count_each_call_once(copies):
    monday, tuesday, home_b = copies
    assert [len(read_events(p)) for p in (monday, tuesday, home_b / "ledger.sqlite3")] == [2, 3, 1]  # 6 rows
    merged = merge_ledgers([monday, tuesday, home_b])
    try:
        assert (merged.calls, merged.duplicates, merged.steps) == (4, 2, 1)  # the step is in both copies too
        assert [(s.calls, s.added) for s in merged.sources] == [(2, 2), (3, 1), (1, 1)]
        ids = {r["request_id"] for p in (tuesday, home_b / "ledger.sqlite3") for r in read_events(p)}
        assert {r["request_id"] for r in read_events(merged.path)} == ids
        assert len(read_steps(merged.path)) == 1
        assert merged.summary().startswith("llmguard: merged 3 ledgers into 4 calls (2 duplicate rows counted once)")
    finally:
        merged.close()
    assert not merged.path.exists()


def test_report_over_ledgers_from_two_machines(copies, capsys):
    monday, tuesday, home_b = copies
    code, out, err = cli(["--ledger", str(monday), str(tuesday), "--ledger", str(home_b), "--format", "json"], capsys)
    assert code == 0, err
    assert "merged 3 ledgers into 4 calls" in err
    data = json.loads(out)
    # gpt-4o-mini ($0.15 in / $0.60 out per million): 2 x (10*0.15 + 5*0.60) + (10*0.15 + 7*0.60) = 9 + 5.7 = 14.7
    # claude-3-5-haiku ($0.80 / $4.00): 10*0.80 + 9*4.00 = 44 micro-dollars; in all 58.7 micro-dollars
    total = data["total"]
    assert (total["calls"], total["input_tokens"], total["output_tokens"]) == (4, 40, 26)
    assert total["cost_usd"] == pytest.approx(58.7e-6, abs=1e-12)
    by_model = {row["model"]: row for row in data["rows"]}
    assert {m: (r["calls"], r["input_tokens"], r["output_tokens"]) for m, r in by_model.items()} == {
        "gpt-4o-mini": (3, 30, 17),
        "claude-3-5-haiku-latest": (1, 10, 9),
    }
    assert by_model["gpt-4o-mini"]["cost_usd"] == pytest.approx(14.7e-6, abs=1e-12)
    assert by_model["claude-3-5-haiku-latest"]["cost_usd"] == pytest.approx(44e-6, abs=1e-12)


def _garbage(path: Path) -> Path:
    path.write_bytes(b"this is not a database, it was cut off by scp\n" * 200)
    return path


def _truncated(path: Path, source: Path) -> Path:
    path.write_bytes(source.read_bytes()[:4096])  # the header and first page, the rest never arrived
    return path


def _not_a_ledger(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE cache (key TEXT, value BLOB)")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize(
    ("make", "says"),
    [
        ("garbage", "llmguard: cannot read the ledger {path} (file is not a database); it may be damaged or only"),
        ("truncated", "llmguard: cannot read the ledger {path} ("),
        ("not_a_ledger", "llmguard: --ledger {path} is a SQLite file but not an llmguard ledger"),
        ("missing", "llmguard: --ledger {path}: no ledger there. --ledger takes ledger.sqlite3 files"),
    ],
)
def test_a_bad_file_is_one_clear_message(copies, tmp_path, capsys, make, says):
    monday, tuesday, _ = copies
    bad = tmp_path / f"{make}.sqlite3"
    if make == "garbage":
        _garbage(bad)
    elif make == "truncated":
        big = tmp_path / "big.sqlite3"
        shutil.copy(tuesday, big)
        conn = sqlite3.connect(big, isolation_level=None)  # enough rows to span pages past the first 4 KB
        for i in range(7):
            conn.execute(f"INSERT INTO calls (request_id, ts, model) SELECT request_id || '{i}', ts, model FROM calls")
        conn.execute("VACUUM")
        conn.close()
        _truncated(bad, big)
    elif make == "not_a_ledger":
        _not_a_ledger(bad)
    code, out, err = cli(["--ledger", str(monday), str(bad), "--format", "json"], capsys)
    assert (code, out) == (2, "")
    assert err.count("llmguard:") == 1 and err.strip().count("\n") == 0, err  # one message, one line
    assert err.startswith(says.format(path=bad)), err
    with pytest.raises(ReportError):
        merge_ledgers([monday, bad])
