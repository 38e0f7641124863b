"""Messages point to the right knob (issue item 17): each refusal or readiness line says what happened
and the one setting that changes it, with money shown in digits that never round a real cost to 0."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import openai
import pytest

import llmguard
from llmguard.policies.budget import Budget
from tests.conftest import openai_client, rows

MESSAGES = [{"role": "user", "content": "hi"}]


def refusal(client, **create) -> str:
    """The message of the llmguard refusal a call gets (the SDK's own error type)."""
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **create)
    return caught.value.body["message"] if isinstance(caught.value.body, dict) else str(caught.value)


# ---- 1. a quota refusal names the quota, not the session budget ----------------------------------


@pytest.mark.parametrize(
    ("key", "tags"),
    [
        ("tenant:acme", {"tenant": "acme"}),
        ("user:bo", {"user": "bo"}),
        ("feature:digest", {"feature": "digest"}),
    ],
)
def test_a_usd_quota_refusal_says_how_to_raise_that_quota(fresh_sim, home, key, tags):
    guard = llmguard.install(home=str(home), quotas={key: {"usd_per_day": 0.000001}})
    with llmguard.tag(**tags):
        message = refusal(openai_client(fresh_sim, max_retries=0), max_tokens=20)
    assert "budget_usd" not in message and "%llmguard budget" not in message, message
    assert f"quotas={{'{key}': {{'usd_per_day': ...}}}}" in message, message
    assert f'[tool.llmguard.quotas] "{key}" = {{usd_per_day = ...}}' in message, message
    assert message == (  # gpt-4o-mini: 8 prompt tokens at $0.15/M + 20 output tokens at $0.60/M
        f"llmguard: {key} usd_per_day would be exceeded (spent $0.00 of $0.000001 today (UTC), $0.00 held "
        f"by calls in flight; this call could cost up to $0.0000132). To continue, raise the {key} quota "
        f"(quotas={{'{key}': {{'usd_per_day': ...}}}} or [tool.llmguard.quotas] \"{key}\" = {{usd_per_day = ...}}), "
        "lower max_tokens, or use a cheaper model."
    )
    assert fresh_sim.stats["requests"] == 0
    assert [r["error_type"] for r in rows(guard)] == ["budget"]


def test_a_token_quota_refusal_names_its_quota_and_unit(fresh_sim, home):
    llmguard.install(home=str(home), quotas={"feature:batch": {"tokens_per_run": 10}})
    with llmguard.tag(feature="batch"):
        message = refusal(openai_client(fresh_sim, max_retries=0), max_tokens=20)
    assert "quotas={'feature:batch': {'tokens_per_run': ...}}" in message, message
    assert message.startswith("llmguard: feature:batch tokens_per_run would be exceeded ("), message
    assert "budget_usd" not in message


def test_the_session_budget_refusal_still_points_to_budget_usd(fresh_sim, home):
    llmguard.install(home=str(home), budget_usd=0.000001)
    message = refusal(openai_client(fresh_sim, max_retries=0), max_tokens=20)
    assert message.startswith("llmguard: session budget would be exceeded ("), message
    assert "llmguard.install(budget_usd=...)" in message and "%llmguard budget" in message, message
    assert "quotas=" not in message


# ---- 2. a cell budget refusal points to %%llmguard --budget -------------------------------------


@pytest.fixture
def ip(home, fresh_sim, monkeypatch):
    """IPython's test shell, the SDK pointed at the simulator, `%load_ext llmguard` done."""
    from IPython.testing.globalipapp import get_ipython

    for name in ("LLMGUARD_LLM_BASE_URL", "LLMGUARD_LLM_MODEL", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", fresh_sim.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-llmguard-test-7f3a9c1e5b")
    shell = get_ipython()
    shell.reset()
    shell.run_cell("%load_ext llmguard")
    yield shell
    if "llmguard" in shell.extension_manager.loaded:
        shell.run_cell("%unload_ext llmguard")
    shell.reset()


def test_a_cell_budget_refusal_says_to_raise_the_cell_budget(ip, fresh_sim):
    from IPython.utils.capture import capture_output

    # gpt-4o: 60,000 output tokens at $10/M could cost $0.60, more than the cell's $0.50
    cell = (
        "%%llmguard --budget 0.50\n"
        "from openai import OpenAI\n"
        "OpenAI(timeout=30, max_retries=0).chat.completions.create(model='gpt-4o', max_tokens=60000,\n"
        "    messages=[{'role': 'user', 'content': 'hi'}])\n"
    )
    with capture_output() as captured:
        result = ip.run_cell(cell)
    error = result.error_in_exec
    assert type(error).__name__ == "RateLimitError", captured.stdout
    message = error.body["message"]
    assert message.startswith("llmguard: this cell's budget (%%llmguard --budget 0.5) would be exceeded ("), message
    assert "budget_usd" not in message and "llmguard.install" not in message, message
    assert "%%llmguard --budget" in message.partition("To continue, ")[2], message
    assert "spent $0.00 of $0.50" in message and "could cost up to $0.60" in message, message
    assert fresh_sim.stats["requests"] == 0


# ---- 3. money has significant digits ------------------------------------------------------------


def test_money_keeps_significant_digits():
    from llmguard.money import usd

    assert usd(0.000075) == "$0.000075"
    assert usd(1.234) == "$1.23"
    assert usd(0.5) == "$0.50"
    assert usd(0) == "$0.00"
    assert usd(None) == "?"
    assert usd(1234.5) == "$1,234.50"
    assert usd(0.1234) == "$0.123"
    assert usd(0.0001) == "$0.0001"
    assert usd(0.00000012) == "$0.00000012"
    assert usd(-0.25) == "-$0.25"
    for tiny in (1e-12, 3e-9, 4.9e-7, 0.000004):
        assert usd(tiny) != "$0.00" and re.fullmatch(r"\$0\.0*[1-9]\d*", usd(tiny)), usd(tiny)


def test_a_refusal_states_amounts_below_a_cent_exactly():
    budget = Budget(budget_usd=0.0001)
    assert not hasattr(budget.reserve(0.000075, 100, {}), "message")  # held: a call in flight
    refused = budget.reserve(0.000075, 100, {})
    assert refused.message == (
        "llmguard: session budget would be exceeded (spent $0.00 of $0.0001, $0.000075 held by calls in flight; "
        "this call could cost up to $0.000075). To continue, raise the session budget "
        "(llmguard.install(budget_usd=...), [tool.llmguard] budget_usd or %llmguard budget USD), "
        "lower max_tokens, or use a cheaper model."
    )


def test_a_real_refusal_never_shows_a_cost_of_zero(fresh_sim, home):
    llmguard.install(home=str(home), budget_usd=0.000001)
    message = refusal(openai_client(fresh_sim, max_retries=0), max_tokens=20)
    amount = re.search(r"could cost up to (\$[\d.,]+)", message).group(1)
    assert re.fullmatch(r"\$0\.0000\d*[1-9]\d*", amount), message  # gpt-4o-mini, 20 tokens: about $0.000014
    assert "$0.0000 " not in message and "$0.0000)" not in message and "$0.0000," not in message


# ---- 4. `llmguard check` credits the guard's own timeout ---------------------------------------


def run_check(root: Path) -> tuple[int, dict[int, dict]]:
    import json

    cli = Path(sys.executable).with_name("llmguard")
    done = subprocess.run(
        [str(cli), "check", str(root), "--format", "json"], capture_output=True, text=True, cwd=root, check=False
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, {i["number"]: i for i in json.loads(done.stdout)["items"]}


APP = """\
import openai

import llmguard

llmguard.install()
client = openai.OpenAI()
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMGUARD_HOME", raising=False)
    root = tmp_path / "bot"
    root.mkdir()
    (root / "app.py").write_text(APP)
    return root


@pytest.mark.parametrize(("table", "shown"), [("timeout_s = 30\n", "30 s"), ("", "60 s")])
def test_check_credits_the_guards_timeout_for_clients_without_one(project, table, shown):
    (project / "pyproject.toml").write_text('[project]\nname = "bot"\n\n[tool.llmguard]\n' + table)
    _, items = run_check(project)
    item = items[11]
    assert item["status"] == "pass", item
    assert item["reason"] == (  # the finding is still named, as covered by the guard
        f"the guard caps every call at timeout_s={shown}, so clients without timeout= (LG201 app.py:6) do not "
        "wait the SDK's 600 s; the linter finds no other missing or huge timeout"
    )


def test_check_still_fails_lg201_when_the_guard_keeps_the_sdk_timeout(project):
    (project / "pyproject.toml").write_text('[project]\nname = "bot"\n\n[tool.llmguard]\ntimeout_s = "none"\n')
    _, items = run_check(project)
    assert items[11]["status"] == "fail"
    assert "timeout_s is unset" in items[11]["reason"] and "LG201 app.py:6" in items[11]["reason"], items[11]


def test_check_still_fails_other_timeout_findings_under_the_guard(project):
    (project / "pyproject.toml").write_text('[project]\nname = "bot"\n')
    (project / "tools.py").write_text(
        textwrap.dedent("""\
        import requests
        def fetch():
            return requests.post("https://api.openai.com/v1/chat/completions", json={})
    """)
    )
    _, items = run_check(project)
    assert items[11]["status"] == "fail", items[11]
    assert items[11]["reason"] == (
        "clients or requests without a sane timeout: LG204 tools.py:3; the guard caps every call at "
        "timeout_s=60 s, so clients without timeout= (LG201 app.py:6) do not wait the SDK's 600 s"
    )
    assert items[11]["fix"].startswith("pass timeout= to the clients and HTTP calls")


def test_check_does_not_credit_a_guard_the_code_never_installs(project):
    (project / "pyproject.toml").write_text('[project]\nname = "bot"\n\n[tool.llmguard]\ntimeout_s = 30\n')
    (project / "app.py").write_text("import openai\nclient = openai.OpenAI()\n")
    _, items = run_check(project)
    assert items[11]["status"] == "fail"
    assert items[11]["reason"] == "clients or requests without a sane timeout: LG201 app.py:2"
