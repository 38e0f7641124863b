"""The project passes its own linter: `llmguard lint .` at the repository root finds nothing.

The demo, the notebooks and the benchmarks are what users copy, so a hazard there (no timeout,
unbounded retries, no max tokens) is a bug; tests that exercise hazards on purpose against the
simulator are exempted in pyproject.toml's [tool.llmguard.lint] per-file-ignores, each with its reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_repository_has_no_lint_findings(tmp_path):
    env = {**os.environ, "LLMGUARD_HOME": str(tmp_path / "llmguard-home")}
    proc = subprocess.run(
        [sys.executable, "-m", "llmguard.cli", "lint", "--no-cache", "--concise", "."],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, f"llmguard lint . exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
