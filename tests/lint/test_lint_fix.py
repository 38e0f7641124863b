"""--fix and --diff: fixed files re-lint clean for the fixed codes and are otherwise byte-identical."""

from __future__ import annotations

import difflib
import json

from conftest import make_notebook

MESSY = """\
# -*- coding: utf-8 -*-
import tenacity as t
import backoff,  openai
from tenacity import (
    retry,
    wait_random,   # keep this comment
)

CLIENT = openai.OpenAI(
    api_key="sk-test",
    max_retries=2,
)
OTHER   =   openai.OpenAI( )   # odd spacing stays


@retry(wait=wait_random(1, 3))
def ask(msgs):
    return CLIENT.chat.completions.create(model="gpt-4o-mini",
                                          messages=msgs)


@t.retry
def again():
    pass


@backoff.on_exception(backoff.expo, openai.RateLimitError)
def third():
    return CLIENT.responses.create(model="gpt-4o", input="x", max_output_tokens=5)
"""


def _changed_lines(old: str, new: str) -> list[int]:
    """1-based lines of `old` that the fix replaced."""
    matcher = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
    return [i + 1 for tag, i1, i2, _, _ in matcher.get_opcodes() if tag != "equal" for i in range(i1, max(i2, i1 + 1))]


def test_fix_relints_clean_and_touches_only_fixed_lines(cli, project):
    root = project({"messy.py": MESSY})
    before = cli(["lint", "messy.py", "--format", "json", "--no-cache"], cwd=root).json()
    fixable = [f for f in before if f["fix"]]
    assert {f["code"] for f in fixable} == {"LG102", "LG103", "LG201", "LG301"}
    result = cli(["lint", "messy.py", "--fix", "--format", "json", "--no-cache"], cwd=root)
    after_text = (root / "messy.py").read_text()
    assert not {f["code"] for f in result.json()} & {"LG102", "LG103", "LG201", "LG301"}
    assert "Fixed 6 findings." in result.err
    spans = {line for f in fixable for line in range(f["line"], f["end_line"] + 1)} | {4, 5, 6, 7}
    assert set(_changed_lines(MESSY, after_text)) <= spans  # every other line is byte-identical
    assert after_text == FIXED


FIXED = (
    MESSY.replace("    max_retries=2,\n)", "    max_retries=2,\n    timeout=60,\n)")
    .replace("openai.OpenAI( )", "openai.OpenAI( timeout=60)")
    .replace("@retry(wait=wait_random(1, 3))", "@retry(wait=wait_random(1, 3), stop=t.stop_after_attempt(5))")
    .replace(
        "                                          messages=msgs)",
        "                                          messages=msgs,\n                                          max_completion_tokens=1024)",
    )
    .replace("@t.retry\n", "@t.retry(stop=t.stop_after_attempt(5))\n")
    .replace("openai.RateLimitError)", "openai.RateLimitError, max_tries=5)")
)


def test_fix_extends_an_existing_import(project, cli):
    source = "from tenacity import (\n    retry,\n    wait_random,  # why\n)\n\n@retry\ndef f():\n    pass\n"
    root = project({"a.py": source})
    cli(["lint", "a.py", "--fix"], cwd=root)
    assert (root / "a.py").read_text() == (
        "from tenacity import (\n    retry,\n    wait_random,  # why\n    stop_after_attempt,\n)\n\n"
        "@retry(stop=stop_after_attempt(5))\ndef f():\n    pass\n"
    )


def test_diff_shows_without_writing(cli, project):
    root = project({"messy.py": MESSY})
    result = cli(["lint", "messy.py", "--diff"], cwd=root)
    assert result.code == 1
    assert (root / "messy.py").read_text() == MESSY
    assert result.out.startswith("--- messy.py\n+++ messy.py\n")
    assert "+CLIENT = openai.OpenAI(" not in result.out and "+    timeout=60," in result.out
    clean = project({"ok.py": "x = 1\n"})
    assert cli(["lint", "ok.py", "--diff"], cwd=clean).code == 0


def test_fix_values_come_from_config(cli, project):
    root = project(
        {
            "pyproject.toml": """
            [tool.llmguard.lint]
            fix-timeout-s = 12.5
            fix-max-tokens = 300
            fix-max-attempts = 3
        """,
            "a.py": MESSY,
        }
    )
    cli(["lint", "a.py", "--fix"], cwd=root)
    text = (root / "a.py").read_text()
    assert "timeout=12.5" in text and "max_completion_tokens=300" in text
    assert "stop_after_attempt(3)" in text and "max_tries=3" in text


def test_suppressed_findings_are_not_fixed(cli, project):
    source = "import openai\nc = openai.OpenAI()  # noqa: LG201\n"
    root = project({"a.py": source})
    cli(["lint", "a.py", "--fix"], cwd=root)
    assert (root / "a.py").read_text() == source


def test_fix_notebook_keeps_magics_and_json_layout(cli, project):
    text = make_notebook(
        [
            ("markdown", "# nb"),
            ("code", "%pip install openai\nfrom openai import OpenAI\nclient = OpenAI()"),
            ("code", "!ls\nr = client.chat.completions.create(model='gpt-4o-mini', messages=[])\n%time r"),
        ]
    )
    root = project({"nb.ipynb": text})
    result = cli(["lint", "nb.ipynb", "--fix", "--no-cache"], cwd=root)
    assert result.code == 0, result.out
    new = (root / "nb.ipynb").read_text()
    changed = [(a, b) for a, b in zip(text.splitlines(), new.splitlines(), strict=True) if a != b]
    assert len(changed) == 2
    assert "OpenAI(timeout=60)" in changed[0][1]
    assert "max_completion_tokens=1024" in changed[1][1]
    sources = ["".join(c["source"]) for c in json.loads(new)["cells"]]
    assert sources[2].startswith("!ls\n") and sources[2].endswith("\n%time r")
