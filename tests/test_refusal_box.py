"""llmguard's refusals in IPython and Jupyter: a short box instead of the SDK's traceback, shown once.

Real parts only: the openai and anthropic SDKs over HTTP against the simulator on 127.0.0.1, IPython's
test shell (a terminal shell), a real kernel run by nbclient, and headless Chromium for the HTML box.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from IPython.utils.capture import capture_output

import llmguard
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.conftest import FAKE_OPENAI_KEY, sdk_shell

MESSAGES = "messages=[{'role': 'user', 'content': 'hi'}]"
OPENAI_CALL = (
    "from openai import OpenAI\n"
    "client = OpenAI(timeout=30)\n"
    f"client.chat.completions.create(model='gpt-4o-mini', {MESSAGES}, max_tokens=20)\n"
)
CALL_AGAIN = f"client.chat.completions.create(model='gpt-4o-mini', {MESSAGES}, max_tokens=20)\n"
BUDGET_BOX = [
    "┌ llmguard: session budget would be exceeded",
    "│ spent $0.00 of $0.000001, $0.00 held by calls in flight; this call could cost up to $0.0000132",
    "│ to continue: raise the session budget (llmguard.install(budget_usd=...), [tool.llmguard] budget_usd"
    " or %llmguard budget USD)",
]
FOLDED = "the SDK traceback is folded: %tb shows it"


@pytest.fixture
def ip(home, fresh_sim, monkeypatch):
    shell = sdk_shell(monkeypatch, fresh_sim)
    yield shell
    if "llmguard" in shell.extension_manager.loaded:
        run(shell, "%unload_ext llmguard")
    shell.reset()


def run(shell, code: str):
    with capture_output() as captured:
        result = shell.run_cell(code, store_history=True)
    return result, captured


def shown(captured) -> str:
    parts = [captured.stdout, captured.stderr]
    parts += [output.data.get("text/plain", "") for output in captured.outputs]
    return "\n".join(parts)


def box_of(captured) -> list[str]:
    [box] = [o.data["text/plain"] for o in captured.outputs if "llmguard-refusal-box" in o.data.get("text/html", "")]
    return box.splitlines()


@pytest.fixture
def loaded(ip):
    result, captured = run(ip, "%load_ext llmguard")
    assert result.error_in_exec is None, shown(captured)
    return ip


# ---- the box, in a terminal shell ----------------------------------------------------------------


def test_a_budget_refusal_is_a_short_box_and_tb_shows_the_traceback(loaded, fresh_sim):
    ip = loaded
    run(ip, "%llmguard budget 0.000001")
    result, captured = run(ip, OPENAI_CALL)
    assert type(result.error_in_exec).__name__ == "RateLimitError"  # the cell still failed
    n = result.execution_count
    assert box_of(captured) == [*BUDGET_BOX, f"└ openai.RateLimitError (HTTP 429) at Cell In[{n}], line 3 · {FOLDED}"]
    assert "Traceback" not in captured.stdout and "_base_client.py" not in shown(captured)
    assert fresh_sim.stats["requests"] == 0
    _, traceback = run(ip, "%tb")
    assert "_base_client.py" in traceback.stdout and "RateLimitError" in traceback.stdout
    assert "llmguard: session budget would be exceeded" in traceback.stdout


def test_rate_limit_deadline_and_retry_budget_boxes(home, fresh_sim, ip, monkeypatch):
    monkeypatch.setenv("LLMGUARD_RETRY_BUDGET", "0.01")
    run(ip, "%load_ext llmguard")
    run(ip, "import llmguard\n" + OPENAI_CALL)
    run(ip, "%llmguard limit gpt-4o-mini --tpm 10")
    result, captured = run(ip, CALL_AGAIN)
    assert box_of(captured) == [
        "┌ llmguard refused this call: rate limit",
        "│ the call needs 28 tokens (prompt + max tokens) but the gpt-4o-mini TPM limit is 10",
        "│ to continue: lower max_tokens or split the input",
        f"└ openai.RateLimitError (HTTP 429) at Cell In[{result.execution_count}], line 1 · {FOLDED}",
    ]
    run(ip, "%llmguard limit gpt-4o-mini --off")
    run(ip, "%llmguard limit gpt-4o-mini --rpm 1")
    run(ip, CALL_AGAIN)  # takes the one request of this minute
    result, captured = run(ip, "with llmguard.tag(deadline=0.5):\n    " + CALL_AGAIN)
    assert type(result.error_in_exec).__name__ == "APITimeoutError"
    assert box_of(captured) == [
        "┌ llmguard refused this call: deadline",
        "│ the call's deadline passes before gpt-4o-mini has capacity",
        "│ to continue: raise the step/tag deadline or the rate limit, or send less",
        f"└ openai.APITimeoutError at Cell In[{result.execution_count}], line 2 · {FOLDED}",
    ]
    run(ip, "%llmguard limit gpt-4o-mini --off")
    fresh_sim.configure(faults=["500"] * 6)
    first, captured = run(ip, CALL_AGAIN)  # retried until max_attempts: the provider's error, untouched
    assert "InternalServerError" in captured.stdout and "_base_client.py" in captured.stdout
    result, captured = run(ip, CALL_AGAIN)  # the retry budget is spent: not retried, and said so
    assert box_of(captured) == [
        "┌ llmguard stopped retrying this call: retry budget",
        "│ retry budget spent (retries to openai may add 1% of its calls; it looks unhealthy), so this call was"
        " not retried",
        "│ to continue: raise retry_budget if the failures are yours to ride out",
        "│ the provider said: The server had an error while processing your request. Sorry about that!",
        f"└ openai.InternalServerError (HTTP 500) at Cell In[{result.execution_count}], line 1 · {FOLDED}",
    ]


def test_anthropic_refusals_get_the_box_too(loaded):
    ip = loaded
    run(ip, "%llmguard budget 0.000001")
    code = (
        "import anthropic\nclaude = anthropic.Anthropic(timeout=30)\n"
        f"claude.messages.create(model='claude-3-5-haiku-latest', {MESSAGES}, max_tokens=20)"
    )
    result, captured = run(ip, code)
    lines = box_of(captured)
    assert lines[0] == BUDGET_BOX[0] and lines[2] == BUDGET_BOX[2]
    assert lines[3] == f"└ anthropic.RateLimitError (HTTP 429) at Cell In[{result.execution_count}], line 3 · {FOLDED}"


def test_other_errors_keep_ipythons_traceback(loaded, fresh_sim):
    ip = loaded
    run(ip, OPENAI_CALL)
    fresh_sim.configure(faults=["quota"])  # the provider's own 429: the same class as a refusal
    result, captured = run(ip, CALL_AGAIN)
    assert type(result.error_in_exec).__name__ == "RateLimitError"
    assert "Traceback (most recent call last)" in captured.stdout and "_base_client.py" in captured.stdout
    assert "You exceeded your current quota" in captured.stdout
    assert not [o for o in captured.outputs if "llmguard-refusal-box" in o.data.get("text/html", "")]
    result, captured = run(ip, "1 / 0")
    assert "ZeroDivisionError" in captured.stdout and "Traceback" in captured.stdout


def test_unloading_removes_the_handler_and_keeps_one_set_before(ip):
    def earlier(shell, etype, value, tb, tb_offset=None):
        print(f"earlier handler: {value}")

    ip.set_custom_exc((KeyError,), earlier)
    before = ip.CustomTB
    run(ip, "%load_ext llmguard")
    assert ip.CustomTB is not before
    _, captured = run(ip, "{}['missing']")
    assert captured.stdout == "earlier handler: 'missing'\n"  # still handled by the handler set before
    run(ip, "%unload_ext llmguard")
    assert ip.CustomTB is before and ip.custom_exceptions == (KeyError,)
    ip.set_custom_exc((), None)
    run(ip, "%load_ext llmguard")
    run(ip, "import openai")
    assert any(cls.__name__ == "APIStatusError" for cls in ip.custom_exceptions)
    run(ip, "%unload_ext llmguard")
    assert ip.custom_exceptions == ()


# ---- shown once ------------------------------------------------------------------------------------


def test_the_summary_line_names_a_refusal_only_in_its_own_cell(loaded, fresh_sim):
    ip = loaded
    run(ip, OPENAI_CALL)
    run(ip, "%llmguard budget 0.000001")
    caught = "try:\n    " + CALL_AGAIN + "except Exception:\n    print('caught')\n"
    _, captured = run(ip, caught)
    assert captured.stdout.count("last refusal: llmguard: session budget would be exceeded") == 1
    run(ip, "%llmguard budget off")
    _, captured = run(ip, CALL_AGAIN)  # a later cell's line does not repeat the stale refusal
    assert captured.stdout.splitlines()[-1].startswith("llmguard · $0.0000264 spent")
    assert "last refusal" not in captured.stdout
    run(ip, "%llmguard budget 0.000001")
    _, captured = run(ip, CALL_AGAIN)  # boxed: the line after it does not repeat it either
    assert box_of(captured)[:3] == BUDGET_BOX and "last refusal" not in shown(captured)


def test_a_caught_cell_budget_refusal_is_printed_once(loaded):
    ip = loaded
    run(ip, OPENAI_CALL)
    code = "%%llmguard --budget 0.000001\ntry:\n    " + CALL_AGAIN + "except Exception:\n    print('caught')\n"
    _, captured = run(ip, code)
    assert captured.stdout.startswith("caught\n")
    assert shown(captured).count("this cell's budget (%%llmguard --budget 1e-06) would be exceeded") == 1


# ---- in a real kernel, and the HTML in a browser ----------------------------------------------------


def _kernel_notebook(home: Path, sim, tmp_path: Path):
    import nbformat
    from nbclient import NotebookClient

    cells = [
        "%load_ext llmguard",
        "%llmguard budget 0.000001",
        OPENAI_CALL,
        "%tb",
        "1 / 0",
        "%llmguard budget off\n" + CALL_AGAIN,
        "%unload_ext llmguard\nget_ipython().custom_exceptions",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "LLMGUARD_", "JPY_"))}
    env.update(
        LLMGUARD_HOME=str(home),
        OPENAI_BASE_URL=sim.openai_base_url,
        OPENAI_API_KEY=FAKE_OPENAI_KEY,
    )
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=env)
    return notebook


@pytest.fixture(scope="module")
def kernel_run(tmp_path_factory, sim):
    """The notebook above run once in a real kernel; the provider's first answer is a quota 429."""
    sim.configure(rpm=None, tpm=None, faults=["quota"], latency_ms=0, per_token_ms=0, limits=None)
    sim.reset_stats()
    tmp_path = tmp_path_factory.mktemp("kernel")
    try:
        yield _kernel_notebook(tmp_path / "home", sim, tmp_path)
    finally:
        sim.configure(faults=None)


def test_in_a_kernel_a_refusal_is_the_box_with_the_traceback_folded(kernel_run):
    refused = kernel_run.cells[2]
    assert [o.output_type for o in refused.outputs if o.output_type == "error"] == []
    [box] = [o for o in refused.outputs if "llmguard-refusal-box" in o.get("data", {}).get("text/html", "")]
    assert box.data["text/plain"].splitlines() == [
        *BUDGET_BOX,
        f"└ openai.RateLimitError (HTTP 429) at Cell In[3], line 3 · {FOLDED}",
    ]
    html = box.data["text/html"]
    assert '<details class="llmguard-traceback">' in html and "_base_client.py" in html
    assert "\x1b[" not in html and FAKE_OPENAI_KEY not in html
    [tb] = kernel_run.cells[3].outputs  # %tb: the whole SDK traceback, on demand
    assert tb.output_type == "error" and tb.ename == "RateLimitError"
    assert any("_base_client.py" in line for line in tb.traceback)


def test_in_a_kernel_other_errors_keep_the_normal_traceback(kernel_run):
    [zero] = [o for o in kernel_run.cells[4].outputs if o.output_type == "error"]
    assert zero.ename == "ZeroDivisionError" and len(zero.traceback) > 1
    [quota] = [o for o in kernel_run.cells[5].outputs if o.output_type == "error"]
    assert quota.ename == "RateLimitError"
    assert (
        quota.evalue == "Error code: 429 - You exceeded your current quota, please check your plan and billing details."
    )
    assert any("_base_client.py" in line for line in quota.traceback)
    assert not [o for o in kernel_run.cells[5].outputs if "llmguard-refusal-box" in str(o.get("data", {}))]
    [unloaded] = [o for o in kernel_run.cells[6].outputs if o.output_type == "execute_result"]
    assert unloaded.data["text/plain"] == "()"


def test_the_folded_traceback_opens_in_a_browser(kernel_run, tmp_path):
    require_browser("the refusal box browser test")
    from playwright.sync_api import sync_playwright

    [box] = [o for o in kernel_run.cells[2].outputs if "llmguard-refusal-box" in o.get("data", {}).get("text/html", "")]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_content(box.data["text/html"])
            traceback = page.locator(".llmguard-traceback pre")
            assert not traceback.is_visible()  # folded
            text = page.locator(".llmguard-refusal-box").inner_text()
            assert text.splitlines()[:3] == [
                "llmguard: session budget would be exceeded",
                BUDGET_BOX[1][2:],
                BUDGET_BOX[2][2:],
            ]
            page.locator(".llmguard-traceback summary").click()
            assert traceback.is_visible() and "_base_client.py" in traceback.inner_text()
            page.screenshot(path=str(tmp_path / "refusal-box.png"))
        finally:
            browser.close()
    assert llmguard.current() is None


@pytest.mark.parametrize(
    ("client", "code", "error"),
    [
        (
            "google-genai",
            "from google import genai\n"
            "client = genai.Client(api_key='AIza-box-test-1234', http_options={{'base_url': '{base}'}})\n"
            "client.models.generate_content(model='gemini-2.5-flash', contents='Say hi.', "
            "config={{'max_output_tokens': 20}})\n",
            "google.genai.ClientError (HTTP 429)",
        ),
        (
            "mistralai",
            "from mistralai.client import Mistral\n"
            "client = Mistral(api_key='mistral-box-test-1234', server_url='{base}')\n"
            "client.chat.complete(model='mistral-small-latest', messages=[{{'role': 'user', 'content': 'Say hi.'}}], "
            "max_tokens=20)\n",
            "mistralai.client.SDKError (HTTP 429)",
        ),
        (
            "httpx",
            "import httpx\n"
            "httpx.post('{base}/v1/chat/completions', json={{'model': 'gpt-4o-mini', 'max_tokens': 20, "
            "'messages': [{{'role': 'user', 'content': 'Say hi.'}}]}}, timeout=30).raise_for_status()\n",
            "httpx.HTTPStatusError",
        ),
    ],
)
def test_other_clients_refusals_are_boxes_too(client, code, error, loaded, fresh_sim):
    """Refusals reach google-genai, mistralai and raw httpx as their own errors; the box reads them."""
    ip = loaded
    run(ip, "%llmguard budget 0.000001")
    result, captured = run(ip, code.format(base=fresh_sim.base_url))
    assert result.error_in_exec is not None
    lines = box_of(captured)
    assert lines[0] == "┌ llmguard: session budget would be exceeded", lines
    assert lines[-1].startswith(f"└ {error} at Cell In[{result.execution_count}]"), lines
    assert fresh_sim.stats["requests"] == 0
