"""`llmguard.install(...)` is typed from the settings: `SettingsKwargs` names exactly the fields of
`Settings`, so a misspelt setting or a value of the wrong type is a mypy error (and an editor
completes the names), while the keywords stay ordinary keyword arguments at run time.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import llmguard
from llmguard.config import RULES, Settings, SettingsKwargs

ROOT = Path(__file__).resolve().parent.parent


def test_the_keyword_types_name_exactly_the_settings():
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert set(SettingsKwargs.__annotations__) == fields
    assert SettingsKwargs.__optional_keys__ == fields and not SettingsKwargs.__required_keys__
    assert set(RULES) == fields


def test_install_takes_its_keywords_from_the_settings():
    # the annotation is only read by type checkers: `import llmguard` stays light
    assert llmguard.install.__annotations__["settings"] == "Unpack[SettingsKwargs]"


SNIPPET = """\
import llmguard

llmguard.install(budget_usd=5.0, home="data", limits={"gpt-4o": {"rpm": 500}}, cache=False, on_limit="refuse")
llmguard.install(budget_usd="x")
llmguard.install(budget_used=5.0)
llmguard.install(on_limit="refuze")
"""


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_mypy_refuses_a_wrong_type_a_misspelt_name_and_an_unknown_word(tmp_path):
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            "/dev/null",
            "--python-version",
            "3.11",
            "--follow-imports=silent",
            "--ignore-missing-imports",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(snippet),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in done.stdout.splitlines() if line.startswith(f"{snippet}:") and ": error:" in line]
    by_line = {int(line.split(":")[1]): line for line in errors}
    assert sorted(by_line) == [4, 5, 6], done.stdout + done.stderr  # line 3 is a valid call
    assert '"budget_usd"' in by_line[4] and "[arg-type]" in by_line[4]
    assert '"budget_used"' in by_line[5] and "[call-arg]" in by_line[5]
    assert '"on_limit"' in by_line[6] and "[arg-type]" in by_line[6]
