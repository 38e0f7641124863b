"""One money format in the terminal too: `llmguard report` shows three significant digits, never
six fixed decimals that round a fraction-of-a-cent call away ($0.0000375 printed as 0.000038) or
pad a large one ($12.50 printed as 12.500000)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from llmguard.ledger.sqlite import CallEvent, Ledger


def _call(model: str, cost: float, ts: float) -> CallEvent:
    return CallEvent(
        ts=ts,
        provider="openai",
        endpoint="chat.completions",
        model=model,
        requested_model=model,
        input_tokens=10,
        output_tokens=5,
        cost_usd=cost,
        total_ms=20.0,
        status="ok",
    )


def _report(home, *args: str) -> str:
    env = {**os.environ, "LLMGUARD_HOME": str(home), "COLUMNS": "160", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "llmguard.cli", "report", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_the_text_report_prints_costs_with_significant_digits(tmp_path):
    home = tmp_path / "home"
    ledger = Ledger(home)
    now = time.time()
    ledger.record(_call("gpt-4o-mini", 0.0000375, now - 60))  # 3 choices of one short prompt
    ledger.record(_call("gpt-4o", 12.5, now - 30))
    ledger.close()
    out = _report(home, "--full")
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert "$0.0000375" in rows["gpt-4o-mini"], out
    assert "$12.50" in rows["gpt-4o"], out
    assert "$12.50" in rows["total"], out  # 12.5000375 at cents
    assert "0.000038" not in out and "12.500000" not in out, out
    assert "2 calls · $12.50" in out.splitlines()[0], out
