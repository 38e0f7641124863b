"""`%load_ext llmguard` and the magics in a real IPython shell, against the simulator on 127.0.0.1.

The shell is IPython's test shell (a terminal shell: no widget front end), so the widget's place is
taken by the one-line summary; the widget itself is tested in tests/test_widget.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import llmguard
from tests.conftest import rows, sdk_shell

CALL = (
    "from openai import OpenAI\n"
    "client = OpenAI(timeout=30)\n"
    "client.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'hi'}], "
    "max_tokens=20EXTRA)\n"
)


def call(extra: str = "") -> str:
    return CALL.replace("EXTRA", extra)


@pytest.fixture
def ip(home, fresh_sim, monkeypatch):
    """The test shell with the SDKs pointed at the simulator and a private LLMGUARD_HOME."""
    shell = sdk_shell(monkeypatch, fresh_sim)
    yield shell
    if "llmguard" in shell.extension_manager.loaded:
        run(shell, "%unload_ext llmguard")
    shell.reset()


def run(shell, code: str):
    """Run `code` as a numbered cell; (result, captured outputs)."""
    with capture_output() as captured:
        result = shell.run_cell(code, store_history=True)
    return result, captured


def shown(captured) -> str:
    """Everything a cell showed: stdout, stderr and the text of each displayed output."""
    parts = [captured.stdout, captured.stderr]
    parts += [output.data.get("text/plain", "") for output in captured.outputs]
    return "\n".join(parts)


def error_of(result) -> BaseException | None:
    return result.error_in_exec or result.error_before_exec


@pytest.fixture
def loaded(ip):
    result, captured = run(ip, "%load_ext llmguard")
    assert error_of(result) is None, shown(captured)
    return ip


# ---- loading, tagging, unloading ----------------------------------------------------------------


def test_load_ext_installs_the_guard_and_tags_calls_with_notebook_and_cell(ip, home, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/work/notes/demo.ipynb")
    result, captured = run(ip, "%load_ext llmguard")
    guard = llmguard.current()
    assert guard is not None and guard.ledger.path == home / "ledger.sqlite3"
    assert "llmguard is on" in shown(captured)
    run(ip, "x = 1")
    result, captured = run(ip, call())
    assert error_of(result) is None, shown(captured)
    [row] = rows(guard)
    assert row["cell"] == result.execution_count
    assert row["notebook"] == "/work/notes/demo.ipynb"
    # a terminal has no widget: the same information as one line after each cell that called a model
    assert "llmguard · $0.0000" in captured.stdout and " · 1 call · " in captured.stdout


def test_load_ext_keeps_a_guard_installed_in_code(ip, home):
    guard = llmguard.install(home=str(home), budget_usd=3.0)
    run(ip, "%load_ext llmguard")
    assert llmguard.current() is guard and guard.settings.budget_usd == 3.0


def test_load_ext_with_a_bad_setting_says_which_and_adds_nothing(ip, monkeypatch):
    monkeypatch.setenv("LLMGUARD_TIMEOUT_S", "soon")
    before = list(ip.events.callbacks["pre_run_cell"])
    result, captured = run(ip, "%load_ext llmguard")
    assert isinstance(error_of(result), UsageError)
    assert "timeout_s='soon'" in shown(captured) and "Traceback" not in shown(captured)
    assert llmguard.current() is None and ip.events.callbacks["pre_run_cell"] == before
    assert "llmguard" not in ip.magics_manager.magics["line"]


def test_unload_ext_removes_hooks_magics_tags_and_guard(loaded):
    ip = loaded
    from llmguard.magics.extension import current_extension

    extension = current_extension()
    assert extension.pre_run_cell in ip.events.callbacks["pre_run_cell"]
    assert extension.lint.blocker in ip.ast_transformers
    result, captured = run(ip, "%unload_ext llmguard")
    assert error_of(result) is None, shown(captured)
    assert llmguard.current() is None
    assert extension.pre_run_cell not in ip.events.callbacks["pre_run_cell"]
    assert extension.post_run_cell not in ip.events.callbacks["post_run_cell"]
    assert extension.lint.blocker not in ip.ast_transformers
    assert "llmguard" not in ip.magics_manager.magics["line"]
    assert "llm" not in ip.magics_manager.magics["cell"]
    assert not {"notebook", "cell"} & set(llmguard.session_tags())
    result, _ = run(ip, "%llmguard status")
    assert isinstance(error_of(result), UsageError)  # the magic is gone


def test_reload_ext_leaves_one_set_of_hooks_and_a_working_guard(loaded, fresh_sim):
    ip = loaded
    first = llmguard.current()
    result, captured = run(ip, "%reload_ext llmguard")
    assert error_of(result) is None, shown(captured)
    guard = llmguard.current()
    assert guard is not None and guard is not first
    hooks = [
        cb
        for cb in ip.events.callbacks["pre_run_cell"]
        if getattr(cb, "__self__", None).__class__.__name__ == "Extension"
    ]
    assert len(hooks) == 1
    result, captured = run(ip, call())
    assert error_of(result) is None, shown(captured)
    assert [row["cell"] for row in rows(guard)] == [result.execution_count]


# ---- %llmguard subcommands ----------------------------------------------------------------------


def test_status_summarises_spend_limits_tags_and_ledger(loaded, home):
    ip = loaded
    run(ip, call())
    run(ip, "%llmguard tag --tenant acme")
    result, captured = run(ip, "%llmguard status")
    text = shown(captured)
    assert "llmguard status" in text and "calls 1" in text
    assert "tenant=acme" in text and str(home / "ledger.sqlite3") in text
    assert "lint-on-run on" in text
    assert any("text/html" in output.data for output in captured.outputs)
    _, bare = run(ip, "%llmguard")  # no subcommand: status
    assert "llmguard status" in shown(bare)


def test_budget_sets_changes_and_removes_the_session_budget(loaded):
    ip = loaded
    guard = llmguard.current()
    run(ip, "%llmguard budget 5.00")
    assert guard.settings.budget_usd == 5.0 and guard.budget.session.limit == 5.0
    run(ip, "%llmguard budget $2.5")
    assert guard.budget.session.limit == 2.5
    run(ip, "%llmguard budget off")
    assert guard.settings.budget_usd is None and guard.budget.session is None
    for bad in ("abc", "-1", "0"):
        result, captured = run(ip, f"%llmguard budget {bad}")
        assert isinstance(error_of(result), UsageError)
        assert "usage: %llmguard budget" in shown(captured)


def test_a_session_budget_refuses_the_call_that_would_pass_it(loaded, fresh_sim):
    ip = loaded
    run(ip, "%llmguard budget 0.000001")
    result, captured = run(ip, call())
    assert "llmguard: session budget would be exceeded" in shown(captured)
    assert fresh_sim.stats["requests"] == 0


def test_limit_sets_shows_and_removes_rate_limits(loaded):
    ip = loaded
    guard = llmguard.current()
    run(ip, "%llmguard limit gpt-4o-mini --rpm 500 --tpm 200000")
    assert guard.settings.limits["gpt-4o-mini"] == {"rpm": 500, "tpm": 200000}
    snapshot = guard.limiter.snapshot()["gpt-4o-mini"]
    assert (snapshot["rpm"], snapshot["tpm"]) == (500, 200000)
    run(ip, "%llmguard limit gpt-4o-mini --rpm 100")
    assert guard.settings.limits["gpt-4o-mini"] == {"rpm": 100, "tpm": 200000}
    _, captured = run(ip, "%llmguard limit")
    assert "gpt-4o-mini" in shown(captured)
    run(ip, "%llmguard limit gpt-4o-mini --off")
    assert "gpt-4o-mini" not in guard.settings.limits
    assert guard.limiter.snapshot()["gpt-4o-mini"]["rpm"] is None
    for bad in (
        "gpt-4o-mini",
        "--rpm 5",
        "gpt-4o-mini --rpm zero",
        "gpt-4o-mini --rpm -3",
        "gpt-4o-mini --off --rpm 3",
    ):
        result, captured = run(ip, f"%llmguard limit {bad}")
        assert isinstance(error_of(result), UsageError), bad
        assert "usage: %llmguard limit" in shown(captured)


def test_tag_sets_session_tags_recorded_with_every_call(loaded):
    ip = loaded
    run(ip, "%llmguard tag --tenant acme --feature summary --prompt-version v3 --user ana")
    run(ip, call())
    run(ip, "%llmguard tag --clear")
    run(ip, call())
    tagged, untagged = rows(llmguard.current())
    assert (tagged["tenant"], tagged["feature"], tagged["prompt_version"], tagged["user"]) == (
        "acme",
        "summary",
        "v3",
        "ana",
    )
    assert (untagged["tenant"], untagged["feature"], untagged["prompt_version"]) == (None, None, None)


def test_unload_takes_away_the_session_tags_the_magics_set(ip, fresh_sim):
    """Regression: `%llmguard tag --tenant acme` outlived `%unload_ext`, so every call after a
    reload (and, in the test suite, every later test's report) was billed to tenant acme."""
    llmguard.set_session_tags(feature="set-before-loading")
    try:
        run(ip, "%load_ext llmguard")
        run(ip, "%llmguard tag --tenant acme --user ana")
        run(ip, "%llmguard cache off")
        run(ip, "%llmguard tag --feature digest")
        run(ip, "%unload_ext llmguard")
        assert llmguard.session_tags() == {"feature": "set-before-loading"}
        run(ip, "%load_ext llmguard")
        run(ip, call())
        row = rows(llmguard.current())[-1]
        assert (row["tenant"], row["user"], row["feature"]) == (None, None, "set-before-loading")
        run(ip, "%unload_ext llmguard")  # here, not in the fixture: its unload would restore the tag again
    finally:
        llmguard.set_session_tags(feature=None)
    assert llmguard.session_tags() == {}


def test_cache_off_on_stats_and_clear(loaded, fresh_sim):
    ip = loaded
    deterministic = call(", temperature=0")
    run(ip, "%llmguard cache off")
    assert llmguard.session_tags()["cache"] == "off"
    run(ip, deterministic)
    run(ip, deterministic)
    assert fresh_sim.stats["requests"] == 2  # nothing read from the cache
    run(ip, "%llmguard cache on")
    assert "cache" not in llmguard.session_tags()
    run(ip, deterministic)
    run(ip, deterministic)
    assert fresh_sim.stats["requests"] == 3  # the second one was answered from the cache
    assert [row["cache_hit"] for row in rows(llmguard.current())] == [0, 0, 0, 1]
    _, captured = run(ip, "%llmguard cache stats")
    assert "llmguard cache at" in shown(captured) and "entries   1" in shown(captured)
    _, captured = run(ip, "%llmguard cache clear")
    assert "1 entries removed" in shown(captured)
    result, captured = run(ip, "%llmguard cache sometimes")
    assert isinstance(error_of(result), UsageError) and "usage: %llmguard cache" in shown(captured)


def test_cache_stats_and_clear_right_after_a_call_see_its_answer(loaded, fresh_sim):
    """An answer still in the writer's batch (up to 100 ms) is counted, and a clear removes it for good.

    Regression: the magics read the folder without waiting for this kernel's queued writes, so
    stats run straight after a call said "entries 0" and "no lookups yet" (seen in CI).
    """
    ip = loaded
    run(ip, call(", temperature=0"))
    _, captured = run(ip, "%llmguard cache stats")
    assert "entries   1" in shown(captured)
    assert "lookups   1: 0 hits, 1 miss" in shown(captured)
    run(ip, call(", temperature=0, seed=7"))
    _, captured = run(ip, "%llmguard cache clear")
    assert "2 entries removed" in shown(captured)
    llmguard.current().cache_layer.flush()
    _, captured = run(ip, "%llmguard cache stats")
    assert "entries   0" in shown(captured)
    assert fresh_sim.stats["requests"] == 2


def test_off_lets_calls_through_unrecorded_and_on_guards_again(loaded, fresh_sim):
    ip = loaded
    run(ip, "%llmguard off")
    assert llmguard.current().enabled is False
    run(ip, call())
    assert rows(llmguard.current()) == [] and fresh_sim.stats["requests"] == 1
    run(ip, "%llmguard on")
    run(ip, call())
    assert len(rows(llmguard.current())) == 1


def test_widget_in_a_terminal_is_a_one_line_summary(loaded):
    ip = loaded
    run(ip, "%llmguard budget 1")
    run(ip, call())
    _, captured = run(ip, "%llmguard widget")
    line = captured.stdout.strip()
    assert line.startswith("llmguard · $0.0000132 spent · $0.0000132 of $1.00 budget used, since set · 1 call · ")
    assert "p50" in line and "\n" not in line


def test_report_shows_this_sessions_costs_with_a_chart(loaded):
    ip = loaded
    run(ip, call())
    run(ip, call())
    _, captured = run(ip, "%llmguard report")
    assert "gpt-4o-mini" in shown(captured) and "2 calls" in shown(captured)
    html = next(output.data["text/html"] for output in captured.outputs if "text/html" in output.data)
    assert "<table>" in html and "gpt-4o-mini" in html
    _, by_cell = run(ip, "%llmguard report --by cell")
    assert shown(by_cell).count(" 1 calls ") == 2  # one row per cell: each made one call


def test_lint_reports_findings_in_the_cells_run_so_far(loaded):
    ip = loaded
    run(ip, "%llmguard lint-on-run off")
    run(ip, "import openai\nclient = openai.OpenAI()")
    flagged, _ = run(
        ip,
        "def ask():\n    while True:\n        try:\n            return client.chat.completions.create("
        "model='m', messages=[], max_tokens=5)\n        except Exception:\n            pass",
    )
    _, captured = run(ip, "%llmguard lint")
    text = shown(captured)
    assert f"In [{flagged.execution_count}] line 2: LG101" in text
    assert "LG201" in text  # the client without a timeout, two cells earlier


def test_bad_subcommands_raise_usage_errors_with_the_usage_line(loaded):
    ip = loaded
    result, captured = run(ip, "%llmguard frobnicate")
    assert isinstance(error_of(result), UsageError)
    assert "usage: %llmguard" in shown(captured) and "invalid choice" in shown(captured)
    result, captured = run(ip, "%llmguard lint-on-run sometimes")
    assert isinstance(error_of(result), UsageError)


def test_help_lists_every_subcommand(loaded):
    ip = loaded
    _, captured = run(ip, "%llmguard budget -h")
    assert "usage: %llmguard budget" in captured.stdout
    doc = ip.object_inspect_text("%llmguard")  # what `%llmguard?` shows, in a terminal or a notebook
    for word in ("status", "budget", "limit", "tag", "cache", "widget", "report", "lint-on-run", "off", "%%llmguard"):
        assert word in doc
    assert "--dry-run" in ip.object_inspect_text("%%llm")


def test_load_ext_leaves_the_magics_parsers_for_their_first_use(home, fresh_sim):
    """`%load_ext` imports neither the parsers nor the `%%llm` client code; the first use does."""
    code = (
        "import sys\n"
        "from IPython.testing.globalipapp import get_ipython\n"
        "ip = get_ipython(); ip.run_line_magic('load_ext', 'llmguard')\n"
        "lazy = ('llmguard.magics.line', 'llmguard.magics.cell_llm', 'llmguard.magics.cell_scope')\n"
        "print('before', [m for m in lazy if m in sys.modules])\n"
        "ip.run_line_magic('llmguard', 'status')\n"
        "print('after', [m for m in lazy if m in sys.modules])\n"
    )
    env = {**os.environ, "LLMGUARD_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    marked = [line for line in done.stdout.splitlines() if line.startswith(("before ", "after "))]
    assert marked == ["before []", "after ['llmguard.magics.line', 'llmguard.magics.cell_llm']"]


# ---- lint on run ------------------------------------------------------------------------------

LOOP = (
    "import openai\nclient = openai.OpenAI(timeout=10)\nran = True\n"
    "def ask():\n    while True:\n        try:\n            return client.chat.completions.create("
    "model='gpt-4o-mini', messages=[], max_tokens=5)\n        except Exception:\n            pass\n"
)


def test_lint_on_run_warns_above_the_output_and_still_runs_the_cell(loaded):
    ip = loaded
    result, captured = run(ip, LOOP)
    assert error_of(result) is None and ip.user_ns["ran"] is True
    warning = captured.outputs[0].data["text/plain"]
    assert "llmguard lint" in warning and "line 5: LG101" in warning


def test_lint_on_run_block_stops_the_cell_and_off_is_silent(loaded):
    ip = loaded
    run(ip, "%llmguard lint-on-run block")
    result, captured = run(ip, LOOP)
    assert "ran" not in ip.user_ns
    assert type(error_of(result)).__name__ == "LintBlocked"
    assert "this cell was not run" in shown(captured)
    result, _ = run(ip, "clean = 1")  # a clean cell still runs in block mode
    assert ip.user_ns["clean"] == 1
    run(ip, "%llmguard lint-on-run off")
    result, captured = run(ip, LOOP)
    assert ip.user_ns["ran"] is True and "llmguard lint" not in shown(captured)


def test_lint_on_run_checks_the_python_of_llmguard_cells_only(loaded):
    ip = loaded
    _, captured = run(ip, "%%llmguard --feature f\n" + LOOP)
    assert "line 6: LG101" in shown(captured)  # lines count from the magic line
    _, captured = run(ip, "%%llm --dry-run\nwhile True: please retry forever")
    assert "llmguard lint" not in shown(captured)


# ---- %%llm -------------------------------------------------------------------------------------


def test_llm_streams_the_answer_through_the_guard(loaded, fresh_sim):
    ip = loaded
    run(ip, "topic = 'rate limits'")
    result, captured = run(ip, "%%llm -m gpt-4o-mini --max-tokens 40 -o answer\nExplain {topic}.")
    assert error_of(result) is None, shown(captured)
    answer = ip.user_ns["answer"]
    assert isinstance(answer, str) and len(answer.split()) > 3
    assert answer.replace(" ", "") in captured.stdout.replace(" ", "").replace("\n", "")  # streamed to the terminal
    assert fresh_sim.stats["requests"] == 1
    [row] = rows(llmguard.current())
    assert (row["model"], row["stream"], row["cell"], row["status"]) == ("gpt-4o-mini", 1, result.execution_count, "ok")
    assert row["output_tokens"] <= 40 and row["cost_usd"] > 0
    assert "llmguard · gpt-4o-mini" in shown(captured)  # the footer: tokens and cost of this answer


def test_llm_fills_placeholders_from_the_namespace_and_keeps_unknown_ones(loaded):
    ip = loaded
    run(ip, "topic = 'retries'\nn = 3")
    _, captured = run(ip, '%%llm --dry-run\nGive {n} tips on {topic}, not {unknown}; JSON like {{"a": 1}}.')
    assert 'Give 3 tips on retries, not {unknown}; JSON like {"a": 1}.' in shown(captured)


def test_llm_dry_run_sends_nothing_and_shows_tokens_and_worst_case(loaded, fresh_sim):
    ip = loaded
    result, captured = run(ip, "%%llm --dry-run -m gpt-4o --max-tokens 2000\nWrite a long report.")
    text = shown(captured)
    assert fresh_sim.stats["requests"] == 0 and rows(llmguard.current()) == []
    assert "prompt tokens" in text and "up to 2,000 output tokens" in text and "nothing was sent" in text
    assert "worst case $0.02" in text  # gpt-4o: 2000 output tokens at $10/M, plus the prompt
    _, default = run(ip, "%%llm --dry-run\nhi")
    assert "up to 1,024 output tokens" in shown(default)  # a max tokens bound is always applied


def test_llm_applies_the_default_max_tokens_to_real_calls(loaded):
    ip = loaded
    run(ip, "%llmguard budget 5")  # a budget makes the guard estimate (and record) each call's worst case
    run(ip, "%%llm\nhello")
    run(ip, "%%llm --max-tokens 30\nhello")
    default, bounded = rows(llmguard.current())
    assert default["estimated_tokens"] >= 1024 > bounded["estimated_tokens"] >= 30


def test_llm_system_no_stream_and_text_format(loaded):
    ip = loaded
    run(ip, "%%llm --no-stream --format text -o plain\nhello")
    run(ip, "%%llm --no-stream --system 'You are terse and answer in French.' -o framed\nhello")
    plain, framed = rows(llmguard.current())
    assert plain["stream"] == 0 and framed["stream"] == 0
    assert framed["input_tokens"] > plain["input_tokens"] + 5  # the system prompt was sent
    assert ip.user_ns["plain"]


def test_llm_temperature_zero_is_cached_and_no_cache_skips_it(loaded, fresh_sim):
    ip = loaded
    for _ in range(2):
        run(ip, "%%llm --temperature 0 --max-tokens 20\nSame question")
    assert fresh_sim.stats["requests"] == 1
    run(ip, "%%llm --temperature 0 --max-tokens 20 --no-cache\nSame question")
    assert fresh_sim.stats["requests"] == 2
    assert [row["cache_hit"] for row in rows(llmguard.current())] == [0, 1, 0]


def test_llm_anthropic_provider(loaded):
    ip = loaded
    result, captured = run(ip, "%%llm --provider anthropic --max-tokens 30 -o reply\nhello")
    assert error_of(result) is None, shown(captured)
    [row] = rows(llmguard.current())
    assert (row["provider"], row["model"]) == ("anthropic", "claude-3-5-haiku-latest")
    assert ip.user_ns["reply"]


def test_llm_base_url_option_setting_and_env_reach_a_keyless_server(loaded, fresh_sim, monkeypatch):
    ip = loaded
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    result, captured = run(ip, "%%llm --max-tokens 10\nhello")
    assert isinstance(error_of(result), UsageError) and "no API key" in shown(captured)
    run(ip, f"%%llm --max-tokens 10 --base-url {fresh_sim.openai_base_url}\nhello")
    run(ip, f"%llmguard llm --base-url {fresh_sim.openai_base_url} --model gpt-4.1-mini")
    run(ip, "%%llm --max-tokens 10\nhello")
    run(ip, "%llmguard llm --base-url '' --model ''")
    monkeypatch.setenv("LLMGUARD_LLM_BASE_URL", fresh_sim.openai_base_url)
    run(ip, "%%llm --max-tokens 10\nhello")
    assert [row["model"] for row in rows(llmguard.current())] == ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4o-mini"]
    assert fresh_sim.stats["requests"] == 3


def test_llm_json_and_code_formats(loaded):
    ip = loaded
    result, captured = run(ip, "%%llm --format json -o data --max-tokens 20\nReturn JSON.")
    assert "not valid JSON" in shown(captured)  # the simulator answers prose: kept as text
    assert isinstance(ip.user_ns["data"], str)
    result, captured = run(ip, "%%llm --format code -o snippet --max-tokens 20\nWrite a function.")
    assert error_of(result) is None
    assert ip.rl_next_input == ip.user_ns["snippet"] != ""  # the answer is the next cell's input


def test_llm_refusal_is_shown_as_the_llmguard_message(loaded, fresh_sim):
    ip = loaded
    run(ip, "%llmguard budget 0.000001")
    result, captured = run(ip, "%%llm\nhello")
    assert type(error_of(result)).__name__ == "LLMCallError"
    assert "LLMCallError: llmguard: session budget would be exceeded" in shown(captured)
    assert "Traceback" not in shown(captured)
    assert fresh_sim.stats["requests"] == 0


def test_llm_bad_arguments_and_empty_prompt(loaded):
    ip = loaded
    for bad in ("%%llm --format yaml\nhi", "%%llm --max-tokens 0\nhi", "%%llm --provider bedrock\nhi", "%%llm\n   \n"):
        result, captured = run(ip, bad)
        assert isinstance(error_of(result), UsageError), bad
        assert "usage: %%llm" in shown(captured)


# ---- %%llmguard --------------------------------------------------------------------------------


def test_llmguard_cell_tags_its_calls_and_sums_them_up(loaded):
    ip = loaded
    result, captured = run(
        ip,
        "%%llmguard --tenant acme --feature digest --prompt-version v2 --user bo --priority background\n"
        + call()
        + "41 + 1\n",
    )
    assert error_of(result) is None, shown(captured)
    assert result.result == 42  # the last expression is the cell's value
    [row] = rows(llmguard.current())
    assert (row["tenant"], row["feature"], row["prompt_version"], row["user"], row["priority"]) == (
        "acme",
        "digest",
        "v2",
        "bo",
        "background",
    )
    assert row["cell"] == result.execution_count
    assert "llmguard · this cell: 1 call · $0.0000" in shown(captured)
    run(ip, call())
    assert rows(llmguard.current())[-1]["tenant"] is None  # the tags ended with the cell


def test_llmguard_cell_budget_refuses_the_call_that_would_pass_it(loaded, fresh_sim):
    ip = loaded
    # gpt-4o-mini, max 150 output tokens: the worst case (~$0.00009) fits $0.0001 once, not after a real call
    code = "%%llmguard --budget 0.0001\n" + call().replace("max_tokens=20", "max_tokens=150") * 2
    result, captured = run(ip, code)
    text = shown(captured)
    assert type(error_of(result)).__name__ == "RateLimitError"
    assert "llmguard: this cell's budget (%%llmguard --budget 0.0001) would be exceeded" in text
    assert "1 refused" in text  # the summary line says so too
    assert fresh_sim.stats["requests"] == 1
    assert [row["status"] for row in rows(llmguard.current())] == ["ok", "refused"]
    run(ip, call().replace("max_tokens=20", "max_tokens=150"))
    assert fresh_sim.stats["requests"] == 2


def test_llmguard_cell_no_cache_and_errors(loaded, fresh_sim):
    ip = loaded
    deterministic = call(", temperature=0")
    run(ip, deterministic)
    run(ip, "%%llmguard --no-cache\n" + deterministic)
    assert fresh_sim.stats["requests"] == 2
    result, captured = run(ip, "%%llmguard\n1 / 0")
    assert isinstance(error_of(result), ZeroDivisionError)
    assert "this cell: 0 calls" in shown(captured)
    result, captured = run(ip, "%%llmguard --priority urgent\npass")
    assert isinstance(error_of(result), UsageError) and "usage: %%llmguard" in shown(captured)


def test_a_caught_cell_budget_refusal_is_not_counted_as_a_call(loaded, fresh_sim):
    """Issue 14: the cell's summary counted a refused call (never sent) as a call."""
    ip = loaded
    bigger = call().replace("max_tokens=20", "max_tokens=150")
    caught = "try:\n" + "".join("    " + line + "\n" for line in bigger.splitlines()) + "except Exception:\n    pass\n"
    result, captured = run(ip, "%%llmguard --budget 0.0001\n" + bigger + caught)
    assert error_of(result) is None
    summary = [line for line in shown(captured).splitlines() if line.startswith("llmguard · this cell: ")]
    assert len(summary) == 1 and summary[0].startswith("llmguard · this cell: 1 call · ")
    assert "· 1 refused: llmguard: this cell's budget (%%llmguard --budget 0.0001) would be exceeded" in summary[0]
