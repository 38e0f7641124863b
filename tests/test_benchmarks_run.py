"""The benchmarks still measure what they claim: each arm's validity checks, never its timings.

A benchmark that silently times the wrong thing (a closed guard, an arm that never reaches the
provider) is worse than none, and nothing else runs them. Only the benchmarks whose arms are subtle
run here, at their smallest sizes (~15 s together); the others are covered by `run_all.py --quick`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SMALLEST = {
    "cache": ["--quick", "--repeats", "3", "--rounds", "1", "--block", "5"],
    "overhead": ["--quick", "--repeats", "3", "--rounds", "1", "--block", "5", "--per-task", "1"],
    "limiter": ["--quick", "--calls", "120", "--repeats", "3"],
    "tokens": ["--quick", "--repeats", "3"],
    "team": ["--quick", "--repeats", "3", "--rounds", "1", "--block", "5"],
}


@pytest.mark.parametrize("name", sorted(SMALLEST))
def test_benchmark_arms_do_what_they_claim(name: str, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), *SMALLEST[name], "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["failures"] == []
    assert result["checks"] >= 3
    assert result["figures"], "no figure measured"
