"""The linter starts light: `import llmguard.lint` and `llmguard lint` never load the runtime guard.

Each check runs in a fresh interpreter and reads its `sys.modules` afterwards (a module imported by
an earlier test in this process would hide an eager import).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The runtime guard and what it pulls in: none of it is needed to lint.
RUNTIME = (
    "llmguard.pipeline.guard",
    "llmguard.ledger.sqlite",
    "llmguard.intercept.transport",
    "llmguard.ledger.journal",
    "llmguard.intercept.meter",
    "llmguard.policies.limiter",
    "llmguard.cache.stage",
    "llmguard.providers",
    "llmguard.magics",
    "llmguard.config",
    "IPython",
    "ipywidgets",
    "httpx",
    "openai",
    "anthropic",
    "diskcache",
    "tiktoken",
)

_PROBE = """
import json, os, runpy, sys
kind, target, *argv = json.loads(os.environ["LLMGUARD_PROBE"])
if kind == "import":
    __import__(target)
else:
    sys.argv = [target, *argv]
    try:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        print(f"exit={exc.code}")
sys.stdout.flush()
with open(os.environ["LLMGUARD_PROBE_OUT"], "w") as handle:
    json.dump(sorted(sys.modules), handle)
"""


def probe(tmp_path: Path, kind: str, target: str, *argv: str) -> tuple[set[str], str]:
    """(sys.modules, stdout) of a fresh `python -c "import target"` or `python -m target argv...`."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "LLMGUARD_PROBE": json.dumps([kind, target, *argv]), "LLMGUARD_PROBE_OUT": str(out)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(out.read_text(encoding="utf-8"))), done.stdout


def runtime(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == r or m.startswith(r + ".") for r in RUNTIME))


def outside_the_linter(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.startswith("llmguard.") and not m.startswith("llmguard.lint"))


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_import_llmguard_lint_loads_only_the_linter(tmp_path):
    modules, _ = probe(tmp_path, "import", "llmguard.lint")
    assert "llmguard.lint" in modules
    assert outside_the_linter(modules) == []
    assert runtime(modules) == []
    assert "libcst" not in modules and "rich" not in modules


def test_llmguard_version_loads_no_runtime(tmp_path):
    modules, out = probe(tmp_path, "run", "llmguard.cli", "--version")
    assert out.startswith("llmguard ") and "exit=0" in out
    assert runtime(modules) == []


def test_llmguard_lint_of_an_empty_folder_loads_no_runtime_and_no_libcst(tmp_path, empty):
    modules, out = probe(tmp_path, "run", "llmguard.cli", "lint", str(empty), "--no-cache")
    assert "All checks passed! (0 files checked)" in out and "exit=0" in out
    assert runtime(modules) == []
    assert "libcst" not in modules


def test_python_m_llmguard_lint_of_an_empty_folder_loads_only_the_linter(tmp_path, empty):
    modules, out = probe(tmp_path, "run", "llmguard.lint", "lint", str(empty), "--no-cache")
    assert "All checks passed! (0 files checked)" in out and "exit=0" in out
    assert outside_the_linter(modules) == []
    assert runtime(modules) == [] and "libcst" not in modules


def test_linting_sdk_code_does_not_import_the_sdk_or_the_guard(tmp_path):
    (tmp_path / "app.py").write_text("import openai\nclient = openai.OpenAI()\n", encoding="utf-8")
    modules, out = probe(tmp_path, "run", "llmguard.lint", "lint", "app.py", "--no-cache", "--select", "LG201")
    assert "app.py:2:10: LG201" in out and "exit=1" in out
    assert "libcst" in modules  # the file was parsed...
    assert runtime(modules) == []  # ...without importing what it names
    assert set(outside_the_linter(modules)) <= {"llmguard.policies.tokens", "llmguard.policies.pricing"}


@pytest.mark.xfail(
    strict=True,
    reason="llmguard/cli.py builds the `sim` and `report` subparsers eagerly: "
    "`llmguard lint` imports llmguard.sim (the whole simulator) and llmguard.reporting.cli (sqlite3)",
)
def test_llmguard_lint_loads_nothing_outside_the_linter(tmp_path, empty):
    modules, _ = probe(tmp_path, "run", "llmguard.cli", "lint", str(empty), "--no-cache")
    assert outside_the_linter(modules) == []
