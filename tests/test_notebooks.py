"""The demo notebooks run top to bottom on a real kernel (nbclient), and their ledgers hold the
calls each cell made, tagged with the notebook's path and the cell's execution count."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from llmguard.ledger.sqlite import read_events

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _kernel_env(home: Path, notebook: Path) -> dict[str, str]:
    """The test's environment without anything that would point the SDKs or llmguard elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "LLMGUARD_", "JPY_"))}
    env["LLMGUARD_HOME"] = str(home)
    env["JPY_SESSION_NAME"] = str(notebook)  # what Jupyter Server gives a notebook's kernel
    return env


def _run(name: str, tmp_path: Path):
    import nbformat
    from nbclient import NotebookClient

    path = NOTEBOOKS / f"{name}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    home = tmp_path / "home"
    workdir = tmp_path / "work"
    workdir.mkdir()
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute(env=_kernel_env(home, path))  # raises CellExecutionError on any error
    return notebook, read_events(home / "ledger.sqlite3"), path


def _cell(notebook, marker: str):
    [cell] = [c for c in notebook.cells if c.cell_type == "code" and marker in c.source]
    return cell


def _texts(cell) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output:
            parts.extend(str(value) for value in output.data.values())
    return "\n".join(parts)


def _no_errors(notebook) -> None:
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    counts = [c.execution_count for c in notebook.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1))  # every code cell ran, in order


def _by_cell(rows) -> Counter:
    return Counter(row["cell"] for row in rows)


def test_quickstart(tmp_path):
    notebook, rows, path = _run("quickstart", tmp_path)
    _no_errors(notebook)
    assert {row["notebook"] for row in rows} == {str(path)}
    first = _cell(notebook, "Explain API rate limits").execution_count
    loop = _cell(notebook, "for question in").execution_count
    llm = _cell(notebook, "%%llm --max-tokens 120 -o answer")
    assert _by_cell(rows) == {first: 1, loop: 3, llm.execution_count: 1}  # the dry run sent nothing
    assert all(row["status"] == "ok" and row["cost_usd"] > 0 for row in rows)
    [streamed] = [row for row in rows if row["cell"] == llm.execution_count]
    assert streamed["stream"] == 1 and streamed["output_tokens"] <= 120
    markdown = [o.data["text/markdown"] for o in llm.outputs if "text/markdown" in o.get("data", {})]
    assert len(markdown) == 1 and len(markdown[0].split()) > 10  # the streamed answer, rendered
    load = _cell(notebook, "%load_ext llmguard")
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in load.outputs)
    assert "LG101" in _texts(_cell(notebook, "def ask_until_it_works"))
    assert "worst case $" in _texts(_cell(notebook, "--dry-run"))
    assert "<table>" in _texts(_cell(notebook, "%llmguard report"))


def test_batch_with_limits(tmp_path):
    notebook, rows, path = _run("batch_with_limits", tmp_path)
    _no_errors(notebook)
    batch = _cell(notebook, "pool = ThreadPoolExecutor").execution_count
    interactive = _cell(notebook, "Quick: what is 2 + 2?").execution_count
    refused = _cell(notebook, "%%llmguard --budget 0.001").execution_count
    assert _by_cell(rows) == {batch: 80, interactive: 1, refused: 1}
    background = [row for row in rows if row["cell"] == batch]
    assert all(row["priority"] == "background" and row["feature"] == "batch-summary" for row in background)
    assert all(row["status"] == "ok" and row["retry_count"] == 0 for row in background)
    assert sum(row["decision"] == "queue" for row in background) > 0  # the limiter held some back
    [quick] = [row for row in rows if row["cell"] == interactive]
    assert quick["priority"] == "interactive" and quick["status"] == "ok"
    [over] = [row for row in rows if row["cell"] == refused]
    assert over["status"] == "refused" and "this cell's budget" in over["error_message"]
    assert "the provider answered 429 0 times" in _texts(_cell(notebook, "wait(batch)"))
    assert "llmguard: this cell's budget" in _texts(_cell(notebook, "%%llmguard --budget 0.001"))


def test_cost_report(tmp_path):
    notebook, rows, path = _run("cost_report", tmp_path)
    _no_errors(notebook)
    workload = _cell(notebook, "def ask(").execution_count
    scoped = _cell(notebook, "%%llmguard --tenant globex").execution_count
    cached = _cell(notebook, "please reset my password").execution_count
    assert _by_cell(rows) == {workload: 8, scoped: 4, cached: 2}
    summary = [row for row in rows if row["cell"] == workload]
    assert {row["tenant"] for row in summary} == {"acme"}
    assert Counter(row["prompt_version"] for row in summary) == {"v1": 4, "v2": 4}
    chat = [row for row in rows if row["cell"] == scoped]
    assert {(row["tenant"], row["feature"]) for row in chat} == {("globex", "chat")}
    assert Counter(row["provider"] for row in chat) == {"openai": 3, "anthropic": 1}
    assert [row["cache_hit"] for row in rows if row["cell"] == cached] == [0, 1]
    for line, expected in (
        ("%llmguard report", "gpt-4o"),
        ("%llmguard report --by tenant", "globex"),
        ("%llmguard report --by feature", "classify"),
    ):
        [cell] = [c for c in notebook.cells if c.cell_type == "code" and c.source.strip() == line]
        assert "<table>" in _texts(cell) and expected in _texts(cell)
    assert "v1: 4 calls" in _texts(_cell(notebook, 'by="prompt_version"'))


@pytest.mark.parametrize("name", ["quickstart", "batch_with_limits", "cost_report"])
def test_notebooks_are_stored_clean(name):
    import nbformat

    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert "SimProvider" in code[0].source  # each starts its own simulated provider: no key, no network
