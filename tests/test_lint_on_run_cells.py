"""Lint on run remembers what earlier cells imported and defined, and speaks of the running guard.

A real IPython shell with `%load_ext llmguard` (IPython's test shell: a terminal shell), the SDKs
pointed at the simulator on 127.0.0.1; each cell is run as a user runs it.
"""

from __future__ import annotations

import pytest
from IPython.utils.capture import capture_output

from llmguard.lint import lint_source
from tests.conftest import sdk_shell

GUARDED_LG201 = (
    "LG201 client-without-timeout: OpenAI client without timeout=: the running guard caps each attempt at "
    "`timeout_s` = 60 s (not the SDK's 600 s); pass `timeout=` to choose your own"
)
CLI_LG201 = (
    "OpenAI client without timeout= waits up to 600 s per attempt (the SDK default); "
    "pass timeout= (seconds or httpx.Timeout)"
)
LOOP = (
    "def ask():\n"
    "    while True:\n"
    "        try:\n"
    "            return client.chat.completions.create(model='gpt-4o-mini', messages=[], max_tokens=5)\n"
    "        except Exception:\n"
    "            pass\n"
)


@pytest.fixture
def shell(home, fresh_sim, monkeypatch):
    ip = sdk_shell(monkeypatch, fresh_sim)
    run(ip, "%load_ext llmguard")
    yield ip
    if "llmguard" in ip.extension_manager.loaded:
        run(ip, "%unload_ext llmguard")
    ip.reset()


def run(ip, code: str):
    with capture_output() as captured:
        ip.run_cell(code, store_history=True)
    return captured


def lint_box(captured) -> tuple[list[str], str] | None:
    """The lint box of a cell: its text lines and its HTML; None when the cell had no findings."""
    found = [o.data for o in captured.outputs if "llmguard-lint" in o.data.get("text/html", "")]
    if not found:
        return None
    [data] = found
    return data["text/plain"].splitlines(), data["text/html"]


def test_a_client_is_flagged_when_its_import_ran_in_an_earlier_cell(shell):
    run(shell, "from openai import OpenAI")
    lines, _ = lint_box(run(shell, "answer = 42\nclient = OpenAI()"))
    assert lines == [
        "llmguard lint: 1 finding",
        f"line 2: {GUARDED_LG201}",
        "silence one with `# noqa: CODE`, all with `%llmguard lint-on-run off`",
    ]
    run(shell, "import openai as oa")
    lines, _ = lint_box(run(shell, "%%llmguard --feature f\n\nother = oa.OpenAI()"))
    assert lines[1] == f"line 3: {GUARDED_LG201}"  # counted from the magic line


def test_names_defined_earlier_are_known_to_a_later_cell(shell):
    run(shell, "OPTIONS = {'max_retries': 2}")
    lines, _ = lint_box(run(shell, "import anthropic\nclaude = anthropic.Anthropic(**OPTIONS)"))
    assert lines[1] == (  # the options are in view: they set no timeout (no "could not see inside")
        "line 2: LG201 client-without-timeout: Anthropic client without timeout=: the running guard caps each "
        "attempt at `timeout_s` = 60 s (not the SDK's 600 s); pass `timeout=` to choose your own"
    )
    run(shell, "import openai\nclient = openai.OpenAI(timeout=10)")
    lines, _ = lint_box(run(shell, LOOP))
    assert lines[1].startswith("line 2: LG101 unbounded-retry-loop: ")


def test_earlier_cells_findings_are_not_repeated(shell):
    first = lint_box(run(shell, "from openai import OpenAI\nslow = OpenAI()"))
    assert first is not None and first[0][1] == f"line 2: {GUARDED_LG201}"
    assert lint_box(run(shell, "fast = OpenAI(timeout=5)")) is None
    assert lint_box(run(shell, "x = 1")) is None


def test_outside_a_guard_lg201_keeps_the_sdk_default(shell):
    run(shell, "from openai import OpenAI")
    run(shell, "%llmguard off")
    lines, _ = lint_box(run(shell, "client = OpenAI()"))
    assert lines[1] == f"line 1: LG201 client-without-timeout: {CLI_LG201}"
    [finding] = lint_source("from openai import OpenAI\nclient = OpenAI()\n", path="app.py")
    assert finding.message == CLI_LG201  # the CLI's message is unchanged


def test_backticks_are_code_in_html_and_kept_in_text(shell):
    run(shell, "from openai import OpenAI")
    lines, html = lint_box(run(shell, "client = OpenAI()"))
    assert "`timeout_s`" in lines[1]
    assert "caps each attempt at <code>timeout_s</code> = 60 s" in html
    assert "silence one with <code># noqa: CODE</code>, all with <code>%llmguard lint-on-run off</code>" in html
    assert "`" not in html
