"""`llmguard check`: the seed's 15-item readiness checklist for a project, from its settings, the
linter's findings on its code and its ledger (built through the real pipeline)."""

from __future__ import annotations

import argparse
import json
import textwrap

import pytest

import llmguard
from llmguard.ledger.sqlite import CallEvent, Ledger
from llmguard.reporting.cli import add_check_arguments, run_check
from tests.conftest import openai_client

CONFIGURED = """\
[project]
name = "support-bot"

[tool.llmguard]
timeout_s = 30
retry_budget = 0.2
default_max_tokens = 512
cache = "on"

[tool.llmguard.limits]
"gpt-4o-mini" = {rpm = 500, tpm = 200000}

[tool.llmguard.quotas]
"tenant:acme" = {usd_per_day = 5.0}

[tool.llmguard.fallbacks]
"gpt-4o-mini" = ["gpt-4.1-nano"]
"""

APP = """\
import openai

import llmguard

llmguard.install()
client = openai.OpenAI(timeout=30.0, max_retries=2)


def answer(question: str) -> str:
    with llmguard.tag(tenant="acme", feature="qa"):
        stream = client.chat.completions.create(
            model="gpt-4o-mini", max_tokens=200, stream=True,
            messages=[{"role": "user", "content": question}],
        )
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
"""

BARE = """\
import openai

client = openai.OpenAI()


def ask(question):
    while True:
        try:
            return client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": question}])
        except Exception:
            continue
"""


def check(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    add_check_arguments(parser)
    code = run_check(parser.parse_args(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def items(argv: list[str], capsys) -> tuple[int, dict[int, dict]]:
    code, out, _ = check([*argv, "--format", "json"], capsys)
    data = json.loads(out)
    assert [i["number"] for i in data["items"]] == list(range(16))  # the guard, then the seed's 15 items
    return code, {i["number"]: i for i in data["items"]}


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMGUARD_HOME", raising=False)
    root = tmp_path / "support-bot"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def test_a_fully_configured_project_passes(project, fresh_sim, capsys):
    (project / "pyproject.toml").write_text(CONFIGURED)
    (project / "app.py").write_text(APP)
    llmguard.install(home=str(project / ".llmguard"))  # the project's own settings, as app.py would get them
    client = openai_client(fresh_sim)
    for i in range(4):
        with llmguard.tag(tenant="acme", feature="qa"):
            for _ in client.chat.completions.create(
                model="gpt-4o-mini", max_tokens=50, stream=True, messages=[{"role": "user", "content": f"question {i}"}]
            ):
                pass
    llmguard.uninstall()
    code, table = items([str(project)], capsys)  # the ledger is found from the settings: ./.llmguard
    assert code == 0, {n: i["reason"] for n, i in table.items() if i["status"] != "pass"}
    assert all(i["status"] == "pass" for i in table.values())
    assert "app.py" in table[0]["reason"] and "4 recorded" in table[0]["reason"]
    assert "gpt-4o-mini" in table[1]["reason"] and "tenant:acme" in table[3]["reason"]
    assert "p95" in table[15]["reason"] and "4 calls" in table[15]["reason"]
    code, out, _ = check([str(project)], capsys)
    assert code == 0 and "all checks passed" in out and "FAIL" not in out


def test_a_bare_project_names_each_missing_control(project, capsys):
    (project / "pyproject.toml").write_text('[project]\nname = "bare"\n')
    (project / "bot.py").write_text(BARE)
    code, table = items([str(project)], capsys)
    assert code == 1
    expected = {
        0: "no `llmguard.install()`",
        1: "no RPM limit",
        2: "no TPM limit",
        3: "no tenant or user quota",
        4: "not installed",
        5: "not installed",
        6: "LG301 bot.py:9",
        7: "not installed",
        8: "not installed",
        9: "LG101 bot.py:7",
        10: "not installed",
        11: "LG201 bot.py:3",
        13: "no fallback models",
        14: "not installed",
        15: "not installed",
    }
    for number, words in expected.items():
        assert table[number]["status"] == "fail", number
        assert words in table[number]["reason"], (number, table[number]["reason"])
        assert table[number]["fix"], number
    assert table[12]["status"] == "n/a"  # nothing recorded to judge streaming by
    assert "[tool.llmguard.limits]" in table[1]["fix"] and "[tool.llmguard.fallbacks]" in table[13]["fix"]
    code, out, _ = check([str(project)], capsys)
    assert code == 1 and "FAIL" in out and "check(s) failed" in out


MISCONFIGURED = """\
[tool.llmguard]
timeout_s = "none"
retry_budget = "none"
cache = "off"

[tool.llmguard.limits]
"gpt-4o" = {rpm = 500, tpm = 200000}

[tool.llmguard.quotas]
"tenant:acme" = {usd_per_day = 5.0}
"""


@pytest.mark.filterwarnings("ignore:llmguard. no price is known:RuntimeWarning")
def test_settings_turned_off_and_ledger_evidence_fail_with_reasons(project, fresh_sim, capsys):
    (project / "pyproject.toml").write_text(MISCONFIGURED)
    (project / "app.py").write_text(APP)
    home = project / "state"
    llmguard.install(home=str(home))
    client = openai_client(fresh_sim)
    for i in range(3):  # no tenant tag, a model without limits or price
        client.chat.completions.create(
            model="house-model-1", max_tokens=20, messages=[{"role": "user", "content": f"hi {i}"}]
        )
    llmguard.uninstall()
    ledger = Ledger(home, run_id="slow-answers")
    for _ in range(5):  # interactive answers that took 3 s without streaming
        ledger.record(
            CallEvent(
                provider="openai",
                endpoint="chat.completions",
                model="gpt-4o",
                requested_model="gpt-4o",
                input_tokens=50,
                output_tokens=400,
                cost_usd=0.004,
                total_ms=3000.0,
                model_ms=2990.0,
            )
        )
    ledger.close()
    code, table = items([str(project), "--home", str(home)], capsys)
    assert code == 1
    expected = {
        1: "models used without a RPM limit: house-model-1",
        2: "models used without a TPM limit: house-model-1",
        3: "none of the 8 recorded calls carries a tenant tag",
        5: "cost is unknown for house-model-1 (3 calls)",
        7: "cache=off",
        8: "cache=off",
        9: "retry_budget is off",
        11: "timeout_s is unset",
        12: "5 interactive answers took over 2 s without streaming",
        13: "no fallback models",
    }
    for number, words in expected.items():
        assert table[number]["status"] == "fail", (number, table[number])
        assert words in table[number]["reason"], (number, table[number]["reason"])
    for number in (0, 4, 6, 10, 14, 15):
        assert table[number]["status"] == "pass", (number, table[number])


def test_missing_path_is_a_usage_error(tmp_path, capsys):
    code, _, err = check([str(tmp_path / "nope")], capsys)
    assert code == 2 and "no such file" in err


def test_the_check_reads_notebooks_too(project, capsys):
    (project / "pyproject.toml").write_text(CONFIGURED)
    cell = {
        "cell_type": "code",
        "metadata": {},
        "outputs": [],
        "execution_count": None,
        "source": ["%load_ext llmguard\n", "import openai\n", "client = openai.OpenAI(timeout=20)\n"],
    }
    notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (project / "explore.ipynb").write_text(json.dumps(notebook))
    (project / "util.py").write_text(
        textwrap.dedent("""\
        import openai
        client = openai.OpenAI(timeout=None)
    """)
    )
    code, table = items([str(project)], capsys)
    assert table[0]["status"] == "pass" and "explore.ipynb" in table[0]["reason"]
    assert table[11]["status"] == "fail" and "LG202 util.py:2" in table[11]["reason"]
