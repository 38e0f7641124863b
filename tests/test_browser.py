"""quickstart.ipynb in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven by Playwright.

Runs every cell from the Run menu, then checks in the page that the live widget shows the session's
non-zero spend (the same total `%llmguard status` printed) and that the `%%llm` answer was rendered,
and saves screenshots in the test's temporary folder.

Needs the `jupyterlab` and `playwright` Python packages and Debian's `chromium` (Playwright's own
browser download is not used). Skipped when they are missing, except in CI (CI=true), where that
is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from llmguard.ledger.sqlite import read_events
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_browser

QUICKSTART = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"
ANY_PROMPT_STARTED = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
    .some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))"""
# "done" once every cell has its number; "lost" when nothing runs or waits any more but some cell has
# none (a kernel swapped under the page drops the queued cells and blanks their prompts)
RUN_ALL_OUTCOME = """() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(e => e.textContent);
    if (prompts.length > 0 && prompts.every(text => /\\[\\d+\\]/.test(text))) return "done";
    if (!prompts.some(text => /\\[\\*\\]/.test(text))) return "lost";
    return false;
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on 127.0.0.1 with a copy of quickstart.ipynb, private config and LLMGUARD_HOME."""
    require_browser("the JupyterLab browser test", ("playwright.sync_api", "jupyterlab"))
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(QUICKSTART, root / "quickstart.ipynb")
    state = tmp_path / "jupyter"
    # every cell stays in the page (no virtual scrolling) so the test can read any output; no news
    # or update checks
    for name, values in (
        ("notebook-extension/tracker", {"windowingMode": "none"}),
        ("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False}),
    ):
        path = state / "lab-settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "ANTHROPIC_", "LLMGUARD_", "JPY_", "JUPYTER"))
    }
    env.update(
        LLMGUARD_HOME=str(tmp_path / "home"),
        JUPYTER_CONFIG_DIR=str(state / "config"),
        JUPYTER_DATA_DIR=str(state / "data"),
        JUPYTER_RUNTIME_DIR=str(state / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(state / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"),
    )
    port, token = _free_port(), os.urandom(12).hex()
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--ServerApp.allow_root=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log_path = tmp_path / "jupyterlab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited ({server.returncode}):\n{log_path.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.1)
        _start_session(base, token)
        yield {
            "url": f"{base}/lab/tree/quickstart.ipynb?token={token}",
            "base": base,
            "token": token,
            "root": root,
            "home": tmp_path / "home",
            "log": log_path,
        }
    finally:
        try:  # a clean shutdown also stops the kernels it started
            request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(request, timeout=10)
            server.wait(timeout=30)
        except Exception:
            server.terminate()
            server.wait(timeout=30)


def _api(base: str, token: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{base}{path}",
        data=data,
        method="GET" if body is None else "POST",
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def _start_session(base: str, token: str) -> None:
    """The notebook's session and kernel, created through the REST API before the page opens.

    Left to the page, JupyterLab sometimes starts a kernel, drops it a moment later and starts
    another, losing a "Run All" made in between; with a session already there it just connects.
    """
    session = _api(
        base,
        token,
        "/api/sessions",
        {
            "path": "quickstart.ipynb",
            "name": "quickstart.ipynb",
            "type": "notebook",
            "kernel": {"name": "python3"},
        },
    )
    assert session["kernel"]["name"] == "python3"


def _wait_for_one_settled_kernel(base: str, token: str, settle: float = 1.5, timeout: float = 30) -> None:
    """Wait until the server runs one kernel and has run that same one for `settle` seconds.

    Even with a session made up front, JupyterLab now and then starts a kernel of its own as the page
    opens and shuts the first one down; a Run All sent to the first is lost with it.
    """
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        kernels = tuple(sorted(kernel["id"] for kernel in _api(base, token, "/api/kernels")))
        if kernels != last:
            last, since = kernels, time.monotonic()
        elif len(kernels) == 1 and time.monotonic() - since >= settle:
            return
        time.sleep(0.1)
    raise AssertionError(f"JupyterLab's kernels did not settle on one within {timeout} s: {last}")


def _dismiss_dialogs(page, seen: list[str]) -> None:
    """Answer any JupyterLab dialog (a late "Select Kernel", a kernel restart notice) with its default.

    What each dialog said goes into `seen`, so a failure names the dialog that got in the way.
    """
    for _ in range(5):
        dialog = page.locator(".jp-Dialog")
        if not dialog.count():
            return
        seen.append(" | ".join(dialog.first.inner_text().split("\n")))
        buttons = dialog.first.locator(".jp-Dialog-footer button")
        accept = dialog.first.locator("button.jp-mod-accept")
        target = accept.first if accept.count() else buttons.last if buttons.count() else None
        if target is not None:
            target.click(timeout=5_000, force=True)
        else:
            dialog.first.focus()
            page.keyboard.press("Escape")
        page.wait_for_timeout(300)


def test_quickstart_runs_in_jupyterlab_and_shows_spend_and_the_llm_answer(lab, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        logs: list[str] = []
        dialogs_seen: list[str] = []
        page.on("console", lambda message: logs.append(f"{message.type}: {message.text}"))
        try:
            page.goto(lab["url"])
            page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=60_000)
            kernel_ready = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
            dialog = page.locator(".jp-Dialog").get_by_role("button", name="Select")
            expect(kernel_ready.or_(dialog).first).to_be_visible(timeout=60_000)
            if dialog.count():  # a JupyterLab that still asks which kernel to use
                dialog.click()
            for attempt in range(5):  # a Run All made while the kernel still connects or swaps can be dropped
                _wait_for_one_settled_kernel(lab["base"], lab["token"])
                try:
                    _dismiss_dialogs(page, dialogs_seen)
                    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click(timeout=5_000)
                    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click(timeout=5_000)
                    page.wait_for_function(ANY_PROMPT_STARTED, timeout=15_000)
                    outcome = page.wait_for_function(RUN_ALL_OUTCOME, timeout=120_000).json_value()
                except Exception as error:
                    if attempt == 4:
                        raise AssertionError(f"Run All never started; dialogs seen: {dialogs_seen}") from error
                    continue
                if outcome == "done":
                    break
                if attempt == 4:
                    raise AssertionError("every Run All was dropped before all cells ran")

            status = page.locator(".jp-CodeCell", has_text="%llmguard status").locator(".jp-OutputArea-output")
            total = re.search(r"\$\d+\.\d+ spent", status.inner_text()).group(0)
            assert float(total[1:].split()[0]) > 0
            spend = page.locator(".llmguard-spend")
            expect(spend).to_have_count(2)  # the widget under %load_ext and again under %llmguard widget
            for view in (spend.nth(0), spend.nth(1)):
                expect(view).to_contain_text(total, timeout=20_000)  # live: it caught up with every call
            sparks = page.locator(".llmguard-spark")
            expect(sparks).to_have_count(2)
            for spark in (sparks.nth(0), sparks.nth(1)):
                # the spend sparkline, drawn inside JupyterLab's widget view (not only on a static page)
                bars = spark.locator("svg.llmguard-spark-bars")
                expect(bars).to_have_count(1, timeout=20_000)
                assert bars.locator("rect").count() >= 1
                assert "$" in (bars.get_attribute("aria-label") or "")
                assert bars.bounding_box()["width"] > 0

            llm_cell = page.locator(".jp-CodeCell", has_text="%%llm --max-tokens 120 -o answer")
            answer = llm_cell.locator(".jp-RenderedMarkdown").first.inner_text().strip()
            stored = (
                page.locator(".jp-CodeCell", has_text="words stored in").locator(".jp-OutputArea-output").inner_text()
            )
            assert len(answer.split()) > 10 and stored.startswith(f"{len(answer.split())} words stored")
            lint = page.locator(".jp-CodeCell", has_text="def ask_until_it_works").locator(".llmguard-lint")
            expect(lint).to_contain_text("LG101")

            numbers = {}
            for marker in ("Explain API rate limits", "for question in", "-o answer"):
                prompt = page.locator(".jp-CodeCell", has_text=marker).locator(".jp-InputPrompt").inner_text()
                numbers[marker] = int(re.search(r"\d+", prompt).group(0))

            spend.nth(0).scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "quickstart-widget.png"))
            llm_cell.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "quickstart-llm.png"))
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))  # what the page showed, for the report
            (tmp_path / "console.log").write_text("\n".join(logs))
            raise
        finally:
            browser.close()
    assert (tmp_path / "quickstart-widget.png").stat().st_size > 10_000

    rows = read_events(lab["home"] / "ledger.sqlite3")
    last_run = max(rows, key=lambda row: row["ts"])["run_id"]  # a kernel that was swapped out has its own run
    rows = [row for row in rows if row["run_id"] == last_run]
    assert len(rows) == 5 and all(row["status"] == "ok" for row in rows)
    assert {row["notebook"] for row in rows} == {str(lab["root"] / "quickstart.ipynb")}  # from Jupyter Server
    cells = {row["cell"]: sum(r["cell"] == row["cell"] for r in rows) for row in rows}
    assert cells == {numbers["Explain API rate limits"]: 1, numbers["for question in"]: 3, numbers["-o answer"]: 1}
