"""Re-running is free and deterministic: the shipped notebooks and the demo, run twice on one
LLMGUARD_HOME, send nothing to the provider the second time and show the same answers.

Each notebook starts its own simulator (a new port per kernel), so the cache must key its answers
by the simulator's identity; sampled calls are replayed in a notebook kernel, each draw under its
own key; and `llmguard cache stats` counts the hits of kernels that exit without `uninstall()`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

import llmguard
from llmguard.cache.maintenance import cache_stats
from llmguard.ledger.sqlite import read_events
from tests.conftest import FAKE_OPENAI_KEY, rows

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
MSG = [{"role": "user", "content": "Name a colour."}]
PROBE = "import json\nprint('PROBE ' + json.dumps({'requests': sim.stats['requests'], 'answers': ANSWERS}))"
# What each shipped notebook keeps of its answers, read back by a probe cell appended to the run.
ANSWERS = {
    "quickstart": "[reply.choices[0].message.content, answer]",
    "batch_with_limits": "[summaries, reply.choices[0].message.content]",
    "cost_report": "[label.content[0].text]",
}


def _kernel_env(home: Path, notebook: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "LLMGUARD_", "JPY_"))}
    env["LLMGUARD_HOME"] = str(home)
    env["JPY_SESSION_NAME"] = str(notebook)  # what Jupyter Server gives a notebook's kernel
    env["PYTHONPATH"] = str(REPO)
    return env


def _execute(notebook, home: Path, path: Path, workdir: Path) -> dict:
    """Run `notebook` on a fresh kernel (nbclient shuts it down gracefully); the probe's output."""
    from nbclient import NotebookClient

    workdir.mkdir(exist_ok=True)
    client = NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute(env=_kernel_env(home, path))  # raises CellExecutionError on any error
    [line] = [
        line
        for output in notebook.cells[-1].outputs
        if output.output_type == "stream"
        for line in output.text.splitlines()
        if line.startswith("PROBE ")
    ]
    return json.loads(line.removeprefix("PROBE "))


def _shipped(name: str, probe: str):
    import nbformat

    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(probe))
    return notebook


def _runs(home: Path) -> list[list[dict]]:
    """The ledger's rows, one list per run (kernel), oldest run first."""
    by_run: dict[str, list[dict]] = defaultdict(list)
    for row in read_events(home / "ledger.sqlite3"):
        by_run[row["run_id"]].append(row)
    return list(by_run.values())


@pytest.mark.parametrize("name", ["quickstart", "batch_with_limits", "cost_report"])
def test_a_shipped_notebook_run_twice_sends_nothing_the_second_time(name, tmp_path):
    home, path = tmp_path / "home", NOTEBOOKS / f"{name}.ipynb"
    probe = PROBE.replace("ANSWERS", ANSWERS[name])
    first = _execute(_shipped(name, probe), home, path, tmp_path / "work1")
    second = _execute(_shipped(name, probe), home, path, tmp_path / "work2")
    assert first["requests"] > 0
    assert second["requests"] == 0  # the kernel's own simulator, on a new port, received nothing
    assert second["answers"] == first["answers"]
    run1, run2 = _runs(home)
    assert len(run2) == len(run1)
    # every call of the second run was answered from the cache, except one refused before sending
    assert [r for r in run2 if not r["cache_hit"] and r["status"] != "refused"] == []
    assert all(r["cost_usd"] == 0 for r in run2)
    sampled = [r for r in run2 if r["decision"] == "replay"]
    assert sampled and all(r["cache_hit"] == 1 for r in sampled)
    hits = sum(r["cache_hit"] for r in run1 + run2)
    saved = sum(r["saved_usd"] or 0.0 for r in run1 + run2)
    stats = cache_stats(home)  # the kernels exited without uninstall(): their counters were still written
    assert stats["hits"] == hits
    assert stats["saved_usd"] == pytest.approx(saved, rel=1e-6)


FRESH_CELLS = [
    "import os\nfrom llmguard.sim import SimProvider\nsim = SimProvider().start()\n"
    "os.environ['OPENAI_BASE_URL'] = sim.openai_base_url\nos.environ['OPENAI_API_KEY'] = 'sk-simulated-no-real-key'",
    "%load_ext llmguard",
    "import llmguard\nfrom openai import OpenAI\nclient = OpenAI(timeout=30)\n\n\n"
    "def ask(question):\n    return client.chat.completions.create(\n"
    "        model='gpt-4o-mini', messages=[{'role': 'user', 'content': question}], max_tokens=20\n"
    "    ).choices[0].message.content",
    "twice = [ask('Name a colour.'), ask('Name a colour.')]",
    "%%llm --max-tokens 20 -o replayed\nName a fruit.",
    "%%llm --fresh --max-tokens 20 -o redrawn\nName a tree.",
    "with llmguard.tag(cache='refresh'):\n    tagged = ask('Name a river.')",
    "%llmguard fresh",
    "toggled = ask('Name a bird.')",
    "%llmguard fresh off",
    "after = ask('Name a fish.')",
    "import json\nprint('PROBE ' + json.dumps({'requests': sim.stats['requests'], 'answers': "
    "[twice, replayed, redrawn, tagged, toggled, after]}))",
]


def test_sampled_calls_replay_per_draw_and_fresh_draws_again(tmp_path):
    import nbformat

    home, path = tmp_path / "home", tmp_path / "sampled.ipynb"

    def notebook():
        made = nbformat.v4.new_notebook()
        made.cells = [nbformat.v4.new_code_cell(source) for source in FRESH_CELLS]
        return made

    first = _execute(notebook(), home, path, tmp_path / "work1")
    rerun = notebook()
    second = _execute(rerun, home, path, tmp_path / "work2")
    # the footer under the re-run cell says the answers were replayed and how to draw new ones
    shown = [o.get("data", {}).get("text/plain", "") for o in rerun.cells[3].outputs]
    assert "llmguard · this cell: 2 calls · $0.00 · " in shown[-1], shown
    assert " · 2 replayed ($0) · `%llmguard fresh` for a new sample · " in shown[-1], shown
    # run 1: two identical sampled calls in one cell are two draws, both sent; every call was sent
    assert first["requests"] == 7
    # run 2: only --fresh, tag(cache="refresh") and the call under %llmguard fresh were sent
    assert second["requests"] == 3
    assert second["answers"] == first["answers"]  # the simulator answers a request the same way
    run1, run2 = _runs(home)
    by_cell = [(r["cell"], r["cache_hit"], r["decision"]) for r in run2]
    assert by_cell == [
        (4, 1, "replay"),
        (4, 1, "replay"),
        (5, 1, "replay"),
        (6, 0, "process"),
        (7, 0, "process"),
        (9, 0, "process"),
        (11, 1, "replay"),
    ]
    assert [r["cache_hit"] for r in run1] == [0] * 7
    assert [r["notebook"] for r in run2] == [str(path)] * 7


def _demo(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "LLMGUARD_"))}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-m", "llmguard.cli", "demo", "--home", str(home)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


def test_the_demo_run_twice_sends_nothing_the_second_time(tmp_path):
    home = tmp_path / "home"
    _demo(home)
    _demo(home)
    run1, run2 = _runs(home)
    assert len(run1) == len(run2) == 42  # 36 openai calls and 6 anthropic ones
    assert [r["cache_hit"] for r in run1] == [0] * 42  # the first run sends every call, duplicates too
    assert [r["cache_hit"] for r in run2] == [1] * 42  # the second sends none
    assert {r["decision"] for r in run2} == {"replay"}
    assert sum(r["cost_usd"] for r in run2) == 0
    assert sum(r["saved_usd"] for r in run2) == pytest.approx(sum(r["cost_usd"] for r in run1), rel=1e-9)


# ---- in one process: the simulator's identity keys its answers, not its port -----------------------


def _ask(base_url: str, **extra):
    import openai

    client = openai.OpenAI(base_url=base_url + "/v1", api_key=FAKE_OPENAI_KEY, max_retries=0, timeout=30)
    return client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=10, temperature=0, **extra)


def test_a_simulator_restarted_on_another_port_replays_its_answers(home):
    from llmguard.sim import SimProvider

    guard = llmguard.install(home=str(home))
    first = SimProvider().start()
    answer = _ask(first.base_url).choices[0].message.content
    guard.cache_layer.flush()
    with SimProvider() as again, SimProvider(seed=1) as other:
        first.stop()  # started while the first still held its port: another port for sure
        assert _ask(again.base_url).choices[0].message.content == answer
        assert again.stats["requests"] == 0
        _ask(other.base_url)  # another seed answers differently: another source of answers
        assert other.stats["requests"] == 1
    assert [r["cache_hit"] for r in rows(guard)] == [0, 1, 0]


def test_a_loopback_server_that_is_not_a_simulator_is_keyed_by_its_port(fresh_sim, home):
    """Only an announced simulator port is keyed by identity: any other loopback URL keeps its own key."""
    from llmguard.cache.origin import answer_origin

    url = fresh_sim.openai_base_url + "/chat/completions"
    assert answer_origin(url) == f"llmguard-sim:{fresh_sim.identity}/v1/chat/completions"
    unannounced = f"http://127.0.0.1:{fresh_sim.port + 1}/v1/chat/completions"
    assert answer_origin(unannounced) == unannounced
    elsewhere = f"http://10.1.2.3:{fresh_sim.port}/v1/chat/completions"
    assert answer_origin(elsewhere) == elsewhere


def test_a_script_still_sends_every_sampled_call(fresh_sim, home):
    guard = llmguard.install(home=str(home))
    import openai

    client = openai.OpenAI(base_url=fresh_sim.openai_base_url, api_key=FAKE_OPENAI_KEY, max_retries=0, timeout=30)
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=10)
    guard.cache_layer.flush()
    assert fresh_sim.stats["requests"] == 2
    assert [r["decision"] for r in rows(guard)] == ["process", "process"]


HITS_ONLY = """
import sys, openai, llmguard
llmguard.install(home=sys.argv[2])
client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="sk-llmguard-test-7f3a9c1e5b", max_retries=0, timeout=30)
for i in range(3):
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"item {i}"}], max_tokens=10, temperature=0
    )
# no uninstall(): the process ends as a kernel does when its notebook is closed
"""


def test_cache_stats_count_the_hits_of_a_process_that_never_uninstalled(fresh_sim, home):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(2):
        subprocess.run(
            [sys.executable, "-c", textwrap.dedent(HITS_ONLY), fresh_sim.base_url, str(home)],
            env=env,
            check=True,
            timeout=120,
        )
    assert fresh_sim.stats["requests"] == 3
    saved = sum(r["saved_usd"] or 0.0 for r in read_events(home / "ledger.sqlite3"))
    stats = cache_stats(home)
    assert (stats["hits"], stats["misses"]) == (3, 3)
    assert saved > 0 and stats["saved_usd"] == pytest.approx(saved, rel=1e-6)
