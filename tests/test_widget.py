"""The live widget: its content, its update thread, and (in a real kernel) the comm messages that
carry updates made from a worker thread to the front end."""

from __future__ import annotations

import json
import queue
import re
import threading
import time

import pytest

import llmguard
from tests.conftest import FAKE_OPENAI_KEY, openai_client

NONZERO_SPEND = re.compile(r"\$0\.0*[1-9]\d* spent")


def _call(sim, max_tokens=20):
    openai_client(sim).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=max_tokens
    )


def _wait_for(predicate, seconds=20.0):
    """Poll until `predicate()` is true (a generous deadline; this is not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_widget_shows_spend_budget_rates_and_the_last_refusal(guard, fresh_sim):
    from llmguard.magics.widget import SpendWidget

    guard.configure(budget_usd=0.001, limits={"gpt-4o-mini": {"rpm": 500, "tpm": 100_000}})
    widget = SpendWidget(llmguard.current)
    _call(fresh_sim)
    guard.configure(budget_usd=0.00001)
    with pytest.raises(Exception, match="llmguard: session budget"):
        _call(fresh_sim, max_tokens=500)
    widget.refresh()
    assert NONZERO_SPEND.search(widget.spend.value) and "of $0.00001" in widget.spend.value
    assert widget.bar.layout.visibility == "visible" and widget.bar.value > 0
    assert "calls 2" in widget.details.value
    assert re.search(r"gpt-4o-mini: RPM \d+/500 · TPM [\d.k]+/100k · queue 0", widget.details.value)
    assert "p50" in widget.details.value and "retries 0" in widget.details.value
    assert "last refusal: llmguard: session budget" in widget.refusal.value
    state = json.dumps([w.get_state() for w in (widget.spend, widget.details, widget.refusal)])
    assert FAKE_OPENAI_KEY not in state
    guard.configure(budget_usd=None)
    widget.refresh()
    assert widget.bar.layout.visibility == "hidden"
    widget.close()


def test_update_thread_follows_calls_from_other_threads_and_stops_on_close(guard, fresh_sim):
    from llmguard.magics.widget import SpendWidget

    widget = SpendWidget(llmguard.current)
    widget._start()  # what display() does after showing the widget
    assert widget.polling and widget.spend.value == "$0.00 spent"
    worker = threading.Thread(target=lambda: [_call(fresh_sim) for _ in range(3)])
    worker.start()
    worker.join()
    assert _wait_for(lambda: "calls 3" in widget.details.value)
    assert NONZERO_SPEND.search(widget.spend.value)
    widget.close()
    assert not widget.polling
    assert not any(t.name == "llmguard-widget" for t in threading.enumerate())


def test_no_widget_thread_without_a_widget_front_end(home, fresh_sim):
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.run_cell("%load_ext llmguard", store_history=True)
    try:
        assert llmguard.current() is not None
        assert not any(t.name == "llmguard-widget" for t in threading.enumerate())
    finally:
        ip.run_cell("%unload_ext llmguard", store_history=True)


# ---- in a real kernel -----------------------------------------------------------------------

WORKER = """
import threading, time
from openai import OpenAI

def work():
    time.sleep(0.3)  # after this cell has finished: no cell is running while the widget updates
    client = OpenAI(timeout=30)
    for i in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}], max_tokens=30)

threading.Thread(target=work, name="worker").start()
"""


def _execute(client, code, timeout=60):
    """Run `code`; every iopub message of its execution, up to its idle status."""
    msg_id = client.execute(code)
    messages = []
    while True:
        message = client.get_iopub_msg(timeout=timeout)
        messages.append(message)
        if (
            message["parent_header"].get("msg_id") == msg_id
            and message["msg_type"] == "status"
            and message["content"]["execution_state"] == "idle"
        ):
            break
    reply = client.get_shell_msg(timeout=timeout)
    assert reply["content"]["status"] == "ok", reply["content"]
    return messages


def _stdout(messages):
    return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")


def test_widget_updates_from_a_worker_thread_reach_the_front_end(fresh_sim, tmp_path):
    from jupyter_client.manager import start_new_kernel

    env = {
        "PATH": __import__("os").environ.get("PATH", ""),
        "LLMGUARD_HOME": str(tmp_path / "home"),
        "OPENAI_BASE_URL": fresh_sim.openai_base_url,
        "OPENAI_API_KEY": FAKE_OPENAI_KEY,
    }
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    try:
        loaded = _execute(client, "%load_ext llmguard")
        classes = {
            m["content"]["comm_id"]: m["content"]["data"]["state"].get("_dom_classes", [])
            for m in loaded
            if m["msg_type"] == "comm_open"
        }
        [spend_id] = [comm for comm, dom in classes.items() if "llmguard-spend" in dom]
        [box_id] = [comm for comm, dom in classes.items() if "llmguard-widget" in dom]
        views = [
            m["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
            for m in loaded
            if m["msg_type"] == "display_data" and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]
        ]
        assert views == [box_id]  # shown once, in the cell that loaded the extension

        _execute(client, WORKER)
        updates = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                message = client.get_iopub_msg(timeout=1)
            except queue.Empty:
                continue
            if message["msg_type"] != "comm_msg":
                continue
            updates.append(message)
            data = message["content"]["data"]
            value = data.get("state", {}).get("value", "")
            if (
                message["content"]["comm_id"] == spend_id
                and data.get("method") == "update"
                and NONZERO_SPEND.search(value)
            ):
                break
        else:
            pytest.fail(f"no widget update with a non-zero spend reached the front end: {updates!r}")
        assert fresh_sim.stats["requests"] >= 1
        assert FAKE_OPENAI_KEY not in json.dumps([m["content"] for m in loaded + updates])

        threads = _stdout(_execute(client, "import threading; print(sorted(t.name for t in threading.enumerate()))"))
        assert "llmguard-widget" in threads
        after = _stdout(
            _execute(
                client,
                "%unload_ext llmguard\nimport threading, llmguard\n"
                "print(sorted(t.name for t in threading.enumerate()), llmguard.current())",
            )
        )
        assert "llmguard-widget" not in after and after.strip().endswith("None")
        reloaded = _execute(
            client, "%load_ext llmguard\n%reload_ext llmguard\nimport llmguard; print(llmguard.current() is not None)"
        )
        assert _stdout(reloaded).strip().endswith("True")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
